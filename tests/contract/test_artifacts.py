"""The artifact store contract, on a local folder and on a real S3 endpoint on loopback."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from shipyard.artifacts import ArtifactRef, ArtifactStore, ChecksumError, open_artifact_store
from shipyard.artifacts.names import blob_key
from shipyard.core.errors import ConfigError, InvalidInputError, NotFoundError


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return open_artifact_store(str(tmp_path / "store"))
    return open_artifact_store(request.getfixturevalue("s3_artifacts"),
                               endpoint_url=request.getfixturevalue("s3_endpoint"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "model.bin").write_bytes(b"\x00weights" * 100)
    (root / "sub" / "notes.txt").write_text("hello")
    return root


def tamper(store: ArtifactStore, ref: ArtifactRef) -> None:
    """Overwrite the stored bytes behind `ref`, as an attacker or a bad disk would."""
    store.blobs.write_bytes(blob_key(ref.sha256), b"tampered")


def test_bytes_round_trip_and_are_content_addressed(store: ArtifactStore) -> None:
    ref = store.put_bytes(b"hello", name="greeting.txt")
    assert ref == ArtifactRef(hashlib.sha256(b"hello").hexdigest(), 5, "greeting.txt")
    assert store.exists(ref) and store.get_bytes(ref) == b"hello"
    assert store.put_bytes(b"hello").sha256 == ref.sha256  # same content, same blob


def test_files_round_trip_and_download(store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "data.csv"
    src.write_text("a,b\n1,2\n")
    ref = store.put_file(src)
    assert ref.name == "data.csv" and ref.size == src.stat().st_size
    out = store.download(ref, tmp_path / "out" / "copy.csv")
    assert out.read_text() == "a,b\n1,2\n"


def test_folders_round_trip_with_their_layout(store: ArtifactStore, folder: Path,
                                              tmp_path: Path) -> None:
    ref = store.put_dir(folder)
    assert ref.kind == "dir" and ref.name == "model"
    assert sorted(store.list_dir(ref)) == ["model.bin", "sub/notes.txt"]
    dest = store.download(ref, tmp_path / "restored")
    assert (dest / "sub" / "notes.txt").read_text() == "hello"
    assert (dest / "model.bin").read_bytes() == (folder / "model.bin").read_bytes()
    assert store.put_dir(folder).sha256 == ref.sha256  # the listing is deterministic


def test_a_tampered_file_is_refused_on_read_and_download(store: ArtifactStore,
                                                         tmp_path: Path) -> None:
    ref = store.put_bytes(b"weights", name="model.bin")
    tamper(store, ref)
    with pytest.raises(ChecksumError, match="'model.bin' is corrupted") as info:
        store.get_bytes(ref)
    assert "restore it" in (info.value.hint or "")
    with pytest.raises(ChecksumError):
        store.download(ref, tmp_path / "x.bin")
    assert not (tmp_path / "x.bin").exists() and not list(tmp_path.glob(".shipyard-*"))


def test_a_tampered_folder_member_is_refused(store: ArtifactStore, folder: Path,
                                             tmp_path: Path) -> None:
    ref = store.put_dir(folder)
    tamper(store, store.list_dir(ref)["sub/notes.txt"])
    with pytest.raises(ChecksumError, match="notes.txt"):
        store.download(ref, tmp_path / "restored")


def test_a_tampered_folder_listing_is_refused(store: ArtifactStore, folder: Path) -> None:
    ref = store.put_dir(folder)
    tamper(store, ref)
    with pytest.raises(ChecksumError):
        store.list_dir(ref)


def test_missing_content_is_not_found(store: ArtifactStore) -> None:
    ref = ArtifactRef("0" * 64, 1, "ghost")
    assert not store.exists(ref)
    with pytest.raises(NotFoundError, match="missing"):
        store.get_bytes(ref)


@pytest.mark.parametrize("name", ["../escape.txt", "/abs.txt", "a/../../b"])
def test_names_that_escape_are_refused(store: ArtifactStore, tmp_path: Path, name: str) -> None:
    src = tmp_path / "f.txt"
    src.write_text("x")
    with pytest.raises(InvalidInputError):
        store.put_file(src, name=name)
    with pytest.raises(InvalidInputError):
        store.put_bytes(b"x", name=name)


def test_a_forged_ref_cannot_form_a_path(store: ArtifactStore) -> None:
    with pytest.raises(InvalidInputError, match="is not a sha256"):
        store.get_bytes(ArtifactRef("../../etc/passwd", 1))


def test_links_are_refused_when_storing(store: ArtifactStore, folder: Path,
                                        tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not upload")
    (folder / "sub" / "link.txt").symlink_to(secret)
    with pytest.raises(InvalidInputError, match="symbolic link"):
        store.put_dir(folder)
    with pytest.raises(InvalidInputError, match="symbolic link"):
        store.put_file(folder / "sub" / "link.txt")


def test_download_never_writes_through_a_planted_link(store: ArtifactStore, folder: Path,
                                                      tmp_path: Path) -> None:
    ref = store.put_dir(folder)
    dest = tmp_path / "restored"
    dest.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "sub").symlink_to(outside)
    with pytest.raises(InvalidInputError, match="symbolic link"):
        store.download(ref, dest)
    assert not list(outside.iterdir())


def test_local_store_refuses_a_link_planted_inside_it(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "store"))
    ref = store.put_bytes(b"model")
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"model")
    blob = tmp_path / "store" / blob_key(ref.sha256)
    blob.parent.rename(tmp_path / "moved")
    blob.parent.symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / ref.sha256).write_bytes(b"model")
    with pytest.raises(InvalidInputError, match="outside the store"):
        store.get_bytes(ref)


def test_local_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_artifact_store(str(tmp_path / "store"))
    ref = store.put_bytes(b"first")

    def crash(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.put_bytes(b"second")
    assert not store.exists(ArtifactRef(hashlib.sha256(b"second").hexdigest(), 6))
    assert not list((tmp_path / "store" / "tmp").iterdir())
    assert store.get_bytes(ref) == b"first"


def test_unknown_schemes_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unsupported scheme 'ftp'"):
        open_artifact_store("ftp://host/x")


def test_memory_store_works_through_fsspec() -> None:
    store = open_artifact_store("memory://shipyard-test")
    ref = store.put_bytes(b"in memory")
    assert store.get_bytes(ref) == b"in memory"
