"""The RSGI application: one instance per serve worker.

Each worker builds its upstream client and snapshot in `__rsgi_init__`, before
the first request, and closes them in `__rsgi_del__`. A request walks the
steps named in `_proxy`. Every error response that Weir itself produces goes
through `_respond_error`, the one place that turns exceptions into responses.
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
from weir.errors import UpstreamError, UpstreamTimeout
from weir.logs import ACCESS_LOGGER, configure_logging
from weir.proxy import errors
from weir.proxy.auth import authenticate, authorize, presented_key
from weir.proxy.attempts import Attempt, forward
from weir.proxy.balancer import Balancer
from weir.proxy.body import read_head
from weir.proxy.cancellation import run_until_disconnect
from weir.proxy.encoding import decode_body
from weir.proxy.errors import JSON_CONTENT_TYPE, ProxyError
from weir.proxy.limits import RateLimiter, Subject
from weir.proxy.request_log import ResponseCapture, body_logging
from weir.proxy.request_log_writer import RequestLogWriter
from weir.proxy.routing import ClientRequest, build_upstream_request, forwardable_headers
from weir.proxy.settings import ServeSettings
from weir.proxy.snapshot import AuthorizedKey, Deployment, Route, Snapshot, SnapshotKeeper, freeze_startup_objects
from weir.proxy.snapshot_store import SnapshotStore
from weir.proxy.streaming import CLIENT_GONE, COMPLETED, BrokenStreamEnding, relay, response_headers
from weir.proxy.upstream import UpstreamClient, UpstreamResponse, create_upstream_client

logger = logging.getLogger(__name__)
access_logger = logging.getLogger(ACCESS_LOGGER)

_encode = msgspec.json.Encoder().encode
CLIENT_CLOSED_REQUEST = 499  # status recorded, never sent, when the client left before any response (as nginx logs it)


class Gateway:
    """The proxy of one worker process."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.snapshots: SnapshotKeeper | None = None
        self.client: UpstreamClient | None = None
        self.balancer = Balancer(settings.failures_before_cooldown, settings.cooldown_seconds)
        self.broken_stream = BrokenStreamEnding(settings.broken_stream)
        self.limiter = RateLimiter(share=settings.workers)
        self.request_log: RequestLogWriter | None = None

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        configure_logging(self.settings.log_level, access_log=self.settings.access_log)
        loop.run_until_complete(self.start())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.stop())

    async def start(self) -> None:
        settings = self.settings
        credential_box = load_credential_box(Path(settings.key_file))
        store = SnapshotStore(Path(settings.snapshot_file)) if settings.snapshot_file else None
        self.snapshots = SnapshotKeeper(settings.database_url, credential_box, settings.snapshot_reload_seconds,
                                        store)
        await self.snapshots.start(allow_stale=settings.allow_stale_start)
        self.client = create_upstream_client(settings.upstream_client, settings.upstream_connections)
        self.request_log = RequestLogWriter(settings, token_counter=self.limiter.add_tokens)
        await self.request_log.start()
        freeze_startup_objects()
        logger.debug("Worker %d ready", os.getpid())

    async def stop(self) -> None:
        if self.snapshots is not None:
            await self.snapshots.stop()
        if self.client is not None:
            await self.client.close()
        if self.request_log is not None:
            await self.request_log.stop()
        logger.info("Worker %d stopped", os.getpid())

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
        request = await self._read_request(scope, protocol)
        exchange.request_body = request.decoded_body
        alias = read_head(request.decoded_body).model
        exchange.alias = alias
        route = authorize(snapshot, key, alias)
        exchange.set_bodies(body_logging(self.settings.log_bodies, key.log_bodies, route.log_bodies))
        if key.limits or route.limits:
            self._admit(exchange, key.limits + route.limits)

        plan = self.balancer.plan(route, snapshot.routes)
        if not plan:
            if not route.deployments:
                raise errors.no_deployment(alias)
            raise errors.deployments_cooling_off(alias, self.balancer.seconds_until_available(route))
        work = self._forward(scope, protocol, exchange, route, plan, request)
        if await run_until_disconnect(protocol, work):
            exchange.cancelled = True
            exchange.error = "client_disconnected"
            exchange.status = exchange.status or CLIENT_CLOSED_REQUEST
            logger.debug("Request %s: the client disconnected, so its upstream request was cancelled",
                         exchange.request_id)

    def _admit(self, exchange: Exchange, subjects: tuple[Subject, ...]) -> None:
        refusal = self.limiter.admit(subjects, time.monotonic())
        if refusal is not None:
            raise errors.rate_limited(refusal)
        exchange.limits = subjects  # the request log writer adds the tokens used once it has read them
        if exchange.capture is None and any(limits.tokens_per_minute for _, _, limits in subjects):
            exchange.capture = ResponseCapture()  # even with body logging off, the usage must be read

    def _authenticate(self, scope: Any, snapshot: Snapshot, exchange: Exchange) -> AuthorizedKey:
        headers = scope.headers
        key = authenticate(snapshot, presented_key(headers.get("authorization"), headers.get("x-api-key")))
        exchange.key_prefix = key.prefix
        exchange.key = key
        return key

    async def _read_request(self, scope: Any, protocol: Any) -> ClientRequest:
        limit = self.settings.max_body_bytes
        body = await _read_body(protocol, scope.headers, limit)
        encoding = scope.headers.get("content-encoding")
        decoded = decode_body(body, encoding, limit) if encoding else body
        return ClientRequest(method="POST", path=scope.path, query=scope.query_string,
                             headers=forwardable_headers(scope.headers.items()), body=body, decoded_body=decoded)

    async def _forward(self, scope: Any, protocol: Any, exchange: Exchange, route: Route, plan: list[Deployment],
                       request: ClientRequest) -> None:
        """Send the request along `plan` (see `weir.proxy.attempts`), then relay the response."""
        alias = route.alias
        client = self.client

        async def send(deployment: Deployment) -> UpstreamResponse:
            return await client.send(build_upstream_request(deployment, alias, request))  # type: ignore[union-attr]

        exchange.upstream_started = time.perf_counter()
        response, deployment = await forward(self.balancer, route, plan, send, exchange.attempts)
        exchange.headers_at = time.perf_counter()
        exchange.status = response.status
        exchange.deployment = deployment.label
        exchange.provider = deployment.provider.name
        served = exchange.attempts[-1]
        succeeded: bool | None = False
        try:
            ending = await relay(scope, protocol, response, response_headers(response, exchange.headers()),
                                 self.broken_stream, alias, exchange.capture)
        except UpstreamTimeout:
            served.end("timeout")
            raise errors.upstream_timeout(alias) from None
        except UpstreamError:
            served.end("broken")
            raise errors.upstream_unreachable(alias) from None
        except asyncio.CancelledError:
            served.end("cancelled")
            succeeded = None
            raise
        else:
            exchange.completed = ending == COMPLETED
            exchange.cancelled = ending == CLIENT_GONE
            if exchange.completed:
                served.end("answered")
            elif exchange.cancelled:
                served.end("cancelled")
            else:
                served.end(ending)
            succeeded = None if exchange.cancelled else exchange.completed and response.status not in route.retry_on
        finally:
            exchange.upstream_finished = time.perf_counter()
            self.balancer.finished(deployment, succeeded)

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
            protocol.response_bytes(error.status, [JSON_CONTENT_TYPE, *exchange.headers(), *error.headers], body)
            if exchange.capture is not None:
                exchange.capture.keep(body)
        except RuntimeError:
            # A response was already started (a stream that broke midway):
            # the client sees the connection end without a final chunk.
            logger.warning("Request %s failed after its response started: %s", exchange.request_id, error.code)


