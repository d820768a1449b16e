"""The cache every worker shares, on Redis: read models and answers, by what they were computed from.

Keys name immutable inputs (the master version, allocation revision, actuals import and locks
a master was loaded at), so an entry is never stale: a new version is a new key, and old
entries simply expire. Each process keeps its own few masters in memory in front of it
(`master._Cache`); this cache spares every other worker, and every restarted one, the load from
the database.

Values are pickles (a master holds pandas and numpy data), so each is signed with a key kept in
the database (HMAC-SHA256): whoever can write to Redis but not read the database cannot make a
worker unpickle what they wrote. The cache is a help, never a dependency: when Redis is away, or
an entry is missing, too large or unsigned, the value is computed as if there were no cache.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "plansheet:cache:"
_MAC = hashlib.sha256().digest_size


class SharedCache:
    """Signed pickles in Redis with a time to live; every failure is a miss."""

    def __init__(self, url: str, secret: Callable[[], str], ttl: int = 3600, max_bytes: int = 64 * 2**20) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=2)
        self._secret, self._key = secret, b""
        self.ttl, self.max_bytes = ttl, max_bytes
        self.hits = self.misses = 0

    def _mac_key(self) -> bytes:
        if not self._key:
            self._key = self._secret().encode()
        return self._key

    @staticmethod
    def name(*parts: Any) -> str:
        """A Redis key for `parts` (any reprs): short, and the same in every process."""
        return PREFIX + hashlib.sha256(repr(parts).encode()).hexdigest()

    def get(self, key: str) -> Any | None:
        try:
            raw = self.redis.get(key)
        except Exception as exc:  # Redis away: compute instead
            log.warning("the shared cache could not be read (%s)", type(exc).__name__)
            return None
        return self._opened(raw)

    def _opened(self, raw: bytes | None) -> Any | None:
        """A stored entry's value when it is there and signed with this database's key; else None (a miss)."""
        if raw is None or len(raw) <= _MAC:
            self.misses += 1
            return None
        mac, data = raw[:_MAC], raw[_MAC:]
        if not hmac.compare_digest(mac, hmac.new(self._mac_key(), data, hashlib.sha256).digest()):
            log.warning("a shared cache entry was not signed with this database's key; ignored")
            self.misses += 1
            return None
        self.hits += 1
        return pickle.loads(data)

    def put(self, key: str, value: Any) -> None:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        if len(data) > self.max_bytes:
            return
        mac = hmac.new(self._mac_key(), data, hashlib.sha256).digest()
        try:
            self.redis.set(key, mac + data, ex=self.ttl)
        except Exception as exc:
            log.warning("the shared cache could not be written (%s)", type(exc).__name__)

    def get_many(self, keys: list[str]) -> list[Any | None]:
        """The cached value of each key (None where missing), in one round trip."""
        if not keys:
            return []
        try:
            raws = self.redis.mget(keys)
        except Exception as exc:
            log.warning("the shared cache could not be read (%s)", type(exc).__name__)
            return [None] * len(keys)
        return [self._opened(raw) for raw in raws]

    def put_many(self, values: dict[str, Any]) -> None:
        """Store several values in one round trip (each too large one is left out)."""
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for key, value in values.items():
                    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
                    if len(data) <= self.max_bytes:
                        pipe.set(key, hmac.new(self._mac_key(), data, hashlib.sha256).digest() + data, ex=self.ttl)
                pipe.execute()
        except Exception as exc:
            log.warning("the shared cache could not be written (%s)", type(exc).__name__)

    def through(self, key: str, compute: Callable[[], Any]) -> Any:
        """The cached value of `key`, or `compute()` stored for the next process that asks."""
        found = self.get(key)
        if found is not None:
            return found
        value = compute()
        self.put(key, value)
        return value
