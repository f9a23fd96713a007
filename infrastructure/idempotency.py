"""`Idempotency-Key` on API POSTs, as the IETF httpapi Idempotency-Key draft describes it: the
first use of a key claims it *before* the change runs, so a concurrent second use is told the
first is in flight (409) instead of running beside it; the same key and body again replay the
first answer; the same key with another body is refused (422).

Keys belong to the token that sent them (two clients may pick the same key), are at most
`MAX_KEY_LENGTH` characters, and are forgotten `KEY_LIFETIME` after their first use: a claim
sweeps a few expired keys each time, and `purge_expired` sweeps them all."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

import psycopg
from eventsourcing.persistence import OperationalError
from psycopg.types.json import Jsonb

from infrastructure.postgres import open_pool

# Stripe's limit; UUIDs and hashes, what clients send, fit many times over.
MAX_KEY_LENGTH = 255
# How long a key is remembered after its first use: a client retrying later sends a new one.
KEY_LIFETIME = timedelta(hours=24)
# A claim whose request neither answered nor failed in this long (its process died) may be
# taken over by the next use of the key: the ledger's business keys keep the retry exact.
CLAIM_LEASE = timedelta(seconds=60)
# Expired keys each claim deletes: cleanup on write, bounded so no request pays for a backlog.
SWEEP_PER_CLAIM = 100


class ClaimState(StrEnum):
    CLAIMED = "claimed"  # this request owns the key: run the change, then `complete`
    REPLAY = "replay"  # the key's first request answered: send `status` and `body` again
    IN_FLIGHT = "in_flight"  # the key's first request is still running: 409
    MISMATCH = "mismatch"  # the key was used with another request: 422


@dataclass(frozen=True)
class Claim:
    """What a use of a key may do. `token` (CLAIMED) identifies this claim to `complete` and
    `abandon`, so a claim taken over after its lease can no longer write the answer."""

    state: ClaimState
    token: uuid.UUID | None = None
    status: int | None = None
    body: Any = None


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest()


# One statement, so two first uses cannot both see the key free: the loser's insert waits for
# the winner's row and finds it taken. An expired key, or a claim past its lease that never
# answered, is taken over in the same statement.
_CLAIM = """
INSERT INTO api_idempotency AS kept (owner, key, request_hash, claim)
VALUES (%(owner)s, %(key)s, %(hash)s, %(claim)s)
ON CONFLICT (owner, key) DO UPDATE SET
    request_hash = EXCLUDED.request_hash, claim = EXCLUDED.claim, status = NULL, body = NULL,
    created_at = now(), claimed_at = now()
WHERE kept.created_at < now() - %(lifetime)s
   OR (kept.status IS NULL AND kept.claimed_at < now() - %(lease)s
       AND kept.request_hash = EXCLUDED.request_hash)
RETURNING claim"""

_SWEEP = """
DELETE FROM api_idempotency WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM api_idempotency WHERE created_at < now() - %(lifetime)s
    LIMIT %(limit)s FOR UPDATE SKIP LOCKED))"""


class IdempotencyStore:
    def __init__(
        self,
        database_url: str,
        *,
        lifetime: timedelta = KEY_LIFETIME,
        lease: timedelta = CLAIM_LEASE,
        timeout: float = 5.0,
        max_size: int = 4,
        statement_timeout_ms: int | None = None,
    ) -> None:
        self.lifetime = lifetime
        self.lease = lease
        self._pool = open_pool(database_url, max_size, statement_timeout_ms, timeout)

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        # Said as the ledger says it, so the API answers 503 (retry) as for the ledger.
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as error:
            raise OperationalError(f"idempotency keys unavailable: {error}") from error

    def claim(self, owner: str, key: str, request: str) -> Claim:
        """Claim `key` of `owner` for the request whose hash is `request`, or say why not."""
        token = uuid.uuid4()
        params = {
            "owner": owner,
            "key": key,
            "hash": request,
            "claim": token,
            "lifetime": self.lifetime,
            "lease": self.lease,
            "limit": SWEEP_PER_CLAIM,
        }
        with self._connection() as conn:
            conn.execute(_SWEEP, params)
            # The key's row may vanish between the claim and the look (its request failed and
            # let it go, or it expired): then claim again.
            for _ in range(3):
                if conn.execute(_CLAIM, params).fetchone() is not None:
                    return Claim(ClaimState.CLAIMED, token)
                row = conn.execute(
                    "SELECT request_hash, status, body FROM api_idempotency "
                    "WHERE owner = %s AND key = %s",
                    [owner, key],
                ).fetchone()
                if row is not None:
                    return _seen(request, *row)
        return Claim(ClaimState.IN_FLIGHT)  # the key keeps changing hands: let the client retry

    def complete(self, owner: str, key: str, token: uuid.UUID, status: int, body: Any) -> None:
        """Remember the answer of the claimed request, for replays."""
        with self._connection() as conn:
            conn.execute(
                "UPDATE api_idempotency SET status = %s, body = %s "
                "WHERE owner = %s AND key = %s AND claim = %s AND status IS NULL",
                [status, Jsonb(body), owner, key, token],
            )

    def abandon(self, owner: str, key: str, token: uuid.UUID) -> None:
        """Let the key go without an answer (the request failed before it knew the outcome):
        the client's retry runs it again."""
        with self._connection() as conn:
            conn.execute(
                "DELETE FROM api_idempotency "
                "WHERE owner = %s AND key = %s AND claim = %s AND status IS NULL",
                [owner, key, token],
            )

    def purge_expired(self) -> int:
        """Delete every key past its lifetime; returns how many went."""
        with self._connection() as conn:
            deleted = conn.execute(
                "DELETE FROM api_idempotency WHERE created_at < now() - %s", [self.lifetime]
            )
            return deleted.rowcount


def _seen(request: str, stored_hash: str, status: int | None, body: Any) -> Claim:
    if stored_hash != request:
        return Claim(ClaimState.MISMATCH)
    if status is None:
        return Claim(ClaimState.IN_FLIGHT)
    return Claim(ClaimState.REPLAY, status=status, body=body)
