"""``python -m sandbox.gateway``: see the package docstring for the flags."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import uvicorn

from sandbox.gateway.app import create_app
from sandbox.gateway.config import load_options
from sandbox.settings import load_settings
from sandbox.telemetry import configure_logging, configure_tracing


def main(argv: list[str] | None = None) -> None:
    settings = load_settings()
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.gateway", description="The sandbox's OpenAI-compatible gateway."
    )
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.gateway_port)
    parser.add_argument(
        "--engine", action="append", default=[], help="version=url or name:version=url (repeatable)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=settings.run_dir / "gateway.json",
        help="JSON file with GatewayOptions fields (used when it exists)",
    )
    parser.add_argument(
        "--retriever-url", default=None, help=f"default {settings.url(settings.retriever_port)}"
    )
    parser.add_argument(
        "--otlp-endpoint", default=None, help="OTLP/HTTP traces URL; 'none' turns export off"
    )
    parser.add_argument(
        "--model", action="append", default=None, help="served model name (repeatable)"
    )
    args = parser.parse_args(argv)

    options = load_options(args.config, args.engine, models=args.model)
    if options.tokenizer_path is None and (settings.model_dir / "tokenizer.json").exists():
        options.tokenizer_path = settings.model_dir / "tokenizer.json"
    if args.retriever_url or options.rag.retriever_url is None:
        options.rag.retriever_url = args.retriever_url or settings.url(settings.retriever_port)
    if args.model is None and options.models == ["tiny"]:
        options.models = [settings.served_model_name]

    configure_logging("gateway")
    logging.getLogger("httpx").setLevel(
        logging.WARNING
    )  # a line per upstream call says nothing new
    tracing = configure_tracing("gateway", settings, endpoint=args.otlp_endpoint)
    serve(create_app(options, tracing), args.host, args.port)


def serve(app: Any, host: str, port: int) -> None:
    """Serve ``app`` as the gateway is served (``bench/bare_relay.py`` uses it too, so the floor it
    measures runs on the same server settings)."""
    # Our own request log line replaces uvicorn's access log (it has the phases and trace id).
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    main()
