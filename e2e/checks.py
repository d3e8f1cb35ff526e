"""The checks run.py makes against a running gateway, each through the official openai SDK.

A check returns a short result line (counts, latency) or raises CheckFailed.
They run in the order of CHECKS, and the revocation check comes last because
it revokes the granted user's virtual key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import openai

from gatewayctl import CommandError, Gatewayctl, IssuedKey

ALIAS = "gemma"
HIDDEN_ALIAS = "gemma-hidden"  # declared but granted to nobody
GRANTED_USER = "alice"
UNGRANTED_USER = "bob"

REQUEST_SECONDS = 120.0  # one request through the gateway to the engine
MAX_TOKENS = 16  # enough to see a stream, short enough for two shared CPU cores
REVOCATION_SECONDS = 2.0
REVOCATION_POLL_SECONDS = 0.05
BURST_GAP_SECONDS = 0.002  # stream chunks closer together than this arrived "at once"


class CheckFailed(Exception):
    """A check saw something other than what Weir should do."""


@dataclass(frozen=True)
class Setup:
    """What the checks use: gatewayctl, and an openai client with each user's virtual key."""

    gatewayctl: Gatewayctl
    granted_key_id: str
    granted: openai.OpenAI
    ungranted: openai.OpenAI


def gateway_client(gateway_url: str, key: IssuedKey) -> openai.OpenAI:
    """Return an openai client that sends `key` to the gateway at `gateway_url`."""
    # trust_env=False: an HTTP(S)_PROXY variable must not route local test traffic elsewhere.
    # No retries: a retried 401 or 404 would only slow a failing check down.
    return openai.OpenAI(
        base_url=f"{gateway_url}/v1", api_key=key.secret, max_retries=0, timeout=REQUEST_SECONDS,
        http_client=openai.DefaultHttpxClient(trust_env=False, timeout=REQUEST_SECONDS),
    )


def run_checks(setup: Setup) -> tuple[int, int]:
    """Run every check in order, print one line each, and return (passed, failed)."""
    passed = failed = 0
    for name, check in CHECKS:
        try:
            result = check(setup)
        except (CheckFailed, openai.OpenAIError, CommandError) as error:
            print(f"FAIL {name}: {type(error).__name__}: {error}", flush=True)
            failed += 1
        else:
            print(f"PASS {name}: {result}", flush=True)
            passed += 1
    return passed, failed


def expect(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def check_chat_completion(setup: Setup) -> str:
    started = time.monotonic()
    completion = setup.granted.chat.completions.create(
        model=ALIAS, messages=[{"role": "user", "content": "Name one colour."}], max_tokens=MAX_TOKENS,
    )
    elapsed = time.monotonic() - started

    expect(completion.choices, "the response has no choices")
    content = completion.choices[0].message.content or ""
    expect(content.strip(), "the first choice has no content")
    usage = completion.usage
    if usage is None or usage.completion_tokens <= 0:
        raise CheckFailed(f"the response has no token usage: {usage!r}")
    return (f"{len(content)} characters, {usage.prompt_tokens} prompt + {usage.completion_tokens} "
            f"completion tokens in {elapsed:.2f} s")


def check_streamed_chat_completion(setup: Setup) -> str:
    started = time.monotonic()
    stream = setup.granted.chat.completions.create(
        model=ALIAS, messages=[{"role": "user", "content": "Count from one to ten."}], max_tokens=MAX_TOKENS,
        stream=True,
    )
    arrivals: list[float] = []
    with stream:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.monotonic())

    expect(len(arrivals) > 1, f"{len(arrivals)} chunk(s) carried content; expected more than 1")
    bursts = arrival_bursts(arrivals)
    largest = max(bursts)
    # A gateway that buffers the stream delivers it in one burst or a few.
    # Relayed chunk by chunk, the engine's pace between tokens shows through.
    expect(len(bursts) > 1, f"all {len(arrivals)} chunks arrived at once: the stream was buffered")
    expect(largest <= len(arrivals) / 2,
           f"{largest} of {len(arrivals)} chunks arrived in one burst: the stream was held back")
    return (f"{len(arrivals)} chunks in {len(bursts)} bursts over {arrivals[-1] - arrivals[0]:.2f} s, "
            f"first after {arrivals[0] - started:.2f} s")


