"""From a route and a client request to the request sent to one deployment.

Building the upstream request means: the provider's URL for the path, the
client's headers minus everything hop-by-hop or secret, the provider's
credential in the header its kind expects, and the body with `model`
rewritten only when the deployment's upstream name differs from the alias.
"""

from __future__ import annotations

from weir.proxy.body import replace_model
from weir.proxy.snapshot import Deployment, Provider
from weir.proxy.upstream import UpstreamRequest

# Connection-level headers (RFC 9110, section 7.6.1) and headers that carry the
# client's own credential or that the client library recomputes.
_DROPPED_REQUEST_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
    "proxy-authorization", "proxy-authenticate", "host", "content-length", "authorization", "x-api-key",
    "api-key", "cookie",
})
DROPPED_RESPONSE_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
    "proxy-authenticate", "content-length", "set-cookie",
})
ANTHROPIC_DEFAULT_VERSION = "2023-06-01"


def build_upstream_request(deployment: Deployment, alias: str, method: str, path: str, query: str,
                           client_headers: list[tuple[str, str]], body: bytes) -> UpstreamRequest:
    """Build the request for `deployment` from the client's `path` (which starts with /v1/)."""
    provider = deployment.provider
    if deployment.upstream_model != alias and body:
        body = replace_model(body, deployment.upstream_model)

    headers = [(name, value) for name, value in client_headers if name not in _DROPPED_REQUEST_HEADERS]
    headers.extend(provider.headers)
    headers.extend(_credential_headers(provider, headers))

    return UpstreamRequest(
        method=method, url=_upstream_url(deployment, path, query), headers=headers, body=body,
        connect_timeout=deployment.connect_timeout_seconds, read_timeout=deployment.timeout_seconds,
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
