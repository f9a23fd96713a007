"""The channel configuration file (`INVSYNC_CONFIG`, default `./invsync.toml`).

A contract other parts and tools rely on: each `[[channels]]` entry has `id`, `kind`,
`api_base_url`, `webhook_secrets`, `default_location`, optional `locations` (channel location id
→ ours) and kind-specific credentials. A secret written `env:NAME` is read from the environment.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from domain.allocation import ChannelRule
from domain.errors import InvsyncError


class ConfigError(InvsyncError):
    """Raised when the configuration file is missing a key or holds a value invsync cannot use."""


class ChannelKind(StrEnum):
    """The kinds with a channel folder (`infrastructure/channels/<kind>/`): only these are
    accepted, so every configured channel's webhooks and pushes have code behind them."""

    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"
    AMAZON = "amazon"
    INTERNAL = "internal"


# Kinds merchants ask for that have no folder yet: refused by name at start-up, with what is
# supported, instead of accepted and answering their webhooks with an error.
NOT_BUILT_YET = frozenset({"ebay", "walmart"})


DEFAULT_API_BASE_URLS = {
    ChannelKind.SHOPIFY: "https://{shop}.myshopify.com",
    ChannelKind.WOOCOMMERCE: "https://example.com/wp-json/wc/v3",
    ChannelKind.AMAZON: "https://sellingpartnerapi-na.amazon.com",
    ChannelKind.INTERNAL: "",
}

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


_MAX_UNITS = 10**9

# PostgreSQL text holds no NUL.
_Sku = Annotated[str, Field(pattern=r"^[^\x00]*$")]


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
    # Calls in any one second; at least 2, as calls are spaced for one fewer (see push/spacing.py).
    rate_per_second: float = Field(default=2.0, ge=2, le=1000)
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


class ChannelConfig(BaseModel):
    """One channel account."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    kind: ChannelKind
    api_base_url: str = ""
    webhook_secrets: tuple[str, ...] = ()
    default_location: str = "main"
    locations: dict[str, str] = Field(default_factory=dict)
    # `[channels.sku_map]`: the channel's SKU -> ours, where the channel names a product apart.
    sku_map: dict[_Sku, _Sku] = Field(default_factory=dict)
    # Amazon: the SNS topics whose notifications we accept.
    sns_topic_arns: tuple[str, ...] = ()
    rules: RulesConfig = Field(default_factory=RulesConfig)
    push: PushConfig = Field(default_factory=PushConfig)

    # The map it was made from, and ours -> the channel's.
    _channel_skus: tuple[object, dict[str, str]] = PrivateAttr(default=(None, {}))

    def allocation_rule(self) -> ChannelRule:
        return ChannelRule(channel_id=self.id, **self.rules.model_dump())

    @field_validator("id")
    @classmethod
    def _id_is_url_safe(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("must be lowercase letters, digits, '-' or '_' (used in URLs)")
        return value

    @field_validator("kind", mode="before")
    @classmethod
    def _kind_is_built(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str) and value in NOT_BUILT_YET:
            supported = ", ".join(ChannelKind)
            raise ValueError(
                f"channel {info.data.get('id', '?')!r}: kind {value!r} is not supported yet "
                f"(supported: {supported}); remove the channel from the file"
            )
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

    def location_for(self, channel_location: object) -> str:
        """Our location for a channel's location id (the default one when it names none)."""
        if channel_location in (None, ""):
            return self.default_location
        return self.locations.get(str(channel_location), self.default_location)

    def credential(self, name: str) -> str:
        value = (self.model_extra or {}).get(name)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"channel {self.id!r} needs {name!r} in its configuration")
        return value


class ApiToken(BaseModel):
    """`[[api_tokens]]`: a bearer token, stored only as the hex SHA-256 of its value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: tuple[Literal["read", "write", "admin"], ...] = ("read",)


class RetentionConfig(BaseModel):
    """`[retention]`: how long what is not the ledger is kept (days). The ledger's events and
    receipts are kept for ever: they are the audit trail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deliveries_days: float = Field(default=30, gt=0)  # processed webhooks, with their bodies
    observations_days: float = Field(default=30, gt=0)  # what channels reported of their stock
    dead_letters_days: float = Field(default=30, gt=0)  # once retried or discarded
    every_seconds: float = Field(default=3600, gt=0)  # how often `run` and `worker` apply it


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: tuple[ChannelConfig, ...] = ()
    api_tokens: tuple[ApiToken, ...] = ()
    max_webhook_bytes: int = Field(default=1_048_576, gt=0)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @field_validator("api_tokens")
    @classmethod
    def _tokens_are_distinct(cls, tokens: tuple[ApiToken, ...]) -> tuple[ApiToken, ...]:
        digests = [token.sha256 for token in tokens]
        if len(set(digests)) != len(digests):
            raise ValueError("two tokens have the same sha256: one token, one name and scopes")
        return tokens

    def channel(self, channel_id: str) -> ChannelConfig | None:
        return next((c for c in self.channels if c.id == channel_id), None)

    def allocation_rules(self) -> list[ChannelRule]:
        return [channel.allocation_rule() for channel in self.channels]


def load_config(path: Path, environ: Mapping[str, str] = os.environ) -> Config:
    """Read and check the file at `path`; no file means no channels. Raises `ConfigError`."""
    if not path.exists():
        return Config()
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    try:
        config = Config.model_validate(_resolve_env(raw, environ, path=""))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")  # our own validators' words
        raise ConfigError(f"{path}: {where}: {message}") from None
    seen: set[str] = set()
    for channel in config.channels:
        if channel.id in seen:
            raise ConfigError(f"{path}: channels: id {channel.id!r} is declared twice")
        seen.add(channel.id)
        if channel.kind is not ChannelKind.AMAZON and not channel.webhook_secrets:
            raise ConfigError(f"{path}: channels.{channel.id}.webhook_secrets: at least one")
    return config


def _resolve_env(value: Any, environ: Mapping[str, str], path: str) -> Any:
    if isinstance(value, dict):
        return {k: _resolve_env(v, environ, f"{path}.{k}".lstrip(".")) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, environ, f"{path}.{n}") for n, v in enumerate(value)]
    if isinstance(value, str) and value.startswith("env:"):
        name = value.removeprefix("env:")
        if name not in environ:
            raise ConfigError(f"{path}: environment variable {name} is not set")
        return environ[name]
    return value
