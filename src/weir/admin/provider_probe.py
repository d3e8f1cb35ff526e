"""One cheap call to a provider (list its models), to tell whether it is reachable and accepts the credential.

`providers test` and `doctor` use it. The call carries the credential in the
header the provider's kind expects, like the proxy does, and nothing about it
(neither the credential nor the response body) reaches the result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from weir.crypto import CredentialBox
from weir.storage.providers import ProviderRow

PROBE_TIMEOUT_SECONDS = 5.0
ANTHROPIC_DEFAULT_VERSION = "2023-06-01"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one probe: the HTTP status, or the transport error when no response came."""

    provider: str
    url: str
    status: int | None
    latency_ms: float
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        """Word the outcome in one sentence, with what to check when it failed."""
        if self.status is None:
            return (f"Provider {self.provider!r} is unreachable at {self.url}: {self.error}. "
                    "Check its --base-url and that the server is running.")
        verdict = f"Provider {self.provider!r} returned {self.status} for GET {self.url} in {self.latency_ms:.0f} ms"
        if self.ok:
            return verdict + "."
        if self.status in (401, 403):
            return verdict + ". Check its credential with `gatewayctl providers update --credential-env`."
        return verdict + ". Check its --base-url and kind."


def probe_provider(provider: ProviderRow, box: CredentialBox,
                   timeout: float = PROBE_TIMEOUT_SECONDS) -> ProbeResult:
    """Send GET {base_url}/models with the provider's credential and measure the response time."""
    credential = None if provider.credential is None else box.open(provider.credential)
    url, params = models_url(provider)
    headers = {**provider.headers, **credential_headers(provider.kind, credential, provider.api_version)}

    started = time.perf_counter()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.get(url, params=params, headers=headers)
    except httpx.TimeoutException:
        return ProbeResult(provider.name, url, None, _since(started), f"timed out after {timeout:g} s")
    except httpx.TransportError as error:
        return ProbeResult(provider.name, url, None, _since(started), type(error).__name__)
    return ProbeResult(provider.name, url, response.status_code, _since(started), None)


def models_url(provider: ProviderRow) -> tuple[str, dict[str, str]]:
    """Return the model-listing URL for the provider's kind, and its query parameters."""
    base = provider.base_url.rstrip("/")
    if provider.kind == "azure":
        return f"{base}/openai/models", {"api-version": provider.api_version or ""}
    return f"{base}/models", {}


def credential_headers(kind: str, credential: str | None, api_version: str | None) -> dict[str, str]:
    """Return the headers that carry a credential for a provider of `kind`."""
    if kind == "anthropic":
        headers = {"anthropic-version": api_version or ANTHROPIC_DEFAULT_VERSION}
        return headers if credential is None else {**headers, "x-api-key": credential}
    if credential is None:
        return {}
    if kind == "azure":
        return {"api-key": credential}
    return {"authorization": f"Bearer {credential}"}


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
