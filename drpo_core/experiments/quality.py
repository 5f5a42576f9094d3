"""What to filter on (issue 11 §5): DRPO's quality signal on the heavy-user condition and on
multi-step sessions.

Conditions (``CONDITIONS``): ``heavy`` = the medium scenario as every other part has it, one-step
rows and heavy-tailed user activity (``activity_sigma`` = 1.1: a heavy user's average item
earns more than a light user's best); ``sequential`` = the same world in the simulator's
sequential mode (drpo_core/sim/sessions.py: sessions with a time budget, interest drift toward
what the user watches, watch-time rewards), scored by mean session return on the test users
(drpo_core/evaluation/online.py; the oracle there is the myopic one, greedy on the true interest
at each step).

Methods (``METHODS``): DRPO with each quality signal (reward = the paper's; advantage r - V(s);
q = Q(s, a), DRPO-Q; return = the session's discounted return-to-go), DRPO-Exp on the advantage,
IQL and CRR with gamma = 0 (the bandit critic) and gamma = ``GAMMA`` (targets through the episode
links, target networks), AWR, %BC (filtered_bc) and BC. The learned signals and the return use
gamma = ``GAMMA``; on one-step rows every episode ends at once (done = 1), so gamma changes
nothing there but the work (the bandit case, kept in the table as the check of that).

Budget (~20 minutes of the full study on one core): no grid search here; every method runs at
the point of Table 1's equal grid that validation users chose there (``TABLE1_CHOICES``, the
medium scenario: the world of ``heavy``), the quality fields added, for
``size.steps`` steps (the non-headline length) on ``size.rows`` rows per seed; ``size.seeds``
seeds (5 in the full study; ``--quick``: 2 seeds, ``QUICK_STEPS`` steps). Each seed shares its
data and test users across methods, so methods are compared by paired differences per seed
(95 % t-interval): against DRPO on the raw reward, and against the best of IQL / CRR / AWR
(the one with the highest mean validation reward over the seeds, among their five rows).
Reference lines: random, logging, identity, linear map, oracle (session returns in the
sequential condition).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drpo_core.data import TrainingData
from drpo_core.experiments.markdown import per_seed_markdown, references_markdown
from drpo_core.experiments.study import (
    QUICK,
    Scenario,
    StudySize,
    make_scenario,
    mean_ci,
    paired_difference,
    reference_rows,
    references,
    train_and_score,
)
from drpo_core.objectives import DataNeeds, make_config, objective_class
from drpo_core.warehouse.sessions import session_arrays, with_session_columns

GAMMA = 0.9
QUICK_STEPS = 10
#: condition name -> simulator overrides (the medium scenario's defaults otherwise)
CONDITIONS: dict[str, dict[str, Any]] = {"heavy": {}, "sequential": {"sessions": "sequential"}}


#: each method's grid point as validation users chose it in Table 1's medium scenario (the
#: world of ``heavy``; docs/reproduction/results.json, ``table1``): the equal three-point grids,
#: tuned once, not again per condition (tests/experiments/test_report.py holds them to the file)
TABLE1_CHOICES: dict[str, dict[str, Any]] = {
    "drpo": {"controller": {"target_ratio": 0.7}},
    "drpo_exp": {"temperature": 5.0},
    "iql": {"inverse_temperature": 10.0},
    "crr": {"weighting": "binary"},
    "awr": {"temperature": 0.3, "normalize_advantage": True},
    "filtered_bc": {"kappa": 0.1},
}


def chosen(algorithm: str) -> dict[str, Any]:
    """The method's grid point chosen in Table 1 ({} for a method without a grid)."""
    return dict(TABLE1_CHOICES.get(algorithm, {}))


#: method label -> (algorithm, objective config)
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "drpo": ("drpo", chosen("drpo")),
    "drpo(advantage)": ("drpo", chosen("drpo") | {"quality": "advantage", "gamma": GAMMA}),
    "drpo(q)": ("drpo", chosen("drpo") | {"quality": "q", "gamma": GAMMA}),
    "drpo(return)": ("drpo", chosen("drpo") | {"quality": "return", "gamma": GAMMA}),
    "drpo_exp(advantage)": ("drpo_exp", chosen("drpo_exp") | {"quality": "advantage",
                                                              "gamma": GAMMA}),
    "iql": ("iql", chosen("iql")),
    f"iql(gamma={GAMMA:g})": ("iql", chosen("iql") | {"gamma": GAMMA}),
    "crr": ("crr", chosen("crr")),
    f"crr(gamma={GAMMA:g})": ("crr", chosen("crr") | {"gamma": GAMMA}),
    "awr": ("awr", chosen("awr")),
    "filtered_bc": ("filtered_bc", chosen("filtered_bc")),
    "bc": ("bc", {}),
}
#: the critic baselines DRPO with a learned signal must be level with (issue 11)
BASELINES = ("iql", f"iql(gamma={GAMMA:g})", "crr", f"crr(gamma={GAMMA:g})", "awr")
REFERENCE = "drpo"


def data_needs(method: str) -> DataNeeds:
    algorithm, params = METHODS[method]
    return objective_class(algorithm).data_needs_of(make_config(algorithm, params))


