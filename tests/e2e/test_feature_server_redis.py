"""The Redis store's lean read connection, which the feature server reads through."""

from __future__ import annotations

import socket

import pytest
import redis

from shipyard.core.errors import BackendUnavailable
from shipyard.features.online import OnlineRow, encode_key
from shipyard.features.online._resp import RespAddress, lean_address
from shipyard.features.online.redis import RedisOnlineStore
from tests.conftest import RedisServer


def test_lean_addresses() -> None:
    assert lean_address("redis://h:6380/2") == RespAddress("h", 6380, 2, None, None)
    assert lean_address("redis://u:p%40ss@h") == RespAddress("h", 6379, 0, "u", "p@ss")
    assert lean_address("redis://:secret@h/0") == RespAddress("h", 6379, 0, None, "secret")
    for url in ("rediss://h:6379/0", "unix:///tmp/redis.sock", "redis://h/0?protocol=3",
                "redis://h/db"):
        assert lean_address(url) is None, url


def test_reads_survive_a_dropped_connection(redis_server: RedisServer) -> None:
    store = RedisOnlineStore(redis_server.url, project="lean", key_prefix=redis_server.key_prefix)
    admin = redis.Redis.from_url(redis_server.url)
    try:
        store.write("v", [OnlineRow(encode_key([1]), 5, 0, {"x": 1.5})])
        assert store.read("v", [encode_key([1]), encode_key([2])])[0].values == {"x": 1.5}
        conn = store._local.conn  # the lean socket of this thread
        admin.client_kill_filter(_id=conn.call("CLIENT", "ID"))
        assert store.read("v", [encode_key([1])])[0].values == {"x": 1.5}  # reconnected
    finally:
        store.drop("v")
        store.close()
        admin.close()


def test_unreachable_redis_is_backend_unavailable() -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = RedisOnlineStore(f"redis://127.0.0.1:{port}/0", project="lean")
    try:
        with pytest.raises(BackendUnavailable) as info:
            store.read("v", [encode_key([1])])
        assert f"127.0.0.1:{port}" in info.value.message and info.value.hint
    finally:
        store.close()
