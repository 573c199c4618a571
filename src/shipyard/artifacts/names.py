"""Artifact names and digests: what may be stored, and under which key."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from shipyard.core.errors import InvalidInputError

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
_NAME_HINT = "Use a relative path inside the store, such as 'model/model.pkl'."


def check_name(name: str) -> str:
    """Return `name` if it is a safe relative POSIX path; refuse anything that could escape."""
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        raise InvalidInputError(f"Artifact name {name!r} is not a relative path.", hint=_NAME_HINT)
    path = PurePosixPath(name)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name):
        raise InvalidInputError(f"Artifact name {name!r} is absolute.", hint=_NAME_HINT)
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise InvalidInputError(f"Artifact name {name!r} has an empty, '.' or '..' part.",
                                hint=_NAME_HINT)
    return name


def check_sha256(digest: str) -> str:
    """Return `digest` if it is 64 lowercase hex digits (so it can never form a path)."""
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise InvalidInputError(f"{digest!r} is not a sha256 digest.",
                                hint="Pass the 64-hex-digit sha256 of an ArtifactRef.")
    return digest


def blob_key(digest: str) -> str:
    """The store key of the content with this sha256: `blobs/ab/abcd...`."""
    check_sha256(digest)
    return f"blobs/{digest[:2]}/{digest}"


def hash_stream(stream: BinaryIO) -> tuple[str, int]:
    """The sha256 and size of everything left in a binary stream."""
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def hash_file(path: Path) -> tuple[str, int]:
    """The sha256 and size of a file."""
    with open(path, "rb") as stream:
        return hash_stream(stream)


def refuse_link(path: Path) -> None:
    """Refuse a symlink: it could point outside the folder being stored or restored."""
    if path.is_symlink():
        raise InvalidInputError(f"{str(path)!r} is a symbolic link; artifacts refuse links.",
                                hint="Store the file or folder the link points to instead.")
