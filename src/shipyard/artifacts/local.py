"""Artifacts in a local folder: temp file + fsync + rename, reads never follow links out."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from shipyard.core.errors import InvalidInputError, NotFoundError


class LocalBlobStore:
    """Blobs as files under one root folder."""

    def __init__(self, url: str, *, endpoint_url: str | None = None) -> None:
        self.root = Path(url.removeprefix("file://")).absolute()
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        path = self.root / key
        real_root = os.path.realpath(self.root)
        if not os.path.realpath(path).startswith(real_root + os.sep):
            raise InvalidInputError(f"Artifact {key!r} resolves outside the store {self.url!r}.",
                                    hint="A link inside the store was replaced: restore it.")
        return path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _publish(self, key: str, write: Callable[[BinaryIO], object]) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)  # atomic: readers see the old state or the whole file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def write_file(self, key: str, source: Path) -> None:
        def copy(out: BinaryIO) -> None:
            with open(source, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)

        self._publish(key, copy)

    def write_bytes(self, key: str, data: bytes) -> None:
        self._publish(key, lambda out: out.write(data))

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb", buffering=0)  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise NotFoundError(f"Artifact {key!r} is missing from {self.url!r}.",
                                hint="The store was cleaned or points elsewhere; check "
                                     "`artifacts` in shipyard.yaml.") from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
