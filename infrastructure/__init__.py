"""Adapters to the outside world: settings, PostgreSQL (the event store with its receipts), Redis,
and the embedded servers of the zero-configuration default. May import the application and the
domain; never the interfaces."""
