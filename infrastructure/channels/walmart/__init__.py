"""Walmart Marketplace (US): HMAC-signed order webhooks, orders polled and acknowledged, stock set
by item and by bulk feed, levels read in pages (CHANNELS.md §5)."""
