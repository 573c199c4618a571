"""Artifacts on any fsspec filesystem (S3-compatible, memory); one PUT per object is atomic."""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import fsspec

from shipyard.core.errors import BackendUnavailable, NotFoundError


class FsspecBlobStore:
    """Blobs as objects under `scheme://bucket/prefix`."""

    def __init__(self, url: str, *, endpoint_url: str | None = None) -> None:
        options: dict[str, Any] = {}
        if url.startswith("s3://"):
            options = {"use_listings_cache": False, "skip_instance_cache": True}
            if endpoint_url:
                options["client_kwargs"] = {"endpoint_url": endpoint_url}
        self.fs, self.prefix = fsspec.core.url_to_fs(url, **options)
        self.prefix = self.prefix.rstrip("/")
        self.url = url

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}"

    def _call(self, what: str, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except (FileNotFoundError, NotFoundError):
            raise
        except OSError as exc:  # botocore/aiohttp errors surface as OSError subclasses
            raise BackendUnavailable(f"Cannot {what} in artifact store {self.url!r}: {exc}",
                                     hint="Check the endpoint, bucket and credentials "
                                          "(artifacts_endpoint_url, AWS_* variables).") from exc

    def exists(self, key: str) -> bool:
        return bool(self._call("check an object", self.fs.exists, self._key(key)))

    def write_file(self, key: str, source: Path) -> None:
        self._call("upload an object", self.fs.put_file, str(source), self._key(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        self._call("upload an object", self.fs.pipe_file, self._key(key), data)

    def open(self, key: str) -> BinaryIO:
        try:
            return self._call("read an object", self.fs.open, self._key(key), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"Artifact {key!r} is missing from {self.url!r}.",
                                hint="The bucket was cleaned or points elsewhere; check "
                                     "`artifacts` in shipyard.yaml.") from None

    def delete(self, key: str) -> None:
        if self.exists(key):
            self._call("delete an object", self.fs.rm_file, self._key(key))
