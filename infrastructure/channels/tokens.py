"""An OAuth access token kept until shortly before it expires: what every channel whose calls
carry a short-lived token shares (Amazon's LWA, eBay's OAuth). One token serves every call
until then, so a gateway asks the token endpoint once a lifetime, not once a call."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CachedToken:
    """The current token, fetched with `fetch` (the token and its lifetime in seconds) when
    there is none or it is about to expire.

    Parameters:
        fetch: asks the channel's token endpoint; raises what the channel's refusal is.
        refresh_margin: seconds before its expiry a token is no longer used, so a call never
            reaches the channel with a token that expired on the way.
        clock: monotonic seconds, for tests.
        turn: called before each fetch, which raises when no turn comes: where the token
            endpoint is the channel's own API, the channel counts the call against its limit
            like any other (a call on top of the pushes made a busiest second hold rate + 1).
    """

    def __init__(
        self,
        fetch: Callable[[], tuple[str, float]],
        *,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        turn: Callable[[], None] = lambda: None,
    ) -> None:
        self._fetch_token, self.refresh_margin, self._clock = fetch, refresh_margin, clock
        self._turn = turn
        self._token: str | None = None
        self._good_until = 0.0
        self._lock = threading.Lock()

    def current(self) -> str:
        """A token valid for a while yet, fetched if the cached one is not.

        Raises:
            ChannelError: what `fetch` raises (a refusal, a 429, the endpoint down).
        """
        with self._lock:
            if self._token is None or self._clock() >= self._good_until:
                self._turn()
                self._token, lifetime = self._fetch_token()
                self._good_until = self._clock() + lifetime - self.refresh_margin
            return self._token

    def forget(self, token: str) -> None:
        """Stop using `token` (the channel refused it): the next `current` fetches another."""
        with self._lock:
            if self._token == token:
                self._token = None
