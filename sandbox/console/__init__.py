"""The console: the sandbox's own web app for local mode (Grafana's port, 3000), with the
dashboards drawn live from their Grafana JSON, recent requests as phase waterfalls, and the
running drill's page, timeline and hints. ``python -m sandbox.console`` runs it; the stack
starts it as the ``console`` component."""
