"""The engine speed probe and the rate scale a drill sizes its load with."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.engine_speed import EngineSpeed, EngineSpeedError, measure_engine, rate_scale
from sandbox.loadgen.profile import ProfileError, load_profile, scale_rates
from tests.support import free_port, poll_until, stop_process

STANDIN = Path(__file__).with_name("standin_engine.py")


def _standin(*flags: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(STANDIN), "--port", str(port), *flags])
    url = f"http://127.0.0.1:{port}"
    try:
        poll_until(lambda: _listening(url), "stand-in engine", 10)
        yield url
    finally:
        stop_process(process, timeout_s=5)


def _listening(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=1)
    except httpx.HTTPError:
        return False
    return True


@pytest.fixture
def engine() -> Iterator[str]:
    yield from _standin()


@pytest.fixture
def loading_engine() -> Iterator[str]:
    yield from _standin("--never-ready")


def test_the_probe_counts_requests_and_generated_tokens(engine: str) -> None:
    speed = measure_engine(engine, "tiny", requests=4, rounds=3)
    # The stand-in answers at once with one generated token per request.
    assert speed.requests_per_s > 10 and speed.tokens_per_s == pytest.approx(speed.requests_per_s)
    assert speed.seconds > 0


def test_the_reading_is_the_median_round(engine: str) -> None:
    speed = measure_engine(engine, "tiny", requests=4, rounds=5)
    assert len(speed.rounds) == 5
    assert speed.requests_per_s == sorted(speed.rounds)[2]
    with pytest.raises(ValueError, match="at least 1"):
        measure_engine(engine, "tiny", rounds=0)


def test_an_engine_that_refuses_or_is_gone_is_a_clear_error(loading_engine: str) -> None:
    with pytest.raises(EngineSpeedError, match="answered 503"):
        measure_engine(loading_engine, "tiny")
    with pytest.raises(EngineSpeedError, match="engine speed probe"):
        measure_engine(f"http://127.0.0.1:{free_port()}", "tiny", timeout_s=2)


def test_the_scale_is_today_over_the_reference_within_limits() -> None:
    def at(rps: float) -> EngineSpeed:
        return EngineSpeed(rps, rps * 64, 1.0)

    assert rate_scale(at(0.5), 1.5) == pytest.approx(1 / 3)
    assert rate_scale(at(0.01), 1.5) == 0.1  # too slow to mean the same drill: clamped
    assert rate_scale(at(60.0), 1.5) == 4.0


def test_scaled_profiles_keep_lengths_and_closed_loop_users() -> None:
    profile = load_profile("autoscale")
    scaled = scale_rates(profile, 0.25)
    for name, tenant in profile.tenants.items():
        assert scaled.tenants[name].rate_per_s == pytest.approx(tenant.rate_per_s * 0.25)
        assert scaled.tenants[name].output_tokens == tenant.output_tokens
        assert scaled.tenants[name].enabled == tenant.enabled
    assert scale_rates(profile, 1.0) is profile
    with pytest.raises(ProfileError, match="above 0"):
        scale_rates(profile, 0)
