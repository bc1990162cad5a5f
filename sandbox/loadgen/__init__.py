"""The load generator: open-loop LLM traffic, measured as the client sees it.

Modules, one job each:

- ``profile``: the profile format (tenants, lengths, shape, SLO), validated; errors name the field;
- ``distributions`` (token lengths), ``shapes`` (rate over time), ``arrivals`` (Poisson, uniform);
- ``prompts``: prompts of an exact token count, cut from the project's docs with the engine's tokenizer;
- ``runner``: schedules and sends requests, measures TTFT / TPOT / E2E / outcome, writes the log
  (the hot path speaks through ``sandbox.httpstream``, httpx for the rest);
- ``metrics``: the Prometheus metrics; ``control``: ``/metrics`` and the control API on one port;
- ``results``: per-request records and the end-of-run summary; ``service``: one run as a program
  (signals, progress); ``component``: the stack's ``loadgen`` service; ``target``: the default target;
- ``streamserver``: a fast OpenAI-style streaming endpoint without a model, for calibration and tests.

Run it with ``sandbox load run PROFILE`` (or ``make load PROFILE=... DURATION=...``).
"""
