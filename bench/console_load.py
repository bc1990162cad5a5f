"""What the console costs: how fast a 12-panel dashboard loads and draws, and what refreshing an
open dashboard costs the console's process.

Uses the running stack (`make up`; default settings, or SANDBOX_* variables) for Prometheus,
the gateway and the run directory, and starts a console of its own on a free port so its CPU
time is its alone. While it measures, light streaming traffic runs through the gateway
(``--no-traffic`` when a drill or `make load` already sends some). Then, in Debian's headless
Chromium:

- load: ``--loads`` fresh page loads of the serving overview (12 panels, the last 15 minutes),
  each timed from navigation to the last panel drawn; the goal is under 2 s;
- refresh: the same dashboard left open, refreshing every 5 s for ``--seconds``; the console's
  CPU time over that window, as a share of one core, minus the same window with no page open;
  the goal is under 5%.

Run: `.venv/bin/python bench/console_load.py [--loads 5] [--seconds 60] [--no-traffic]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.components.base import free_port
from sandbox.settings import load_settings
from tests.integration.console_browser import chromium_context
from tests.integration.traffic import background_traffic

DASHBOARD = "sandbox-overview"


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _share(pid: int, seconds: float) -> float:
    before, start = _cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return (_cpu_s(pid) - before) / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-traffic", action="store_true")
    args = parser.parse_args()
    settings = load_settings()
    try:
        httpx.get(f"{settings.prometheus_url}/-/ready", timeout=3).raise_for_status()
    except httpx.HTTPError as exc:
        sys.exit(
            f"Prometheus at {settings.prometheus_url} does not answer ({exc}): `make up` first"
        )

    port = free_port(settings.host)
    console = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.console",
            "--host",
            settings.host,
            "--port",
            str(port),
            "--prometheus-url",
            settings.prometheus_url,
            "--run-dir",
            str(settings.run_dir),
            "--refresh-s",
            "5",
        ],
        cwd=Path(__file__).resolve().parents[1],
    )
    url = f"http://{settings.host}:{port}"
    traffic = (
        nullcontext({})
        if args.no_traffic
        else background_traffic(settings.url(settings.gateway_port), args.seconds * 3 + 120)
    )
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        with traffic as outcomes, chromium_context() as browser:
            time.sleep(5)  # let the traffic start
            loads = []
            panels = 0
            for _ in range(args.loads):
                page = browser.new_page()
                page.goto(f"{url}/d/{DASHBOARD}?from=now-15m")
                page.wait_for_function(
                    "document.body.dataset.firstDrawMs !== undefined", timeout=30000
                )
                loads.append(float(page.evaluate("+document.body.dataset.firstDrawMs")) / 1000)
                panels = int(page.evaluate("document.querySelectorAll('.panel').length"))
                with_data = int(
                    page.evaluate(
                        "document.querySelectorAll('.panel[data-drawn]:not([data-drawn=\"0\"])').length"
                    )
                )
                if page.query_selector(".banner.error") or with_data < panels // 2:
                    sys.exit(f"only {with_data} of {panels} panels drew data: is traffic running?")
                page.close()
            idle = _share(console.pid, min(args.seconds, 30.0))
            page = browser.new_page()
            page.goto(f"{url}/d/{DASHBOARD}?from=now-15m")
            page.wait_for_function("document.body.dataset.firstDrawMs !== undefined", timeout=30000)
            open_share = _share(console.pid, args.seconds)
            if page.query_selector(".banner.error"):
                sys.exit(
                    "Prometheus stopped answering during the measure: the figures would be wrong"
                )
            refreshes = int(page.evaluate("+document.body.dataset.refreshes"))
            last_draw_ms = float(page.evaluate("+document.body.dataset.lastDrawMs"))
            page.close()
    finally:
        console.terminate()
        console.wait(timeout=10)

    print(
        f"dashboard {DASHBOARD}: {panels} panels ({with_data} with data), last 15 minutes, "
        "Chromium headless"
    )
    print(
        f"load and draw: median {statistics.median(loads):.2f} s, max {max(loads):.2f} s "
        f"over {len(loads)} loads (goal < 2 s)"
    )
    print(
        f"refresh every 5 s: {refreshes} refreshes in {args.seconds:.0f} s, last one "
        f"{last_draw_ms:.0f} ms from request to drawn"
    )
    print(
        f"console CPU: {100 * open_share:.2f}% of a core with the page open, "
        f"{100 * idle:.2f}% with none; refreshing costs {100 * (open_share - idle):.2f}% (goal < 5%)"
    )
    if outcomes:
        print(f"traffic meanwhile: {dict(sorted(outcomes.items()))}")


if __name__ == "__main__":
    main()
