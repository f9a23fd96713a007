"""A Walmart Marketplace seller to test against (see `seller.py`)."""
