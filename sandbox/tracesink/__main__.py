"""Run the trace sink: ``python -m sandbox.tracesink --port 4318 --out <run_dir>/traces/spans.jsonl``.

Without ``--out`` it writes under ``Settings.run_dir``; without ``--port``, on
``Settings.trace_sink_port``. Logs are one JSON object per line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import uvicorn

from sandbox.settings import load_settings
from sandbox.tracesink.server import create_app
from sandbox.tracesink.store import DEFAULT_MAX_BYTES, spans_path


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "ts": record.created,
                "level": record.levelname.lower(),
                "logger": record.name,
                "msg": record.getMessage(),
            }
        )


def main(argv: list[str] | None = None) -> None:
    settings = load_settings()
    parser = argparse.ArgumentParser(prog="python -m sandbox.tracesink", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.trace_sink_port)
    parser.add_argument("--out", type=Path, default=spans_path(settings.run_dir))
    parser.add_argument(
        "--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="rotate the file past this size"
    )
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    app = create_app(args.out, args.max_bytes)
    # access_log off: every exporter posts every half second, which says nothing.
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_config=None)


if __name__ == "__main__":
    main()
