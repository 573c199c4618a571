"""The OnlineStore protocol, on SQLite and the real Redis: types, newer-wins, namespaces."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.core.errors import BackendUnavailable, ConfigError
from shipyard.features.online import NO_CREATED, OnlineRow, OnlineStore, decode_key, encode_key
from shipyard.features.online.redis import RedisOnlineStore
from shipyard.features.online.sqlite import SqliteOnlineStore
from tests.conftest import RedisServer

StoreFactory = Callable[[str], OnlineStore]
T = 1_780_000_000_000_000  # microseconds


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Stores of any project on one SQLite file, or one Redis key space."""
    stores: list[OnlineStore] = []

    def make(project: str = "p") -> OnlineStore:
        if request.param == "sqlite":
            store: OnlineStore = SqliteOnlineStore(tmp_path / "online.db", project=project)
        else:
            server: RedisServer = request.getfixturevalue("redis_server")
            store = RedisOnlineStore(server.url, project=project, key_prefix=server.key_prefix)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


def key(*values: object) -> bytes:
    return encode_key(values)


def row(k: int, event: int, values: dict[str, object], created: int = NO_CREATED) -> OnlineRow:
    return OnlineRow(key(k), event, created, values)


def value_of(store: OnlineStore, k: int, view: str = "v") -> object:
    stored = store.read(view, [key(k)])[0]
    return None if stored is None else stored.values["x"]


def test_values_keep_their_types(make_store: StoreFactory) -> None:
    store = make_store()
    seen = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    values = {"i": 2**53 + 1, "neg": -7, "f": 0.1, "s": "héllo", "b": True, "none": None,
              "ints": [1, 2, 3], "floats": [0.5, None], "strs": ["a"], "empty": [], "ts": seen,
              "big": 2**62, "blob": b"\x00\x01"}
    store.write("v", [row(1, T, values)])
    stored = store.read("v", [key(1)])[0]
    assert stored is not None and stored.event_us == T
    assert stored.values == values
    assert {k: type(v) for k, v in stored.values.items()} == {k: type(v) for k, v in values.items()}


def test_numpy_pandas_and_naive_values_are_stored_as_plain_python(make_store: StoreFactory
                                                                   ) -> None:
    store = make_store()
    naive = datetime(2026, 3, 1, 12)
    store.write("v", [row(1, T, {"n": np.int64(5), "f": np.float32(0.5),
                                 "a": np.array([1, 2]), "ts": pd.Timestamp("2026-03-01 12:00"),
                                 "naive": naive})])
    values = store.read("v", [key(1)])[0].values  # type: ignore[union-attr]
    assert values["n"] == 5 and type(values["n"]) is int
    assert values["f"] == 0.5 and values["a"] == [1, 2]
    assert values["ts"] == values["naive"] == naive.replace(tzinfo=UTC)


def test_unknown_keys_read_as_none_in_key_order(make_store: StoreFactory) -> None:
    store = make_store()
    store.write("v", [row(k, T, {"x": k}) for k in range(1, 1_201)])
    keys = [key(k) for k in (5, 999_999, 1_200, 1)] + [key(k) for k in range(1, 1_201)]
    got = store.read("v", keys)
    assert [None if r is None else r.values["x"] for r in got[:4]] == [5, None, 1_200, 1]
    assert [r.values["x"] for r in got[4:]] == list(range(1, 1_201))  # type: ignore[union-attr]
    assert store.read("v", []) == [] and store.read("other", [key(1)]) == [None]


def test_composite_and_string_keys(make_store: StoreFactory) -> None:
    store = make_store()
    store.write("v", [OnlineRow(key(1, "a"), T, NO_CREATED, {"x": 1}),
                      OnlineRow(key(1, "b"), T, NO_CREATED, {"x": 2}),
                      OnlineRow(key("1"), T, NO_CREATED, {"x": 3})])
    got = store.read("v", [key(1, "b"), key(1, "a"), key(1), key("1")])
    assert [None if r is None else r.values["x"] for r in got] == [2, 1, None, 3]
    assert decode_key(key(1, "b")) == (1, "b")
    assert key(1.0) == key(1) != key(1.5)


def test_an_older_row_never_replaces_a_newer_one(make_store: StoreFactory) -> None:
    store = make_store()
    assert store.write("v", [row(1, T, {"x": "new"})]) == 1
    assert store.write("v", [row(1, T - 1, {"x": "old"})]) == 0
    assert value_of(store, 1) == "new"
    assert store.write("v", [row(1, T + 1, {"x": "newer"})]) == 1
    assert value_of(store, 1) == "newer"


def test_ties_on_event_time_go_to_the_latest_created(make_store: StoreFactory) -> None:
    store = make_store()
    store.write("v", [row(1, T, {"x": "c5"}, created=T + 5)])
    store.write("v", [row(1, T, {"x": "c3"}, created=T + 3)])
    store.write("v", [row(1, T, {"x": "none"})])
    assert value_of(store, 1) == "c5"
    store.write("v", [row(1, T, {"x": "c5 again"}, created=T + 5)])  # equal: a rerun wins
    assert value_of(store, 1) == "c5 again"


