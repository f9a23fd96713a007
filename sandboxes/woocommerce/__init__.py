"""A WooCommerce store: the REST v3 products and orders API, its key checks (Basic over HTTPS,
one-legged OAuth 1.0a over HTTP) and its webhooks (CHANNELS.md §2)."""
