"""Run the console: ``python -m sandbox.console [--host 127.0.0.1] [--port 3000]``.

Defaults come from the sandbox's settings (``SANDBOX_CONSOLE_PORT``, ``SANDBOX_PROMETHEUS_PORT``,
``SANDBOX_RUN_DIR``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from sandbox.console.app import ConsoleConfig, create_app
from sandbox.settings import load_settings


def main(argv: list[str] | None = None) -> None:
    settings = load_settings()
    parser = argparse.ArgumentParser(prog="python -m sandbox.console", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.console_port)
    parser.add_argument("--prometheus-url", default=settings.prometheus_url)
    parser.add_argument("--run-dir", type=Path, default=settings.run_dir)
    parser.add_argument("--refresh-s", type=float, default=5.0, help="how often dashboards refresh")
    args = parser.parse_args(argv)
    app = create_app(ConsoleConfig(args.prometheus_url, args.run_dir, args.refresh_s))
    # The browser polls every few seconds: an access log line per poll would say nothing.
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
