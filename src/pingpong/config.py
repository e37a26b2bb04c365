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
from typing import Annotated, Any, Literal, NamedTuple
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
from pydantic_core import ErrorDetails

from pingpong.core.algorithms import Algorithm, Limit
from pingpong.core.policy import (
    CLIENT_IP,
    GLOBAL,
    HEADER_PREFIX,
    NAME,
    THROTTLED_PATH,
    Policy,
    Tier,
)
from pingpong.core.rates import MAX_COUNT, Rate, parse_rate
from pingpong.core.storage.base import FailureMode
from pingpong.core.storage.registry import check_url

HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def _rate(value: Any) -> Rate:
    return value if isinstance(value, Rate) else parse_rate(value)


def _name(value: str) -> str:
    if not NAME.match(value):
        raise ValueError("use letters, digits, '_', '.', '-' (at most 64)")
    return value


def _network(value: Any) -> IPv4Network | IPv6Network:
    """A CIDR; IPv4-mapped IPv6 ones (``::ffff:10.0.0.0/104``) become IPv4, as
    client addresses do, so that they can match."""
    network = value if isinstance(value, IPv4Network | IPv6Network) else None
    network = network or ip_network(str(value).strip(), strict=False)
    if isinstance(network, IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ip_network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return network


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
        """Only /ping is throttled: a policy that could never apply is an error."""
        prefix = value[:-1] if value.endswith("*") else None
        if value != THROTTLED_PATH and (prefix is None or not THROTTLED_PATH.startswith(prefix)):
            raise ValueError(
                f"only {THROTTLED_PATH} is rate-limited, so a policy on {value!r} would "
                f"never apply; use {THROTTLED_PATH} (or a prefix of it ending in *)"
            )
        return value


class PolicyConfig(BaseModel):
    model_config = Strict
    name: Name
    match: Match = Match()
    key: str = CLIENT_IP
    rate: RateField | None = None
    burst: int | None = Field(None, ge=1, le=MAX_COUNT)
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
    burst: int | None = Field(None, ge=1, le=MAX_COUNT)
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
    # Each description is the flag's --help text.
    host: str = Field("127.0.0.1", description="listen address (:: for IPv6 and IPv4)")
    port: int = Field(8080, ge=0, le=65535, description="listen port")
    workers: int = Field(1, ge=1, le=64, description="worker processes (needs redis storage)")
    storage: str = Field("memory://", description="memory:// or redis[s|+sentinel|+cluster]://")
    storage_timeout: float = Field(
        0.05, gt=0, le=5, description="seconds a decision may wait for Redis"
    )
    storage_connections: int = Field(
        16,
        ge=1,
        le=1024,
        description="connections to each Redis node opened and verified before serving: "
        "the decision batches a burst keeps in flight at once",
    )
    on_storage_error: FailureMode = Field(
        FailureMode.LOCAL, description="allow | deny | local, while the storage fails"
    )
    circuit_failures: int = Field(
        5, ge=1, le=10_000, description="consecutive storage failures that open the breaker"
    )
    circuit_reset: float = Field(
        2.0, gt=0, le=3600, description="seconds before the breaker lets a probe through"
    )
    memory_max_keys: int = Field(
        1_000_000, ge=1000, le=10**9, description="bound of the in-memory table"
    )
    fleet_min_replicas: int = Field(
        1,
        ge=1,
        le=10_000,
        description="the fewest replicas an outage divides each limit by (local mode); "
        "the autoscaler's maximum covers replicas that start during an outage",
    )
    limit: RateField = Field(Rate(100, 60), description="default rate, e.g. 100/minute or 5/10s")
    burst: int | None = Field(None, ge=1, le=MAX_COUNT, description="GCRA burst (default: N)")
    algorithm: Algorithm = Field(Algorithm.GCRA, description="gcra | sliding-window | fixed-window")
    trusted_proxies: tuple[NetworkField, ...] = Field(
        (), description="CIDR whose forwarding header is believed (repeatable)"
    )
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = Field(
        "x-forwarded-for", description="x-forwarded-for | forwarded (RFC 7239)"
    )
    ipv6_prefix: int = Field(64, ge=1, le=128, description="IPv6 clients grouped by this prefix")
    drain_seconds: float = Field(
        5.0, ge=0, le=600, description="seconds /readyz answers 503 after SIGTERM"
    )
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve /metrics and /version on this port only"
    )
    admin_port: int | None = Field(
        None, ge=0, le=65535, description="serve the admin API on this port (off by default)"
    )
    admin_host: str | None = Field(
        None, description="the admin API's listen address (default: host)"
    )
    watch_config: bool = Field(True, description="reload when the --config file changes")
    max_in_flight: int = Field(
        256,
        ge=1,
        le=100_000,
        description="/ping requests answered at once; beyond, 503 + Retry-After at once "
        "(default: the 0.1 s latency SLO x ~2,500 decisions a second one replica makes on Redis)",
    )
    max_loop_lag: float = Field(
        0.05,
        gt=0,
        le=10,
        description="seconds the event loop may lag before /ping is answered 503 + Retry-After "
        "at once (the queue before the app: half the 0.1 s latency SLO)",
    )
    log_format: Literal["json", "text"] = Field("json", description="json | text")
    access_log: float = Field(
        0.0, ge=0, le=1, description="share of requests logged (5xx always are, bounded)"
    )
    # Drills only (docs/bluegreen.md): make /ping fail or slow down on purpose.
    fault_error_rate: float = Field(
        0.0, ge=0, le=1, description="drills only: share of /ping answered 500"
    )
    fault_delay: float = Field(
        0.0, ge=0, le=30, description="drills only: seconds added to every /ping"
    )
    policies: tuple[PolicyConfig, ...] = ()
    api_keys: ApiKeys = ApiKeys()

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        check_url(value)
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
        if self.metrics_port is not None and self.metrics_port == self.port != 0:
            raise ValueError(f"metrics_port {self.metrics_port} is the main port; use another")
        if self.admin_port and self.admin_port in (self.port, self.metrics_port):
            raise ValueError(
                f"admin_port {self.admin_port} is the main or the metrics port; "
                "the admin API needs its own"
            )
        self._check_limits()
        return self

    def _check_limits(self) -> None:
        """A limit whose arithmetic would leave exact integers is refused here,
        naming the setting it came from."""
        configs = [
            (f"policies[{i}]", c.rate, c.burst, c.algorithm) for i, c in enumerate(self.policies)
        ]
        configs += [
            (f"api_keys.tiers[{i}]", t.rate, t.burst, t.algorithm)
            for i, t in enumerate(self.api_keys.tiers)
        ]
        if not self.policies:
            configs.append(("limit/burst", None, None, None))
        for where, rate, burst, algorithm in configs:
            try:
                self._limit(rate, burst, algorithm)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None

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


