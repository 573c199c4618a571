"""The token rule: which access kinds need it, 401 vs 403, constant-time compare, no echo."""

from __future__ import annotations

import pytest

from shipyard.serving.auth import Access
from shipyard.serving.errors import ForbiddenError, UnauthorizedError

SECRET = "s3cret-value"  # noqa: S105


def test_without_a_token_everything_is_open() -> None:
    access = Access(None, auth_reads=True)
    for kind in ("open", "read", "write"):
        assert not access.needs_token(kind)
        access.check(None, kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(("auth_reads", "kind", "needed"), [
    (False, "open", False), (False, "read", False), (False, "write", True),
    (True, "open", False), (True, "read", True), (True, "write", True)])
def test_which_kinds_need_the_token(auth_reads: bool, kind: str, needed: bool) -> None:
    assert Access(SECRET, auth_reads=auth_reads).needs_token(kind) is needed  # type: ignore[arg-type]


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", f"Basic {SECRET}", SECRET,
                                    b"Token x"])
def test_missing_or_malformed_header_is_401(header: str | bytes | None) -> None:
    with pytest.raises(UnauthorizedError) as info:
        Access(SECRET).check(header, "write")
    assert info.value.http_status == 401 and SECRET not in str(info.value)


@pytest.mark.parametrize("header", ["Bearer wrong", f"Bearer {SECRET}x", f"Bearer {SECRET[:-1]}",
                                    "Bearer \u00e9t\u00e9"])
def test_wrong_token_is_403_and_not_echoed(header: str) -> None:
    with pytest.raises(ForbiddenError) as info:
        Access(SECRET).check(header, "write")
    assert info.value.http_status == 403
    assert SECRET not in str(info.value) and "wrong" not in str(info.value)


@pytest.mark.parametrize("header", [f"Bearer {SECRET}", f"bearer {SECRET}",
                                    f"  Bearer   {SECRET}  ", f"Bearer {SECRET}".encode()])
def test_right_token_passes(header: str | bytes) -> None:
    Access(SECRET).check(header, "write")


def test_raw_headers_and_repr() -> None:
    access = Access(SECRET, auth_reads=True)
    access.check_headers([(b"host", b"x"), (b"Authorization", f"Bearer {SECRET}".encode())],
                         "read")
    with pytest.raises(UnauthorizedError):
        access.check_headers([(b"host", b"x")], "read")
    assert SECRET not in repr(access) and "set" in repr(access)
