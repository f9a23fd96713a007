"""What every channel's table in the configuration file holds (`[[channels]]`): its id, where its
API is, the secrets its webhooks are signed with, its locations, SKU map, allocation rules, how
pushes go and how it is reconciled. Each kind's folder adds its own credentials in a model of
its own (`<kind>/config.py`); `infrastructure/config.py` reads the table into the model its
`kind` names.

Imports nothing of the channel folders' code, so the configuration can be read without loading
any gateway or translator.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from domain.allocation import ChannelRule

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

_MAX_UNITS = 10**9

# PostgreSQL text holds no NUL.
_Sku = Annotated[str, Field(pattern=r"^[^\x00]*$")]


def _number_as_text(value: Any) -> Any:
    # A channel's own id (a Shopify location) is often written as a number in the file.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


ChannelText = Annotated[str, BeforeValidator(_number_as_text)]
"""A credential or a channel's id for something: text, or a number written as one."""


class RulesConfig(BaseModel):
    """`[channels.rules]`: how much of the stock the channel may sell (see domain.allocation)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Bounded so that what is accepted can always be stored and computed with: no NUL in a
    # name (PostgreSQL text holds none), no quantity beyond a billion units.
    locations: tuple[Annotated[str, Field(min_length=1, pattern=r"^[^\x00]*$")], ...] | None = None
    share_percent: float = Field(default=100.0, ge=0, le=100)
    safety_buffer: int = Field(default=0, ge=0, le=_MAX_UNITS)
    max_quantity: int | None = Field(default=None, ge=0, le=_MAX_UNITS)
    fixed_quantity: int | None = Field(default=None, ge=0, le=_MAX_UNITS)
    stop_at: int = Field(default=0, ge=0, le=_MAX_UNITS)
    velocity_weighted: bool = False
    min_share_percent: float = Field(default=0.0, ge=0, le=100)


class PushConfig(BaseModel):
    """`[channels.push]`: how available-to-sell is pushed to the channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True  # when the channel has an api_base_url
    # Calls in any one second, pushes, lookups and reconciliation's reads alike; at least 2, as
    # calls are spaced for one fewer (see push/limits.py). Unset: what the kind's API documents
    # (`ChannelConfig.documented_rate`).
    rate_per_second: float = Field(default=2.0, ge=2, le=1000)
    # The calls one push makes back to back on one turn of that rate (WooCommerce: the read of
    # its compare-and-set, then the write); calls are spaced to leave room for them. Unset: the
    # kind's (`ChannelConfig.documented_calls_per_push`).
    calls_per_push: int = Field(default=1, ge=1, le=2)
    batch_window_seconds: float = Field(default=2.0, ge=0, le=3600)  # the long tail's wait
    sku_interval_seconds: float = Field(default=0.25, ge=0, le=3600)  # one SKU, at most this often
    # A drain stays on the channel this long with nothing due before it gives its thread back.
    linger_seconds: float = Field(default=1.0, ge=0, le=60)
    failures_to_open: int = Field(default=3, ge=1, le=100)  # the circuit breaker's threshold
    cooldown_seconds: float = Field(default=1.0, gt=0, le=3600)  # first open; doubles
    max_cooldown_seconds: float = Field(default=60.0, gt=0, le=86400)
    timeout_seconds: float = Field(default=5.0, gt=0, le=120)  # one API call
    # After a refusal, what the channel lost is taken as its own sales not in the ledger yet,
    # for at most this long: a raise goes only as far as they allow.
    unrecorded_wait_seconds: float = Field(default=10.0, ge=0, le=3600)


