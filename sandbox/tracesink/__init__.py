"""The local-mode trace sink: an OTLP/HTTP receiver that keeps spans as OTLP JSON lines.

``server`` receives (``POST /v1/traces``, protobuf or JSON), ``store`` appends and rotates
``<run_dir>/traces/spans.jsonl``, ``reader`` finds traces and the slowest recent requests in it.
"""
