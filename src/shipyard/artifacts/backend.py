"""The storage backend protocol of the artifact store, and the table that picks one by URL."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import BinaryIO, Protocol

from shipyard.core.errors import ConfigError


class BlobStore(Protocol):
    """Immutable blobs by key; every write is atomic (readers see all of it or nothing)."""

    def exists(self, key: str) -> bool: ...
    def write_file(self, key: str, source: Path) -> None: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def open(self, key: str) -> BinaryIO: ...  # raises NotFoundError when the key is absent
    def delete(self, key: str) -> None: ...


_BACKENDS = {
    "file": ("shipyard.artifacts.local:LocalBlobStore", None),
    "s3": ("shipyard.artifacts.remote:FsspecBlobStore", "s3"),
    "memory": ("shipyard.artifacts.remote:FsspecBlobStore", None),
}


def scheme_of(url: str) -> str:
    """The URL scheme of an artifacts location; a plain path is 'file'."""
    return url.split("://", 1)[0].lower() if "://" in url else "file"


def open_blob_store(url: str, *, endpoint_url: str | None = None) -> BlobStore:
    """The backend for `url`: a folder, `s3://bucket/prefix` or `memory://name`."""
    scheme = scheme_of(url)
    if scheme not in _BACKENDS:
        raise ConfigError(f"Artifact store URL {url!r} has unsupported scheme {scheme!r}.",
                          hint=f"Use a folder path or one of {sorted(_BACKENDS)}:// URLs.")
    target, extra = _BACKENDS[scheme]
    module, _, name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), name)
        return cls(url, endpoint_url=endpoint_url)  # type: ignore[no-any-return]
    except ModuleNotFoundError as exc:
        raise ConfigError(f"Artifact store {url!r} needs {exc.name!r}, which is not installed.",
                          hint=f"pip install 'shipyard[{extra or 's3'}]'") from exc
