"""The Python interpreter and installed package versions a run or a model was made with."""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterable
from functools import cache
from importlib import metadata

KEY_PACKAGES = ("shipyard", "numpy", "pandas", "pyarrow", "scikit-learn", "lightgbm", "xgboost",
                "onnx", "onnxruntime", "skl2onnx", "onnxmltools", "torch")


def python_version() -> str:
    """The running interpreter's version, e.g. '3.11.7'."""
    return platform.python_version()


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of the named distributions; absent ones are left out."""
    found = {name: _version(name) for name in names}
    return {name: version for name, version in found.items() if version is not None}


@cache  # reading a distribution's METADATA costs ~10 ms; a process keeps its packages
def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, object]:
    """Python, platform and key package versions, JSON-ready."""
    return {"python": python_version(), "implementation": sys.implementation.name,
            "platform": platform.platform(), "packages": package_versions()}


def who() -> str:
    """`user@host` of this process, for audit columns."""
    import getpass
    import socket

    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (KeyError, OSError):
        return "unknown"
