"""Artifact names can never leave the store; digests can never form a path."""

from __future__ import annotations

import pytest

from shipyard.artifacts.names import blob_key, check_name, check_sha256
from shipyard.core.errors import InvalidInputError

SHA = "a" * 64


@pytest.mark.parametrize("name", ["model.pkl", "model/model.pkl", "a/b/c.txt", "x..y", ".hidden"])
def test_relative_names_are_accepted(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "../x", "a/../../x", "..", "/etc/passwd", "a//b", "a/./b",
                                  "a/", "C:/x", "a\\..\\b", "a\x00b"])
def test_names_that_could_escape_are_refused(name: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        check_name(name)
    assert info.value.hint and "relative path" in info.value.hint


@pytest.mark.parametrize("digest", ["", "A" * 64, "a" * 63, "../" + "a" * 61, "g" * 64])
def test_malformed_digests_are_refused(digest: str) -> None:
    with pytest.raises(InvalidInputError, match="is not a sha256"):
        check_sha256(digest)


def test_blob_keys_fan_out_by_prefix() -> None:
    assert blob_key(SHA) == f"blobs/aa/{SHA}"
