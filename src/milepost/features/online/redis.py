"""The scale-out online store: Redis, one string key per (view version, entity).

Writes go through a small Lua script so that "replace only with a newer row" is atomic
on the server; reads are one ``MGET`` per batch (one round trip). The store's identity is
the hash ``<prefix>:__store__`` (a data key always has a view and a version after the
prefix, so the two never meet).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from milepost.errors import BackendUnavailable, ConfigError, mask_uri
from milepost.features.online import StoreIdentity, new_identity, unstorable_key

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["RedisOnlineStore"]

# KEYS[i] = key, ARGV = (event_ts, created_ts, value) triples
_UPSERT = """
local n = 0
for i, key in ipairs(KEYS) do
  local ev = tonumber(ARGV[3 * i - 2])
  local cr = tonumber(ARGV[3 * i - 1])
  local old = redis.call('GET', key)
  local newer = true
  if old then
    local oev = tonumber(string.sub(old, 1, 15))
    local ocr = tonumber(string.sub(old, 16, 30))
    newer = (ev > oev) or (ev == oev and cr >= ocr)
  end
  if newer then
    redis.call('SET', key, string.format('%015d%015d', ev, cr) .. ARGV[3 * i])
    n = n + 1
  end
end
return n
"""

# KEYS[1] = the identity hash; ARGV = new id, created_at, revision, the id to replace or ''
_CLAIM = """
local current = redis.call('HGET', KEYS[1], 'id')
if (not current) or (ARGV[4] ~= '' and current == ARGV[4]) then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'created_at', ARGV[2], 'revision', ARGV[3])
end
return redis.call('HMGET', KEYS[1], 'id', 'created_at', 'revision')
"""
# KEYS[1] = the identity hash; ARGV[1] = the id the caller materialized against
_BUMP = """
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
  return redis.call('HINCRBY', KEYS[1], 'revision', 1)
end
return false
"""


class RedisOnlineStore:
    """Online features in Redis (``redis://host:6379/0[?prefix=mp]``).

    Keys are ``<prefix>:<view>:<entity>``.

    Each value is 30 digits of event and created time followed by the packed row, so the
    script compares times without decoding.
    """

    def __init__(self, uri: str, *, prefix: str | None = None) -> None:
        try:
            import redis
        except ModuleNotFoundError as exc:
            raise ConfigError(
                "The Redis online store needs redis-py.", hint="pip install 'milepost[redis]'"
            ) from exc
        from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

        self.uri = uri
        parts = urlsplit(uri)
        query = parse_qs(parts.query)
        # ?prefix=team-a keeps several deployments (or tests) apart in one database
        self.prefix = prefix or query.pop("prefix", ["mp"])[0]
        clean = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        self._client = redis.Redis.from_url(clean, socket_timeout=5, socket_connect_timeout=3)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        try:
            self._upsert = self._client.register_script(_UPSERT)
            self._claim = self._client.register_script(_CLAIM)
            self._bump = self._client.register_script(_BUMP)
        except self._errors as exc:
            raise self._wrap(exc) from exc
        self._meta = f"{self.prefix}:__store__"

    def _wrap(self, exc: Exception) -> BackendUnavailable:
        return BackendUnavailable(
            f"The Redis online store {mask_uri(self.uri)} failed: {exc}.",
            hint="Check that Redis is running and reachable.",
        )

    def _key(self, view_key: str, entity: str) -> str:
        return f"{self.prefix}:{view_key}:{entity}"

    def write(self, view_key: str, rows: Sequence[tuple[str, int, int, bytes]]) -> int:
        try:
            for start in range(0, len(rows), 1000):
                chunk = rows[start : start + 1000]
                args: list[Any] = []
                for _, ev, cr, value in chunk:
                    args += [ev, cr, value]
                self._upsert(keys=[self._key(view_key, r[0]) for r in chunk], args=args)
        except UnicodeEncodeError as exc:
            raise unstorable_key(exc) from exc
        except self._errors as exc:
            raise self._wrap(exc) from exc
        return len(rows)

    def read(self, view_key: str, entities: Sequence[str]) -> list[bytes | None]:
        try:
            raw = self._client.mget([self._key(view_key, e) for e in entities])
        except UnicodeEncodeError as exc:
            raise unstorable_key(exc) from exc
        except self._errors as exc:
            raise self._wrap(exc) from exc
        return [None if v is None else bytes(v)[30:] for v in raw]  # type: ignore[arg-type]

    def sample(self, view_key: str, n: int) -> list[str]:
        prefix = self._key(view_key, "")
        out = []
        try:
            for key in self._client.scan_iter(match=prefix + "*", count=1000):
                out.append(key.decode()[len(prefix) :])
                if len(out) >= n:
                    break
        except self._errors as exc:
            raise self._wrap(exc) from exc
        return out

    def delete_view(self, view_key: str) -> None:
        try:
            keys = list(self._client.scan_iter(match=self._key(view_key, "*"), count=1000))
            for start in range(0, len(keys), 1000):
                self._client.delete(*keys[start : start + 1000])
        except self._errors as exc:
            raise self._wrap(exc) from exc

    def identity(self) -> StoreIdentity | None:
        try:
            found = self._client.hmget(self._meta, ["id", "created_at", "revision"])
        except self._errors as exc:
            raise self._wrap(exc) from exc
        return _identity(found)

    def claim_identity(self, replacing: str | None = None) -> StoreIdentity:
        fresh = new_identity()
        args: list[str | int] = [fresh.store_id, fresh.created_at, fresh.revision, replacing or ""]
        try:
            found = self._claim(keys=[self._meta], args=args)
        except self._errors as exc:
            raise self._wrap(exc) from exc
        claimed = _identity(found)
        if claimed is None:  # a concurrent claim cannot leave it empty; say so if it did
            raise BackendUnavailable(f"The Redis online store {mask_uri(self.uri)} lost its id.")
        return claimed

    def bump_revision(self, store_id: str) -> int | None:
        try:
            revision = self._bump(keys=[self._meta], args=[store_id])
        except self._errors as exc:
            raise self._wrap(exc) from exc
        return None if revision is None else int(revision)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisOnlineStore({mask_uri(self.uri)!r})"


def _identity(found: Sequence[Any]) -> StoreIdentity | None:
    store_id, created_at, revision = found
    if store_id is None or created_at is None or revision is None:
        return None
    return StoreIdentity(
        store_id.decode() if isinstance(store_id, bytes) else str(store_id),
        int(created_at),
        int(revision),
    )
