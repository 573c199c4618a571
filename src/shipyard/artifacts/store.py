"""The content-addressed artifact store: put files, folders and bytes; get them back verified."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from shipyard.artifacts.backend import BlobStore, open_blob_store
from shipyard.artifacts.names import (
    blob_key,
    check_name,
    check_sha256,
    hash_file,
    refuse_link,
)
from shipyard.core.errors import InvalidInputError, NotFoundError, ShipyardError

Kind = Literal["file", "dir"]
_CHUNK = 1 << 20


class ChecksumError(ShipyardError):
    """Stored bytes do not match their sha256: the artifact was changed or damaged."""

    http_status = 500


@dataclass(frozen=True)
class ArtifactRef:
    """A stored file or folder: its sha256 (of the file, or of the folder's listing) and size."""

    sha256: str
    size: int
    name: str = ""
    kind: Kind = "file"

    def __post_init__(self) -> None:
        check_sha256(self.sha256)
        if self.kind not in ("file", "dir"):
            raise InvalidInputError(f"Artifact kind {self.kind!r} is unknown.",
                                    hint="Use 'file' or 'dir'.")

    def to_spec(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {"sha256": self.sha256, "size": self.size, "name": self.name, "kind": self.kind}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> ArtifactRef:
        """Rebuild from `to_spec` output."""
        return cls(spec["sha256"], int(spec["size"]), spec.get("name", ""),
                   spec.get("kind", "file"))


def _corrupted(ref: ArtifactRef, actual: str, size: int) -> ChecksumError:
    return ChecksumError(
        f"Artifact {ref.name or ref.sha256[:12]!r} is corrupted: its content ({size} bytes) "
        f"has sha256 {actual[:12]}… but {ref.sha256[:12]}… was stored.",
        hint="The stored copy was changed or damaged; restore it from a backup or store it "
             "again (log or register it anew).")


class ArtifactStore:
    """Files and folders stored once per content, read back only when their sha256 matches."""

    def __init__(self, blobs: BlobStore, url: str) -> None:
        self.blobs = blobs
        self.url = url

    # -- writing -------------------------------------------------------------------------

    def put_bytes(self, data: bytes, *, name: str = "") -> ArtifactRef:
        """Store bytes; storing the same bytes again is free."""
        ref = ArtifactRef(hashlib.sha256(data).hexdigest(), len(data),
                          check_name(name) if name else "")
        if not self.blobs.exists(blob_key(ref.sha256)):
            self.blobs.write_bytes(blob_key(ref.sha256), data)
        return ref

    def put_file(self, path: str | Path, *, name: str | None = None) -> ArtifactRef:
        """Store one file (not a link); `name` defaults to the file name."""
        path = Path(path)
        refuse_link(path)
        if not path.is_file():
            raise NotFoundError(f"{str(path)!r} is not a file.", hint="Pass an existing file.")
        digest, size = hash_file(path)
        if not self.blobs.exists(blob_key(digest)):
            self.blobs.write_file(blob_key(digest), path)
        return ArtifactRef(digest, size, check_name(name or path.name))

    def put_dir(self, path: str | Path, *, name: str | None = None) -> ArtifactRef:
        """Store a folder (every file, recursively; links refused) and its listing."""
        root = Path(path)
        refuse_link(root)
        if not root.is_dir():
            raise NotFoundError(f"{str(root)!r} is not a folder.", hint="Pass an existing folder.")
        files = []
        for file in _walk(root):
            ref = self.put_file(file, name=file.relative_to(root).as_posix())
            files.append(ref.to_spec())
        listing = json.dumps({"files": files}, sort_keys=True).encode()
        ref = self.put_bytes(listing)
        return ArtifactRef(ref.sha256, sum(f["size"] for f in files),
                           check_name(name or root.name), "dir")

    # -- reading -------------------------------------------------------------------------

    def exists(self, ref: ArtifactRef) -> bool:
        """Whether the content of `ref` is in the store (not whether it is intact)."""
        return self.blobs.exists(blob_key(ref.sha256))

    def get_bytes(self, ref: ArtifactRef) -> bytes:
        """The bytes of a stored file, verified against its sha256."""
        with self.blobs.open(blob_key(ref.sha256)) as stream:
            data = stream.read()
        actual = hashlib.sha256(data).hexdigest()
        if actual != ref.sha256:
            raise _corrupted(ref, actual, len(data))
        return data

    def list_dir(self, ref: ArtifactRef) -> dict[str, ArtifactRef]:
        """The files of a stored folder by relative name, from its verified listing."""
        if ref.kind != "dir":
            raise InvalidInputError(f"Artifact {ref.name!r} is a file, not a folder.",
                                    hint="Use get_bytes() or download() for files.")
        listing = json.loads(self.get_bytes(ArtifactRef(ref.sha256, 0, ref.name)))
        return {f["name"]: ArtifactRef(f["sha256"], f["size"], check_name(f["name"]))
                for f in listing["files"]}

    def download(self, ref: ArtifactRef, dest: str | Path) -> Path:
        """Write a stored file to `dest`, or a folder's files under `dest`; return `dest`."""
        dest = Path(dest)
        if ref.kind == "file":
            self._download_file(ref, dest)
            return dest
        dest.mkdir(parents=True, exist_ok=True)
        refuse_link(dest)
        for rel, file_ref in self.list_dir(ref).items():
            target = dest.joinpath(*rel.split("/"))
            parent = target.parent
            while parent != dest:  # never write through a link planted in the destination
                refuse_link(parent)
                parent = parent.parent
            self._download_file(file_ref, target)
        return dest

    def _download_file(self, ref: ArtifactRef, dest: Path) -> None:
        refuse_link(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".shipyard-")
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out, self.blobs.open(blob_key(ref.sha256)) as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            if digest.hexdigest() != ref.sha256:
                raise _corrupted(ref, digest.hexdigest(), size)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _walk(root: Path) -> list[Path]:
    files = []
    for folder, dirs, names in os.walk(root, followlinks=False):
        base = Path(folder)
        for entry in [*dirs, *names]:
            refuse_link(base / entry)
        files.extend(base / n for n in names)
    return sorted(files)


def open_artifact_store(url: str, *, endpoint_url: str | None = None) -> ArtifactStore:
    """The artifact store at `url`: a folder path, `s3://bucket/prefix` or `memory://name`."""
    return ArtifactStore(open_blob_store(url, endpoint_url=endpoint_url), url)
