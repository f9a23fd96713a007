"""The eBay channel: Notification API webhooks, Fulfillment orders polled, Inventory API stock."""
