"""The reproduction study's runner: every part produces its tables, figures and JSON."""

from __future__ import annotations

import json

import pytest
import torch

from drpo_core.experiments import table1
from drpo_core.experiments.runner import reproduce
from drpo_core.experiments.study import StudySize, mean_ci

TINY = StudySize(seeds=2, rows=1500, steps=60, eval_users=100, d=8, n_items=200)


def test_runner_writes_table1_and_rq1(tmp_path) -> None:
    result = reproduce(tmp_path, size=TINY, only=["table1", "rq1"])
    rows = result["table1"]
    assert len(rows) == 2 * len(table1.ALGORITHMS)
    assert {(r["scenario"], r["algorithm"]) for r in rows} == {
        (s, a) for s in ("medium", "extreme") for a in table1.ALGORITHMS}
    assert all(r["seeds"] == 2 and r["reward_ci"] >= 0 for r in rows)
    iql = next(r for r in rows if r["algorithm"] == "iql")
    assert iql["params"] in table1.GRIDS["iql"]  # chosen from the equal grid
    # equal tuning: every method with a hyperparameter has three grid points
    assert {len(g) for g in table1.GRIDS.values()} == {3}
    assert set(table1.ALGORITHMS) - set(table1.GRIDS) == {"bc", "apg"}
    assert all(len(r["per_seed"]) == 2 for r in rows)
    refs = {(r["scenario"], r["reference"]): r for r in result["table1_references"]}
    assert {name for _, name in refs} == {"random", "logging", "identity", "linear", "oracle"}
    for scenario in ("medium", "extreme"):
        assert refs[(scenario, "random")]["reward"] < refs[(scenario, "oracle")]["reward"]
    assert {r["minus"] for r in result["table1_paired"]} == set(table1.ALGORITHMS) - {"drpo"}
    assert len(result["rq1"]["records"]) > 3
    assert (tmp_path / "fig2_phantom_gradients.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["table1"] == json.loads(json.dumps(rows))
    assert "| medium | drpo |" in (tmp_path / "tables.md").read_text()


def test_unknown_part_and_confidence_interval() -> None:
    with pytest.raises(ValueError, match="unknown study part"):
        reproduce(__import__("pathlib").Path("/nonexistent"), only=["fig9"])
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 * 1.0 / 3**0.5, rel=1e-4)


def test_paired_difference_is_a_t_interval_on_the_per_seed_differences() -> None:
    from drpo_core.experiments.study import paired_difference, paired_rows

    a, b = [0.30, 0.34, 0.31, 0.36, 0.33], [0.29, 0.31, 0.30, 0.33, 0.31]
    d = [x - y for x, y in zip(a, b, strict=True)]  # 0.01, 0.03, 0.01, 0.03, 0.02
    mean = sum(d) / 5
    sd = (sum((x - mean) ** 2 for x in d) / 4) ** 0.5
    half = 2.776445 * sd / 5**0.5  # t(0.975, 4)
    got = paired_difference(a, b)
    assert got["mean"] == pytest.approx(0.02)
    assert got["low"] == pytest.approx(0.02 - half, rel=1e-5)
    assert got["high"] == pytest.approx(0.02 + half, rel=1e-5)
    assert got["p_value"] < 0.05 and got["seeds"] == 5
    # the paired interval is far narrower than the two means' own intervals would suggest
    assert got["high"] - got["low"] < mean_ci(a)[1]
    rows = paired_rows({"drpo": a, "awr": b}, scenario="medium")
    assert rows == [{"scenario": "medium", "minus": "awr", **got}]
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference([1.0, 2.0], [1.0])


