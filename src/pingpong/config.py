"""Settings: a YAML file, overridden by PINGPONG_* variables, overridden by flags.

Validation is pydantic's; this module turns its errors into one line per
problem naming where the value came from, the field path and the reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)

from pingpong.core.algorithms import Algorithm, Limit
from pingpong.core.policy import CLIENT_IP, GLOBAL, HEADER_PREFIX, Policy, Tier
from pingpong.core.rates import Rate, parse_rate
from pingpong.core.storage import SCHEMES, FailureMode

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def _rate(value: Any) -> Rate:
    return value if isinstance(value, Rate) else parse_rate(value)


def _name(value: str) -> str:
    if not NAME.match(value):
        raise ValueError("use letters, digits, '_', '.', '-' (at most 64)")
    return value


def _network(value: Any) -> IPv4Network | IPv6Network:
    if isinstance(value, IPv4Network | IPv6Network):
        return value
    return ip_network(str(value), strict=False)


RateField = Annotated[Rate, BeforeValidator(_rate)]
NetworkField = Annotated[IPv4Network | IPv6Network, PlainValidator(_network)]
Name = Annotated[str, AfterValidator(_name)]
Strict = ConfigDict(extra="forbid", frozen=True)


class Match(BaseModel):
    model_config = Strict
    path: str = "/ping"
    methods: tuple[Literal["GET", "HEAD"], ...] = ("GET", "HEAD")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value


class PolicyConfig(BaseModel):
    model_config = Strict
    name: Name
    match: Match = Match()
    key: str = CLIENT_IP
    rate: RateField | None = None
    burst: int | None = Field(None, ge=1)
    algorithm: Algorithm | None = None
    shadow: bool = False

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if value in (CLIENT_IP, GLOBAL):
            return value
        if value.startswith(HEADER_PREFIX) and HEADER_NAME.match(value[len(HEADER_PREFIX) :]):
            return value
        raise ValueError("must be client_ip, global or header:<Header-Name>")


class TierConfig(BaseModel):
    model_config = Strict
    name: Name
    rate: RateField
    burst: int | None = Field(None, ge=1)
    algorithm: Algorithm | None = None
    keys: tuple[str, ...] = Field(min_length=1)

    @field_validator("keys")
    @classmethod
    def _keys(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if not DIGEST.match(value):
                raise ValueError(
                    "each key is 'sha256:' + the lower-case hex SHA-256 of the API key "
                    "(printf %s KEY | sha256sum), never the key itself"
                )
        return values


class ApiKeys(BaseModel):
    model_config = Strict
    header: str = "X-API-Key"
    tiers: tuple[TierConfig, ...] = ()

    @field_validator("header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not HEADER_NAME.match(value):
            raise ValueError("not a valid header name")
        return value


class Settings(BaseModel):
    model_config = Strict
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    storage: str = "memory://"
    storage_timeout: float = Field(0.05, gt=0, le=5)
    on_storage_error: FailureMode = FailureMode.LOCAL
    circuit_failures: int = Field(5, ge=1)
    circuit_reset: float = Field(2.0, gt=0)
    memory_max_keys: int = Field(1_000_000, ge=1000)
    limit: RateField = Rate(100, 60)
    burst: int | None = Field(None, ge=1)
    algorithm: Algorithm = Algorithm.GCRA
    trusted_proxies: tuple[NetworkField, ...] = ()
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    ipv6_prefix: int = Field(64, ge=1, le=128)
    drain_seconds: float = Field(5.0, ge=0, le=600)
    metrics_port: int | None = Field(None, ge=0, le=65535)
    log_format: Literal["json", "text"] = "json"
    access_log: float = Field(0.0, ge=0, le=1)  # share of requests logged; 5xx always are
    # Drills only (docs/bluegreen.md): make /ping fail or slow down on purpose.
    fault_error_rate: float = Field(0.0, ge=0, le=1)
    fault_delay: float = Field(0.0, ge=0, le=30)
    policies: tuple[PolicyConfig, ...] = ()
    api_keys: ApiKeys = ApiKeys()

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        scheme = value.partition("://")[0]
        if "://" not in value or scheme not in SCHEMES:
            raise ValueError(f"unsupported storage URL; use one of {', '.join(SCHEMES)}://")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        names = [p.name for p in self.policies] + [t.name for t in self.api_keys.tiers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"policy and tier names must be unique: {', '.join(duplicates)}")
        if self.workers > 1 and self.storage.startswith("memory://"):
            raise ValueError(
                f"workers={self.workers} with memory:// would give each worker its own "
                f"counters ({self.workers}x the limit); use a redis:// storage or 1 worker"
            )
        return self

    def effective_policies(self) -> list[Policy]:
        """The configured policies with defaults filled in (or the default one)."""
        configs = self.policies or (PolicyConfig(name="default"),)
        return [
            Policy(
                name=c.name,
                limit=self._limit(c.rate, c.burst, c.algorithm),
                key=c.key,
                path=c.match.path,
                methods=frozenset(c.match.methods),
                shadow=c.shadow,
            )
            for c in configs
        ]

    def tiers(self) -> list[Tier]:
        return [
            Tier(
                t.name,
                self._limit(t.rate, t.burst, t.algorithm),
                frozenset(bytes.fromhex(k.removeprefix("sha256:")) for k in t.keys),
            )
            for t in self.api_keys.tiers
        ]

    def _limit(self, rate: Rate | None, burst: int | None, algorithm: Algorithm | None) -> Limit:
        default_burst = None
        if rate is None:  # the default rate comes with the default burst
            rate, default_burst = self.limit, self.burst
        return Limit(algorithm or self.algorithm, rate, burst or default_burst or rate.count)


class ConfigError(Exception):
    """A config problem, already worded for the operator."""


ENV_PREFIX = "PINGPONG_"
ENV_FIELDS = tuple(name for name in Settings.model_fields if name not in ("policies", "api_keys"))


FLAG_NAMES = {"trusted_proxies": "--trusted-proxy"}


def load_settings(
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge file < environment < flags and validate; raise ConfigError."""
    env = os.environ if env is None else env
    config_file = config_file or env.get(ENV_PREFIX + "CONFIG") or None
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if config_file:
        data = read_file(config_file)
        sources = dict.fromkeys(data, config_file)
    for name in ENV_FIELDS:
        value = env.get(ENV_PREFIX + name.upper())
        if value not in (None, ""):
            data[name], sources[name] = value, ENV_PREFIX + name.upper()
    for name, value in (flags or {}).items():
        if value is not None:
            data[name], sources[name] = value, FLAG_NAMES.get(name, "--" + name.replace("_", "-"))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, sources, config_file)) from None


def read_file(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{path}: the YAML is nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError(f"{path}: {where}invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    return data


def redacted(url: str) -> str:
    """A storage URL fit to print: any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _describe(exc: ValidationError, sources: Mapping[str, str], config_file: str | None) -> str:
    lines = []
    for error in exc.errors():
        loc = error["loc"]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        source = sources.get(str(loc[0]), config_file or "settings") if loc else "settings"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"{source}: {path or '(top level)'}: {message}")
    return "\n".join(lines)