class ReconcileConfig(BaseModel):
    """`[channels.reconcile]`: how often the channel's orders and levels are checked against
    the ledger, and how much drift is corrected without review."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True  # when the channel has an api_base_url
    orders_every_seconds: float = Field(default=300.0, ge=10, le=86400)
    # Orders modified this long before the watermark are listed again: a clock apart, or an
    # order committed late on the channel's side, is still found.
    orders_overlap_seconds: float = Field(default=120.0, ge=0, le=86400)
    # The SKUs that changed or sold in the last 7 days.
    active_every_seconds: float = Field(default=21600.0, ge=60, le=30 * 86400)
    # Every SKU the channel lists.
    catalog_every_seconds: float = Field(default=86400.0, ge=60, le=90 * 86400)
    # Drift of fewer units is corrected at once; more waits in a discrepancy for review.
    auto_correct_below: int = Field(default=3, ge=0, le=_MAX_UNITS)


class ChannelConfig(BaseModel):
    """One channel account: what every kind's table holds. A kind's model adds its credentials
    and names those its API calls need in `api_credentials`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The fields a call to the channel's API needs: required once the channel pushes.
    api_credentials: ClassVar[tuple[str, ...]] = ()
    # Whether the kind's webhooks are signed with `webhook_secrets` (Amazon's SNS signs its own).
    signed_with_secrets: ClassVar[bool] = True
    # `push.rate_per_second` when the table does not set it: the calls a second the kind's API
    # documents (each kind says its source; the README lists them).
    documented_rate: ClassVar[float] = 2.0
    # `push.calls_per_push` when the table does not set it: the calls the kind's push makes.
    documented_calls_per_push: ClassVar[int] = 1

    id: str
    kind: str
    api_base_url: str = ""
    webhook_secrets: tuple[str, ...] = ()
    default_location: str = "main"
    locations: dict[str, str] = Field(default_factory=dict)
    # `[channels.sku_map]`: the channel's SKU -> ours, where the channel names a product apart.
    sku_map: dict[_Sku, _Sku] = Field(default_factory=dict)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    push: PushConfig = Field(default_factory=PushConfig)
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)

    # The map it was made from, and ours -> the channel's.
    _channel_skus: tuple[object, dict[str, str]] = PrivateAttr(default=(None, {}))

    @property
    def pushes(self) -> bool:
        """Whether invsync pushes to the channel: it has an API and pushing is not switched off."""
        return bool(self.api_base_url) and self.push.enabled

    @property
    def reconciles(self) -> bool:
        """Whether invsync checks the channel's orders and levels: it has an API and
        reconciliation is not switched off."""
        return bool(self.api_base_url) and self.reconcile.enabled

    def missing_credentials(self) -> list[str]:
        """The `api_credentials` the table leaves empty, in the order the kind names them."""
        return [name for name in self.api_credentials if not getattr(self, name)]

    def allocation_rule(self) -> ChannelRule:
        return ChannelRule(channel_id=self.id, **self.rules.model_dump())

    @field_validator("push", mode="before")
    @classmethod
    def _kinds_defaults_unless_set(cls, value: Any) -> Any:
        kinds = {
            "rate_per_second": cls.documented_rate,
            "calls_per_push": cls.documented_calls_per_push,
        }
        if isinstance(value, PushConfig):
            unset = {k: v for k, v in kinds.items() if k not in value.model_fields_set}
            return value.model_copy(update=unset)
        if isinstance(value, dict):
            return {**kinds, **value}
        return value

    @model_validator(mode="before")
    @classmethod
    def _push_table_or_not(cls, data: Any) -> Any:
        # A table without `[channels.push]` gets the kind's documented rate (and calls per
        # push) too (a default is not validated).
        if isinstance(data, dict) and data.get("push") is None:
            return {**data, "push": {}}
        return data

    @field_validator("id")
    @classmethod
    def _id_is_url_safe(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("must be lowercase letters, digits, '-' or '_' (used in URLs)")
        return value

    @field_validator("sku_map")
    @classmethod
    def _one_channel_sku_per_sku(cls, value: dict[str, str]) -> dict[str, str]:
        named: dict[str, str] = {}  # our SKU -> the channel SKU that names it
        for channel_sku, ours in value.items():
            if not channel_sku or not ours:
                raise ValueError(f"{channel_sku!r} = {ours!r}: neither SKU may be empty")
            if ours in named:
                raise ValueError(
                    f"channel SKUs {named[ours]!r} and {channel_sku!r} both map to our SKU "
                    f"{ours!r}: a SKU of ours has one name on a channel"
                )
            named[ours] = channel_sku
        return value

    @model_validator(mode="after")
    def _pushing_has_credentials(self) -> ChannelConfig:
        missing = self.missing_credentials() if self.pushes else []
        if missing:
            raise ValueError(
                f"channel {self.id!r}: pushing to a {self.kind} channel needs {', '.join(missing)}"
            )
        return self

    def our_sku(self, channel_sku: str) -> str:
        """Our SKU for the one the channel names (the same, unless `sku_map` maps it)."""
        return self.sku_map.get(channel_sku, channel_sku)

    def channel_sku(self, our_sku: str) -> str:
        """The channel's name for our SKU (the same, unless `sku_map` maps one to it)."""
        named, channel_skus = self._channel_skus
        if named is not self.sku_map:  # first use, or a copy made with another map
            channel_skus = {ours: theirs for theirs, ours in self.sku_map.items()}
            self._channel_skus = (self.sku_map, channel_skus)
        return channel_skus.get(our_sku, our_sku)

    @property
    def selling_location(self) -> str:
        """The channel's own id of the location whose stock it sells, for a kind that names one
        (Shopify's `location_id`, Walmart's `ship_node`); empty for the others."""
        return ""

    def stock_location(self) -> str | None:
        """Our location where the channel's stock lives, as its table says: `locations`' entry
        for its `selling_location` (a Shopify gid or its number), else a `default_location` the
        table sets; None: the table says neither."""
        own = self.selling_location
        for key in (own, own.rsplit("/", 1)[-1]) if own else ():
            if key in self.locations:
                return self.locations[key]
        return self.default_location if "default_location" in self.model_fields_set else None

    def location_for(self, channel_location: object) -> str:
        """Our location for a channel's location id (the default one when it names none)."""
        if channel_location in (None, ""):
            return self.default_location
        return self.locations.get(str(channel_location), self.default_location)
