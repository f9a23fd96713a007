"""An eBay seller account to test against: OAuth, the Notification API, Fulfillment orders and
Inventory items and offers (`seller.py`)."""
