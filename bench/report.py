"""Judging the targets and writing the results as markdown and JSON.

Every run rewrites `docs/benchmarks.md`. It lists the machine, versions and
settings, and each target marked met or not met with the figure behind it.
Then come the ratios that hold up on a noisy machine (Weir over direct, Weir's
CPU over the floor's, Weir over each peer) and one table per scenario.
`docs/benchmarks.json` contains the same run in full.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.scenarios import SCENARIOS, Measurement

DIRECT = "direct"
FLOOR = "floor"
WEIR = "weir (bodies=full)"
WEIR_NO_LOGS = "weir (bodies=none)"
PORTKEY = "portkey"
LITELLM = "litellm"


@dataclass
class Check:
    target: str
    figure: str
    met: bool | None
    """None when the figure could not be measured in this run."""


class Results:
    """Every measurement of one run, looked up by scenario and target."""

    def __init__(self, measurements: list[Measurement]) -> None:
        self.measurements = measurements

    def get(self, scenario: str, target: str) -> Measurement | None:
        for measurement in self.measurements:
            if measurement.scenario == scenario and measurement.target == target:
                return measurement
        return None


def check_targets(results: Results, request_log_rows: int | None, peer_failures: dict[str, str]) -> list[Check]:
    """Judge every target of the benchmark; a missing measurement gives `met=None` and a figure naming the reason."""
    return [
        _cpu_against_floor(results),
        _against_peer(results, PORTKEY, 5, peer_failures),
        _against_peer(results, LITELLM, 50, peer_failures),
        *_open_loop(results),
        *_model_latency(results),
        *_streaming(results),
        _logging_cost(results, request_log_rows),
    ]


def ratios(results: Results) -> list[str]:
    """Return the comparisons that hold up on a noisy machine better than absolute figures."""
    lines = []
    for scenario in SCENARIOS:
        weir, direct = results.get(scenario.key, WEIR), results.get(scenario.key, DIRECT)
        if not (weir and direct and direct.rate):
            continue
        if scenario.kind == "open" or scenario.behaviour == "slow":
            lines.append(f"Weir − direct, latency, {scenario.key}: p50 {_signed(weir, direct, 'p50')}, "
                         f"p99 {_signed(weir, direct, 'p99')}")
        if scenario.kind != "open":
            lines.append(f"Weir / direct, {_unit(scenario.kind)}/s, {scenario.key}: {weir.rate / direct.rate:.2f}")
    for key in ("closed-64", "closed-256"):
        weir, floor = results.get(key, WEIR), results.get(key, FLOOR)
        if weir and floor and weir.cpu_us_per_request and floor.cpu_us_per_request:
            lines.append(f"Weir CPU / floor CPU per request, {key}: "
                         f"{weir.cpu_us_per_request / floor.cpu_us_per_request:.2f}")
    for peer in (PORTKEY, LITELLM):
        weir, other = results.get("closed-64", WEIR), results.get("closed-64", peer)
        if weir and other and other.rate:
            lines.append(f"Weir / {peer}, requests/s, closed-64: {weir.rate / other.rate:.1f}")
    return lines


def _signed(weir: Measurement, direct: Measurement, percentile: str) -> str:
    return f"{weir.latency_ms[percentile] - direct.latency_ms[percentile]:+.2f} ms"


def render_markdown(run: dict[str, Any], results: Results, checks: list[Check], notes: list[str]) -> str:
    out = ["# Benchmarks", "",
           "`make bench` measures what Weir costs per request: the same load goes straight to a scripted",
           "upstream, to a minimal granian app (the floor), and through Weir, all on 127.0.0.1 in one run.",
           "`make bench-peers` adds the Portkey gateway and the LiteLLM proxy. Every run rewrites this page",
           "and `docs/benchmarks.json`; the code is in `bench/`.", "",
           "Absolute figures depend on the machine and on whatever else runs on it. Compare the ratios,",
           "and read the `other load` column: CPU that programs outside the benchmark used during each",
           "measurement, in cores.", "",
           "## Run", "", "| | |", "| --- | --- |"]
    out += [f"| {name} | {value} |" for name, value in run.items()]
    out += ["", "## Targets", "", "| target | figure | result |", "| --- | --- | --- |"]
    out += [f"| {check.target} | {check.figure} | {_verdict(check.met)} |" for check in checks]
    out += ["", "## Ratios", ""] + [f"- {line}" for line in ratios(results)]
    for scenario in SCENARIOS:
        rows = [m for m in results.measurements if m.scenario == scenario.key]
        if rows:
            out += ["", f"## {scenario.title} (`{scenario.key}`)", ""] + _table(scenario.kind, rows)
    if notes:
        out += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(out) + "\n"


def write_json(path: Path, run: dict[str, Any], results: Results, checks: list[Check], notes: list[str]) -> None:
    document = {"run": run, "targets": [asdict(check) for check in checks], "ratios": ratios(results),
                "measurements": [asdict(m) for m in results.measurements], "notes": notes}
    path.write_text(json.dumps(_without_nan(document), indent=2, default=str, allow_nan=False) + "\n")


def _table(kind: str, rows: list[Measurement]) -> list[str]:
    if kind == "stream":
        lines = ["| target | streams/s | first event p50 ms | p99 ms | p99.9 ms | gap p50 ms | gap p99 ms | gap max ms "
                 "| CPU µs/stream | peak RSS MiB | errors | other load |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for m in rows:
            gaps = m.details["generator"]["gap_ms"]
            lines.append(f"| {m.target} | {m.rate:,.0f} | {_ms(m.latency_ms['p50'])} | {_ms(m.latency_ms['p99'])} "
                         f"| {_ms(m.latency_ms['p999'])} | {_ms(gaps.get('p50'))} | {_ms(gaps.get('p99'))} "
                         f"| {_ms(gaps.get('max'))} | {_cpu(m)} | {m.peak_rss_mib:.0f} | {m.errors} "
                         f"| {m.other_load_cores:.2f} |")
        return lines
    lines = ["| target | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | CPU µs/request | peak RSS MiB | errors "
             "| other load |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for m in rows:
        lines.append(f"| {m.target} | {m.rate:,.0f} | {_ms(m.latency_ms['p50'])} | {_ms(m.latency_ms['p99'])} "
                     f"| {_ms(m.latency_ms['p999'])} | {_ms(m.latency_ms['max'])} | {_cpu(m)} "
                     f"| {m.peak_rss_mib:.0f} | {m.errors} | {m.other_load_cores:.2f} |")
    return lines


def _cpu_against_floor(results: Results) -> Check:
    name = "CPU per request at 64 connections ≤ 2 × the floor's"
    weir, floor = results.get("closed-64", WEIR), results.get("closed-64", FLOOR)
    if not (weir and floor and weir.cpu_us_per_request and floor.cpu_us_per_request):
        return Check(name, "not measured", None)
    ratio = weir.cpu_us_per_request / floor.cpu_us_per_request
    return Check(name, f"{weir.cpu_us_per_request:.0f} µs vs {floor.cpu_us_per_request:.0f} µs: {ratio:.2f} ×",
                 ratio <= 2)


def _against_peer(results: Results, peer: str, factor: float, failures: dict[str, str]) -> Check:
    name = f"Requests/s at 64 connections ≥ {factor:g} × {peer}"
    weir, other = results.get("closed-64", WEIR), results.get("closed-64", peer)
    if peer in failures:
        return Check(name, f"not measured: {failures[peer]}", None)
    if not (weir and other and other.rate):
        return Check(name, "not measured (run `make bench-peers`)", None)
    ratio = weir.rate / other.rate
    return Check(name, f"{weir.rate:,.0f} vs {other.rate:,.0f}: {ratio:.1f} ×", ratio >= factor)


def _open_loop(results: Results) -> list[Check]:
    weir, direct = results.get("open-2000", WEIR), results.get("open-2000", DIRECT)
    checks = []
    for percentile, limit in (("p50", 0.5), ("p99", 2.0)):
        name = f"Open loop at 2,000 requests/s: added {percentile} latency ≤ {limit:g} ms"
        if not (weir and direct):
            checks.append(Check(name, "not measured", None))
            continue
        added = weir.latency_ms[percentile] - direct.latency_ms[percentile]
        figure = f"{weir.latency_ms[percentile]:.2f} ms vs {direct.latency_ms[percentile]:.2f} ms: +{added:.2f} ms"
        checks.append(Check(name, _with_errors(figure, weir), added <= limit and weir.errors == 0))
    return checks


def _model_latency(results: Results) -> list[Check]:
    weir, direct = results.get("upstream-100ms", WEIR), results.get("upstream-100ms", DIRECT)
    throughput = "100 users, upstream waits 100 ms: requests/s ≥ 97% of direct"
    tail = "100 users, upstream waits 100 ms: p99 ≤ direct + 5 ms"
    if not (weir and direct and direct.rate):
        return [Check(throughput, "not measured", None), Check(tail, "not measured", None)]
    share = weir.rate / direct.rate
    added = weir.latency_ms["p99"] - direct.latency_ms["p99"]
    return [
        Check(throughput, _with_errors(f"{weir.rate:,.0f} vs {direct.rate:,.0f}: {share:.1%}", weir),
              share >= 0.97 and weir.errors == 0),
        Check(tail, f"{weir.latency_ms['p99']:.1f} ms vs {direct.latency_ms['p99']:.1f} ms: +{added:.1f} ms",
              added <= 5),
    ]


def _streaming(results: Results) -> list[Check]:
    checks = []
    weir, direct = results.get("stream-low", WEIR), results.get("stream-low", DIRECT)
    name = "Streaming at low load: time to first event ≤ direct + 1 ms (p50)"
    if weir and direct:
        added = weir.latency_ms["p50"] - direct.latency_ms["p50"]
        figure = f"{weir.latency_ms['p50']:.2f} ms vs {direct.latency_ms['p50']:.2f} ms: +{added:.2f} ms"
        checks.append(Check(name, _with_errors(figure, weir), added <= 1 and weir.errors == 0))
    else:
        checks.append(Check(name, "not measured", None))

    weir, direct = results.get("stream-1500", WEIR), results.get("stream-1500", DIRECT)
    for label, pick in (("time to first event", lambda m: m.latency_ms["p99"]),
                        ("gap between events", lambda m: m.details["generator"]["gap_ms"].get("p99", math.nan))):
        name = f"1,500 concurrent streams: p99 {label} ≤ 1.2 × direct"
        if not (weir and direct):
            checks.append(Check(name, "not measured", None))
            continue
        ratio = pick(weir) / pick(direct)
        figure = f"{pick(weir):.1f} ms vs {pick(direct):.1f} ms: {ratio:.2f} ×"
        checks.append(Check(name, _with_errors(figure, weir), ratio <= 1.2 and weir.errors == 0))
    return checks


def _logging_cost(results: Results, request_log_rows: int | None) -> Check:
    name = "Request logging with bodies costs ≤ 10% of requests/s (64 connections)"
    on, off = results.get("closed-64", WEIR), results.get("closed-64", WEIR_NO_LOGS)
    if not (on and off and off.rate):
        return Check(name, "not measured", None)
    cost = 1 - on.rate / off.rate
    figure = f"{on.rate:,.0f} with bodies vs {off.rate:,.0f} without: {cost:+.1%}"
    if not request_log_rows:
        written = "it has no request_logs table" if request_log_rows is None else "it wrote no request logs"
        return Check(name, f"{figure}; not yet measurable: {written}, so both runs did the same work", None)
    return Check(name, f"{figure}; {request_log_rows:,} request logs written", cost <= 0.10)


def _with_errors(figure: str, measurement: Measurement) -> str:
    return f"{figure}; {measurement.errors} errors" if measurement.errors else figure


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "not measured"}[met]


def _unit(kind: str) -> str:
    return "streams" if kind == "stream" else "requests"


def _ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _cpu(measurement: Measurement) -> str:
    value = measurement.cpu_us_per_request
    return "–" if value is None else f"{value:,.0f}"


def _without_nan(value: Any) -> Any:
    """Return `value` with NaN and infinities replaced by None, which JSON can carry."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nan(item) for item in value]
    return value
