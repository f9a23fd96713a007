"""An Amazon seller: SP-API's Listings Items and Feeds subset, Login with Amazon, and ORDER_CHANGE
notifications through a signed SNS topic (CHANNELS.md §3)."""
