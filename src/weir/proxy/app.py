"""The RSGI application: one instance per serve worker.

Each worker builds its upstream client and snapshot in `__rsgi_init__`, before
the first request, and closes them in `__rsgi_del__`. A request walks the
steps named in `_proxy`; every error Weir itself answers with leaves through
`_respond_error`, the one place that turns exceptions into responses.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import msgspec

from weir.crypto import load_credential_box
from weir.errors import UpstreamConnectError, UpstreamError, UpstreamTimeout
from weir.logs import ACCESS_LOGGER, configure_logging
from weir.proxy import errors
from weir.proxy.auth import authenticate, authorize, presented_key
from weir.proxy.body import read_head
from weir.proxy.errors import JSON_CONTENT_TYPE, ProxyError
from weir.proxy.request_log import ResponseCapture, body_logging
from weir.proxy.request_log_writer import RequestLogWriter
from weir.proxy.routing import build_upstream_request
from weir.proxy.settings import ServeSettings
from weir.proxy.snapshot import AuthorizedKey, Deployment, Route, Snapshot, SnapshotKeeper
from weir.proxy.streaming import relay, response_headers
from weir.proxy.upstream import UpstreamClient, UpstreamResponse

logger = logging.getLogger(__name__)
access_logger = logging.getLogger(ACCESS_LOGGER)

_encode = msgspec.json.Encoder().encode


class Gateway:
    """The proxy of one worker process."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.snapshots: SnapshotKeeper | None = None
        self.client: UpstreamClient | None = None
        self.request_log: RequestLogWriter | None = None

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        configure_logging(self.settings.log_level, access_log=self.settings.access_log)
        loop.run_until_complete(self.start())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.stop())

    async def start(self) -> None:
        credential_box = load_credential_box(Path(self.settings.key_file))
        self.snapshots = SnapshotKeeper(self.settings.database_url, credential_box,
                                        self.settings.snapshot_reload_seconds)
        await self.snapshots.start()
        self.client = UpstreamClient(self.settings.upstream_connections)
        self.request_log = RequestLogWriter(self.settings)
        await self.request_log.start()
        logger.debug("Worker %d ready", os.getpid())

    async def stop(self) -> None:
        if self.snapshots is not None:
            await self.snapshots.stop()
        if self.client is not None:
            await self.client.close()
        if self.request_log is not None:
            await self.request_log.stop()

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        started = time.perf_counter()
        request_id = os.urandom(12).hex()
        exchange = Exchange(request_id, self.settings.log_bodies, started)
        try:
            await self._dispatch(scope, protocol, exchange)
        except ProxyError as error:
            self._respond_error(protocol, error, exchange)
        except Exception:
            logger.exception("Unhandled error in request %s", request_id)
            self._respond_error(protocol, errors.internal_error(request_id), exchange)
        if self.settings.access_log:
            _log_access(scope, exchange, started)
        if self.request_log is not None and scope.path.startswith("/v1/"):
            self.request_log.record(exchange, scope)

    async def _dispatch(self, scope: Any, protocol: Any, exchange: Exchange) -> None:
        path, method = scope.path, scope.method
        if path.startswith("/v1/"):
            if method == "POST":
                return await self._proxy(scope, protocol, exchange)
            if method == "GET" and (path == "/v1/models" or path.startswith("/v1/models/")):
                return self._list_models(scope, protocol, exchange)
            raise errors.method_not_allowed(method, path)
        if path in ("/healthz", "/readyz") and method == "GET":
            return self._health(path, protocol, exchange)
        raise errors.not_found_path(path)

    async def _proxy(self, scope: Any, protocol: Any, exchange: Exchange) -> None:
        snapshot = self._snapshot()
        key = self._authenticate(scope, snapshot, exchange)
        body = await _read_body(protocol, scope.headers, self.settings.max_body_bytes)
        exchange.request_body = body
        alias = read_head(body).model
        exchange.alias = alias
        route = authorize(snapshot, key, alias)
        exchange.set_bodies(body_logging(self.settings.log_bodies, key.log_bodies, route.log_bodies))

        response, deployment = await self._forward(route, scope, body, exchange)
        exchange.status = response.status
        exchange.deployment = deployment.label
        exchange.provider = deployment.provider.name
        headers = response_headers(response, exchange.headers())
        try:
            exchange.completed = await relay(protocol, response, headers, exchange.capture)
        except UpstreamTimeout:
            raise errors.upstream_timeout(alias) from None
        except UpstreamError:
            raise errors.upstream_unreachable(alias) from None
        finally:
            exchange.upstream_finished = time.perf_counter()

    def _authenticate(self, scope: Any, snapshot: Snapshot, exchange: Exchange) -> AuthorizedKey:
        headers = scope.headers
        key = authenticate(snapshot, presented_key(headers.get("authorization"), headers.get("x-api-key")))
        exchange.key_prefix = key.prefix
        exchange.key = key
        return key

    async def _forward(self, route: Route, scope: Any, body: bytes,
                       exchange: Exchange) -> tuple[UpstreamResponse, Deployment]:
        """Send the request to the route's deployments in turn until one gives a final answer.

        A connect error, a timeout before the first byte, or a status in the
        route's `retry_on` moves on to the next deployment while attempts
        remain. The last deployment's answer is returned whatever its status.
        """
        attempts = route.attempt_order()[:route.max_attempts]
        if not attempts:
            raise errors.no_deployment(route.alias)
        client_headers = scope.headers.items()
        failure: ProxyError | None = None
        exchange.upstream_started = time.perf_counter()

        for number, deployment in enumerate(attempts, start=1):
            exchange.attempts = number
            request = build_upstream_request(deployment, route.alias, "POST", scope.path, scope.query_string,
                                             client_headers, body)
            try:
                response = await self.client.send(request)  # type: ignore[union-attr]
            except UpstreamConnectError:
                failure = errors.upstream_unreachable(route.alias)
            except UpstreamTimeout:
                failure = errors.upstream_timeout(route.alias)
            else:
                if response.status not in route.retry_on or number == len(attempts):
                    exchange.headers_at = time.perf_counter()
                    return response, deployment
                response.close()
                failure = None
            logger.warning("Attempt %d of %d for alias %s on %s failed", number, len(attempts),
                           route.alias, deployment.label)

        raise failure or errors.upstream_unreachable(route.alias)

    def _list_models(self, scope: Any, protocol: Any, exchange: Exchange) -> None:
        snapshot = self._snapshot()
        key = self._authenticate(scope, snapshot, exchange)
        created = int(snapshot.loaded_at)
        visible = sorted(alias for alias in key.aliases if alias in snapshot.routes)

        if scope.path == "/v1/models":
            document: dict[str, Any] = {"object": "list", "data": [_model_entry(a, created) for a in visible]}
        else:
            alias = scope.path[len("/v1/models/"):]
            if alias not in visible:
                raise errors.model_not_found(alias)
            document = _model_entry(alias, created)
        exchange.status = 200
        protocol.response_bytes(200, [JSON_CONTENT_TYPE, *exchange.headers()], _encode(document))

    def _health(self, path: str, protocol: Any, exchange: Exchange) -> None:
        keeper = self.snapshots
        ready = keeper is not None and keeper.current is not None
        if path == "/healthz":
            document = {"status": "ok"}
            exchange.status = 200
        else:
            database = "up" if keeper is not None and keeper.database_available else "down"
            document = {"status": "ready" if ready else "starting", "database": database}
            exchange.status = 200 if ready else 503
        protocol.response_bytes(exchange.status, [JSON_CONTENT_TYPE], _encode(document))

    def _snapshot(self) -> Snapshot:
        snapshot = self.snapshots.current if self.snapshots is not None else None
        if snapshot is None:
            raise errors.not_ready()
        return snapshot

    def _respond_error(self, protocol: Any, error: ProxyError, exchange: Exchange) -> None:
        exchange.status = error.status
        exchange.error = error.code
        body = error.body()
        try:
            protocol.response_bytes(error.status, [JSON_CONTENT_TYPE, *exchange.headers()], body)
            if exchange.capture is not None:
                exchange.capture.chunks.append(body)
        except RuntimeError:
            # A response was already started (a stream that broke midway):
            # the client sees the connection end without a final chunk.
            logger.warning("Request %s failed after its response started: %s", exchange.request_id, error.code)


