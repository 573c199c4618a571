"""A model package: the serialized model (and its ONNX copy) plus `model.yaml`, the manifest."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shipyard.core.environment import package_versions, python_version
from shipyard.core.errors import InvalidInputError
from shipyard.models.flavors import Flavor, ModelInfo
from shipyard.models.flavors.onnx import OnnxFlavor, convert
from shipyard.models.signature import Signature

MANIFEST = "model.yaml"
FORMAT = 1
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Manifest:
    """The parsed `model.yaml` of a package."""

    data: dict[str, Any]

    @property
    def flavor(self) -> str:
        return str(self.data["flavor"])

    @property
    def signature(self) -> Signature:
        return Signature.from_spec(self.data["signature"])

    @property
    def files(self) -> dict[str, str]:
        """Relative file name -> sha256, for every file besides the manifest."""
        return dict(self.data["files"])

    @property
    def onnx_file(self) -> str | None:
        return self.data.get("onnx_file")


def write_package(folder: Path, model: Any, flavor: Flavor, info: ModelInfo,
                  signature: Signature, *, feature_service: str | None, onnx: bool) -> Manifest:
    """Save the model (and its ONNX copy when asked) and the manifest into `folder`."""
    flavor.save(model, folder)
    libraries = list(flavor.libraries)
    onnx_file = None
    if onnx and flavor.name != "onnx":
        inputs = signature.inputs
        data = convert(flavor.name, model, [c.name for c in inputs],
                       [c.dtype.name for c in inputs])
        onnx_file = OnnxFlavor.file
        (folder / onnx_file).write_bytes(data)
        libraries += ["onnx", "onnxruntime", "skl2onnx", "onnxmltools"]
    files = {flavor.file: _sha256(folder / flavor.file)}
    if onnx_file:
        files[onnx_file] = _sha256(folder / onnx_file)
    manifest = {
        "format": FORMAT, "flavor": flavor.name, "model_file": flavor.file,
        "onnx_file": onnx_file, "task": info.task, "classes": info.classes,
        "signature": signature.to_spec(), "feature_service": feature_service,
        "python": python_version(), "libraries": package_versions(dict.fromkeys(libraries)),
        "files": files, **info.extra,
    }
    (folder / MANIFEST).write_text(yaml.dump(manifest, Dumper=_Dumper, sort_keys=False))
    return Manifest(manifest)


def read_manifest(read: Callable[[str], bytes], listed: Mapping[str, str]) -> Manifest:
    """Parse and check `model.yaml`; `listed` maps the package's files to their sha256."""
    if MANIFEST not in listed:
        raise InvalidInputError(f"The package has no {MANIFEST}.",
                                hint="Register the model again with project.models.register().")
    data = yaml.load(read(MANIFEST), Loader=_Loader)  # noqa: S506 - a safe loader
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInputError(f"{MANIFEST} has an unknown format.",
                                hint="Upgrade Shipyard to load this model.")
    manifest = Manifest(data)
    for name, digest in manifest.files.items():
        if listed.get(name) != digest:
            raise InvalidInputError(f"{MANIFEST} lists {name!r} with a checksum the stored "
                                    "package does not have.",
                                    hint="The package was altered; register the model again.")
    return manifest


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
