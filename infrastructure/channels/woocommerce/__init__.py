"""WooCommerce: signed webhooks that carry an order's current state, sent once (CHANNELS.md §2)."""