class Exchange:
    """The facts of one request, gathered for the access log and the request log.

    Times are `time.perf_counter()` seconds, except `created_at` (the wall
    clock, seconds since the epoch); zero means the step did not happen.
    """

    __slots__ = ("request_id", "alias", "key_prefix", "deployment", "status", "error", "completed", "cancelled",
                 "attempts", "key", "provider", "bodies", "capture", "request_body", "created_at", "started",
                 "upstream_started", "headers_at", "upstream_finished", "limits")

    def __init__(self, request_id: str, bodies: str, started: float) -> None:
        self.request_id = request_id
        self.alias: str | None = None
        self.key_prefix: str | None = None
        self.deployment: str | None = None
        """The deployment that served the response (the last attempt's)."""
        self.status = 0
        self.error: str | None = None
        self.completed = False
        """True once the whole response reached the client."""
        self.cancelled = False
        """True when the client disconnected before the response was complete."""
        self.attempts: list[Attempt] = []
        """Every deployment tried, in order; when a response was relayed, the last one served it."""
        self.key: AuthorizedKey | None = None
        self.provider: str | None = None
        self.bodies = ""
        self.capture: ResponseCapture | None = None
        self.set_bodies(bodies)
        self.request_body: bytes | None = None
        self.created_at = time.time()
        self.started = started
        self.upstream_started = self.headers_at = self.upstream_finished = 0.0
        self.limits: tuple[Subject, ...] = ()
        """The limited subjects this request counted against."""

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
        "%s %s %s %d alias=%s key=%s deployment=%s %.1fms%s", exchange.request_id, scope.method, scope.path,
        exchange.status, exchange.alias or "-", exchange.key_prefix or "-", exchange.deployment or "-",
        (time.perf_counter() - started) * 1000, _attempts_field(exchange),
    )


def _attempts_field(exchange: Exchange) -> str:
    # Only requests that were retried, broke or were cancelled pay for this text.
    attempts = exchange.attempts
    if not attempts or (len(attempts) == 1 and attempts[0].outcome == "answered"):
        return ""
    return " attempts=" + ",".join(f"{a.deployment}={a.outcome}/{a.status or '-'}" for a in attempts)


def create_app() -> Gateway:
    """Build the app of one worker; granian calls this in each worker process."""
    return Gateway(ServeSettings.from_environment())
