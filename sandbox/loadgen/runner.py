"""The asynchronous runner: schedules every tenant's requests, sends them, measures them.

One asyncio task per open-loop tenant walks its arrival schedule; each arrival becomes a task of
its own that sends one request (open loop: nothing waits for an earlier answer). A closed-loop
tenant runs ``users`` tasks, each sending its next request when the previous one has ended.
A tenant with ``burst: n`` sends n requests at once where it would send one (a user that
waits for all n before its next batch).
The request's payload (an exact-length prompt) is built *before* its start time, so building it
does not delay the start.

How one request is sent and measured (TTFT, TPOT, E2E, tokens, outcome) is
``sandbox.loadgen.request``; this module schedules them and keeps the counts.

The tenants can be changed while running (``update_tenant``, thread-safe: the control API runs
on its own thread); a sleeping tenant is woken and redraws its next arrival from now, which is
exact for a Poisson process (it has no memory).

Stopping: at the end of the duration or request budget the schedule stops and requests in
flight may finish (up to ``drain_s``); ``stop(cancel=True)`` (Ctrl-C, SIGTERM) cancels them,
and they count as ``cancelled``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import numpy as np

from sandbox.exceptions import ConfigError
from sandbox.httpstream import StreamClient
from sandbox.loadgen.arrivals import ArrivalKind, next_arrival
from sandbox.loadgen.metrics import LoadgenMetrics
from sandbox.loadgen.profile import Profile, Tenant, TenantUpdate
from sandbox.loadgen.prompts import PromptBuilder
from sandbox.loadgen.request import PlannedRequest, send_request
from sandbox.loadgen.results import RequestResult, summarize

log = logging.getLogger("sandbox.loadgen")

__all__ = ["RAG_HEADER", "TENANT_HEADER", "RunOptions", "Runner", "UnknownTenant"]

TENANT_HEADER = "X-Sandbox-Tenant"
RAG_HEADER = "X-Sandbox-RAG"
# How far ahead a tenant looks for its next arrival while its rate is 0 (it looks again later).
LOOKAHEAD_S = 30.0
# The first arrivals are scheduled this long after start, so setting up does not make them late.
START_LEAD_S = 0.05


class UnknownTenant(ConfigError, KeyError):
    """The control API named a tenant that is not in the running profile."""


@dataclass
class RunOptions:
    target: str  # base URL of an OpenAI-compatible server (engine or gateway)
    duration_s: float | None = None  # None: the profile's duration (unless max_requests is given)
    max_requests: int | None = None
    seed: int | None = None
    drain_s: float | None = None  # None: the profile's request timeout
    out_dir: Path | None = None  # requests.jsonl and summary.json go here
    progress: Callable[[dict[str, Any]], None] | None = None  # called about once a second
    progress_interval_s: float = 1.0
    extra_headers: dict[str, str] = field(default_factory=dict)
    # "fast" (sandbox.httpstream: plain http:// only, far less CPU per request) or "httpx" (anything httpx
    # speaks, e.g. https://). "auto": fast where it can, else httpx.
    http_client: str = "auto"


class Runner:
    def __init__(
        self,
        profile: Profile,
        options: RunOptions,
        metrics: LoadgenMetrics | None = None,
        prompts: PromptBuilder | None = None,
    ) -> None:
        self.profile = profile
        self.options = options
        self.metrics = metrics or LoadgenMetrics(profile.tenants)
        self.prompts = prompts or PromptBuilder()
        self.rng = np.random.default_rng(options.seed)
        self.results: list[RequestResult] = []
        self.dropped: dict[str, int] = {name: 0 for name in profile.tenants}
        self.stopped_by = "running"
        # Tenants as they are now (the control API changes them); guarded by a lock because
        # the control API runs on another thread.
        self._lock = threading.Lock()
        self._tenants: dict[str, Tenant] = dict(profile.tenants)
        self._wake: dict[str, asyncio.Future[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._cancel = False
        self._in_flight: set[asyncio.Task[None]] = set()
        self._count = 0  # requests started
        self._t0 = 0.0
        self._end_s = float("inf")
        self._log: IO[str] | None = None
        self._recent_ttft: deque[float] = deque(maxlen=500)
        self._rngs = {
            name: np.random.default_rng(self.rng.integers(2**63)) for name in profile.tenants
        }
        self._client: httpx.AsyncClient | None = None
        self._fast: StreamClient | None = None
        self._target = options.target.rstrip("/")
        self._errors = 0  # finished requests with an outcome other than ok or cancelled
        self.started = threading.Event()

    # -- Control (any thread) ---------------------------------------------------------------

    def tenants(self) -> dict[str, Tenant]:
        with self._lock:
            return dict(self._tenants)

    def tenant(self, name: str) -> Tenant:
        with self._lock:
            if name not in self._tenants:
                raise UnknownTenant(name)
            return self._tenants[name]

    def update_tenant(self, name: str, update: TenantUpdate) -> Tenant:
        with self._lock:
            if name not in self._tenants:
                raise UnknownTenant(name)
            self._tenants[name] = new = update.apply(self._tenants[name])
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake_tenant, name)
        return new

    def stop(self, cancel: bool = True, why: str = "stop") -> None:
        """Stop scheduling; with ``cancel``, also cancel what is in flight. Thread-safe."""
        if self._loop is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._stop_now, cancel, why)

    def _stop_now(self, cancel: bool, why: str) -> None:
        if self.stopped_by == "running":
            self.stopped_by = why
        self._cancel = self._cancel or cancel
        assert self._stop is not None
        self._stop.set()
        for name in list(self._wake):
            self._wake_tenant(name)
        if cancel:
            for task in list(self._in_flight):
                task.cancel()

    def _wake_tenant(self, name: str) -> None:
        # A closed-loop tenant's users sleep under "<tenant>#<user>".
        for key, fut in list(self._wake.items()):
            if (key == name or key.startswith(name + "#")) and not fut.done():
                fut.set_result(None)

    # -- Time ------------------------------------------------------------------------------

    def now_s(self) -> float:
        # perf_counter, not loop.time(): uvloop's clock has millisecond steps and is read once
        # per loop turn, too coarse for TPOT and for start-time errors.
        return time.perf_counter() - self._t0

    async def _sleep_until(self, tenant: str, at_s: float) -> bool:
        """Sleep until ``at_s`` (run time); False when woken early by a change or a stop."""
        assert self._loop is not None and self._stop is not None
        if self._stop.is_set():
            return False
        fut: asyncio.Future[None] = self._loop.create_future()
        self._wake[tenant] = fut

        def wake() -> None:
            if not fut.done():  # a stop may have woken it first
                fut.set_result(None)

        handle = self._loop.call_later(max(0.0, at_s - self.now_s()), wake)
        try:
            await fut
        finally:
            handle.cancel()
            self._wake.pop(tenant, None)
        if self._stop.is_set():
            return False
        early = at_s - self.now_s()
        if early > 0.002:
            return False  # woken by a change, not by the timer
        if early > 0:
            # Timers have millisecond granularity and may fire a little early: wait out the rest.
            await asyncio.sleep(early)
        return True

    # -- Planning --------------------------------------------------------------------------

    def _budget_left(self) -> bool:
        return self.options.max_requests is None or self._count < self.options.max_requests

    def _plan(
        self, name: str, tenant: Tenant, at_s: float, rng: np.random.Generator
    ) -> PlannedRequest:
        prompt_tokens = tenant.prompt_tokens.sample(rng)
        max_tokens = tenant.output_tokens.sample(rng)
        rag = bool(tenant.rag_share > 0 and rng.random() < tenant.rag_share)
        prompt = self.prompts.build(prompt_tokens, rng)
        body: dict[str, Any] = {
            "model": self.profile.model,
            "max_tokens": max_tokens,
            # The engine must generate exactly max_tokens (the tiny model may stop at EOS early).
            "ignore_eos": True,
            "stream": tenant.stream,
        }
        if tenant.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
            path = "/v1/chat/completions"
        else:
            body["prompt"] = prompt
            path = "/v1/completions"
        if tenant.stream:
            body["stream_options"] = {"include_usage": True}
        headers = {TENANT_HEADER: name, **self.options.extra_headers}
        if rag:
            headers[RAG_HEADER] = "1"
        payload = json.dumps(body).encode()
        return PlannedRequest(
            name, at_s, body, headers, path, payload, prompt_tokens, max_tokens, rag, tenant.stream
        )

    # -- Tenants ---------------------------------------------------------------------------

    async def _open_loop(self, name: str, client: httpx.AsyncClient) -> None:
        assert self._stop is not None
        rng = self._rngs[name]
        t = 0.0
        while not self._stop.is_set() and self._budget_left() and self.now_s() < self._end_s:
            tenant = self.tenant(name)
            if not tenant.enabled or tenant.arrival is ArrivalKind.CLOSED or tenant.rate_per_s <= 0:
                await self._sleep_until(name, min(self._end_s, self.now_s() + LOOKAHEAD_S))
                t = max(t, self.now_s())
                continue
            shape = self.profile.shape_of(name)
            base = tenant.rate_per_s
            horizon = min(self._end_s, max(t, self.now_s()) + LOOKAHEAD_S)
            at = next_arrival(
                t, lambda x: base * shape.factor(x), rng, tenant.arrival, horizon=horizon
            )
            if at is None:
                if horizon >= self._end_s:
                    return
                t = horizon
                continue
            burst = [self._plan(name, tenant, at, rng) for _ in range(tenant.burst)]
            if not await self._sleep_until(name, at):
                # A change (or a stop) woke us: redraw from now with the tenant as it is now.
                t = max(t, self.now_s())
                continue
            t = at
            for planned in burst:
                if not self._budget_left():
                    return
                if len(self._in_flight) >= self.profile.max_in_flight:
                    self.dropped[name] += 1
                    self.metrics.tenants[name].dropped.inc()
                    continue
                self._launch(planned)

    async def _closed_loop(self, name: str, user: int, client: httpx.AsyncClient) -> None:
        assert self._stop is not None
        rng = np.random.default_rng(self._rngs[name].integers(2**63) + user)
        while not self._stop.is_set() and self._budget_left() and self.now_s() < self._end_s:
            tenant = self.tenant(name)
            if (
                not tenant.enabled
                or tenant.arrival is not ArrivalKind.CLOSED
                or user >= tenant.users
            ):
                await self._sleep_until(
                    f"{name}#{user}", min(self._end_s, self.now_s() + LOOKAHEAD_S)
                )
                continue
            now = self.now_s()
            batch = [self._launch(self._plan(name, tenant, now, rng)) for _ in range(tenant.burst)]
            await asyncio.wait(batch)
            if tenant.think_time_s > 0:
                await self._sleep_until(f"{name}#{user}", self.now_s() + tenant.think_time_s)

    def _launch(self, planned: PlannedRequest) -> asyncio.Task[None]:
        index = self._count
        self._count += 1
        task = asyncio.ensure_future(self._send(planned, index))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        if not self._budget_left():
            self._stop_now(cancel=False, why="requests")
        return task

    # -- One request -----------------------------------------------------------------------

    async def _send(self, p: PlannedRequest, index: int) -> None:
        m = self.metrics.tenants[p.tenant]
        m.in_flight.inc()
        try:
            r = await send_request(
                p,
                index,
                clock=self.now_s,
                fast=self._fast,
                client=self._client,
                target=self._target,
                timeout_s=self.profile.request_timeout_s,
            )
        finally:
            m.in_flight.dec()
        if r.outcome == "ok":
            # Without streaming the user sees nothing until the whole answer: its TTFT is its E2E.
            ttft = r.ttft_s if p.stream else r.e2e_s
            r.slo_met = self.profile.slo.met(ttft, r.tpot_s, r.e2e_s or 0.0)
        self._record(r)

    def _record(self, r: RequestResult) -> None:
        m = self.metrics.tenants[r.tenant]
        m.outcome[r.outcome].inc()
        m.output_tokens.inc(r.output_tokens)
        m.prompt_tokens.inc(
            r.prompt_tokens
            if r.prompt_tokens is not None
            else (r.prompt_tokens_sent if r.outcome == "ok" else 0)
        )
        if r.outcome == "ok":
            if r.ttft_s is not None:
                m.ttft.observe(r.ttft_s)
                self._recent_ttft.append(r.ttft_s)
            if r.tpot_s is not None:
                m.tpot.observe(r.tpot_s)
            if r.e2e_s is not None:
                m.e2e.observe(r.e2e_s)
        if r.outcome not in ("ok", "cancelled"):
            self._errors += 1
        self.results.append(r)
        if self._log is not None:
            self._log.write(r.to_json() + "\n")

    # -- Progress --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What the progress line shows (also GET /control/status)."""
        if self._loop is None:
            return {"state": "starting"}
        elapsed = max(self.now_s(), 1e-9)
        errors = self._errors
        ttft = sorted(self._recent_ttft)
        rates = {}
        for name, tenant in self.tenants().items():
            shape = self.profile.shape_of(name)
            on = tenant.enabled and tenant.arrival is not ArrivalKind.CLOSED
            rates[name] = tenant.rate_per_s * shape.factor(elapsed) if on else 0.0
        return {
            "state": self.stopped_by,
            "elapsed_s": round(elapsed, 1),
            "sent": self._count,
            "done": len(self.results),
            "sent_per_s": round(self._count / elapsed, 2),
            "in_flight": len(self._in_flight),
            "errors": errors,
            "dropped": sum(self.dropped.values()),
            "ttft_p95_s": round(ttft[int(0.95 * (len(ttft) - 1))], 4) if ttft else None,
            "target_rate_per_s": {k: round(v, 3) for k, v in rates.items()},
        }

    async def _progress(self) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            snap = self.snapshot()
            for name, rate in snap["target_rate_per_s"].items():
                self.metrics.tenants[name].target_rate.set(rate)
            if self.options.progress is not None:
                self.options.progress(snap)
            if self._log is not None:
                self._log.flush()
            try:
                await asyncio.wait_for(self._stop.wait(), self.options.progress_interval_s)
            except TimeoutError:
                pass

    # -- The run ---------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Run until the duration or request budget is spent, or ``stop``; return the summary."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        duration = self.options.duration_s
        if duration is None and self.options.max_requests is None:
            duration = self.profile.duration_s
        out = self.options.out_dir
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            self._log = open(out / "requests.jsonl", "w")
        limits = httpx.Limits(
            max_connections=self.profile.max_in_flight,
            max_keepalive_connections=self.profile.max_in_flight,
        )
        timeout = httpx.Timeout(self.profile.request_timeout_s, connect=10.0)
        wall_start = time.time()
        fast = self.options.http_client == "fast" or (
            self.options.http_client == "auto" and self.options.target.startswith("http://")
        )
        self._target = self.options.target.rstrip("/")
        if fast and not self._target.startswith("http://"):
            raise ValueError(
                f"the fast client speaks plain http://host:port only, not {self.options.target!r}"
            )
        # Timeouts are the request's own (asyncio.timeout around each), as for httpx.
        self._fast = StreamClient() if fast else None
        async with httpx.AsyncClient(
            base_url=self.options.target, limits=limits, timeout=timeout
        ) as client:
            self._client = client
            self._t0 = time.perf_counter() + START_LEAD_S
            self._end_s = duration if duration is not None else float("inf")
            tasks = [
                asyncio.ensure_future(self._open_loop(name, client))
                for name in self.profile.tenants
            ]
            for name, tenant in self.profile.tenants.items():
                # Users beyond the profile's count may be added through the control API up to 4x.
                for user in range(
                    max(tenant.users, 1) * (4 if tenant.arrival is ArrivalKind.CLOSED else 0)
                ):
                    tasks.append(asyncio.ensure_future(self._closed_loop(name, user, client)))
            progress = asyncio.ensure_future(self._progress())
            self.started.set()
            try:
                await self._schedule_done(tasks)
                await self._drain()
            finally:
                self._stop.set()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for task in list(self._in_flight):
                    task.cancel()
                await asyncio.gather(*self._in_flight, return_exceptions=True)
                await asyncio.gather(progress, return_exceptions=True)
                if self._fast is not None:
                    await self._fast.aclose()
        elapsed = self.now_s()
        if self.stopped_by == "running":
            self.stopped_by = "requests" if not self._budget_left() else "duration"
        summary = summarize(
            self.results,
            elapsed,
            self.dropped,
            self.profile.slo,
            {
                "profile": self.profile.name,
                "target": self.options.target,
                "seed": self.options.seed,
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall_start)),
                "duration_s": duration,
                "max_requests": self.options.max_requests,
                "stopped_by": self.stopped_by,
            },
        )
        if self._log is not None:
            self._log.close()
            self._log = None
        if out is not None:
            (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    async def _schedule_done(self, tasks: list[asyncio.Task[None]]) -> None:
        """Until every tenant has finished its schedule, or the run is stopped."""
        assert self._stop is not None
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            pending: set[asyncio.Future[Any]] = set(tasks)
            while pending and not self._stop.is_set():
                done, pending = await asyncio.wait(
                    pending | {stop}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(stop)
                for task in done:
                    if task is not stop and not task.cancelled() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
        finally:
            stop.cancel()

    async def _drain(self) -> None:
        """Let requests in flight finish (unless cancelled); what is left after drain_s is cancelled."""
        assert self._loop is not None
        drain = (
            self.options.drain_s
            if self.options.drain_s is not None
            else self.profile.request_timeout_s
        )
        deadline = time.perf_counter() + drain
        # Short waits, so a stop(cancel=True) during the drain is seen quickly.
        while self._in_flight and not self._cancel and time.perf_counter() < deadline:
            await asyncio.wait(
                set(self._in_flight), timeout=min(0.2, deadline - time.perf_counter())
            )
