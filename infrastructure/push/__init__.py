"""Propagation: the quantities in the availability outbox pushed to every channel, through one
Dramatiq queue per channel account, under a rate limit shared by all workers, coalesced (only
the newest quantity per SKU goes out), hot SKUs at once and the long tail in batches, behind a
circuit breaker; what each channel acknowledged is kept beside the outbox row it answers."""
