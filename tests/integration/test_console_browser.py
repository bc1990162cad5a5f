"""The console in a real headless Chromium against the live stack with traffic running: every
dashboard loads and draws every panel that has data, no script error, a screenshot of each, and
a request's trace link opens its waterfall."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.console.dashboards import Catalog
from tests.integration.console_browser import chromium_context, require_browser
from tests.integration.traffic import background_traffic
from tests.support import StackHandle, poll_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live(local_stack: StackHandle) -> Iterator[tuple[StackHandle, dict[str, int]]]:
    """The stack with traffic flowing for the whole module, once the recording rules see it."""
    require_browser()
    settings = local_stack.settings
    with background_traffic(settings.url(settings.gateway_port), seconds=240) as outcomes:
        poll_until(
            lambda: httpx.get(
                f"{settings.prometheus_url}/api/v1/query",
                params={
                    "query": "version_tenant:sandbox_gateway_time_to_first_token_seconds_bucket:rate1m > 0"
                },
                timeout=5,
            ).json()["data"]["result"],
            "the recording rules over the traffic's first requests",
            timeout_s=90,
            interval_s=2,
        )
        yield local_stack, outcomes


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_context() as context:
        yield context


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: SANDBOX_TEST_ARTIFACTS when set (CI keeps it), else a temp folder."""
    chosen = os.environ.get("SANDBOX_TEST_ARTIFACTS")
    folder = Path(chosen) / "console" if chosen else tmp_path_factory.mktemp("console-shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    return problems


@pytest.mark.parametrize("uid", [spec.uid for _, spec in Catalog().all()])
def test_every_dashboard_draws_its_panels(
    live: tuple[StackHandle, dict[str, int]], browser: Any, shots: Path, uid: str
) -> None:
    stack, _ = live
    console = stack.settings.console_url
    # What has data before the page asks: a series that has points now still has them a second later.
    before = httpx.get(f"{console}/api/d/{uid}/data", params={"from": "now-5m"}, timeout=30).json()
    assert before["prometheus_error"] is None
    with_data = {
        p["id"]
        for p in before["panels"]
        if any(v is not None for s in p["series"] for v in s["values"])
    }
    page = browser.new_page()
    problems = _watch(page)
    try:
        page.goto(f"{console}/d/{uid}?from=now-5m")
        page.wait_for_function("document.body.dataset.firstDrawMs !== undefined", timeout=20000)
        drawn = page.evaluate(
            """() => Array.from(document.querySelectorAll('.panel')).map((p) => ({
                id: +p.dataset.panelId, type: p.classList.contains('panel-stat') ? 'stat' : 'timeseries',
                drawn: +(p.dataset.drawn || 0), noData: !!p.querySelector('.no-data'),
                canvas: !!p.querySelector('canvas'), value: (p.querySelector('.stat-value') || {}).textContent,
                error: p.querySelector('.panel-error').textContent }))"""
        )
        page.screenshot(path=str(shots / f"{uid}.png"), full_page=True)
        assert not problems, problems
        assert not page.query_selector(".banner.error"), page.inner_text("#banner")
        by_id = {p["id"]: p for p in drawn}
        assert set(by_id) == {p["id"] for p in before["panels"]}
        assert not [p for p in drawn if p["error"]], [p for p in drawn if p["error"]]
        for panel_id in with_data:
            shown = by_id[panel_id]
            assert shown["drawn"] > 0, f"{uid} panel {panel_id} has data but drew none: {shown}"
            if shown["type"] == "timeseries":
                assert shown["canvas"] and not shown["noData"], shown
            else:
                assert shown["value"] != "No data", shown
        assert len(with_data) >= len(drawn) // 2, (
            f"{uid}: most panels should have data: {with_data}"
        )
    finally:
        page.close()


def test_a_trace_link_opens_its_waterfall(
    live: tuple[StackHandle, dict[str, int]], browser: Any, shots: Path
) -> None:
    stack, _ = live
    console = stack.settings.console_url

    def with_llm_request() -> str | None:
        rows = httpx.get(f"{console}/api/traces", params={"limit": 20}, timeout=10).json()[
            "requests"
        ]
        for row in rows:
            view = httpx.get(f"{console}/api/traces/{row['trace_id']}", timeout=10).json()
            if any(r["name"] == "llm_request" for r in view["rows"]):
                return str(row["trace_id"])
        return None

    trace_id = poll_until(with_llm_request, "a request whose trace holds vLLM's llm_request", 60)
    page = browser.new_page()
    problems = _watch(page)
    try:
        page.goto(f"{console}/traces")
        link = page.locator(f"a.trace-link[href='/traces/{trace_id}']")
        if link.count() == 0:  # pushed off the first page by slower requests: filter for it
            page.goto(f"{console}/traces?limit=500")
        page.locator(f"a.trace-link[href='/traces/{trace_id}']").first.click()
        page.wait_for_selector("#waterfall")
        names = page.locator("#waterfall tr.span-row td:first-child").all_inner_texts()
        assert "llm_request" in names and "engine.decode" in names, names
        assert page.url.endswith(f"/traces/{trace_id}")
        page.screenshot(path=str(shots / "trace.png"), full_page=True)
        assert not problems, problems
    finally:
        page.close()


def test_exemplars_of_the_gateway_histograms_open_their_traces(
    live: tuple[StackHandle, dict[str, int]],
) -> None:
    stack, _ = live
    console = stack.settings.console_url

    def exemplars() -> list[dict[str, Any]]:
        data = httpx.get(
            f"{console}/api/d/sandbox-overview/data", params={"from": "now-5m"}, timeout=30
        ).json()
        return [e for p in data["panels"] for e in p["exemplars"]]

    found = poll_until(exemplars, "exemplars on the overview's gateway latency panels", 60, 3)
    opened = poll_until(
        lambda: next(
            (
                e
                for e in found
                if httpx.get(f"{console}/traces/{e['trace_id']}", timeout=10).status_code == 200
            ),
            None,
        ),
        "an exemplar's trace in the trace sink",
        30,
        2,
    )
    assert len(opened["trace_id"]) == 32