def test_newer_wins_within_one_batch_in_any_order(make_store: StoreFactory) -> None:
    store = make_store()
    store.write("v", [row(1, T + 2, {"x": 2}), row(1, T + 1, {"x": 1}), row(2, T, {"x": 0})])
    assert value_of(store, 1) == 2 and value_of(store, 2) == 0


def test_concurrent_writers_leave_the_newest_row(make_store: StoreFactory) -> None:
    store = make_store()
    events = list(range(200))

    def writer(offset: int) -> None:
        own = make_store()  # a connection of its own, like another process
        for e in events[offset::4]:
            own.write("v", [row(1, T + e, {"x": e})])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert value_of(store, 1) == 199


def test_drop_deletes_one_view_only(make_store: StoreFactory) -> None:
    store = make_store()
    store.write("v", [row(k, T, {"x": k}) for k in range(2_500)])
    store.write("w", [row(1, T, {"x": "w"})])
    store.drop("v")
    assert store.read("v", [key(1), key(2_000)]) == [None, None]
    assert value_of(store, 1, "w") == "w"


def test_projects_sharing_one_store_do_not_see_each_other(make_store: StoreFactory) -> None:
    first, second = make_store("first"), make_store("second")
    first.write("v", [row(1, T, {"x": "first"})])
    second.write("v", [row(1, T - 10, {"x": "second"})])  # older, but another project's
    assert value_of(first, 1) == "first" and value_of(second, 1) == "second"
    second.drop("v")
    assert value_of(first, 1) == "first" and value_of(second, 1) is None


def test_ping_and_close(make_store: StoreFactory) -> None:
    store = make_store()
    store.ping()
    store.close()


def test_redis_down_is_backend_unavailable() -> None:
    store = RedisOnlineStore("redis://127.0.0.1:1/0", project="p")
    with pytest.raises(BackendUnavailable, match="127.0.0.1:1") as info:
        store.read("v", [key(1)])
    assert "Start Redis" in (info.value.hint or "")


def test_redis_password_is_not_shown_in_errors() -> None:
    store = RedisOnlineStore("redis://user:s3cret@127.0.0.1:1/0", project="p")
    with pytest.raises(BackendUnavailable) as info:
        store.ping()
    assert "s3cret" not in str(info.value)


def test_bad_redis_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid"):
        RedisOnlineStore("http://nope", project="p")


def test_sqlite_unwritable_path_is_backend_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    store = SqliteOnlineStore(tmp_path / "file" / "online.db", project="p")
    with pytest.raises(BackendUnavailable, match="online.db"):
        store.ping()


def newest(store: OnlineStore) -> dict[str, int]:
    """newest_event_times() in microseconds since the epoch."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return {view: (moment - epoch) // timedelta(microseconds=1)
            for view, moment in store.newest_event_times().items()}


def test_newest_event_time_only_moves_forward_per_view(make_store: StoreFactory) -> None:
    store = make_store()
    assert store.newest_event_times() == {}
    store.write("v", [row(1, T, {"x": 1}), row(2, T + 5, {"x": 2}), row(3, T - 9, {"x": 3})])
    assert newest(store) == {"v": T + 5}
    assert store.newest_event_times()["v"].tzinfo is not None
    store.write("v", [row(4, T + 7, {"x": 4})])  # a push of a newer row moves it
    assert newest(store) == {"v": T + 7}
    assert store.write("v", [row(4, T + 6, {"x": "old"})]) == 0  # an older one does not
    store.write("v", [row(5, T + 1, {"x": 5})])  # nor a new key with an older time
    store.write("w", [row(1, T - 100, {"x": "w"})])
    assert newest(store) == {"v": T + 7, "w": T - 100}
    assert newest(make_store()) == {"v": T + 7, "w": T - 100}  # stored, not remembered


def test_newest_event_time_goes_with_a_dropped_view_and_stays_in_its_project(
        make_store: StoreFactory) -> None:
    first, second = make_store("first"), make_store("second")
    first.write("v", [row(1, T, {"x": 1})])
    first.write("w", [row(1, T + 1, {"x": 1})])
    second.write("v", [row(1, T + 50, {"x": 2})])
    first.drop("v")
    assert newest(first) == {"w": T + 1} and newest(second) == {"v": T + 50}
    first.write("v", [row(1, T - 3, {"x": 3})])  # written again after the drop: from scratch
    assert newest(first) == {"v": T - 3, "w": T + 1}


def test_sqlite_newest_event_times_of_an_empty_store_create_no_file(tmp_path: Path) -> None:
    store = SqliteOnlineStore(tmp_path / "online.db", project="p")
    assert store.newest_event_times() == {}
    assert not (tmp_path / "online.db").exists()
