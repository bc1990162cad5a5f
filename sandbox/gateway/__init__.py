"""The OpenAI-compatible gateway in front of the vLLM engines.

Run it with ``python -m sandbox.gateway`` (``sandbox up`` does, through ``component.py``)::

    python -m sandbox.gateway --port 8000 \\
        --engine stable=http://127.0.0.1:8100 \\
        --engine engine-canary:canary=http://127.0.0.1:8101 \\
        --config <run_dir>/gateway.json --retriever-url http://127.0.0.1:8200

``--engine`` is ``version=url`` or ``name:version=url`` (repeatable). ``--config`` is a JSON
file holding any fields of ``config.GatewayOptions`` (engines, weights, shadow, admission,
rag, models, tokenizer_path, max_prompt_tokens, max_tokens_limit, tenants, timeouts); flags add
to it and win over it. Defaults: ports, the tokenizer, the retriever and the trace sink come
from ``Settings`` (``SANDBOX_*``); the standard ``OTEL_EXPORTER_OTLP_*`` variables redirect
traces. Weights, shadow, admission and engines change at run time through ``/admin``
(see ``app``), e.g. ``sandbox gateway weights stable=90 canary=10``.

Modules: ``config`` (options), ``protocol`` (request checks), ``errors`` (engine failures as
OpenAI errors), ``routing`` (versions, weights, engine health), ``admission`` (token/sequence
budget, queue), ``rag`` (retriever call), ``tokens`` (prompt token counts), ``metrics``,
``call`` (one request's state and phase timeline), ``serving`` (one request, phase by phase),
``upstream`` (engine choice, retry, failures), ``relay`` (the SSE relay), ``shadow``
(mirrored copies), ``disconnect`` (client cancellation), ``accounting`` (metrics, spans, log
line), ``app`` (routes), ``component`` (the stack).
"""