def test_noise_ablation_fixed_ratios_and_kappa_sweep_shapes(tmp_path) -> None:
    one = TINY.model_copy(update={"seeds": 2, "rows": 800, "steps": 30, "eval_users": 60})
    result = reproduce(tmp_path, size=one, only=["noise", "ablation", "fixed_ratios",
                                                  "kappa_sweep"], jobs=2)  # parallel parts
    assert len(result["noise"]) == 6 * 5 and len(result["ablation"]) == 4
    # the fixed-ratio rows run at DRPO's equilibrium P of the same seed (issue 16 §4)
    shares = result["ablation_equilibrium_keep_share"]
    assert len(shares) == 2 and all(0.05 <= p <= 1.0 for p in shares)
    assert [r["minus"] for r in result["ablation_paired"]] == [
        r["variant"] for r in result["ablation"] if "DRPO" not in r["variant"]]
    assert all(len(r["per_seed"]) == 2 for r in result["ablation"])
    assert len(result["fixed_ratios"]) == 4 * 3 * 2  # 3 fixed ratios + adaptive
    assert {(r["scenario"], r["kappa"]) for r in result["kappa_sweep"]} == {
        (s, k) for s in ("medium", "extreme") for k in (0.1, 0.25, 0.5, 0.75, 1.0)}
    text = (tmp_path / "tables.md").read_text()
    for part in ("noise", "ablation", "fixed_ratios", "kappa_sweep"):
        assert f"## {part}" in text
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["seconds"]) == {"noise", "ablation", "fixed_ratios", "kappa_sweep"}


def test_offline_to_online_curve(tmp_path) -> None:
    size = TINY.model_copy(update={"rows": 800, "steps": 60, "eval_users": 60})
    result = reproduce(tmp_path, size=size, only=["online"])
    steps = sorted({r["step"] for r in result["online"] if r["algorithm"] == "drpo"})
    assert steps == [6 * k for k in range(1, 12)]  # 10 rounds of 6 steps after the first
    first = next(r for r in result["online"] if r["step"] == steps[0])
    assert first["admitted_online_share"] == 0.0  # no online rows before the first round
    assert all(0.0 <= r["admitted_online_share"] <= 1.0 for r in result["online"])


def test_investigation_measures_each_hypothesis(tmp_path) -> None:
    from drpo_core.experiments import investigation

    size = TINY.model_copy(update={"rows": 800, "steps": 20, "eval_users": 40})
    part = reproduce(tmp_path, size=size, only=["investigation"])["investigation"]
    purity = part["tail_purity"]
    assert {(r["scenario"], r["reward_noise"]) for r in purity} == {
        (s, n) for s in ("medium", "extreme")
        for n in (investigation.DEFAULT_REWARD_NOISE, *investigation.REWARD_NOISE)}
    for r in purity:
        assert all(0.0 <= v <= 1.0 for v in r["expert_share"].values())
    medium = next(r for r in purity if r["scenario"] == "medium"
                  and r["reward_noise"] == investigation.DEFAULT_REWARD_NOISE)
    assert medium["expert_share"]["1.0"] == pytest.approx(0.10, abs=0.05)  # the mixture's 10 %
    assert {(r["reward_noise"], r["algorithm"]) for r in part["reward_noise"]} == {
        (n, a) for n in investigation.REWARD_NOISE for a in investigation.CONTENDERS}
    assert {r["steps"] for r in part["long_training"]} == {20 * investigation.LONG_FACTOR}
    assert len(part["awr_temperature"]) == 2 * len(investigation.AWR_TEMPERATURES)
    assert "AWR's temperature" in (tmp_path / "tables.md").read_text()


def test_top_mass_share_weights_ties_like_theorem_4_1() -> None:
    import numpy as np

    from drpo_core.experiments.investigation import top_mass_share

    reward = np.array([3.0, 2.0, 2.0, 1.0])
    flag = np.array([False, True, False, True])
    # kappa = 0.5: mass 2 rows = the 3.0 row (unflagged) + half of each 2.0 row (one flagged)
    assert top_mass_share(reward, flag, 0.5) == 0.25
    assert top_mass_share(reward, flag, 1.0) == 0.5


