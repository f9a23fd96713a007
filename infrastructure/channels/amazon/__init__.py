"""Amazon SP-API: ORDER_CHANGE notifications delivered through an AWS SNS topic's HTTPS
subscription, verified by SNS's RSA signature (CHANNELS.md §3.1, §3.2)."""
