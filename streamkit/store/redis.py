"""Session records in Redis (``redis`` package, asyncio client), one key per session with a TTL.

Keys are ``<prefix><session_id>`` holding the record's JSON; ``save`` is one ``SET … EX ttl``,
so a session nobody resumes disappears by itself. Every worker behind a balancer points at
the same Redis and can resume any session.
"""

from __future__ import annotations

from typing import Any

from streamkit.store.backend import SessionRecord, StoreUnavailable, decode_record, encode_record

__all__ = ["RedisStore"]


class RedisStore:
    """A :class:`~streamkit.store.backend.SessionStore` on Redis.

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS, ``unix:///path``).
        ttl_s: a record expires this long after its last save (whole seconds, ≥ 1).
        prefix: key prefix (several deployments may share one Redis).
        timeout_s: per-command socket timeout: a stuck Redis fails a save, not a session.
    """

    name = "redis"

    def __init__(
        self,
        url: str,
        ttl_s: float = 3600.0,
        prefix: str = "streamkit:session:",
        timeout_s: float = 2.0,
    ) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as error:  # pragma: no cover - dependency of the serve extra
            raise StoreUnavailable(
                "the Redis session store needs the redis package: pip install redis"
            ) from error
        self.url = url
        self.ttl_s = max(1, round(ttl_s))
        self.prefix = prefix
        self._errors: tuple[type[BaseException], ...] = (
            aioredis.RedisError,
            OSError,
            TimeoutError,
        )
        self._client: Any = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the server answers."""
        try:
            await self._client.ping()
        except self._errors as error:
            raise StoreUnavailable(f"Redis at {self.url} does not answer: {error}") from error

    async def load(self, session_id: str) -> SessionRecord | None:
        try:
            data = await self._client.get(self.prefix + session_id)
        except self._errors as error:
            raise StoreUnavailable(f"Redis at {self.url}: {error}") from error
        return None if data is None else decode_record(bytes(data))

    async def save(self, record: SessionRecord) -> None:
        try:
            await self._client.set(
                self.prefix + record.session_id, encode_record(record), ex=self.ttl_s
            )
        except self._errors as error:
            raise StoreUnavailable(f"Redis at {self.url}: {error}") from error

    async def delete(self, session_id: str) -> None:
        try:
            await self._client.delete(self.prefix + session_id)
        except self._errors as error:
            raise StoreUnavailable(f"Redis at {self.url}: {error}") from error

    async def aclose(self) -> None:
        await self._client.aclose()