def session_data(scenario: Scenario, needs: DataNeeds,
                 cache: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]]
                 ) -> TrainingData:
    """The scenario's data with what ``needs`` asks for: the return-to-go in the reward column
    and the episode links, from the simulator's Arrow table through the data layer's SQL
    (drpo_core.warehouse.sessions.session_arrays), computed once per gamma."""
    if needs.return_gamma is None and not needs.transitions:
        return scenario.data
    assert scenario.table is not None
    gamma = 0.0 if needs.return_gamma is None else needs.return_gamma
    if gamma not in cache:
        cache[gamma] = session_arrays(scenario.table, gamma)
    return with_session_columns(scenario.data, needs, cache[gamma])


def seed_cells(scenario: Scenario, size: StudySize, seed: int) -> dict[str, Any]:
    """Every method on one seed's data: test reward and score; the validation reward of the
    baselines (it chooses the best of them)."""
    cache: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    cells = {}
    for method, (algorithm, params) in METHODS.items():
        data = session_data(scenario, data_needs(method), cache)
        cells[method] = train_and_score(scenario, algorithm, size, seed, params, data=data,
                                        validate=method in BASELINES)
    return cells


def condition(name: str, size: StudySize) -> dict[str, Any]:
    reward: dict[str, list[float]] = {m: [] for m in METHODS}
    score: dict[str, list[float]] = {m: [] for m in METHODS}
    validation: dict[str, list[float]] = {m: [] for m in METHODS}
    lines = []
    for seed in range(size.seeds):
        scenario = make_scenario("medium", size, seed, **CONDITIONS[name])
        lines.append(references(scenario))
        for method, cell in seed_cells(scenario, size, seed).items():
            reward[method].append(cell.mean_reward)
            score[method].append(cell.score)
            validation[method].append(cell.validation_reward)
    rows = [method_row(name, m, reward[m], score[m]) for m in METHODS]
    best = max(BASELINES, key=lambda m: float(np.mean(validation[m])))
    paired = [{"condition": name, "versus": "drpo", "baseline": REFERENCE, "method": m,
               **paired_difference(reward[m], reward[REFERENCE])}
              for m in METHODS if m != REFERENCE]
    paired += [{"condition": name, "versus": "best_baseline", "baseline": best, "method": m,
                **paired_difference(reward[m], reward[best])}
               for m in METHODS if m.startswith("drpo")]
    return {"rows": rows, "references": reference_rows(lines, condition=name),
            "paired": paired}


def method_row(name: str, method: str, reward: list[float], score: list[float]
               ) -> dict[str, Any]:
    algorithm, params = METHODS[method]
    mean, ci = mean_ci(reward)
    score_mean, score_ci = mean_ci(score)
    return {"condition": name, "method": method, "algorithm": algorithm, "params": params,
            "reward": mean, "reward_ci": ci, "score": score_mean, "score_ci": score_ci,
            "seeds": len(reward), "per_seed": reward}


def part_size(size: StudySize) -> StudySize:
    """The part's size: ``QUICK`` (CI's smoke run, 48 trainings here) trains each method
    ``QUICK_STEPS`` steps instead of 60."""
    return size.model_copy(update={"steps": QUICK_STEPS}) if size == QUICK else size


def run(size: StudySize) -> dict[str, Any]:
    size = part_size(size)
    parts = [condition(name, size) for name in CONDITIONS]
    return {"quality": [r for p in parts for r in p["rows"]],
            "quality_references": [r for p in parts for r in p["references"]],
            "quality_paired": [r for p in parts for r in p["paired"]]}


def markdown(result: dict[str, Any]) -> str:
    lines = ["Test reward (heavy: mean reward per user; sequential: mean session return, "
             "a_u x watch minutes) and score (0 = random item, 100 = oracle; the sequential "
             "oracle is myopic, so a policy may pass 100).", "",
             "| condition | method | reward (95% CI) | score (95% CI) |", "|---|---|---|---|"]
    for r in result["quality"]:
        lines.append(f"| {r['condition']} | {r['method']} | {r['reward']:.3f} ± "
                     f"{r['reward_ci']:.3f} | {r['score']:.1f} ± {r['score_ci']:.1f} |")
    if "quality_references" in result:
        lines += ["", references_markdown(result["quality_references"], "condition",
                                          note="BC is its row above")]
    if "quality_paired" in result:
        lines += ["", paired_quality_markdown(result["quality_paired"])]
    lines += ["", per_seed_markdown(result["quality"], ("condition", "method"))]
    return "\n".join(lines)


def paired_quality_markdown(rows: list[dict[str, Any]]) -> str:
    out = ["Paired differences X - baseline (test reward; per seed, 95 % t-interval, "
           "scipy.stats.ttest_rel); the best of IQL / CRR / AWR is chosen per condition by "
           "validation reward:", "",
           "| condition | X | baseline | X - baseline | 95 % interval | p |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['condition']} | {r['method']} | {r['baseline']} | {r['mean']:+.4f} | "
                   f"[{r['low']:+.4f}, {r['high']:+.4f}] | {r['p_value']:.3f} |")
    return "\n".join(out)
