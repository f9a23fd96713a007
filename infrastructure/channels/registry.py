"""Channel kinds and the folders that implement them."""

from __future__ import annotations

from infrastructure.channels.amazon import translator as amazon_translator
from infrastructure.channels.amazon import verifier as amazon_verifier
from infrastructure.channels.base import ChannelAdapter
from infrastructure.channels.internal import translator as internal_translator
from infrastructure.channels.internal import verifier as internal_verifier
from infrastructure.channels.shopify import translator as shopify_translator
from infrastructure.channels.shopify import verifier as shopify_verifier
from infrastructure.channels.woocommerce import translator as woocommerce_translator
from infrastructure.channels.woocommerce import verifier as woocommerce_verifier
from infrastructure.config import ChannelKind

ADAPTERS: dict[ChannelKind, ChannelAdapter] = {
    ChannelKind.SHOPIFY: ChannelAdapter(
        shopify_verifier.verify, shopify_translator.translate, shopify_translator.lane
    ),
    ChannelKind.WOOCOMMERCE: ChannelAdapter(
        woocommerce_verifier.verify, woocommerce_translator.translate, woocommerce_translator.lane
    ),
    ChannelKind.AMAZON: ChannelAdapter(
        amazon_verifier.verify,
        amazon_translator.translate,
        amazon_translator.lane,
        acknowledge=amazon_translator.acknowledge,
        blocking=True,  # the first message of a certificate fetches it over the network
    ),
    ChannelKind.INTERNAL: ChannelAdapter(
        internal_verifier.verify, internal_translator.translate, internal_translator.lane
    ),
}
