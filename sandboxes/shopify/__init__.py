"""A Shopify store: the GraphQL Admin API subset invsync uses and HMAC-signed webhooks
(CHANNELS.md §1)."""
