"""Settings a serve worker needs, handed from `gatewayctl serve` to each worker process.

granian starts workers as fresh processes that import the app by name, so
the settings travel as JSON in one environment variable.
"""

from __future__ import annotations

import os
from typing import Literal

import msgspec

SETTINGS_ENV = "WEIR_SERVE_SETTINGS"


class ServeSettings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str
    key_file: str
    max_body_bytes: int = 32 * 1024 * 1024
    workers: int = 1
    """Worker processes of this serve, among which every rate limit is divided."""
    access_log: bool = True
    log_level: str = "info"
    log_bodies: str = "full"
    log_flush_seconds: float = 1.0
    log_batch_size: int = 500
    log_write_timeout_seconds: float = 5.0
    log_spool_dir: str = ".weir/spool/request_logs"
    log_spool_max_bytes: int = 256 * 1024 * 1024
    log_retention_days: int = 30
    snapshot_reload_seconds: float = 60.0
    upstream_client: Literal["httptools", "aiohttp"] = "httptools"
    snapshot_file: str | None = None
    """File in which workers save the last-known snapshot after each load; None saves nothing."""
    allow_stale_start: bool = False
    """Start from `snapshot_file` when Postgres is unreachable at start-up."""
    upstream_connections: int = 1024
    failures_before_cooldown: int = 3
    cooldown_seconds: float = 30.0
    broken_stream: Literal["close", "sse-error"] = "close"

    def __repr__(self) -> str:
        return f"ServeSettings(max_body_bytes={self.max_body_bytes}, log_bodies={self.log_bodies!r})"

    def to_environment(self) -> dict[str, str]:
        return {SETTINGS_ENV: msgspec.json.encode(self).decode()}

    @classmethod
    def from_environment(cls) -> ServeSettings:
        return msgspec.json.decode(os.environ[SETTINGS_ENV], type=cls)
