"""The operator console's sessions, kept in Redis (the one owner of its `console:session:` keys).

Why a server-side session in Redis and not a signed cookie: every HTTP process (and every
`INVSYNC_HTTP_WORKERS` worker) already shares this Redis, so a session opened by one is read by
the next without a secret to configure or derive (a secret derived from the configuration would
be computable by anyone who reads the file, whose tokens are deliberately stored as digests);
logging out deletes the session for good, which a signed cookie cannot do before it expires; and
Redis expires sessions by itself. Losing Redis's data costs the operator a login, nothing more.

The cookie holds a random id; Redis holds it only as its SHA-256, so a copy of Redis's keys
opens no session. A session names its token by digest, which the console checks against the
tokens configured now on every request: a token removed from the configuration stops at once."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

import redis

# An operator's working day: long enough not to interrupt one, short enough that a forgotten
# browser does not stay logged in for ever.
SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True)
class Session:
    """One browser's session: `token` is the digest of the API token it logged in with (None
    where the console is open, with no tokens configured); `csrf` the secret its forms carry."""

    id: str
    token: str | None
    csrf: str


class ConsoleSessions:
    """Opens, reads and closes sessions in Redis under `<namespace>:console:session:`."""

    def __init__(self, redis_url: str, namespace: str = "invsync") -> None:
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=3.0)
        self._prefix = f"{namespace}:console:session:"

    def close(self) -> None:
        self._redis.close()

    def open(self, token: str | None) -> Session:
        """A new session (a fresh id: logging in never reuses the id a page was served with,
        so an id planted before the login opens nothing)."""
        session = Session(secrets.token_urlsafe(32), token, secrets.token_urlsafe(32))
        record = json.dumps({"token": token, "csrf": session.csrf})
        self._redis.set(self._key(session.id), record, ex=SESSION_SECONDS)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The session `session_id` names, or None when it is unknown, expired or closed."""
        if not session_id:
            return None
        found: bytes | None = self._redis.get(self._key(session_id))  # type: ignore[assignment]
        if found is None:
            return None
        record = json.loads(found)
        return Session(session_id, record["token"], record["csrf"])

    def end(self, session_id: str) -> None:
        """Close the session: its cookie opens nothing from now on, in every process."""
        self._redis.delete(self._key(session_id))

    def _key(self, session_id: str) -> str:
        return self._prefix + hashlib.sha256(session_id.encode()).hexdigest()
