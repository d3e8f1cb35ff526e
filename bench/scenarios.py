"""The scenarios, and measuring one target in one scenario.

A measurement runs one load generator against one target after a warm-up.
Over the same window it meters the CPU time and peak memory of the target's
process tree, the CPU time of the upstream and of the generator, and the busy
time of the whole machine. The machine's busy time beyond those is load from
other programs, reported so that a noisy run shows as one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.generators import GeneratorRun, run_loadgen, run_wrk
from bench.procstat import CLOCK_TICKS, UsageMeter
from bench.traffic import Target, raw_request
from bench.upstream import STREAM_EVENTS


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    kind: str
    """`closed` (wrk), `open` (loadgen at a fixed rate) or `stream` (loadgen, concurrent SSE streams)."""
    behaviour: str
    connections: int
    rate: float = 0.0
    body_size: int | None = None


SCENARIOS = (
    Scenario("closed-64", "Closed loop, 64 connections", "closed", "json", 64),
    Scenario("closed-256", "Closed loop, 256 connections", "closed", "json", 256),
    Scenario("open-2000", "Open loop at 2,000 requests/s", "open", "json", 64, rate=2000),
    Scenario("body-100k", "100 KB request bodies, closed loop, 64 connections", "closed", "json", 64,
             body_size=100 * 1024),
    Scenario("upstream-100ms", "100 users, upstream waits 100 ms", "closed", "slow", 100),
    Scenario("stream-low", "Streaming, low load (4 concurrent streams, events 5 ms apart)", "stream",
             "stream-quick", 4),
    Scenario("stream-1500", "Streaming, 1,500 concurrent streams, events 50 ms apart", "stream", "stream", 1500),
)


@dataclass
class Measurement:
    scenario: str
    target: str
    completed: int
    """Requests (or streams) that got a 2xx response."""
    errors: int
    """Non-2xx responses, socket errors, timeouts, and requests never sent or never finished."""
    seconds: float
    rate: float
    """Completed requests (or streams) per second."""
    latency_ms: dict[str, float]
    """p50, p99, p999 and max; for streams, of the time to the first event."""
    cpu_us_per_request: float | None
    peak_rss_mib: float
    generator_cpu_seconds: float
    other_load_cores: float
    """CPU the rest of the machine used during the run, in cores: a noise indicator."""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Runner:
    wrk: str
    loadgen: Path
    work_dir: Path
    seconds: float
    warmup_seconds: float
    upstream_pid: int

    def measure(self, scenario: Scenario, target: Target, warmup_seconds: float | None = None) -> Measurement:
        """Warm `target` up, then run `scenario` against it while metering CPU and memory."""
        warmup = self.warmup_seconds if warmup_seconds is None else warmup_seconds
        if scenario.kind != "stream" and warmup > 0:
            run_wrk(self.wrk, target, scenario.behaviour, min(scenario.connections, 64), warmup, self.work_dir,
                    scenario.body_size)

        machine_before, started = _machine_busy_seconds(), time.monotonic()
        with UsageMeter(target.pid) as target_meter, UsageMeter(self.upstream_pid) as upstream_meter:
            run = self._generate(scenario, target)
        wall, machine = time.monotonic() - started, _machine_busy_seconds() - machine_before

        target_usage, upstream_usage = target_meter.usage, upstream_meter.usage
        assert target_usage is not None and upstream_usage is not None
        ours = target_usage.cpu_seconds + run.cpu_seconds
        if target.pid != self.upstream_pid:
            ours += upstream_usage.cpu_seconds
        measurement = _summarise(scenario, target, run)
        # CPU was metered over the whole run, so divide by everything the run completed.
        all_completed = measurement.details.get("all_completed", measurement.completed)
        if all_completed:
            measurement.cpu_us_per_request = target_usage.cpu_seconds / all_completed * 1e6
        measurement.peak_rss_mib = target_usage.peak_rss_bytes / 2**20
        measurement.generator_cpu_seconds = run.cpu_seconds
        measurement.other_load_cores = max(0.0, (machine - ours) / wall)
        measurement.details["target_cpu_seconds"] = target_usage.cpu_seconds
        measurement.details["upstream_cpu_seconds"] = upstream_usage.cpu_seconds
        return measurement

    def _generate(self, scenario: Scenario, target: Target) -> GeneratorRun:
        if scenario.kind == "closed":
            return run_wrk(self.wrk, target, scenario.behaviour, scenario.connections, self.seconds, self.work_dir,
                           scenario.body_size)
        request = raw_request(target, scenario.behaviour, scenario.body_size)
        if scenario.kind == "open":
            return run_loadgen(self.loadgen, "open", target, request, scenario.connections, self.seconds,
                               scenario.rate, self.work_dir)
        return run_loadgen(self.loadgen, "stream", target, request, scenario.connections, self.seconds,
                           STREAM_EVENTS, self.work_dir)


def _summarise(scenario: Scenario, target: Target, run: GeneratorRun) -> Measurement:
    result = run.result
    if scenario.kind == "closed":
        seconds = result["duration_us"] / 1e6
        errors = sum(result[name] for name in ("connect_errors", "read_errors", "write_errors", "status_errors",
                                               "timeouts"))
        completed = result["requests"] - result["status_errors"]
        latency = {name: result[f"{name}_us"] / 1e3 for name in ("p50", "p99", "p999", "max")}
        details: dict[str, Any] = {"mean_ms": result["mean_us"] / 1e3}
    else:
        seconds = result["seconds"]
        errors = result["non_2xx"] + result["errors"] + result["unfinished"]
        summary = result["latency_ms"] if scenario.kind == "open" else result["first_event_ms"]
        latency = {name: summary.get(name, float("nan")) for name in ("p50", "p99", "p999", "max")}
        details = {"generator": result, "all_completed": result["completed"]}
        if scenario.kind == "open":
            completed = result["completed"]
            errors += result["scheduled"] - result["dispatched"]
        else:
            # Streams started in the measured window; those of the staggered start are not recorded.
            completed = result["duration_ms"]["count"]
            errors += result["short_streams"]
    return Measurement(
        scenario=scenario.key, target=target.name, completed=completed, errors=errors, seconds=seconds,
        rate=completed / seconds if seconds else 0.0, latency_ms=latency, cpu_us_per_request=None,
        peak_rss_mib=0.0, generator_cpu_seconds=0.0, other_load_cores=0.0, details=details,
    )


def _machine_busy_seconds() -> float:
    """Return the CPU time all cores spent not idle since boot, from the first line of /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already inside user).
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / CLOCK_TICKS
