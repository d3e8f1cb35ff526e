"""Reading `model` and `stream` from a request body, and rewriting `model`.

Only these two fields are decoded; the rest of the body stays bytes. msgspec
still validates the whole document as JSON, which is what makes a malformed
body a 400 here rather than an upstream's problem.
"""

from __future__ import annotations

from typing import Any

import msgspec

from weir.proxy.errors import ProxyError, invalid_body


class RequestHead(msgspec.Struct):
    """The two fields the gateway needs from a request body."""

    model: Any = None
    stream: Any = False


_decode_head = msgspec.json.Decoder(RequestHead).decode
_decode_fields = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_encode = msgspec.json.Encoder().encode


def read_head(body: bytes) -> RequestHead:
    """Decode `model` and `stream`; raise a 400 `ProxyError` naming what is wrong."""
    try:
        head = _decode_head(body)
    except msgspec.ValidationError:
        raise invalid_body("The request body must be a JSON object.") from None
    except msgspec.DecodeError:
        raise invalid_body("The request body is not valid JSON.") from None
    if head.model is None:
        raise invalid_body("The request body has no `model`. Set it to a model this key may use.", "model")
    if not isinstance(head.model, str):
        raise invalid_body("`model` must be a string.", "model")
    return head


def replace_model(body: bytes, model: str) -> bytes:
    """Return `body` with `model` set to `model`; every other field is copied as raw bytes."""
    fields = _decode_fields(body)
    fields["model"] = msgspec.Raw(_encode(model))
    return _encode(fields)
