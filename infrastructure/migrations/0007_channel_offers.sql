-- Each SKU's published offers on a channel (eBay: offer id and listing id, in pairs), as its
-- gateway last looked them up and when: a gateway started afresh, or another worker's, begins
-- from them for as long as the lookup holds (an hour) instead of asking the channel again.
-- `sku` is the channel's own; empty arrays: the SKU has no published offer. Owned by
-- infrastructure/channel_offers.py.
CREATE TABLE IF NOT EXISTS channel_offers (
    channel_id text NOT NULL,
    sku text NOT NULL,
    offer_ids text[] NOT NULL,
    listing_ids text[] NOT NULL,
    looked_up_at timestamptz NOT NULL,
    PRIMARY KEY (channel_id, sku),
    CHECK (cardinality(offer_ids) = cardinality(listing_ids)));
