"""An Amazon channel's table: the seller and marketplace, the Login with Amazon (LWA) client and
refresh token its SP-API calls are made with, the SNS topics its notifications come from, and
where that SNS serves its certificates."""

from __future__ import annotations

from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from infrastructure.channels.config import ChannelConfig, ChannelText

LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"

# `<region>` stands for any AWS region's name: SNS serves each region from a host of its own.
REGION = "<region>"
SNS_ORIGINS = (f"https://sns.{REGION}.amazonaws.com", f"https://sns.{REGION}.amazonaws.com.cn")


class AmazonConfig(ChannelConfig):
    """`kind = "amazon"`; `api_base_url` is the SP-API regional endpoint
    (`https://sellingpartnerapi-na.amazon.com`). Its notifications come signed by SNS, so it needs
    no `webhook_secrets`."""

    api_credentials: ClassVar[tuple[str, ...]] = (
        "seller_id",
        "marketplace_id",
        "lwa_client_id",
        "lwa_client_secret",
        "lwa_refresh_token",
    )
    signed_with_secrets: ClassVar[bool] = False

    # SP-API limits each operation apart (its gateway takes their turns): 5 a second is
    # patchListingsItem's documented rate, the fastest of its writes (CHANNELS.md §3.3).
    documented_rate: ClassVar[float] = 5.0

    kind: Literal["amazon"] = "amazon"
    seller_id: ChannelText = ""  # the selling partner id (merchant token)
    marketplace_id: ChannelText = ""  # whose quantity is set (`ATVPDKIKX0DER`)
    lwa_client_id: ChannelText = ""
    lwa_client_secret: ChannelText = Field(default="", repr=False)
    lwa_refresh_token: ChannelText = Field(default="", repr=False)
    lwa_token_url: str = LWA_TOKEN_URL
    feed_poll_seconds: float = Field(default=30.0, ge=0)  # between two looks at a feed
    # The SNS topics whose notifications we accept: any AWS account can publish to an endpoint.
    sns_topic_arns: tuple[str, ...] = ()
    # Where this channel's SNS serves its signing certificates and subscribe URLs, as
    # `scheme://host[:port]`: a certificate or subscribe URL elsewhere is refused unfetched.
    sns_origins: tuple[str, ...] = SNS_ORIGINS

    @field_validator("sns_origins")
    @classmethod
    def _origins_are_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            parts = urlsplit(origin.replace(REGION, "region"))
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{origin!r} is not http(s)://host[:port]")
            if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in origin:
                raise ValueError(f"{origin!r} is more than http(s)://host[:port]")
        return origins
