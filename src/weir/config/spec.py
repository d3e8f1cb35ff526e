"""The shape of `gateway.toml`, declared once as msgspec Structs.

Each `FooSpec` is what the file declares; the storage layer has `FooRow`
for what Postgres holds, and the proxy builds runtime objects from those.
Field docs here are the reference for the file format.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

BodyLogging = Literal["full", "metadata", "none"]
Role = Literal["admin", "auditor", "member"]
ProviderKind = Literal["openai", "openai-compatible", "anthropic", "azure"]
Strategy = Literal["weighted", "least-busy"]

PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


class _Spec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerSpec(_Spec, frozen=True):
    listen: str = "127.0.0.1:8080"
    """Address and port the proxy listens on, as HOST:PORT."""
    workers: PositiveInt = 1
    """Worker processes; one per core is a good start."""
    max_body_bytes: PositiveInt = 32 * 1024 * 1024
    """Largest request body accepted, in bytes; larger ones get 413."""
    access_log: bool = True
    """Write one line per proxied request on the `weir.access` logger."""
    snapshot_reload_seconds: PositiveFloat = 60.0
    """Full reload of the in-memory snapshot as a safety net beside change notifications, in seconds."""
    upstream_client: Literal["httptools", "aiohttp"] = "httptools"
    """HTTP client for upstream calls: Weir's own keep-alive pool on httptools, or aiohttp."""
    drain_seconds: PositiveFloat = 30.0
    """On SIGTERM, how long in-flight requests and streams may take to finish before workers are killed, in seconds."""


class DatabaseSpec(_Spec, frozen=True):
    url: str | None = None
    """libpq URL, or `env:NAME`; omitted: the embedded Postgres in the data directory."""


class LoggingSpec(_Spec, frozen=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    """Level of Weir's own log lines on stderr."""
    bodies: BodyLogging = "full"
    """What request logs keep: `full` (bodies too), `metadata` (no bodies, token usage kept) or `none`
    (no record at all). An alias's or a key's `log_bodies` replaces this; with both set, the stricter wins."""
    retention_days: PositiveInt = 30
    """Days of request logs to keep, today included; older daily partitions are dropped hourly."""
    flush_interval_seconds: PositiveFloat = 1.0
    """Maximum seconds a request log waits in memory before the writer sends its batch to Postgres."""
    batch_size: PositiveInt = 500
    """Request logs per write; a full batch is written without waiting for the interval."""
    write_timeout_seconds: PositiveFloat = 5.0
    """Time allowed for one batch write; past it the batch is spooled and Postgres retried later."""
    spool_max_bytes: PositiveInt = 256 * 1024 * 1024
    """Cap on the spool in the data directory (`spool/request_logs`), in bytes; past it records are dropped."""


class LimitsSpec(_Spec, frozen=True):
    requests_per_minute: PositiveInt | None = None
    tokens_per_minute: PositiveInt | None = None


class ProviderSpec(_Spec, frozen=True):
    name: str
    kind: ProviderKind
    base_url: str
    """For `azure`, the resource URL (https://NAME.openai.azure.com)."""
    credential: str | None = None
    """`env:NAME` or `file:PATH`; never the secret itself. Optional for `openai-compatible`."""
    headers: dict[str, str] = {}
    """Extra headers sent with every upstream request (not secret: stored in clear)."""
    api_version: str | None = None
    """Azure's `api-version`, or Anthropic's `anthropic-version`."""
    enabled: bool = True


class DeploymentSpec(_Spec, frozen=True):
    provider: str
    model: str
    """The model name the provider expects (for `azure`, the deployment name)."""
    weight: Annotated[int, msgspec.Meta(ge=0)] = 1
    timeout: PositiveFloat = 600.0
    """Seconds to wait for the first response byte, and between stream chunks unless `idle_timeout` is set."""
    connect_timeout: PositiveFloat = 10.0
    """Seconds to wait for the upstream to accept the TCP connection."""
    idle_timeout: PositiveFloat | None = None
    """Maximum pause between stream chunks, in seconds. No limit applies to a stream's total duration."""


class ModelSpec(_Spec, frozen=True):
    alias: str
    deployments: list[DeploymentSpec]
    strategy: Strategy = "weighted"
    fallbacks: list[str] = []
    max_attempts: PositiveInt = 3
    retry_on: list[int] = msgspec.field(default_factory=lambda: [429, 500, 502, 503, 504])
    """Upstream statuses that move a request to the next deployment while attempts remain."""
    log_bodies: BodyLogging | None = None
    limits: LimitsSpec | None = None


class GroupSpec(_Spec, frozen=True):
    name: str
    aliases: list[str] = []


class UserSpec(_Spec, frozen=True):
    name: str
    role: Role = "member"
    groups: list[str] = []
    limits: LimitsSpec | None = None


class RoutingSpec(_Spec, frozen=True):
    failures_before_cooldown: PositiveInt = 3
    """Consecutive failed attempts after which a deployment is taken out of rotation."""
    cooldown_seconds: PositiveFloat = 30.0
    """Seconds a failing deployment stays out before one request tries it again."""
    broken_stream: Literal["close", "sse-error"] = "close"
    """Ending of a stream that the upstream breaks midway. `close` drops the client connection without
    the final chunk. `sse-error` ends an event stream with an SSE `error` event and no `[DONE]`."""


class GatewaySpec(_Spec, frozen=True):
    server: ServerSpec = ServerSpec()
    routing: RoutingSpec = RoutingSpec()
    database: DatabaseSpec = DatabaseSpec()
    logging: LoggingSpec = LoggingSpec()
    providers: list[ProviderSpec] = []
    models: list[ModelSpec] = []
    groups: list[GroupSpec] = []
    users: list[UserSpec] = []
