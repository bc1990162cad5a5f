"""Grafana dashboards of the sandbox, as code (grafana-foundation-sdk 0.0.21).

One module per dashboard, each with one function that composes small panel builders from
``dashboards.panels``; ``python -m dashboards.generate`` writes the JSON next to this file.
"""

__all__: list[str] = []
