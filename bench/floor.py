"""The floor: the least work any Python gateway on granian must do per request.

It authenticates the bearer key by a SHA-256 lookup in a dict, reads `model`
with msgspec, checks that the key may use it, and returns a fixed chat
completion without calling any upstream. Weir's CPU per request is compared
with this app's, served by granian with exactly the settings `gatewayctl
serve` uses (RSGI, uvloop, HTTP/1.1, runtime mode mt, backlog 2048).

Run it with `python -m bench.floor --port PORT`; the accepted virtual key is
read from the environment variable named by `KEY_ENV`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from typing import Any

import msgspec

from bench.upstream import chat_completion

KEY_ENV = "WEIR_BENCH_FLOOR_KEY"
ALIASES = frozenset({"bench-chat"})

_JSON_HEADERS = [("content-type", "application/json")]
_UNAUTHORIZED = b'{"error":{"message":"Invalid virtual key.","type":"invalid_request_error","code":"invalid_api_key"}}'
_NOT_FOUND = b'{"error":{"message":"Unknown model.","type":"invalid_request_error","code":"model_not_found"}}'


class RequestHead(msgspec.Struct):
    model: str = ""


_decode_head = msgspec.json.Decoder(RequestHead).decode


class Floor:
    def __init__(self) -> None:
        self.keys: dict[str, frozenset[str]] = {}
        self.completion = chat_completion()

    def __rsgi_init__(self, loop: Any) -> None:
        key = os.environ[KEY_ENV]
        self.keys = {hashlib.sha256(key.encode()).hexdigest(): ALIASES}

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        authorization = scope.headers.get("authorization") or ""
        scheme, _, token = authorization.partition(" ")
        aliases = self.keys.get(hashlib.sha256(token.encode()).hexdigest()) if scheme.lower() == "bearer" else None
        body = await protocol()
        if aliases is None:
            protocol.response_bytes(401, _JSON_HEADERS, _UNAUTHORIZED)
            return
        if _decode_head(body).model not in aliases:
            protocol.response_bytes(404, _JSON_HEADERS, _NOT_FOUND)
            return
        protocol.response_bytes(200, _JSON_HEADERS, self.completion)


app = Floor()


def serve(port: int) -> None:
    """Serve the floor with the granian settings of `gatewayctl serve`, one worker."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes

    Granian(
        "bench.floor:app", address="127.0.0.1", port=port, interface=Interfaces.RSGI, workers=1,
        loop=Loops.uvloop, http=HTTPModes.http1, runtime_mode=RuntimeModes.mt, log_access=False, backlog=2048,
    ).serve()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve the benchmark's floor app on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on.")
    serve(parser.parse_args().port)
