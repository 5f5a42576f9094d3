"""The gate decides on the paired gain's interval, not on a point difference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from flows.gate import GateConfig, Scorecard, decide, paired_gain

N_USERS = 2000


def users(seed: int = 0) -> np.ndarray:
    """Per-user rewards of a champion: a spread of 1 between users (heavy users and light)."""
    return np.random.default_rng(seed).normal(0.33, 1.0, N_USERS)


def card(values: np.ndarray, healthy: bool = True, tail: float | None = None) -> Scorecard:
    tail = float(np.sort(values)[: len(values) // 10].mean()) if tail is None else tail
    return Scorecard(float(values.mean()), tail, healthy, () if healthy else ("sigma collapsed",),
                     units=values)


def test_a_gain_inside_the_noise_is_not_promoted() -> None:
    """The issue's case: +0.0013 (0.4 %) on 2000 users whose per-user change is noisy."""
    champion = users()
    challenger = champion + 0.0013 + np.random.default_rng(1).normal(0.0, 0.05, N_USERS)
    decision = decide(card(challenger), card(champion), GateConfig())
    assert not decision.promote and "does not beat" in decision.reason
    gain = decision.interval
    assert gain is not None and gain.n == N_USERS
    assert gain.lower < 0.0 < gain.upper  # zero is inside the 95 % interval
    assert gain.mean == pytest.approx((challenger - champion).mean())


def test_a_gain_whose_paired_lower_bound_clears_the_minimum_is_promoted() -> None:
    champion = users()
    challenger = champion + 0.01 + np.random.default_rng(1).normal(0.0, 0.05, N_USERS)
    decision = decide(card(challenger), card(champion), GateConfig(min_gain=0.005))
    assert decision.promote, decision.reason
    assert decision.interval is not None and decision.interval.lower > 0.005
    # unpaired, the same two samples could not be told apart: each mean's own 95 % interval
    # is about +/- 0.044 wide, four times the gain
    half_width = stats.t.ppf(0.975, N_USERS - 1) * stats.sem(champion)
    assert half_width > 4 * (challenger.mean() - champion.mean())


def test_a_significant_gain_below_the_minimum_gain_is_not_promoted() -> None:
    champion = users()
    challenger = champion + 0.01 + np.random.default_rng(1).normal(0.0, 0.05, N_USERS)
    decision = decide(card(challenger), card(champion), GateConfig(min_gain=0.02))
    assert not decision.promote
    assert decision.interval is not None and 0.0 < decision.interval.lower < 0.02


def test_t_interval_matches_the_textbook_formula() -> None:
    champion = np.zeros(4)
    challenger = np.array([1.0, 2.0, 3.0, 4.0])
    gain = paired_gain(challenger, champion, GateConfig())
    # mean 2.5, s = 1.2910, t_{0.975, 3} = 3.1824: 2.5 -/+ 3.1824 * 1.2910 / 2
    assert (gain.mean, gain.n) == (2.5, 4)
    assert gain.lower == pytest.approx(0.4457, abs=1e-4)
    assert gain.upper == pytest.approx(4.5543, abs=1e-4)
    ninety = paired_gain(challenger, champion, GateConfig(confidence=0.90))
    assert gain.lower < ninety.lower < ninety.upper < gain.upper


def test_bootstrap_interval_agrees_with_t_on_many_units() -> None:
    champion = users()
    challenger = champion + 0.01 + np.random.default_rng(1).normal(0.0, 0.05, N_USERS)
    t = paired_gain(challenger, champion, GateConfig())
    boot = paired_gain(challenger, champion, GateConfig(method="bootstrap"))
    assert boot.method == "bootstrap" and boot.mean == t.mean
    assert boot.lower == pytest.approx(t.lower, abs=3e-4)
    assert boot.upper == pytest.approx(t.upper, abs=3e-4)
    again = paired_gain(challenger, champion, GateConfig(method="bootstrap"))
    assert again == boot  # seeded: the same decision on a rerun


def test_a_constant_shift_has_a_zero_width_interval() -> None:
    champion = users()
    gain = paired_gain(champion + 0.02, champion, GateConfig())
    assert gain.lower == pytest.approx(0.02) and gain.upper == pytest.approx(0.02)


def test_health_block_tail_and_first_version_rules_stay() -> None:
    champion = users()
    better = champion + 0.05
    assert decide(card(better, healthy=True), None, GateConfig()).promote  # first healthy
    sick = decide(card(better, healthy=False), card(champion), GateConfig())
    assert not sick.promote and "unhealthy" in sick.reason
    assert not decide(card(better, healthy=False), None, GateConfig()).promote
    blocked = decide(card(better), card(champion), GateConfig(), blocked="rolled_back")
    assert not blocked.promote and "rolled_back" in blocked.reason
    tail = decide(card(better, tail=-2.0), card(champion, tail=-1.0), GateConfig())
    assert not tail.promote and "lower tail" in tail.reason
    assert tail.interval is not None and tail.interval.lower > 0  # the mean was fine


def test_decision_tags_carry_the_interval() -> None:
    champion = users()
    decision = decide(card(champion + 0.05), card(champion), GateConfig())
    tags = decision.as_tags()
    assert tags["gate.promoted"] == "True" and tags["gate.gain_n"] == str(N_USERS)
    assert float(tags["gate.gain_lower"]) <= float(tags["gate.gain_mean"]) <= float(
        tags["gate.gain_upper"])
    assert tags["gate.gain_confidence"] == "0.95" and tags["gate.gain_method"] == "t"


def test_unaligned_units_are_refused() -> None:
    with pytest.raises(ValueError, match="aligned"):
        decide(card(users()[:10]), card(users()[:11]), GateConfig())
    with pytest.raises(ValueError, match="finite"):
        paired_gain(np.array([1.0, np.nan]), np.zeros(2), GateConfig())


def test_without_units_the_gate_falls_back_to_the_point_comparison_and_says_so() -> None:
    worse = decide(Scorecard(0.30, 0.0, True), Scorecard(0.31, 0.0, True), GateConfig())
    assert not worse.promote and "point comparison" in worse.reason and worse.interval is None
    better = decide(Scorecard(0.32, 0.0, True), Scorecard(0.31, 0.0, True), GateConfig())
    assert better.promote and "point comparison" in better.reason


def test_config_accepts_the_older_field_name() -> None:
    assert GateConfig(min_improvement=0.1).min_gain == 0.1
    with pytest.raises(ValueError):
        GateConfig(confidence=1.5)
