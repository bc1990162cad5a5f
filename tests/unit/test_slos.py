"""The SLO file: the one place the objectives' numbers live, and what is generated from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashboards.panels import TPOT_SLO_S, TTFT_SLO_S
from sandbox.buckets import LATENCY_BUCKETS_S, TOKEN_LATENCY_BUCKETS_S
from sandbox.loadgen.profile import SLO, load_profile
from sandbox.slo_rules import RULES_FILE, render_slo_rules
from sandbox.slos import SloError, Slos, load_slos


def test_the_shipped_slos_load_and_feed_dashboards_and_profiles() -> None:
    slos = load_slos()
    assert (TTFT_SLO_S, TPOT_SLO_S) == (slos.ttft_s, slos.tpot_s)
    assert SLO() == SLO(ttft_s=slos.ttft_s, tpot_s=slos.tpot_s, e2e_s=slos.e2e_s)
    # A profile of long answers loosens only its end-to-end bound.
    long = load_profile("long-context-tenant").slo
    assert long.ttft_s == slos.ttft_s and long.e2e_s is not None and long.e2e_s > slos.e2e_s
    assert slos.value("ttft_s") == slos.ttft_s


def test_an_unknown_slo_name_lists_the_known_ones() -> None:
    with pytest.raises(SloError, match=r"no SLO named 'ttft'.*slo\.ttft_s"):
        load_slos().value("ttft")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("ttft_s: [unclosed\n", "not valid YAML"),
        ("ttft_s: 2\ntpot_s: 0.25\ne2e_s: 30\n", "error_ratio: Field required"),
        (
            "ttft_s: -1\ntpot_s: 0.25\ne2e_s: 30\nerror_ratio: 0.01\n",
            "ttft_s: Input should be greater than 0",
        ),
    ],
)
def test_a_bad_slo_file_names_the_file_and_the_field(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "slos.yaml"
    path.write_text(text)
    with pytest.raises(SloError, match=words) as caught:
        load_slos(path)
    assert str(path) in str(caught.value)


def test_the_slo_alerts_are_generated_from_the_slo_file_and_current() -> None:
    assert RULES_FILE.read_text() == render_slo_rules(load_slos()), "run `make rules`"


def test_the_generated_rules_follow_a_changed_slo() -> None:
    text = render_slo_rules(Slos(ttft_s=3.5, tpot_s=0.1, e2e_s=30, error_ratio=0.005))
    assert "p99_rate1m > 3.5" in text and "p99_rate5m > 0.1" in text
    assert "(14.4 * 0.005)" in text and "0.5% error budget" in text
    assert not re.search(r"@[A-Z_]+@", text)


def test_an_unknown_placeholder_is_refused(tmp_path: Path) -> None:
    template = tmp_path / "t.yml.in"
    template.write_text("groups: [] # @NOPE@\n")
    with pytest.raises(SloError, match="unknown placeholder @NOPE@"):
        render_slo_rules(load_slos(), template)


def test_every_latency_slo_is_a_bucket_edge_of_the_histograms_it_is_read_from() -> None:
    # Between two edges histogram_quantile interpolates: an SLO between edges would be breached
    # by requests faster than the SLO (1.6 s read as 2.3 s when the edges were 1.5 and 2.5).
    slos = load_slos()
    assert slos.ttft_s in LATENCY_BUCKETS_S  # gateway and client TTFT
    assert slos.e2e_s in LATENCY_BUCKETS_S  # client end-to-end (goodput)
    assert slos.tpot_s in TOKEN_LATENCY_BUCKETS_S  # client time per output token
