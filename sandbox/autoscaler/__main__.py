"""``python -m sandbox.autoscaler``: the autoscaler as a service.

Settings (ports, run directory, Prometheus and gateway addresses) come from ``SANDBOX_*``; its
own options from ``<run_dir>/autoscaler.json`` (written with defaults when missing, re-read
whenever it changes). SIGTERM ends the loop; the replicas it started keep running, recorded in
the deployment state (``sandbox deployments``; ``make down`` stops them).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from sandbox.autoscaler.controller import Controller, JsonLog
from sandbox.autoscaler.options import OptionsError, load_options, options_path, save_options
from sandbox.autoscaler.server import serve_http
from sandbox.deploy import Deployer, HttpGatewayRouting
from sandbox.runtime import runtime_for
from sandbox.settings import load_settings

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--options", type=Path, help="options file (default <run_dir>/autoscaler.json)"
    )
    args = parser.parse_args(argv)
    settings = load_settings()
    path = args.options or options_path(settings.run_dir)
    log = JsonLog()
    try:
        options = load_options(path)
    except OptionsError as exc:
        log("error", error=str(exc))
        return 2
    if not path.exists():
        save_options(path, options)

    deployer = Deployer(
        settings,
        runtime_for(settings),
        HttpGatewayRouting(settings.url(settings.gateway_port)),
        drain_timeout_s=options.drain_timeout_s,
    )
    controller = Controller(deployer, path, settings.prometheus_url, log=log)
    server = serve_http(options.host, options.port, controller.metrics.registry, controller.state)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log("started", port=options.port, options=options.model_dump(), options_file=str(path))
    try:
        while not stop.is_set():
            try:
                controller.tick()
            except Exception as exc:
                log("tick_failed", error=f"{type(exc).__name__}: {exc}")
            stop.wait(controller.options.interval_s)
    finally:
        server.shutdown()
        controller.close()
        deployer.close()
        log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
