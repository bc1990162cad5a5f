"""Fake incidents for the grader's tests: samples written by hand (a calm baseline, then an
anomaly), turned into TSDB blocks by ``promtool`` and served by a real Prometheus.

Three incidents share one Prometheus, each in its own hour:
- ``fake-kv``: requests wait in the engine and the KV cache fills (expected ``engine.queue``);
- ``fake-retrieval``: the retriever's search slows down (expected ``retrieval``);
- ``fake-rollout``: a canary version answers 4xx (expected ``rollout``).
Gateway latency rises in the first two; the request rate stays flat in all three.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sandbox.design.window import Window
from tests.support import throwaway_prometheus

__all__ = ["BUCKETS", "INCIDENTS", "fake_incidents"]

STEP_S = 5
BASELINE_S = 300
INCIDENT_S = 300
BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
INCIDENTS = {"fake-kv": "engine.queue", "fake-retrieval": "retrieval", "fake-rollout": "rollout"}


def _wobble(i: int, size: float) -> float:
    return size * math.sin(i * 1.7) * math.cos(i * 0.3)


class _Writer:
    def __init__(self) -> None:
        self.families: dict[str, list[str]] = defaultdict(list)
        self.counters: dict[str, float] = defaultdict(float)

    def gauge(self, name: str, labels: str, t: float, value: float) -> None:
        self.families[name].append(f"{name}{{{labels}}} {value:.6f} {t:.3f}")

    def add(self, name: str, labels: str, t: float, amount: float) -> None:
        key = f"{name}{{{labels}}}"
        self.counters[key] += amount
        self.families[name].append(f"{key} {self.counters[key]:.6f} {t:.3f}")

    def histogram(self, name: str, labels: str, t: float, count: float, value: float) -> None:
        sep = "," if labels else ""
        for le in (*BUCKETS, math.inf):
            inside = count if value <= le else 0.0
            le_text = "+Inf" if math.isinf(le) else f"{le:g}"
            self.add(f"{name}_bucket", f'{labels}{sep}le="{le_text}"', t, inside)
        self.add(f"{name}_sum", labels, t, count * value)
        self.add(f"{name}_count", labels, t, count)

    def text(self) -> str:
        lines = []
        for name in sorted(self.families):
            lines.append(f"# TYPE {name} unknown")
            lines.extend(self.families[name])
        return "\n".join(lines) + "\n# EOF\n"


ENGINE = 'replica="engine-0",version="stable"'


def _write_incident(w: _Writer, incident: str, start: float) -> None:
    injected = start + BASELINE_S
    for i in range(int((BASELINE_S + INCIDENT_S) / STEP_S) + 1):
        t = start + i * STEP_S
        on = t >= injected
        kv = incident == "fake-kv" and on
        slow = incident == "fake-retrieval" and on
        canary = incident == "fake-rollout" and on
        rps = 2.0 + _wobble(i, 0.05)
        n = rps * STEP_S
        # the canary takes a share of the traffic; the total stays the same
        stable = n - 2.0 if canary else n
        w.add("sandbox_gateway_requests_total", 'version="stable",status_class="2xx"', t, stable)
        if canary:
            w.add("sandbox_gateway_requests_total", 'version="canary",status_class="4xx"', t, 1.0)
            w.add("sandbox_gateway_requests_total", 'version="canary",status_class="2xx"', t, 1.0)
        latency = 0.4 + _wobble(i, 0.01) + (3.0 if kv else 0.0) + (1.5 if slow else 0.0)
        w.histogram("sandbox_gateway_request_duration_seconds", 'version="stable"', t, n, latency)
        w.histogram(
            "sandbox_gateway_time_to_first_token_seconds", 'version="stable"', t, n, latency / 2
        )
        w.gauge("vllm:num_requests_waiting", ENGINE, t, 6.0 if kv else 0.0)
        if canary:  # the canary's engine serves beside stable
            w.gauge("vllm:num_requests_running", 'replica="canary-0",version="canary"', t, 1.0)
        w.gauge(
            "vllm:kv_cache_usage_perc",
            ENGINE,
            t,
            (0.95 if kv else 0.3) + _wobble(i, 0.01),
        )
        w.histogram("vllm:request_queue_time_seconds", ENGINE, t, n, 2.5 if kv else 0.05)
        w.add("vllm:prompt_tokens_total", ENGINE, t, n * (900 if kv else 200))
        w.histogram(
            "sandbox_retriever_phase_seconds", 'phase="search"', t, n / 2, 1.2 if slow else 0.02
        )


@contextmanager
def fake_incidents(tmp_path: Path) -> Iterator[list[Window]]:
    """A real Prometheus holding the three fake incidents; yields one Window each."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        pytest.skip("prometheus/promtool are not installed (run `make setup`)")
    now = int(time.time())
    hour = 3600
    starts = {inc: float(now - (3 - k) * hour - hour // 2) for k, inc in enumerate(INCIDENTS)}
    writer = _Writer()
    for incident, start in starts.items():
        _write_incident(writer, incident, start)
    source = tmp_path / "samples.om"
    source.write_text(writer.text())
    data = tmp_path / "data"
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
    )
    with throwaway_prometheus(tmp_path, data=data) as url:
        yield [
            Window(
                incident,
                url,
                start,
                start + BASELINE_S + INCIDENT_S,
                start + BASELINE_S,
                INCIDENTS[incident],
                float(STEP_S),
            )
            for incident, start in starts.items()
        ]
