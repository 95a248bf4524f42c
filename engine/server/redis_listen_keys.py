"""Listen keys in Redis: a key made on one gateway is valid on every gateway.

Edge module, any thread (redis-py's client is thread-safe). The twin of
:class:`~engine.server.shared_keys.SharedListenKeys` for role ``gateway``,
with the same interface (:class:`~engine.server.shared_keys.ListenKeyStore`)
and the same rules as :mod:`engine.binance.listen_keys` (the time comes from
the caller):

=========================  ===============================================
``P:lk:KEY``               hash ``a`` (account), ``x`` (expires, epoch ms)
``P:lka:ACCOUNT``          the account's current key
``P:lkz``                  sorted set: every key, scored by its expiry
=========================  ===============================================

Each call is one Lua script, so two gateways creating a key for the same
account at once get the same key, and the bound is checked atomically.
Redis also expires the two strings (``PEXPIRE`` of the validity, 60 minutes,
renewed by ``keepalive``), so a key nobody keeps alive disappears from Redis
by itself. Bounded: at most ``max_keys`` keys; when full, expired ones are
dropped first, then :class:`~engine.binance.listen_keys.ListenKeyLimit`.
Redis unreachable: :class:`~engine.server.shared_keys.ListenKeysUnavailable`
(nothing changed), each call bounded by the client's socket timeout.
"""

from __future__ import annotations

from typing import Any

import redis

from engine.binance.listen_keys import DEFAULT_MAX_KEYS, VALIDITY_MS, ListenKeyLimit
from engine.server.shared_keys import ListenKeysUnavailable

__all__ = ["RedisListenKeys"]

# KEYS: the sorted set. ARGV[1]: the prefix. forget(key): drop a key and its
# account's pointer (when it still points at it).
_FORGET = """
local function forget(key)
  local k = ARGV[1] .. 'lk:' .. key
  local acct = redis.call('HGET', k, 'a')
  redis.call('DEL', k)
  redis.call('ZREM', KEYS[1], key)
  if acct then
    local p = ARGV[1] .. 'lka:' .. acct
    if redis.call('GET', p) == key then redis.call('DEL', p) end
  end
end
local function live(key, now)
  local x = redis.call('HGET', ARGV[1] .. 'lk:' .. key, 'x')
  if not x then return false end
  if tonumber(x) <= now then forget(key) return false end
  return true
end
local function extend(key, account, expires, validity)
  local k = ARGV[1] .. 'lk:' .. key
  redis.call('HSET', k, 'a', account, 'x', expires)
  redis.call('PEXPIRE', k, validity)
  redis.call('SET', ARGV[1] .. 'lka:' .. account, key, 'PX', validity)
  redis.call('ZADD', KEYS[1], expires, key)
end
"""

# ARGV: prefix, account, now, expires, validity, random key, max keys
# -> {1, key} | {-1, ''} full | {-2, ''} the random key is in use
_CREATE = _FORGET + """
local now = tonumber(ARGV[3])
local cur = redis.call('GET', ARGV[1] .. 'lka:' .. ARGV[2])
if cur and live(cur, now) then
  extend(cur, ARGV[2], ARGV[4], ARGV[5])
  return {1, cur}
end
if cur then forget(cur) end
local fresh = ARGV[6]
if redis.call('EXISTS', ARGV[1] .. 'lk:' .. fresh) == 1 then return {-2, ''} end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[7]) then
  for _, old in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do forget(old) end
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[7]) then return {-1, ''} end
end
extend(fresh, ARGV[2], ARGV[4], ARGV[5])
return {1, fresh}
"""

# ARGV: prefix, key, now, expires, validity -> 1 | 0
_KEEPALIVE = _FORGET + """
if not live(ARGV[2], tonumber(ARGV[3])) then return 0 end
local acct = redis.call('HGET', ARGV[1] .. 'lk:' .. ARGV[2], 'a')
extend(ARGV[2], acct, ARGV[4], ARGV[5])
return 1
"""

# ARGV: prefix, key -> 1 | 0
_CLOSE = _FORGET + """
if redis.call('EXISTS', ARGV[1] .. 'lk:' .. ARGV[2]) == 0 then return 0 end
forget(ARGV[2])
return 1
"""

# ARGV: prefix, key, now -> the account | false
_ACCOUNT = _FORGET + """
if not live(ARGV[2], tonumber(ARGV[3])) then return false end
return redis.call('HGET', ARGV[1] .. 'lk:' .. ARGV[2], 'a')
"""


class RedisListenKeys:
    """See the module docstring. ``client``: a redis-py client (its pool is
    shared with the caller's; this object never closes it)."""

    def __init__(self, client: redis.Redis, *, prefix: str = "td:",
                 max_keys: int = DEFAULT_MAX_KEYS, validity_ms: int = VALIDITY_MS) -> None:
        if max_keys < 1 or validity_ms < 1:
            raise ValueError("max_keys and validity_ms must be >= 1")
        self._r = client
        self._prefix = prefix
        self._max = max_keys
        self._validity = validity_ms
        self._zset = prefix + "lkz"
        self._create = client.register_script(_CREATE)
        self._keepalive = client.register_script(_KEEPALIVE)
        self._close = client.register_script(_CLOSE)
        self._account = client.register_script(_ACCOUNT)

    def _run(self, script: Any, *args: object) -> Any:
        try:
            return script(keys=[self._zset], args=[self._prefix, *args])
        except redis.RedisError as exc:
            raise ListenKeysUnavailable(f"the listen-key store (Redis) is unreachable: "
                                        f"{type(exc).__name__}") from None

    def __len__(self) -> int:
        try:
            return int(self._r.zcard(self._zset))
        except redis.RedisError as exc:
            raise ListenKeysUnavailable(f"the listen-key store (Redis) is unreachable: "
                                        f"{type(exc).__name__}") from None

    def create(self, account: str, now_ms: int, random_key: str) -> str:
        if not random_key:
            raise ValueError("random_key must be a fresh, non-empty key")
        status, key = self._run(self._create, account, now_ms, now_ms + self._validity,
                                self._validity, random_key, self._max)
        if status == -1:
            raise ListenKeyLimit(f"{self._max} listen keys are live; close one first")
        if status == -2:
            raise ValueError("random_key must be a fresh, non-empty key")
        return key.decode() if isinstance(key, bytes) else str(key)

    def keepalive(self, key: str, now_ms: int) -> bool:
        return bool(self._run(self._keepalive, key, now_ms, now_ms + self._validity,
                              self._validity))

    def close(self, key: str) -> bool:
        return bool(self._run(self._close, key))

    def account(self, key: str, now_ms: int) -> str | None:
        got = self._run(self._account, key, now_ms)
        return got.decode() if isinstance(got, bytes) else None

    def owner_of(self, key: str) -> str | None:
        try:
            got: Any = self._r.hget(f"{self._prefix}lk:{key}", "a")
        except redis.RedisError as exc:
            raise ListenKeysUnavailable(f"the listen-key store (Redis) is unreachable: "
                                        f"{type(exc).__name__}") from None
        return got.decode() if isinstance(got, bytes) else None