def test_reward_noise_one_ties_the_top_5_percent_at_the_clip() -> None:
    """App. K's collapse of the fixed 5 % filter at reward noise 1.0 (docs/reproduction.md):
    with every user alike (activity_sigma = 0, the world before issue 16), clip(R + N(0, 1),
    0, 1) puts about a fifth of the full study's logged rows at exactly 1.0, so a batch's top
    5 % is all ties, every advantage r - min(r_top) is 0 and nothing moves. With heavy-tailed
    activity the ties are gone (a_u scales each row)."""
    from drpo_core.experiments.study import FULL, make_scenario
    from drpo_core.objectives import Batch, make_objective
    from drpo_core.policy import GaussianPolicy

    data = make_scenario("medium", FULL, 0, reward_noise=1.0, activity_sigma=0.0).data
    share_at_clip = float((data.reward == 1.0).float().mean())
    assert 0.18 < share_at_clip < 0.24
    torch.manual_seed(0)
    policy = GaussianPolicy(data.state.shape[1], data.action.shape[1])
    fixed = make_objective("drpo", policy, {"controller": {"initial_keep_share": 0.05,
                                                           "adaptive": False}})
    rows = slice(0, 320)
    batch = Batch(data.state[rows], data.action[rows], data.reward[rows],
                  data.behavior_logprob[rows], data.reward[rows])
    fixed.loss(batch, 0).loss.backward()
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in policy.parameters())


def test_quality_part_methods_and_session_data() -> None:
    """The quality part's methods use the agreed names, and each gets the data its objective
    asks for: the return-to-go in the reward column, the episode links for gamma > 0."""
    import numpy as np

    from drpo_core.experiments import quality
    from drpo_core.experiments.study import make_scenario
    from drpo_core.objectives import make_config

    assert {m: a for m, (a, _) in quality.METHODS.items()} == {
        "drpo": "drpo", "drpo(advantage)": "drpo", "drpo(q)": "drpo", "drpo(return)": "drpo",
        "drpo_exp(advantage)": "drpo_exp", "iql": "iql", "iql(gamma=0.9)": "iql", "crr": "crr",
        "crr(gamma=0.9)": "crr", "awr": "awr", "filtered_bc": "filtered_bc", "bc": "bc"}
    for algorithm, params in quality.METHODS.values():
        make_config(algorithm, params)  # every config validates
    assert quality.data_needs("drpo").return_gamma is None
    assert quality.data_needs("drpo(return)").return_gamma == quality.GAMMA
    assert quality.data_needs("iql(gamma=0.9)").transitions
    assert not quality.data_needs("iql").transitions
    size = TINY.model_copy(update={"rows": 600, "eval_users": 20})
    scenario = make_scenario("medium", size, 0, sessions="sequential")
    cache: dict = {}
    ret = quality.session_data(scenario, quality.data_needs("drpo(return)"), cache)
    links = quality.session_data(scenario, quality.data_needs("crr(gamma=0.9)"), cache)
    assert quality.session_data(scenario, quality.data_needs("bc"), cache) is scenario.data
    table = scenario.table
    episode = np.asarray(table.column("episode_id").to_pylist())
    step = table.column("step").to_numpy()
    reward = table.column("reward").to_numpy()
    for e in np.unique(episode)[:20]:
        rows = np.flatnonzero(episode == e)
        rows = rows[np.argsort(step[rows])]
        expected = [sum(quality.GAMMA ** (j - t) * reward[rows[j]]
                        for j in range(t, len(rows))) for t in range(len(rows))]
        np.testing.assert_allclose(ret.reward.numpy()[rows], expected, rtol=1e-5)
        done = links.done.numpy()[rows]
        assert done[-1] == 1.0 and not done[:-1].any()
        np.testing.assert_array_equal(links.next_state.numpy()[rows[:-1]],
                                      scenario.data.state.numpy()[rows[1:]])