class Exchange:
    """The facts of one request, gathered for the access log and the request log.

    Times are `time.perf_counter()` seconds, except `created_at` (the wall
    clock, seconds since the epoch); zero means the step did not happen.
    """

    __slots__ = ("request_id", "alias", "key_prefix", "deployment", "status", "error", "completed", "key",
                 "provider", "bodies", "capture", "request_body", "attempts", "created_at", "started",
                 "upstream_started", "headers_at", "upstream_finished")

    def __init__(self, request_id: str, bodies: str, started: float) -> None:
        self.request_id = request_id
        self.alias: str | None = None
        self.key_prefix: str | None = None
        self.deployment: str | None = None
        self.status = 0
        self.error: str | None = None
        self.completed = False
        self.key: AuthorizedKey | None = None
        self.provider: str | None = None
        self.bodies = ""
        self.capture: ResponseCapture | None = None
        self.set_bodies(bodies)
        self.request_body: bytes | None = None
        self.attempts = 0
        self.created_at = time.time()
        self.started = started
        self.upstream_started = self.headers_at = self.upstream_finished = 0.0

    def set_bodies(self, bodies: str) -> None:
        """Set the body logging of this request; the response is captured unless it is `none`."""
        self.bodies = bodies
        if bodies == "none":
            self.capture = None
        elif self.capture is None:
            self.capture = ResponseCapture()

    def headers(self) -> list[tuple[str, str]]:
        headers = [("x-request-id", self.request_id)]
        if self.deployment is not None:
            headers.append(("x-weir-deployment", self.deployment))
        return headers


async def _read_body(protocol: Any, headers: Any, limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            raise errors.body_too_large(limit)
        return bytes(await protocol())

    # No declared length (chunked upload): read up to the limit and stop there.
    parts: list[bytes] = []
    size = 0
    async for chunk in protocol:
        size += len(chunk)
        if size > limit:
            raise errors.body_too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def _model_entry(alias: str, created: int) -> dict[str, Any]:
    return {"id": alias, "object": "model", "created": created, "owned_by": "weir"}


def _log_access(scope: Any, exchange: Exchange, started: float) -> None:
    access_logger.info(
        "%s %s %s %d alias=%s key=%s deployment=%s %.1fms", exchange.request_id, scope.method, scope.path,
        exchange.status, exchange.alias or "-", exchange.key_prefix or "-", exchange.deployment or "-",
        (time.perf_counter() - started) * 1000,
    )


def create_app() -> Gateway:
    """Build the app of one worker; granian calls this in each worker process."""
    return Gateway(ServeSettings.from_environment())
