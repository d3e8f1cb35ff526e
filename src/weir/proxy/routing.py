"""From a route and a client request to the request sent to one deployment.

The upstream request has the provider's URL for the path and the client's
headers minus everything hop-by-hop or secret. It adds the provider's
credential in the header its kind expects. Its body has `model` rewritten
only when the deployment's upstream name differs from the alias.

A compressed body is forwarded compressed, as received. When `model` must be
rewritten in it, the gateway sends the decoded body with the rewrite and
drops Content-Encoding: recompressing would cost CPU on every such request
to save bandwidth on a short local hop. The upstream client sets
Content-Length from the bytes actually sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from weir.proxy.body import replace_model
from weir.proxy.snapshot import Deployment, Provider
from weir.proxy.upstream import UpstreamRequest

# Connection-level headers (RFC 9110, section 7.6.1) and headers that carry the
# client's own credential or that the client library recomputes. Expect is
# dropped too: the gateway has read the whole body before it sends anything.
_DROPPED_REQUEST_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
    "proxy-authorization", "proxy-authenticate", "host", "content-length", "authorization", "x-api-key",
    "api-key", "cookie", "expect",
})
DROPPED_RESPONSE_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
    "proxy-authenticate", "content-length", "set-cookie",
})
ANTHROPIC_DEFAULT_VERSION = "2023-06-01"


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """The parts of a client's request that every attempt reuses."""

    method: str
    path: str
    """Starts with /v1/."""
    query: str
    headers: list[tuple[str, str]]
    """The client's headers that may go upstream (see `forwardable_headers`)."""
    body: bytes
    """As received, compressed or not."""
    decoded_body: bytes
    """`body` with its Content-Encoding undone; the same object when it had none."""


def forwardable_headers(client_headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return the client's headers minus hop-by-hop ones, those its Connection header names, and credentials."""
    dropped = _DROPPED_REQUEST_HEADERS
    for name, value in client_headers:
        if name == "connection":
            dropped = dropped.union(token.strip().lower() for token in value.split(","))
    return [(name, value) for name, value in client_headers if name not in dropped]


def build_upstream_request(deployment: Deployment, alias: str, request: ClientRequest) -> UpstreamRequest:
    """Build the request for `deployment` from the client's request."""
    provider = deployment.provider
    body, headers = request.body, request.headers
    if deployment.upstream_model != alias and body:
        body = replace_model(request.decoded_body, deployment.upstream_model)
        if request.decoded_body is not request.body:
            headers = [(name, value) for name, value in headers if name != "content-encoding"]

    headers = [*headers, *provider.headers]
    headers.extend(_credential_headers(provider, headers))

    return UpstreamRequest(
        method=request.method, url=_upstream_url(deployment, request.path, request.query), headers=headers,
        body=body,
        connect_timeout=deployment.connect_timeout_seconds, read_timeout=deployment.timeout_seconds,
        idle_timeout=deployment.idle_timeout_seconds,
    )


def _upstream_url(deployment: Deployment, path: str, query: str) -> str:
    provider = deployment.provider
    suffix = path[3:]  # drop "/v1": the provider's base URL carries its own version prefix
    if provider.kind == "azure":
        version = f"api-version={provider.api_version or ''}"
        query = f"{query}&{version}" if query else version
        return f"{provider.base_url}/openai/deployments/{deployment.upstream_model}{suffix}?{query}"
    return f"{provider.base_url}{suffix}?{query}" if query else f"{provider.base_url}{suffix}"


def _credential_headers(provider: Provider, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    credential = provider.credential
    if provider.kind == "anthropic":
        added = [] if credential is None else [("x-api-key", credential)]
        if not any(name == "anthropic-version" for name, _ in headers):
            added.append(("anthropic-version", provider.api_version or ANTHROPIC_DEFAULT_VERSION))
        return added
    if credential is None:
        return []
    if provider.kind == "azure":
        return [("api-key", credential)]
    return [("authorization", f"Bearer {credential}")]