def arrival_bursts(arrivals: list[float]) -> list[int]:
    """Group arrival times less than BURST_GAP_SECONDS apart; return the size of each group."""
    sizes = [1]
    for previous, current in zip(arrivals, arrivals[1:]):
        if current - previous < BURST_GAP_SECONDS:
            sizes[-1] += 1
        else:
            sizes.append(1)
    return sizes


def check_text_completion(setup: Setup) -> str:
    started = time.monotonic()
    completion = setup.granted.completions.create(
        model=ALIAS, prompt="The three primary colours are", max_tokens=MAX_TOKENS,
    )
    elapsed = time.monotonic() - started

    expect(completion.choices, "the response has no choices")
    text = completion.choices[0].text
    expect(text.strip(), "the first choice has no text")
    usage = completion.usage
    if usage is None or usage.completion_tokens <= 0:
        raise CheckFailed(f"the response has no token usage: {usage!r}")
    return f"{len(text)} characters, {usage.completion_tokens} completion tokens in {elapsed:.2f} s"


def check_models_of_granted_user(setup: Setup) -> str:
    aliases = [model.id for model in setup.granted.models.list()]
    expect(aliases == [ALIAS], f"{GRANTED_USER} sees {aliases}; expected [{ALIAS!r}]")
    return f"{GRANTED_USER} sees {aliases}"


def check_models_of_ungranted_user(setup: Setup) -> str:
    aliases = [model.id for model in setup.ungranted.models.list()]
    expect(aliases == [], f"{UNGRANTED_USER} sees {aliases}; expected []")
    return f"{UNGRANTED_USER} sees []"


def check_ungranted_user_gets_not_found(setup: Setup) -> str:
    return expect_not_found(setup.ungranted, ALIAS)


def check_hidden_alias_gets_not_found(setup: Setup) -> str:
    return expect_not_found(setup.granted, HIDDEN_ALIAS)


def expect_not_found(client: openai.OpenAI, alias: str) -> str:
    """Request a chat completion from `alias` and expect openai.NotFoundError with code model_not_found."""
    try:
        client.chat.completions.create(model=alias, messages=[{"role": "user", "content": "Hello"}], max_tokens=1)
    except openai.NotFoundError as error:
        expect(error.code == "model_not_found", f"404 with code {error.code!r}; expected 'model_not_found'")
        return f"{error.status_code} {error.code}"
    raise CheckFailed("the request succeeded; expected 404 model_not_found")


def check_revoked_key_is_rejected(setup: Setup) -> str:
    client = setup.granted
    client.models.list()  # the key works before it is revoked

    setup.gatewayctl.run("keys", "revoke", setup.granted_key_id)
    revoked = time.monotonic()
    while True:
        try:
            client.models.list()
        except openai.AuthenticationError:
            break
        expect(time.monotonic() - revoked < REVOCATION_SECONDS,
               f"{GRANTED_USER}'s key still works {REVOCATION_SECONDS:.0f} s after `gatewayctl keys revoke` returned")
        time.sleep(REVOCATION_POLL_SECONDS)
    rejected_after = time.monotonic() - revoked

    try:
        client.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "Hello"}], max_tokens=1)
    except openai.AuthenticationError as error:
        status = error.status_code
    else:
        raise CheckFailed("/v1/models rejects the revoked key but /v1/chat/completions accepts it")
    setup.ungranted.models.list()  # other users' keys keep working
    return f"{status} {rejected_after * 1000:.0f} ms after `gatewayctl keys revoke` returned"


CHECKS: list[tuple[str, Callable[[Setup], str]]] = [
    ("chat completion", check_chat_completion),
    ("streamed chat completion", check_streamed_chat_completion),
    ("text completion", check_text_completion),
    (f"model list of {GRANTED_USER}", check_models_of_granted_user),
    (f"model list of {UNGRANTED_USER}", check_models_of_ungranted_user),
    (f"{UNGRANTED_USER} calling {ALIAS}", check_ungranted_user_gets_not_found),
    (f"{GRANTED_USER} calling {HIDDEN_ALIAS}", check_hidden_alias_gets_not_found),
    ("revoked key", check_revoked_key_is_rejected),
]
