"""Every error response of the proxy: the status, an OpenAI-shaped body, and a gateway that keeps serving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.waiting import wait_until
from tests.gateway import free_port
from tests.proxy.conftest import Proxy
from tests.upstream import Reply
from weir.admin.keys import issue_key
from weir.storage.database import connect


def post(proxy: Proxy, body: Any = None, *, key: str | None = "alice", content: bytes | None = None,
         headers: dict[str, str] | None = None, path: str = "/v1/chat/completions") -> httpx.Response:
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {proxy.keys.get(key, key)}"
    return httpx.post(f"{proxy.url}{path}", json=body, content=content, headers=sent, timeout=10)


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert set(document) == {"error"}
    assert set(document["error"]) == {"message", "type", "code", "param"}
    return dict(document["error"])


def assert_still_serving(proxy: Proxy) -> None:
    assert post(proxy, {"model": "chat"}).status_code == 200


def test_missing_authorization_says_how_to_send_key(proxy: Proxy) -> None:
    response = post(proxy, {"model": "chat"}, key=None)

    assert response.status_code == 401
    assert "Authorization: Bearer" in error_of(response)["message"]
    assert_still_serving(proxy)


def test_non_bearer_authorization_is_rejected(proxy: Proxy) -> None:
    response = post(proxy, {"model": "chat"}, key=None, headers={"Authorization": "Basic YWxpY2U6eA=="})

    assert response.status_code == 401
    assert error_of(response)["code"] == "missing_api_key"


def test_unknown_key_is_rejected_without_echo(proxy: Proxy) -> None:
    fake = "wr-ThisKeyDoesNotExist0000000000000000000000"

    response = post(proxy, {"model": "chat"}, key=fake)

    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_api_key"
    assert fake not in response.text
    assert "ThisKey" not in response.text
    assert_still_serving(proxy)


def test_expired_key_is_rejected(proxy: Proxy) -> None:
    with connect(proxy.database_url) as connection:
        issued = issue_key(connection, "alice", "short", expires_at=datetime.now(UTC) + timedelta(seconds=1))
    proxy.keys["short"] = issued.secret
    wait_until(lambda: post(proxy, {"model": "chat"}, key="short").status_code == 200)
    wait_until(lambda: post(proxy, {"model": "chat"}, key="short").status_code == 401, timeout=5)

    response = post(proxy, {"model": "chat"}, key="short")
    assert error_of(response)["code"] == "invalid_api_key"
    assert issued.secret not in response.text


@pytest.mark.parametrize(("content", "fragment"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'"model"', "must be a JSON object"),
    (b'{"messages": []}', "has no `model`"),
    (b'{"model": 42}', "`model` must be a string"),
    (b'{"model": null}', "has no `model`"),
    (b"", "not valid JSON"),
])
def test_bad_body_gets_400_naming_problem(proxy: Proxy, content: bytes, fragment: str) -> None:
    response = post(proxy, content=content)

    assert response.status_code == 400
    assert fragment in error_of(response)["message"]
    assert_still_serving(proxy)


def test_unknown_and_ungranted_alias_read_the_same(proxy: Proxy) -> None:
    unknown = post(proxy, {"model": "no-such-alias"})
    ungranted = post(proxy, {"model": "hidden"})

    assert unknown.status_code == ungranted.status_code == 404
    unknown_error, ungranted_error = error_of(unknown), error_of(ungranted)
    assert unknown_error["code"] == ungranted_error["code"] == "model_not_found"
    assert unknown_error["message"].replace("no-such-alias", "X") == ungranted_error["message"].replace("hidden", "X")
    assert "chat" not in ungranted.text
    assert "same" not in ungranted.text


def test_user_without_grants_gets_404_from_sdk(proxy: Proxy) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        proxy.client("bob").chat.completions.create(model="chat", messages=[])

    assert raised.value.code == "model_not_found"


def test_body_over_limit_gets_413_with_limit(database_url: str, credential_box: Any, upstream: Any,
                                             start_gateway: Any, tmp_path: Path) -> None:
    from tests.conftest import seed
    from tests.proxy.conftest import standard_spec

    keys = seed(database_url, credential_box, standard_spec(upstream.base_url), {"alice": "alice"})
    config = tmp_path / "gateway.toml"
    config.write_text("[server]\nmax_body_bytes = 1000\n")
    proxy = Proxy(gateway=start_gateway(config=config), upstream=upstream, keys=keys, database_url=database_url)

    large = post(proxy, {"model": "chat", "padding": "x" * 2000})
    chunked = httpx.post(f"{proxy.url}/v1/chat/completions", content=iter([b'{"model": "chat", "p": "',
                         b"x" * 2000, b'"}']), headers={"Authorization": f"Bearer {keys['alice']}"})

    assert large.status_code == 413
    assert "1000 bytes" in error_of(large)["message"]
    assert chunked.status_code == 413
    assert_still_serving(proxy)


def test_refused_connection_gets_502_naming_alias(proxy: Proxy, gatewayctl: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    gatewayctl("providers", "add", "dead", "--kind", "openai-compatible", "--base-url", dead)
    gatewayctl("models", "add", "broken", "--deployment", "dead/m")
    with connect(proxy.database_url) as connection:
        connection.execute("INSERT INTO group_aliases SELECT g.id, a.id FROM groups g, aliases a "
                           "WHERE g.name = 'team' AND a.name = 'broken'")
    wait_until(lambda: post(proxy, {"model": "broken"}).status_code != 404)

    response = post(proxy, {"model": "broken"})

    assert response.status_code == 502
    error = error_of(response)
    assert "'broken'" in error["message"]
    assert "127.0.0.1" not in error["message"]
    assert_still_serving(proxy)


def test_slow_upstream_gets_504(proxy: Proxy) -> None:
    proxy.upstream.script(Reply(delay=3.0, body=b"{}"), Reply(body=b"{}"))

    response = post(proxy, {"model": "chat"})  # the deployment's timeout is 2 s

    assert response.status_code == 504
    assert error_of(response)["code"] == "upstream_timeout"
    assert_still_serving(proxy)


@pytest.mark.parametrize("status", [400, 401, 404, 422, 429, 500, 503])
def test_upstream_errors_are_relayed_unchanged(proxy: Proxy, status: int) -> None:
    body = b'{"error": {"message": "upstream says no", "type": "x", "code": "y"}}'
    proxy.upstream.script(Reply(status=status, body=body, headers={"content-type": "application/problem+json",
                                                                    "x-upstream": "1"}))

    response = post(proxy, {"model": "chat"})

    assert response.status_code == status
    assert response.content == body
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-upstream"] == "1"


def test_unknown_path_and_method_get_json_errors(proxy: Proxy) -> None:
    assert error_of(httpx.get(f"{proxy.url}/nothing-here"))["code"] == "unknown_url"
    response = httpx.delete(f"{proxy.url}/v1/chat/completions")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_sentinel_key_and_prompt_never_logged(proxy: Proxy) -> None:
    prompt = "SENTINEL-PROMPT-7f3a9c"
    key = proxy.keys["alice"]
    proxy.upstream.script(Reply.json({"choices": [{"message": {"content": "SENTINEL-COMPLETION-51be"}}]}))

    post(proxy, {"model": "chat", "messages": [{"role": "user", "content": prompt}]})
    post(proxy, {"model": "hidden", "messages": [{"role": "user", "content": prompt}]})
    post(proxy, {"model": "chat", "messages": [{"role": "user", "content": prompt}]}, key=key + "x")
    post(proxy, content=prompt.encode())
    proxy.gateway.stop()

    log = proxy.gateway.log()
    assert "POST /v1/chat/completions 200" in log  # the access log is on, so the check below means something
    assert prompt not in log
    assert "SENTINEL-COMPLETION" not in log
    assert key not in log
    assert key[12:] not in log
