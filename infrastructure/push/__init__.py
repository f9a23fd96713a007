"""Propagation: the quantities in the availability outbox pushed to every channel, through one
Dramatiq queue per channel account, under a rate limit shared by all workers, coalesced (only
the newest quantity per SKU goes out), hot SKUs at once and the long tail in batches, behind a
circuit breaker; what each channel acknowledged is kept beside the outbox row it answers.

The pusher (`pusher.py`) reads the outbox (`store.py`), asks the pure decisions (`policy.py`,
`decisions.py`), calls the channel's gateway and records the answers; whether a channel may be
called is its gate's (`gate.py`), on limits kept in Redis or in memory (`limits.py`)."""
