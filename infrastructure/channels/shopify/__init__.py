"""Shopify: HMAC-signed HTTPS webhooks (CHANNELS.md §1.1)."""
