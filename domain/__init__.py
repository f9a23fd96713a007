"""The stock domain: the per-SKU `InventoryItem` aggregate, the `StockChange` value object and
the domain errors. Pure Python: it imports nothing but the standard library and
`eventsourcing.domain`, and it does no I/O."""
