"""The channel configuration file (`INVSYNC_CONFIG`, default `./invsync.toml`).

A contract other parts and tools rely on: each `[[channels]]` entry has `id`, `kind`,
`api_base_url`, `webhook_secrets`, `default_location`, optional `locations` (channel location id
→ ours) and the credentials of its kind, each kind's keys in its model
(`infrastructure/channels/<kind>/config.py`). A secret written `env:NAME` is read from the
environment.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from domain.allocation import ChannelRule
from domain.errors import InvsyncError
from infrastructure.channels.amazon.config import AmazonConfig
from infrastructure.channels.config import ChannelConfig, PushConfig, RulesConfig
from infrastructure.channels.ebay.config import EbayConfig
from infrastructure.channels.internal.config import InternalConfig
from infrastructure.channels.shopify.config import ShopifyConfig
from infrastructure.channels.walmart.config import WalmartConfig
from infrastructure.channels.woocommerce.config import WooCommerceConfig

# What a channel's table holds is defined with the channels; read here as part of the file.
__all__ = [
    "AnyChannel",
    "ApiToken",
    "ChannelConfig",
    "Config",
    "ConfigError",
    "PushConfig",
    "RetentionConfig",
    "RulesConfig",
    "load_config",
]


class ConfigError(InvsyncError):
    """Raised when the configuration file is missing a key or holds a value invsync cannot use."""


# One model per folder in `infrastructure/channels/` (`kinds.py` registers each folder's code).
CHANNEL_MODELS = (
    ShopifyConfig,
    WooCommerceConfig,
    AmazonConfig,
    EbayConfig,
    WalmartConfig,
    InternalConfig,
)
KIND_NAMES = tuple(model.model_fields["kind"].default for model in CHANNEL_MODELS)

AnyChannel = Annotated[
    ShopifyConfig | WooCommerceConfig | AmazonConfig | EbayConfig | WalmartConfig | InternalConfig,
    Field(discriminator="kind"),
]
"""A `[[channels]]` table, read into the model of its `kind`: a key that kind does not take (a
misspelt credential) is refused by name."""


# A token given by value is refused shorter than this: it is all that stands before the API.
MIN_TOKEN_CHARS = 16


class ApiToken(BaseModel):
    """`[[api_tokens]]`: a bearer token, stored only as the hex SHA-256 of its value: given as
    `sha256`, or as `token` (best `env:NAME`: a container's environment), digested as the file
    is read and never kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: tuple[Literal["read", "write", "admin"], ...] = ("read",)

    @model_validator(mode="before")
    @classmethod
    def _digest_token(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "token" not in data:
            return data
        given = dict(data)
        token = given.pop("token")
        if "sha256" in given:
            raise ValueError("give sha256 or token, not both")
        if not isinstance(token, str) or len(token.strip()) < MIN_TOKEN_CHARS:
            raise ValueError(f"token: at least {MIN_TOKEN_CHARS} characters")
        return {**given, "sha256": hashlib.sha256(token.strip().encode()).hexdigest()}


class RetentionConfig(BaseModel):
    """`[retention]`: how long what is not the ledger is kept (days). The ledger's events and
    receipts are kept for ever: they are the audit trail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deliveries_days: float = Field(default=30, gt=0)  # processed or discarded webhooks, with bodies
    observations_days: float = Field(default=30, gt=0)  # what channels reported of their stock
    dead_letters_days: float = Field(default=30, gt=0)  # once retried or discarded
    every_seconds: float = Field(default=3600, gt=0)  # how often `run` and `worker` apply it


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: tuple[AnyChannel, ...] = ()
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
        raise ConfigError(f"{path}: {_described(error.errors()[0])}") from None
    seen: set[str] = set()
    for channel in config.channels:
        if channel.id in seen:
            raise ConfigError(f"{path}: channels: id {channel.id!r} is declared twice")
        seen.add(channel.id)
        if channel.signed_with_secrets and not channel.webhook_secrets:
            raise ConfigError(f"{path}: channels.{channel.id}.webhook_secrets: at least one")
    return config


def _described(error: ErrorDetails) -> str:
    """`<where>: <what is wrong>` for the first error, in the file's terms: a channel's key
    without the kind pydantic chose its model by."""
    loc = list(error["loc"])
    if loc[:1] == ["channels"] and len(loc) > 2 and loc[2] in KIND_NAMES:
        del loc[2]
    where = ".".join(str(part) for part in loc)
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return f"{where}.kind: {_unknown_kind(error['input'])}"
    if error["type"] == "extra_forbidden" and loc[:1] == ["channels"] and len(loc) == 3:
        return f"{where}: {_unknown_key(error['input'], str(loc[2]), error['loc'][2])}"
    return f"{where}: {error['msg'].removeprefix('Value error, ')}"  # our validators' words


def _unknown_kind(table: Any) -> str:
    table = table if isinstance(table, dict) else {}
    kind, supported = table.get("kind"), ", ".join(KIND_NAMES)
    if kind is None:
        return f"channel {table.get('id', '?')!r} names no kind (one of {supported})"
    return f"channel {table.get('id', '?')!r}: kind {kind!r} is none of {supported}"


def _unknown_key(value: Any, key: str, kind: object) -> str:
    """A key the channel's kind does not take, and the one it may have meant."""
    model = next(m for m in CHANNEL_MODELS if m.model_fields["kind"].default == kind)
    near = difflib.get_close_matches(key, list(model.model_fields), n=1)
    meant = f" (did you mean {near[0]!r}?)" if near else ""
    return f"a {kind} channel takes no key {key!r}{meant}"


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
