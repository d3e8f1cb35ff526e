"""Error responses the proxy itself produces, in OpenAI's shape.

Every error that Weir (not the upstream) produces leaves through
`ProxyError.body()`: `{"error": {"message", "type", "code", "param"}}`. An
upstream's own error responses are relayed unchanged and never pass here.
Messages never carry a key, a credential or any part of a prompt.
"""

from __future__ import annotations

import msgspec

from weir.proxy.limits import Refusal

JSON_CONTENT_TYPE = ("content-type", "application/json")


class _ErrorDetail(msgspec.Struct):
    message: str
    type: str
    code: str | None
    param: str | None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorDetail


_encode = msgspec.json.Encoder().encode


class ProxyError(Exception):
    """An error response produced by Weir: status, OpenAI error type and code, safe message."""

    def __init__(self, status: int, message: str, *, type: str, code: str | None = None,
                 param: str | None = None, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers

    def body(self) -> bytes:
        return _encode(_ErrorEnvelope(_ErrorDetail(self.message, self.type, self.code, self.param)))


def missing_key() -> ProxyError:
    return ProxyError(
        401,
        "No virtual key was sent. Send it as `Authorization: Bearer <key>` "
        "(the OpenAI SDKs do this when given api_key).",
        type="invalid_request_error", code="missing_api_key",
    )


def invalid_key() -> ProxyError:
    return ProxyError(
        401,
        "The virtual key is not valid: it is unknown, revoked or expired. Ask your Weir admin for a key.",
        type="invalid_request_error", code="invalid_api_key",
    )


def invalid_body(problem: str, param: str | None = None) -> ProxyError:
    return ProxyError(400, problem, type="invalid_request_error", code="invalid_body", param=param)


def model_not_found(alias: str) -> ProxyError:
    # The same words for an unknown alias and for one this key may not use,
    # so that a key cannot probe which aliases exist.
    return ProxyError(
        404,
        f"The model {alias!r} does not exist or you do not have access to it. "
        "List the models this key may use with GET /v1/models.",
        type="invalid_request_error", code="model_not_found", param="model",
    )


def body_too_large(limit: int) -> ProxyError:
    return ProxyError(
        413, f"The request body is larger than this gateway's limit of {limit} bytes.",
        type="invalid_request_error", code="request_too_large",
    )


def not_found_path(path: str) -> ProxyError:
    return ProxyError(
        404, f"No route for {path}. Weir serves the OpenAI-compatible API under /v1/.",
        type="invalid_request_error", code="unknown_url",
    )


def method_not_allowed(method: str, path: str) -> ProxyError:
    return ProxyError(405, f"{method} is not allowed on {path}.", type="invalid_request_error",
                      code="method_not_allowed")


def upstream_unreachable(alias: str) -> ProxyError:
    return ProxyError(
        502, f"The upstream for model {alias!r} could not be reached. Try again later, "
        "or ask your Weir admin to check the provider.",
        type="upstream_error", code="upstream_unreachable",
    )


def upstream_timeout(alias: str) -> ProxyError:
    return ProxyError(
        504, f"The upstream for model {alias!r} did not respond in time. Try again later.",
        type="upstream_error", code="upstream_timeout",
    )


def no_deployment(alias: str) -> ProxyError:
    return ProxyError(
        503, f"Model {alias!r} has no deployment available right now. Ask your Weir admin to check its providers.",
        type="upstream_error", code="no_deployment_available",
    )


def upstream_stream_broken(alias: str) -> ProxyError:
    return ProxyError(
        502, f"The upstream for model {alias!r} stopped in the middle of its response, which is incomplete. "
        "Retry the request.", type="upstream_error", code="upstream_stream_broken",
    )


def rate_limited(refusal: Refusal) -> ProxyError:
    return ProxyError(
        429, f"This {refusal.subject} is over its limit of {refusal.limit} {refusal.resource} per minute. "
        f"Retry after {refusal.retry_after} s, or ask your Weir admin for a higher limit.",
        type="rate_limit_error", code="rate_limit_exceeded",
        headers=(("retry-after", str(refusal.retry_after)),),
    )


def deployments_cooling_off(alias: str, seconds: float) -> ProxyError:
    return ProxyError(
        503, f"Every deployment of model {alias!r} failed repeatedly and is paused; the first comes back "
        f"in {seconds:.0f} s. Retry then, or ask your Weir admin to check its providers.",
        type="upstream_error", code="deployments_unavailable",
    )


def unsupported_encoding(encoding: str) -> ProxyError:
    return ProxyError(
        415, f"Content-Encoding {encoding!r} is not supported. Send the body uncompressed, or as gzip, "
        "deflate or zstd.", type="invalid_request_error", code="unsupported_content_encoding",
    )


def invalid_encoding(encoding: str) -> ProxyError:
    return ProxyError(
        400, f"The request body is not valid {encoding} data, as its Content-Encoding header says.",
        type="invalid_request_error", code="invalid_body",
    )


def internal_error(request_id: str) -> ProxyError:
    return ProxyError(
        500, f"Weir failed to handle this request. Quote request ID {request_id} to your Weir admin.",
        type="server_error", code="internal_error",
    )


def not_ready() -> ProxyError:
    return ProxyError(503, "Weir is starting and has not loaded its configuration yet. Retry shortly.",
                      type="server_error", code="not_ready")
