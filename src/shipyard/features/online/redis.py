"""The online store on Redis: one string per entity key, newer-wins writes in a Lua script."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from shipyard.core.errors import BackendUnavailable, ConfigError
from shipyard.features.online import OnlineRow, StoredRow, encoded, from_micros
from shipyard.features.online._codec import unpack
from shipyard.features.online._encode import encode_times
from shipyard.features.online._resp import RespConnection, RespError, lean_address

try:
    import redis
except ModuleNotFoundError as exc:  # pragma: no cover - exercised only without the extra
    raise ConfigError("The Redis online store needs the `redis` package.",
                      hint="pip install 'shipyard[redis]'") from exc

# A stored value is three MessagePack objects back to back: event_us, created_us, values.
# The script reads the stored values of all its keys (one MGET), keeps those that are newer
# than the new value (comparing the first two objects, cmsgpack.unpack_limit) and writes the
# rest with one MSET, so the newer-wins decision is atomic inside Redis. Keys of one call are
# unique (`write` sends `EncodedRows.latest()`); 1,000 keys need 2,000 MSET arguments, well
# under Lua's 8,000-value unpack limit.
_WRITE_SCRIPT = """
local current = redis.call('MGET', unpack(KEYS))
local out = {}
local written = 0
for i, key in ipairs(KEYS) do
  local value = ARGV[i]
  local newer = true
  if current[i] then
    local _, event, created = cmsgpack.unpack_limit(value, 2)
    local _, cur_event, cur_created = cmsgpack.unpack_limit(current[i], 2)
    newer = event > cur_event or (event == cur_event and created >= cur_created)
  end
  if newer then
    out[#out + 1] = key
    out[#out + 1] = value
    written = written + 1
  end
end
if written > 0 then
  redis.call('MSET', unpack(out))
end
return written
"""
_ARRAY_OF_3 = b"\x93"  # a MessagePack array header: turns the three objects into one array
_KEYS_PER_CALL = 1_000  # keys per script call: Redis runs a script without interruption
_SCAN_BATCH = 1_000


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _glob_escape(text: str) -> str:
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)


class RedisOnlineStore:
    """Online rows in Redis under `<key_prefix>:<project>:<view>:<entity key>`.

    The newest event time written to each view is a sorted set at `<key_prefix>:<project>:`
    (member: the view, score: microseconds; exact in a double until the year 2255), raised by
    `ZADD GT` in the pipeline of every write. No row key can be that key: entity keys are
    never empty.
    """

    def __init__(self, url: str, *, project: str, key_prefix: str = "shipyard") -> None:
        self.url = url
        self.project = project
        self.key_prefix = key_prefix
        options: dict[str, Any] = {"socket_connect_timeout": 5, "socket_timeout": 30}
        if redis.utils.HIREDIS_AVAILABLE:
            from redis._parsers import _HiredisParser

            options["parser_class"] = _HiredisParser
        try:
            self._client = redis.Redis.from_url(url, **options)  # connects lazily
        except ValueError as exc:
            raise ConfigError(f"Online store URL {_safe_url(url)!r} is invalid: {exc}",
                              hint="Use redis://host:6379/0 in online_store.url.") from exc
        self._script = self._client.register_script(_WRITE_SCRIPT)
        self._prefixes: dict[str, bytes] = {}
        self._newest_key = f"{key_prefix}:{project}:".encode()
        # reads (the hot path) go over one lean socket per thread when the URL allows it
        self._lean = lean_address(url)
        self._local = threading.local()
        self._lean_connections: list[RespConnection] = []
        self._lock = threading.Lock()

    def _prefix(self, view: str) -> bytes:
        prefix = self._prefixes.get(view)
        if prefix is None:
            prefix = f"{self.key_prefix}:{self.project}:{view}:".encode()
            self._prefixes[view] = prefix
        return prefix

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            raise BackendUnavailable(
                f"The Redis online store at {_safe_url(self.url)} failed: "
                f"{type(exc).__name__}: {exc}",
                hint="Start Redis, or fix online_store.url in shipyard.yaml.",
            ) from exc

    def write(self, view: str, rows: Sequence[OnlineRow]) -> int:
        """Store rows unless Redis holds a newer one for the key; return how many were."""
        if not rows:
            return 0
        prefix = self._prefix(view)
        batch = encoded(rows).latest()
        keys = [prefix + key for key in batch.keys]
        values = [times + payload for times, payload in
                  zip(encode_times(batch.event_us, batch.created_us), batch.payloads, strict=True)]
        with self._errors():
            pipe = self._client.pipeline(transaction=False)
            for start in range(0, len(keys), _KEYS_PER_CALL):
                end = start + _KEYS_PER_CALL
                self._script(keys[start:end], values[start:end], client=pipe)
            # one command per write, not per row: GT only ever raises the view's score
            pipe.zadd(self._newest_key, {view: max(batch.event_us)}, gt=True)
            return sum(pipe.execute()[:-1])

    def _mget(self, keys: list[bytes]) -> list[bytes | None]:
        if self._lean is None:
            with self._errors():
                return cast(list[bytes | None], self._client.mget(keys))
        conn: RespConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = RespConnection(self._lean, connect_timeout=5, timeout=30)
            self._local.conn = conn
            with self._lock:
                self._lean_connections.append(conn)
        try:
            return cast(list[bytes | None], conn.call("MGET", *keys))
        except (OSError, RespError) as exc:
            raise BackendUnavailable(
                f"The Redis online store at {_safe_url(self.url)} failed: "
                f"{type(exc).__name__}: {exc}",
                hint="Start Redis, or fix online_store.url in shipyard.yaml.",
            ) from exc

    def read(self, view: str, keys: Sequence[bytes]) -> list[StoredRow | None]:
        """The stored row of each key (None: unknown key), with one MGET."""
        if not keys:
            return []
        prefix = self._prefix(view)
        raw = self._mget([prefix + key for key in keys])
        out: list[StoredRow | None] = []
        for value in raw:
            if value is None:
                out.append(None)
            else:
                event_us, _, values = unpack(_ARRAY_OF_3 + value)
                out.append(StoredRow(event_us, values))
        return out

    def drop(self, view: str) -> None:
        """Delete every key of a view (SCAN and UNLINK in batches)."""
        pattern = _glob_escape(self._prefix(view).decode()) + "*"
        with self._errors():
            batch: list[bytes] = []
            for key in self._client.scan_iter(match=pattern, count=_SCAN_BATCH):
                batch.append(key)
                if len(batch) >= _SCAN_BATCH:
                    self._client.unlink(*batch)
                    batch = []
            if batch:
                self._client.unlink(*batch)
            self._client.zrem(self._newest_key, view)

    def newest_event_times(self) -> dict[str, datetime]:
        """The newest event time written to each view (absent: never written), with one ZRANGE."""
        with self._errors():
            members = self._client.zrange(self._newest_key, 0, -1, withscores=True)
        return {view.decode(): from_micros(int(score)) for view, score in members}

    def ping(self) -> None:
        """Return when Redis answers; raise BackendUnavailable otherwise."""
        with self._errors():
            self._client.ping()

    def close(self) -> None:
        """Close the connection pool and the read sockets."""
        with self._lock:
            lean, self._lean_connections = self._lean_connections, []
            self._local = threading.local()
        for conn in lean:
            conn.close()
        self._client.close()
