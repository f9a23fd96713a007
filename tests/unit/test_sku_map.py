"""The SKU-mapping gateway covers the whole gateway protocol by name."""

from infrastructure.channels.gateway import ChannelGateway
from infrastructure.channels.sku_map import SkuMappedGateway


def _members(protocol: type) -> set[str]:
    names = set(getattr(protocol, "__annotations__", {}))
    names |= {name for name in vars(protocol) if not name.startswith("_")}
    return names


def test_every_member_of_the_gateway_protocol_is_mapped_not_passed_through():
    missing = {
        name
        for name in _members(ChannelGateway)
        if name not in vars(SkuMappedGateway) and name not in ("channel_id", "max_batch")
    }
    assert not missing, f"add these to SkuMappedGateway, mapping their SKUs: {sorted(missing)}"
    assert not hasattr(SkuMappedGateway, "__getattr__")
