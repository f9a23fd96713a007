"""Reconciliation, the I/O side: the channels' orders listed again since a watermark (so a lost
webhook costs at most one polling interval), their stock levels read and compared with the
ledger's history, and the runs that do both on a schedule or on request.

- `runs.py`: the table of runs (one row per run, its steps and counts); the one place a run is
  asked for (`request_check`), scheduled, claimed, advanced and resumed.
- `scheduler.py`: enqueues each channel's due runs, once however many processes run it, and
  re-sends the runs whose message or worker was lost.
- `actors.py`: the Dramatiq actor that works a run one step (an orders poll, a batch of SKUs)
  per message.
- `orders.py`, `watermarks.py`: orders listed since the watermark enter intake as deliveries.
- `levels.py`, `discrepancies.py`: levels read, drift corrected or escalated for review.

The decisions (what is due, what drift means) are pure, in `application/` and `domain/`; this
package may import `infrastructure` and everything inward of it, never `interfaces`.
"""
