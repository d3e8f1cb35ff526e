"""`python -m bench`: measure Weir beside the direct path and the floor, then write docs/benchmarks.md.

Starts, all on 127.0.0.1: the scripted upstream, the floor app, and Weir
(request bodies logged, and for one scenario not logged), each set up as an
operator would, on a database of its own. Runs every scenario, prints the
results and writes `docs/benchmarks.md` and `docs/benchmarks.json`. With
`--peers`, the Portkey gateway and the LiteLLM proxy are installed under
`.bench/` and measured in the 64-connection closed loop too. Every server
started here is stopped and the database is dropped, also when a step fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg

from bench import machine, peers
from bench.floor import KEY_ENV
from bench.gateway import Gateway, GatewayError, bench_database
from bench.generators import GeneratorError, build_loadgen, ensure_wrk
from bench.processes import Service, ServiceError, Services, free_port
from bench.report import DIRECT, FLOOR, Results, check_targets, render_markdown, write_json
from bench.scenarios import SCENARIOS, Measurement, Runner, Scenario
from bench.traffic import CHAT_PATH, SLOW_MILLISECONDS, UPSTREAM_CREDENTIAL, UPSTREAM_MODEL, Target, direct_routes
from bench.upstream import STREAM_EVENTS

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / ".bench"
# Node's JIT and LiteLLM's imports on first use need longer than Weir to reach a steady state.
PEER_WARMUP_SECONDS = 5.0
# Average CPU used by programs outside the benchmark above which the report calls the run noisy.
NOISY_OTHER_LOAD_CORES = 0.25


def main(argv: list[str] | None = None) -> int:
    args = _parse_arguments(argv)
    try:
        return _run(args)
    except (GatewayError, GeneratorError, ServiceError, psycopg.OperationalError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    work_dir = BENCH_DIR / "run"
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    machine.raise_open_file_limit()
    wrk, loadgen = ensure_wrk(), build_loadgen(BENCH_DIR)
    peer_installs, peer_failures = _install_peers() if args.peers else ({}, {})

    run: dict[str, Any] = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                           "machine": machine.describe_machine(), "load average at start": machine.load_average()}
    measurements: list[Measurement] = []
    with Services(work_dir) as services, bench_database() as database_url:
        upstream_port = free_port()
        upstream = services.start("upstream", [sys.executable, "-m", "bench.upstream", "--port", str(upstream_port)],
                                  cwd=REPO)
        upstream.wait_ready(upstream_port, "/v1/models", timeout=30)
        direct = Target(name=DIRECT, port=upstream_port, pid=upstream.pid,
                        headers=(("Authorization", f"Bearer {UPSTREAM_CREDENTIAL}"),), routes=direct_routes())

        gateway = Gateway(REPO, work_dir, database_url, upstream_port)
        gateway.prepare()
        runner = Runner(wrk=wrk, loadgen=loadgen, work_dir=work_dir, seconds=args.seconds,
                        warmup_seconds=args.warmup, upstream_pid=upstream.pid)
        session = Session(services, runner, gateway, direct, measurements)
        for scenario in (s for s in SCENARIOS if not args.only or s.key in args.only):
            session.run_scenario(scenario, peer_installs, peer_failures)
        request_log_rows = gateway.request_log_rows()
        run["database"] = machine.postgres_version(database_url)

    run.update(_versions_and_settings(args, wrk, peer_installs, peer_failures))
    run["load average at end"] = machine.load_average()
    _write_report(args.output, run, Results(measurements), request_log_rows, peer_failures)
    print(f"Server logs and configs of this run are in {work_dir}.")
    return 0


class Session:
    """The servers of one run, started when a scenario first needs them, and the order of measurements."""

    def __init__(self, services: Services, runner: Runner, gateway: Gateway, direct: Target,
                 measurements: list[Measurement]) -> None:
        self.services = services
        self.runner = runner
        self.gateway = gateway
        self.direct = direct
        self.measurements = measurements
        self.weir: Target | None = None
        self.floor: tuple[Service, Target] | None = None

    def run_scenario(self, scenario: Scenario, peer_installs: dict[str, Path], peer_failures: dict[str, str]) -> None:
        """Measure the direct path, the floor where it applies, Weir and, at 64 connections, the peers."""
        print(f"\n{scenario.title} ({scenario.key})", flush=True)
        self._measure(scenario, self.direct)
        if scenario.key in ("closed-64", "closed-256"):
            self._measure(scenario, self._floor())
        if scenario.key == "closed-64":
            # The same Weir with request bodies not logged: the difference is the cost of logging them.
            service, target = self.gateway.serve(self.services, "none")
            try:
                self._measure(scenario, target)
            finally:
                self.services.stop(service)
        self._measure(scenario, self._weir())
        if scenario.key == "closed-64":
            for name, installed in peer_installs.items():
                self._measure_peer(scenario, name, installed, peer_failures)

    def _measure(self, scenario: Scenario, target: Target, warmup_seconds: float | None = None) -> None:
        measurement = self.runner.measure(scenario, target, warmup_seconds)
        self.measurements.append(measurement)
        latency, cpu = measurement.latency_ms, measurement.cpu_us_per_request
        print(f"  {target.name:<19} {measurement.rate:>8,.0f}/s  p50 {latency['p50']:7.2f} ms  "
              f"p99 {latency['p99']:7.2f} ms  p99.9 {latency['p999']:7.2f} ms  CPU {cpu or 0:6,.0f} µs  "
              f"RSS {measurement.peak_rss_mib:4.0f} MiB  errors {measurement.errors}  "
              f"other load {measurement.other_load_cores:.2f}", flush=True)

    def _measure_peer(self, scenario: Scenario, name: str, installed: Path, failures: dict[str, str]) -> None:
        try:
            if name == "portkey":
                service, target = peers.start_portkey(self.services, installed, self.direct.port, UPSTREAM_CREDENTIAL)
            else:
                service, target = peers.start_litellm(self.services, installed, self.runner.work_dir,
                                                      self.direct.port, UPSTREAM_CREDENTIAL)
        except ServiceError as error:
            failures[name] = str(error).splitlines()[0]
            print(f"bench: {error}", file=sys.stderr)
            return
        try:
            self._measure(scenario, target, max(self.runner.warmup_seconds, PEER_WARMUP_SECONDS))
        except GeneratorError as error:
            failures[name] = str(error).splitlines()[0]
            print(f"bench: {name}: {error}", file=sys.stderr)
        finally:
            self.services.stop(service)

    def _weir(self) -> Target:
        if self.weir is None:
            self.weir = self.gateway.serve(self.services, "full")[1]
        return self.weir

    def _floor(self) -> Target:
        if self.floor is None:
            port = free_port()
            service = self.services.start("floor", [sys.executable, "-m", "bench.floor", "--port", str(port)],
                                          env={**os.environ, KEY_ENV: self.gateway.key}, cwd=REPO)
            # The floor has no health path: an unauthenticated GET gets its 401 once it serves.
            service.wait_ready(port, "/", timeout=30, expected_status=401)
            target = Target(name=FLOOR, port=port, pid=service.pid,
                            headers=(("Authorization", f"Bearer {self.gateway.key}"),),
                            routes={"json": (CHAT_PATH, UPSTREAM_MODEL)})
            self.floor = (service, target)
        return self.floor[1]


def _install_peers() -> tuple[dict[str, Path], dict[str, str]]:
    installs: dict[str, Path] = {}
    failures: dict[str, str] = {}
    for name, install in (("portkey", peers.install_portkey), ("litellm", peers.install_litellm)):
        print(f"Installing {name} under {BENCH_DIR} (kept for later runs)...", flush=True)
        try:
            installs[name] = install(BENCH_DIR)
        except peers.PeerError as error:
            failures[name] = str(error)
            print(f"bench: {error}", file=sys.stderr)
    return installs, failures


def _versions_and_settings(args: argparse.Namespace, wrk: str, peer_installs: dict[str, Path],
                           peer_failures: dict[str, str]) -> dict[str, str]:
    if not args.peers:
        peer_versions = "not run (`make bench-peers` runs them)"
    else:
        found = []
        if "portkey" in peer_installs:
            found.append(f"{peers.portkey_version(peer_installs['portkey'])} on node {machine.node_version()}")
        if "litellm" in peer_installs:
            found.append(f"litellm {peers.litellm_version(peer_installs['litellm'].parent.parent)}")
        found += [f"{name}: install failed" for name in peer_failures if name not in peer_installs]
        peer_versions = "; ".join(found)
    return {
        "Weir": machine.weir_version(REPO),
        "stack": machine.python_stack(),
        "load generators": machine.generator_versions(wrk),
        "peers": peer_versions,
        "measurement": f"{args.seconds:g} s each, after a {args.warmup:g} s closed-loop warm-up "
                       f"({max(args.warmup, PEER_WARMUP_SECONDS):g} s for peers; streams: a 1 s staggered start "
                       "instead, not recorded)",
        "Weir settings": "`gatewayctl serve --workers 1`; `[logging] bodies = \"full\"` except where the target "
                         "says `bodies=none`; access log on (the default), written to a file; one virtual key, "
                         "one provider credential",
        "upstream": f"`bench/upstream.py`, one process (uvloop, prebuilt responses); {STREAM_EVENTS}-event "
                    f"streams; the slow path waits {SLOW_MILLISECONDS} ms",
        "floor": "granian RSGI app with Weir's serve settings: SHA-256 key lookup, msgspec read of `model`, "
                 "fixed answer",
    }


def _write_report(output: Path, run: dict[str, Any], results: Results, request_log_rows: int | None,
                  peer_failures: dict[str, str]) -> None:
    checks = check_targets(results, request_log_rows, peer_failures)
    notes = _notes(results, request_log_rows, peer_failures)
    markdown = render_markdown(run, results, checks, notes)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(markdown)
    write_json(output.with_suffix(".json"), run, results, checks, notes)
    print("\n" + markdown)
    print(f"Wrote {output} and {output.with_suffix('.json')}.")


def _notes(results: Results, request_log_rows: int | None, peer_failures: dict[str, str]) -> list[str]:
    notes = []
    if request_log_rows is None:
        notes.append("Request logging: this Weir has no request_logs table yet, so `bodies = \"full\"` and "
                     "`bodies = \"none\"` run the same code. The pair is measured so the cost appears once "
                     "request logs are written.")
    else:
        notes.append(f"Request logging: Weir wrote {request_log_rows:,} request logs during the run.")
    direct = results.get("open-2000", DIRECT)
    if direct is not None:
        generated = direct.details["generator"]
        lag = generated["send_lag_ms"]
        verdict = ("kept up" if generated["dispatched"] == generated["scheduled"] and lag.get("p99", 0) < 1
                   else "fell behind: the open-loop latencies above include the generator's own delay")
        notes.append(f"Open-loop generator check against the direct path: sent {generated['dispatched']:,} of "
                     f"{generated['scheduled']:,} requests at {generated['rate']:,.0f}/s, send lag p50 "
                     f"{lag.get('p50', 0):.3f} ms, p99 {lag.get('p99', 0):.3f} ms, max {lag.get('max', 0):.1f} ms; "
                     f"it {verdict}. Lag counts time waiting for a free connection as well.")
    for name, error in peer_failures.items():
        notes.append(f"{name} was not measured: {error.splitlines()[0]}")
    if results.measurements:
        other_load = sum(m.other_load_cores for m in results.measurements) / len(results.measurements)
        if other_load > NOISY_OTHER_LOAD_CORES:
            notes.append(f"Other programs used {other_load:.2f} of the machine's {os.cpu_count()} cores on average "
                         "during the measurements, so throughput and latency percentiles are worse than on an idle "
                         "machine. CPU per request is the figure that such load distorts least.")
    return notes


def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--peers", action="store_true",
                        help="Also install and measure the Portkey gateway and the LiteLLM proxy (64 connections).")
    parser.add_argument("--seconds", type=float, default=6.0, help="Length of each measurement, in seconds (default 6).")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="Closed-loop warm-up before each measurement, in seconds (default 2; 0 for none).")
    parser.add_argument("--only", action="append", choices=[s.key for s in SCENARIOS], metavar="SCENARIO",
                        help="Run only this scenario; repeat for several. One of: "
                             + ", ".join(s.key for s in SCENARIOS) + ".")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks.md",
                        help="Markdown file to write; the JSON goes beside it (default docs/benchmarks.md).")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 120:
        parser.error("--seconds must be between 1 and 120.")
    if not 0 <= args.warmup <= 30:
        parser.error("--warmup must be between 0 and 30.")
    return args


if __name__ == "__main__":
    sys.exit(main())
