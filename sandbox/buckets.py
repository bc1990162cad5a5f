"""Every histogram bucket set of the sandbox, named once.

The gateway, the retriever and the load generator share ``LATENCY_BUCKETS_S`` on purpose: a
phase's p99 read from the gateway and the same request's p99 read from the client are then
quantised the same way, so their difference is time and not bucket boundaries. (vLLM's own
histograms have buckets of their own, none below 0.3 s for its request phases.)
"""

from __future__ import annotations

__all__ = ["LATENCY_BUCKETS_S", "STARTUP_BUCKETS_S", "TOKEN_LATENCY_BUCKETS_S"]

# Request and phase latency (gateway phases, retrieval steps, client TTFT and E2E): fine below
# 100 ms, where gateway phases and a healthy TTFT live, coarse up to 5 minutes, where an injected
# heavy tail or a queueing collapse ends up. The SLO thresholds (stack/slos.yaml: TTFT 2 s, E2E
# 30 s) are edges, so "p99 over the SLO" means what it says: with 1.5 and 2.5 as neighbours and
# no 2.0, one chat request at 1.6 s read as a p99 of 2.3 s and kept the TTFT page firing after
# kv-exhaustion's fix. A test proves every SLO threshold an edge.
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.4, 0.6,
    1.0, 1.5, 2.0, 2.5, 4.0, 6.0, 10.0, 15.0, 20.0, 30.0, 40.0, 60.0, 120.0, 300.0,
)  # fmt: skip

# Time per output token as the client sees it: a healthy decode step is milliseconds to tens of
# milliseconds on the CPU engine, a preempted or overloaded one up to seconds.
TOKEN_LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05,
    0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0,
)  # fmt: skip

# Engine start-up (scale-out to ready): tens of seconds on a CPU (model load, KV allocation,
# warm-up), minutes on a GPU host pulling large weights; the deployer gives up at 600 s.
STARTUP_BUCKETS_S: tuple[float, ...] = (
    5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 240.0, 300.0, 450.0, 600.0,
)  # fmt: skip
