"""The load generator's model: arrival statistics, shapes, length distributions, profiles, prompts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from sandbox.gateway.config import GatewayOptions
from sandbox.loadgen.arrivals import ArrivalKind, next_arrival, schedule
from sandbox.loadgen.distributions import Empirical, LogNormal, Normal, Uniform
from sandbox.loadgen.profile import (
    ProfileError,
    TenantUpdate,
    load_profile,
    parse_profile,
    profile_names,
    tenant_view,
)
from sandbox.loadgen.prompts import PromptBuilder, PromptError
from sandbox.loadgen.shapes import Constant, Ramp, Schedule, Spike, Step

# -- Arrivals -----------------------------------------------------------------------------------


def test_poisson_arrivals_have_the_rate_and_exponential_gaps() -> None:
    rate, duration = 5.0, 2000.0
    times = np.asarray(schedule(lambda t: rate, duration, np.random.default_rng(7)))
    # The count of a Poisson process over T has mean and variance rate*T: within 4 sigma.
    expected = rate * duration
    assert abs(len(times) - expected) < 4 * np.sqrt(expected)
    # Gaps are exponential with mean 1/rate (Kolmogorov-Smirnov against the exact law).
    gaps = np.diff(np.concatenate([[0.0], times]))
    assert stats.kstest(gaps, "expon", args=(0, 1 / rate)).pvalue > 0.01
    # Counts per second are Poisson(rate): chi-square goodness of fit over 0..12+.
    counts = np.bincount(times.astype(int), minlength=int(duration))[: int(duration)]
    observed = np.bincount(np.minimum(counts, 12), minlength=13)
    probs = stats.poisson.pmf(np.arange(12), rate)
    probs = np.append(probs, 1 - probs.sum())
    assert stats.chisquare(observed, probs * len(counts)).pvalue > 0.01
    # And the arrivals are not regular: variance / mean of the counts near 1 (a metronome gives 0).
    assert 0.85 < counts.var() / counts.mean() < 1.15


def test_poisson_check_rejects_a_metronome() -> None:
    """The test above can fail: evenly spaced arrivals have the rate but not the statistics."""
    rate = 5.0
    times = np.asarray(
        schedule(lambda t: rate, 200.0, np.random.default_rng(7), ArrivalKind.UNIFORM)
    )
    gaps = np.diff(np.concatenate([[0.0], times]))
    assert len(times) == pytest.approx(1000, abs=1)
    assert np.allclose(gaps, 1 / rate)
    assert stats.kstest(gaps, "expon", args=(0, 1 / rate)).pvalue < 1e-6


def test_time_varying_rate_follows_the_shape() -> None:
    step = Step(at_s=500, factor=3)
    times = np.asarray(schedule(lambda t: 2.0 * step.factor(t), 1000.0, np.random.default_rng(3)))
    before, after = (times < 500).sum(), (times >= 500).sum()
    assert abs(before - 1000) < 4 * np.sqrt(1000)
    assert abs(after - 3000) < 4 * np.sqrt(3000)
    ramp = Ramp(at_s=0, duration_s=1000, start=0, end=4)
    times = np.asarray(schedule(lambda t: ramp.factor(t), 1000.0, np.random.default_rng(4)))
    # Integral of 4t/1000 over [0, 1000] is 2000; over the first half, 500.
    assert abs(len(times) - 2000) < 4 * np.sqrt(2000)
    assert abs((times < 500).sum() - 500) < 4 * np.sqrt(500)


def test_no_arrival_while_the_rate_is_zero() -> None:
    rng = np.random.default_rng(1)
    assert next_arrival(0.0, lambda t: 0.0, rng, horizon=10.0) is None
    spike = Spike(at_s=5, duration_s=1, factor=50)
    first = next_arrival(
        0.0, lambda t: 0.0 if t < 5 else 10.0 * spike.factor(t), rng, horizon=100.0
    )
    assert first is not None and 5.0 <= first < 6.0


# -- Shapes -------------------------------------------------------------------------------------


def test_shape_factors() -> None:
    assert Constant().factor(123) == 1
    step = Step(at_s=10, factor=2)
    assert (step.factor(9.99), step.factor(10), step.factor(1e6)) == (1, 2, 2)
    ramp = Ramp(at_s=10, duration_s=20, start=1, end=5)
    assert (ramp.factor(0), ramp.factor(20), ramp.factor(30), ramp.factor(99)) == (1, 3, 5, 5)
    spike = Spike(at_s=60, duration_s=30, factor=5)
    assert (spike.factor(59.9), spike.factor(60), spike.factor(89.9), spike.factor(90)) == (
        1,
        5,
        5,
        1,
    )
    sched = Schedule.model_validate(
        {
            "phases": [
                {"duration_s": 10, "factor": 1},
                {"duration_s": 10, "start": 1, "end": 3},
                {"duration_s": 5, "factor": 0},
            ],
            "repeat": True,
        }
    )
    assert [sched.factor(t) for t in (0, 10, 15, 20, 24.9, 25, 40)] == [1, 1, 2, 0, 0, 1, 2]
    once = sched.model_copy(update={"repeat": False})
    assert once.factor(1000) == 0  # holds the last phase


# -- Length distributions ------------------------------------------------------------------------


def test_length_distributions_match_their_parameters() -> None:
    rng = np.random.default_rng(11)
    n = 20000
    uniform = np.array([Uniform(min=30, max=80).sample(rng) for _ in range(n)])
    assert uniform.min() == 30 and uniform.max() == 80
    assert uniform.mean() == pytest.approx(55, abs=0.5)
    assert stats.chisquare(np.bincount(uniform - 30)).pvalue > 0.01  # every value equally likely
    normal = np.array([Normal(mean=300, std=30).sample(rng) for _ in range(n)])
    assert normal.mean() == pytest.approx(300, abs=1) and normal.std() == pytest.approx(
        30, rel=0.03
    )
    lognormal = np.array([LogNormal(median=180, sigma=0.3).sample(rng) for _ in range(n)])
    assert np.median(lognormal) == pytest.approx(180, rel=0.02)
    assert np.log(lognormal).std() == pytest.approx(0.3, rel=0.05)
    assert lognormal.mean() == pytest.approx(LogNormal(median=180, sigma=0.3).mean(), rel=0.02)
    clipped = np.array(
        [LogNormal(median=180, sigma=1.0, min=100, max=300).sample(rng) for _ in range(2000)]
    )
    assert clipped.min() == 100 and clipped.max() == 300
    empirical = Empirical(values=[10, 20, 40], weights=[1, 2, 1])
    draws = np.array([empirical.sample(rng) for _ in range(n)])
    observed = [(draws == v).sum() for v in (10, 20, 40)]
    assert stats.chisquare(observed, [n / 4, n / 2, n / 4]).pvalue > 0.01
    assert empirical.mean() == 22.5


# -- Profiles -----------------------------------------------------------------------------------


def test_shipped_profiles_load() -> None:
    assert {"baseline", "long-context-tenant", "rag-heavy", "spike"} <= set(profile_names())
    for name in profile_names():
        assert load_profile(name).tenants
    long = load_profile("long-context-tenant")
    # The kv-exhaustion incident switches this tenant on; the chat tenant is the one it measures.
    assert not long.tenants["long_context"].enabled and long.tenants["interactive"].enabled
    assert long.tenants["long_context"].prompt_tokens.mean() == 800
    assert load_profile("rag-heavy").tenants["rag"].rag_share == 1.0


def test_the_gateway_labels_every_profile_tenant_by_its_own_name() -> None:
    # A tenant the gateway does not know is counted as "other" and vanishes from its panels.
    known = set(GatewayOptions().tenants)
    for name in profile_names():
        assert set(load_profile(name).tenants) <= known, name
    assert "default" in known


GOOD = {
    "name": "t",
    "tenants": {"chat": {"rate_per_s": 1, "prompt_tokens": 100, "output_tokens": 50}},
}


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            {"tenants": {"chat": {**GOOD["tenants"]["chat"], "rate_per_s": -1}}},
            "tenants.chat.rate_per_s",
            "greater than or equal to 0",
        ),
        (
            {"tenants": {"chat": {**GOOD["tenants"]["chat"], "colour": "red"}}},
            "tenants.chat.colour",
            "Extra inputs",
        ),
        (
            {"tenants": {"chat": {"rate_per_s": 1, "output_tokens": 5}}},
            "tenants.chat.prompt_tokens",
            "Field required",
        ),
        (
            {
                "tenants": {
                    "chat": {
                        **GOOD["tenants"]["chat"],
                        "prompt_tokens": {"dist": "uniform", "min": 9},
                    }
                }
            },
            "tenants.chat.prompt_tokens.uniform.max",
            "Field required",
        ),
        (
            {"tenants": {"chat": {**GOOD["tenants"]["chat"], "output_tokens": {"dist": "gauss"}}}},
            "tenants.chat.output_tokens",
            "'gauss'",
        ),
        (
            {
                "tenants": {
                    "chat": {
                        **GOOD["tenants"]["chat"],
                        "prompt_tokens": {"dist": "uniform", "min": 9, "max": 3},
                    }
                }
            },
            "tenants.chat.prompt_tokens.uniform",
            "min (9) is larger than max (3)",
        ),
        ({"shape": {"kind": "spike", "at_s": 3}}, "shape.spike.duration_s", "Field required"),
        (
            {"shape": {"kind": "schedule", "phases": [{"duration_s": 5}]}},
            "shape.schedule.phases.0",
            "either factor",
        ),
        ({"slo": {"ttft_s": 0}}, "slo.ttft_s", "greater than 0"),
        ({"tenants": {"Chat!": GOOD["tenants"]["chat"]}}, "tenants", "'Chat!'"),
        ({"tenants": {}}, "tenants", "at least 1"),
    ],
)
def test_a_bad_profile_names_the_field(change: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile({**GOOD, **change}, "bad.yaml")
    message = str(caught.value)
    assert f"bad.yaml: {field}: " in message and words in message, message


def test_profile_files_errors(tmp_path: Path) -> None:
    with pytest.raises(
        ProfileError, match=r"no profile named 'nope': shipped profiles are .*baseline"
    ):
        load_profile("nope")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ProfileError, match=r"broken\.yaml: not valid YAML"):
        load_profile(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ProfileError, match="a profile is a mapping"):
        load_profile(listed)
    good = tmp_path / "good.yaml"
    good.write_text("name: mine\ntenants:\n  chat: {prompt_tokens: 100, output_tokens: 20}\n")
    assert load_profile(good).name == "mine"


def test_tenant_update_changes_only_what_it_names() -> None:
    tenant = parse_profile(GOOD, "x").tenants["chat"]
    changed = TenantUpdate.model_validate(
        {"prompt_tokens": {"dist": "uniform", "min": 10, "max": 20}, "enabled": False}
    ).apply(tenant)
    view = tenant_view(changed)
    assert view["prompt_tokens"] == {"dist": "uniform", "min": 10, "max": 20}
    assert view["enabled"] is False and view["rate_per_s"] == 1 and view["output_tokens"] == 50


# -- Prompts ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prompts() -> PromptBuilder:
    return PromptBuilder()


def test_prompts_tokenize_to_the_requested_length(prompts: PromptBuilder) -> None:
    from tokenizers import Tokenizer

    from sandbox.loadgen.prompts import DEFAULT_TOKENIZER

    engine_tokenizer = Tokenizer.from_file(str(DEFAULT_TOKENIZER))  # as vLLM counts: BOS included
    rng = np.random.default_rng(5)
    for n in [2, 3, 17, 100, 180, 300, 1500, 4000, 9000, *rng.integers(2, 600, 40).tolist()]:
        text = prompts.build(int(n), rng)
        assert len(engine_tokenizer.encode(text).ids) == n
    assert prompts.build(50, np.random.default_rng(1)) == prompts.build(
        50, np.random.default_rng(1)
    )
    assert prompts.build(50, np.random.default_rng(1)) != prompts.build(
        50, np.random.default_rng(2)
    )
    with pytest.raises(PromptError, match="adds 1 by itself"):
        prompts.build(1, rng)
