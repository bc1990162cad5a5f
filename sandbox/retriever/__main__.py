"""``python -m sandbox.retriever``: run the retriever service until SIGTERM/SIGINT.

Defaults come from ``sandbox.settings`` (``SANDBOX_HOST``, ``SANDBOX_RETRIEVER_PORT``); flags
override them, which is how ``component.py`` starts it with a stack's own ports.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

__all__ = ["main"]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default=None, help="address to bind [SANDBOX_HOST]")
@click.option("--port", type=int, default=None, help="port to bind [SANDBOX_RETRIEVER_PORT]")
@click.option(
    "--otlp-endpoint",
    default=None,
    help="OTLP/HTTP traces URL (…/v1/traces); 'none' exports nothing [default: OTEL_* variables, then the local trace sink]",
)
@click.option(
    "--qdrant-path",
    type=click.Path(path_type=Path),
    default=None,
    help="keep the index on disk here (embedded Qdrant)",
)
@click.option(
    "--qdrant-url", default=None, help="use a Qdrant server instead of the embedded store"
)
@click.option(
    "--corpus-root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="folder the corpus globs are read from",
)
@click.option(
    "--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"])
)
def main(
    host: str | None,
    port: int | None,
    otlp_endpoint: str | None,
    qdrant_path: Path | None,
    qdrant_url: str | None,
    corpus_root: Path | None,
    log_level: str,
) -> None:
    """Serve the RAG retriever: POST /search, /ready, /health, /metrics, /admin/fault."""
    from sandbox.retriever.app import create_app
    from sandbox.retriever.config import RetrieverOptions
    from sandbox.settings import load_settings
    from sandbox.telemetry import configure_logging, serve_app

    settings = load_settings()
    overrides: dict[str, Any] = {
        "host": host or settings.host,
        "port": port or settings.retriever_port,
        "otlp_endpoint": otlp_endpoint,
        "qdrant_path": qdrant_path,
        "qdrant_url": qdrant_url,
    }
    if corpus_root is not None:
        overrides["corpus_root"] = corpus_root
    options = RetrieverOptions(**overrides)
    configure_logging("retriever", getattr(logging, log_level.upper()))
    logging.getLogger("sandbox.retriever").info(
        "starting", extra={"options": options.model_dump(mode="json")}
    )
    serve_app(
        create_app(options, settings), options.host, options.port, timeout_graceful_shutdown=5
    )


if __name__ == "__main__":
    main()