# What a reload cannot change (the listeners, the processes, the storage itself).
RESTART_ONLY = (
    "storage", "storage_connections", "host", "port", "workers", "metrics_port", "admin_port",
    "admin_host",
)  # fmt: skip


class ConfigError(Exception):
    """A config problem, already worded for the operator."""


ENV_PREFIX = "PINGPONG_"
# Every top-level setting but the structured ones has a flag and a variable,
# both named from the flag: --trusted-proxy, PINGPONG_TRUSTED_PROXY.
FLAGS = {
    name: "--" + {"trusted_proxies": "trusted-proxy"}.get(name, name.replace("_", "-"))
    for name in Settings.model_fields
    if name not in ("policies", "api_keys")
}
ENV_NAMES = {name: ENV_PREFIX + flag[2:].upper().replace("-", "_") for name, flag in FLAGS.items()}


class Build(NamedTuple):
    """What is running, as the deployment says (PINGPONG_COMMIT, PINGPONG_SLOT):
    /version and pingpong_build_info show it. Not a setting: no flag, no reload."""

    commit: str = "unknown"
    slot: str = ""


def build_from(env: Mapping[str, str]) -> Build:
    return Build(env.get(ENV_PREFIX + "COMMIT", "unknown"), env.get(ENV_PREFIX + "SLOT", ""))


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
    for name, variable in ENV_NAMES.items():
        value = env.get(variable)
        if value not in (None, ""):
            data[name], sources[name] = value, variable
    for name, value in (flags or {}).items():
        if value is not None:
            data[name], sources[name] = value, FLAGS[name]
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
    if data is None or data == {}:
        # A file caught mid-write (``cat > file``) reads empty: never "all defaults".
        raise ConfigError(
            f"{path}: the config file is empty; it needs at least one setting "
            "(without --config every setting has its default)"
        )
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


def error_message(error: ErrorDetails) -> str:
    """pydantic's message, without the prefix it gives our validators' ValueErrors."""
    return error["msg"].removeprefix("Value error, ")


def _describe(exc: ValidationError, sources: Mapping[str, str], config_file: str | None) -> str:
    lines = []
    for error in exc.errors():
        loc = error["loc"]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        source = sources.get(str(loc[0]), config_file or "settings") if loc else "settings"
        message = "unknown setting" if error["type"] == "extra_forbidden" else error_message(error)
        lines.append(f"{source}: {path or '(top level)'}: {message}")
    return "\n".join(lines)
