"""Redis wiring."""

from __future__ import annotations

import redis

from domain.errors import InvsyncError


class RedisUnavailable(InvsyncError):
    """Raised when Redis cannot be reached."""


def check_redis(redis_url: str, timeout: float = 3.0) -> None:
    """Raise `RedisUnavailable` unless Redis answers PING within `timeout` seconds."""
    client = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    except redis.RedisError as error:
        raise RedisUnavailable(f"Redis is unreachable: {' '.join(str(error).split())}") from error
    finally:
        client.close()
