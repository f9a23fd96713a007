"""Our own systems (ERP, WMS, POS) sending signed stock changes: purchase-order receipts,
transfers, adjustments and counts.

Scheme: `X-Invsync-Timestamp: <unix seconds>` and
`X-Invsync-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`, accepted within
five minutes of our clock; `X-Invsync-Delivery-Id` names the delivery (the body hash otherwise).
Body: `{"changes": [{"kind", "sku", "location", "quantity", "business_key", "reference",
"reason", "occurred_at", "to_location", "expected", "restock", "reservation_id", "state"}]}`.
"""
