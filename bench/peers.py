"""Peer gateways for `--peers`: the Portkey gateway and the LiteLLM proxy.

Both are installed under `.bench/` (which git ignores), never into the
project's own virtual environment. The versions are ones that install and work
here. Portkey is 1.15.2 with `@hono/node-server` held at 1.13.5, because newer
releases of that server break Portkey's streaming. LiteLLM is 1.108.7, the
newest whose dependencies install from this machine's package index. Each runs
as one process bound to 127.0.0.1 and routes the model `bench-chat` to the
scripted upstream.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.processes import Service, ServiceError, Services, free_port
from bench.traffic import CHAT_PATH, UPSTREAM_MODEL, Target

PORTKEY_VERSION = "1.15.2"
HONO_NODE_SERVER_VERSION = "1.13.5"
LITELLM_VERSION = "1.108.7"
LITELLM_MASTER_KEY = "sk-bench-litellm-master"
LOOPBACK_PRELOAD = Path(__file__).with_name("loopback.mjs")
INSTALL_TIMEOUT = 900

# Anything a peer would fetch from the internet at start-up is pointed at a
# closed port on 127.0.0.1 instead; the scripted upstream is exempted.
_NO_OUTSIDE_TRAFFIC = {
    "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
}


class PeerError(RuntimeError):
    """A peer gateway could not be installed or started; the message carries the tool's own error."""


def install_portkey(bench_dir: Path) -> Path:
    """Install the Portkey gateway with npm into `bench_dir`/portkey; return its start script."""
    root = bench_dir.resolve() / "portkey"
    start_script = root / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    package = {
        "name": "weir-bench-portkey", "private": True,
        "dependencies": {"@portkey-ai/gateway": PORTKEY_VERSION, "@hono/node-server": HONO_NODE_SERVER_VERSION},
        "overrides": {"@hono/node-server": HONO_NODE_SERVER_VERSION},
    }
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / "package.json"
    if start_script.exists() and manifest.exists() and json.loads(manifest.read_text()) == package:
        return start_script
    manifest.write_text(json.dumps(package, indent=2) + "\n")
    _install(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"], root, "npm install of the Portkey gateway")
    return start_script


def install_litellm(bench_dir: Path) -> Path:
    """Install the LiteLLM proxy into its own virtual environment, `bench_dir`/litellm; return its `litellm`."""
    venv = bench_dir.resolve() / "litellm"
    executable = venv / "bin" / "litellm"
    if executable.exists() and litellm_version(venv) == LITELLM_VERSION:
        return executable
    _install([sys.executable, "-m", "venv", str(venv)], bench_dir, "creating the LiteLLM virtual environment")
    _install([str(venv / "bin" / "pip"), "install", "--quiet", f"litellm[proxy]=={LITELLM_VERSION}"], bench_dir,
             f"pip install litellm[proxy]=={LITELLM_VERSION}")
    return executable


def start_portkey(services: Services, start_script: Path, upstream_port: int, credential: str) -> tuple[Service, Target]:
    port = free_port()
    service = services.start("portkey", ["node", "--import", LOOPBACK_PRELOAD.resolve().as_uri(), str(start_script),
                                         f"--port={port}", "--headless"],
                             env={**os.environ, **_NO_OUTSIDE_TRAFFIC}, cwd=start_script.parent)
    service.wait_ready(port, "/", timeout=60)
    _require_loopback_only(service, port)
    # Portkey has no keys of its own: the provider and its base URL travel in headers on every request.
    headers = (("Authorization", f"Bearer {credential}"), ("x-portkey-provider", "openai"),
               ("x-portkey-custom-host", f"http://127.0.0.1:{upstream_port}/v1"))
    return service, Target(name="portkey", port=port, pid=service.pid, headers=headers,
                           routes={"json": (CHAT_PATH, UPSTREAM_MODEL)})


def start_litellm(services: Services, executable: Path, work_dir: Path, upstream_port: int,
                  credential: str) -> tuple[Service, Target]:
    port = free_port()
    # YAML is a superset of JSON, so the config is written as JSON.
    config = {
        "model_list": [{"model_name": UPSTREAM_MODEL, "litellm_params": {
            "model": f"openai/{UPSTREAM_MODEL}", "api_base": f"http://127.0.0.1:{upstream_port}/v1",
            "api_key": credential}}],
        "general_settings": {"master_key": LITELLM_MASTER_KEY},
    }
    config_path = work_dir / "litellm-config.yaml"
    config_path.write_text(json.dumps(config, indent=2))
    env = {**os.environ, **_NO_OUTSIDE_TRAFFIC, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True", "LITELLM_MODEL_COST_MAP_URL": "http://127.0.0.1:9/",
           "LITELLM_BLOG_POSTS_URL": "http://127.0.0.1:9/", "LITELLM_ANTHROPIC_BETA_HEADERS_URL": "http://127.0.0.1:9/",
           "LITELLM_AUTOROUTER_PRESETS_URL": "http://127.0.0.1:9/"}
    env.pop("DATABASE_URL", None)
    service = services.start("litellm", [str(executable), "--config", str(config_path), "--host", "127.0.0.1",
                                         "--port", str(port), "--num_workers", "1"], env=env, cwd=work_dir)
    service.wait_ready(port, "/health/liveliness", timeout=180)
    return service, Target(name="litellm", port=port, pid=service.pid,
                           headers=(("Authorization", f"Bearer {LITELLM_MASTER_KEY}"),),
                           routes={"json": (CHAT_PATH, UPSTREAM_MODEL)})


def portkey_version(start_script: Path) -> str:
    manifest = start_script.parent.parent / "package.json"
    hono = start_script.parents[3] / "@hono" / "node-server" / "package.json"
    return (f"@portkey-ai/gateway {json.loads(manifest.read_text())['version']}, "
            f"@hono/node-server {json.loads(hono.read_text())['version']}")


def litellm_version(venv: Path) -> str | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    completed = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                               capture_output=True, text=True, timeout=60)
    return completed.stdout.strip() or None


def _install(command: list[str], cwd: Path, step: str) -> None:
    try:
        completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    except FileNotFoundError:
        raise PeerError(f"{step} failed: {command[0]} is not installed.") from None
    except subprocess.TimeoutExpired:
        raise PeerError(f"{step} did not finish within {INSTALL_TIMEOUT} s.") from None
    if completed.returncode != 0:
        raise PeerError(f"{step} failed with status {completed.returncode}:\n"
                        f"{(completed.stdout + completed.stderr).strip()[-3000:]}")


def _require_loopback_only(service: Service, port: int) -> None:
    """Raise unless every socket listening on `port` is bound to 127.0.0.1."""
    completed = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=10)
    addresses = [line.split()[3] for line in completed.stdout.splitlines() if line.strip()]
    if not addresses or any(not address.startswith("127.0.0.1:") for address in addresses):
        service.stop()
        raise ServiceError(f"{service.name} listens on {', '.join(addresses) or 'nothing'} instead of only "
                           f"127.0.0.1:{port}; it was stopped.")
