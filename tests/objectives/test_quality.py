"""The quality signal of the filtered objectives (issue 11): reward, return, advantage, q; and IQL /
CRR with gamma > 0 and target networks."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from drpo_core.data import TrainingData
from drpo_core.objectives import Batch, DataNeeds, make_config, objective_class
from drpo_core.objectives.base import exp_weights
from drpo_core.objectives.critic import AdvantageCritic, QCritic
from drpo_core.trainer import TrainConfig, Trainer
from tests.helpers import easy_task
from tests.objectives.ddp_worker import (
    D_ACTION,
    D_STATE,
    DDP_CASES,
    ddp_steps,
    objective,
    transitions_batch,
)


def cohort_data(n: int = 640, n_cohorts: int = 4, seed: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of 4 user cohorts; the state is the cohort's (it identifies the cohort); the reward
    = the cohort's level (0, 0.3, 0.6, 0.9) + U(0, 1), whatever the action."""
    g = torch.Generator().manual_seed(seed)
    cohort = torch.arange(n) % n_cohorts
    centres = torch.randn(n_cohorts, D_STATE, generator=g)
    state = centres[cohort]
    action = torch.randn(n, D_ACTION, generator=g)
    level = torch.linspace(0.0, 0.9, n_cohorts)[cohort]
    return state, action, level + torch.rand(n, generator=g), cohort


def kept_and_weights(quality: str, state: torch.Tensor, action: torch.Tensor,
                     reward: torch.Tensor, critic_steps: int = 150
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """DRPO's kept set and weights on one batch, after fitting the critic on it (P0 = 0.5)."""
    obj = objective("drpo", quality=quality)
    batch = Batch(state, action, reward, torch.zeros(len(reward)), reward)
    if obj.critic is not None:
        opt = torch.optim.Adam(obj.critic.parameters(), lr=1e-2)
        for _ in range(critic_steps):
            _, loss = obj.critic(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
    signal, _ = obj.quality_signal(batch)
    kept = obj.controller.filter(signal)
    return kept.mask, obj.weights(signal, kept)


def jaccard(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_advantage_is_invariant_to_a_cohort_shift_where_reward_is_not() -> None:
    state, action, reward, cohort = cohort_data()
    shifted = reward + 2.0 * (cohort == 0)  # the lowest cohort jumps above all others
    kept_r, _ = kept_and_weights("reward", state, action, reward)
    kept_r_shift, _ = kept_and_weights("reward", state, action, shifted)
    assert jaccard(kept_r, kept_r_shift) < 0.5  # measured 0.36: the raw filter follows the shift
    kept_a, w_a = kept_and_weights("advantage", state, action, reward)
    kept_a_shift, w_a_shift = kept_and_weights("advantage", state, action, shifted)
    # measured 1.0 and 0.999998 after 150 critic steps (0.98 and 0.9997 after 100)
    assert jaccard(kept_a, kept_a_shift) >= 0.95
    assert float(torch.corrcoef(torch.stack([w_a, w_a_shift]))[0, 1]) > 0.99
    # the kept set spans every cohort, as A = r - V(s) ranks rows within their context
    assert set(cohort[kept_a].tolist()) == {0, 1, 2, 3}


def train_on_batches(name: str, steps: int = 30, one_step: bool = False, **fields
                     ) -> list[float]:
    obj = objective(name, **fields)
    opt = torch.optim.Adam([p for p in obj.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for step in range(steps):
        out = obj.loss(transitions_batch(seed=step % 3, one_step=one_step), step)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        obj.after_step(step)
        losses.append(float(out.loss.detach()))
        assert all(math.isfinite(float(v)) for v in out.metrics.values())
    return losses


@pytest.mark.parametrize(("name", "fields"), [
    ("drpo", {"quality": "advantage"}), ("drpo", {"quality": "q"}),
    ("drpo_exp", {"quality": "advantage"}), ("adaptive_bc", {"quality": "q"}),
    ("filtered_bc", {"quality": "advantage", "kappa": 0.3}),
    ("iql", {}), ("crr", {})])
def test_learned_signals_and_critics_train_on_sessions_with_gamma(name: str, fields) -> None:
    losses = train_on_batches(name, gamma=0.9, **fields)
    assert all(math.isfinite(v) for v in losses)


def test_one_step_sessions_degrade_to_the_bandit_case() -> None:
    """done = 1 on every row: the bootstrapped target is r, so gamma does not matter."""
    bandit = objective("drpo", quality="advantage")
    sessions = objective("drpo", quality="advantage", gamma=0.9)
    batch = transitions_batch(one_step=True)
    torch.testing.assert_close(sessions.loss(batch, 0).loss, bandit.loss(batch, 0).loss)


@pytest.mark.parametrize("quality", ["advantage", "q"])
@pytest.mark.parametrize("algorithm", ["drpo", "filtered_bc"])
def test_learned_signals_train_end_to_end_through_the_trainer(algorithm: str,
                                                              quality: str) -> None:
    cfg = TrainConfig(algorithm=algorithm, steps=60, batch_size=64, log_every=20,
                      checkpoint_every=20, device="cpu", policy={"hidden": (32,)},
                      objective={"quality": quality})
    result = Trainer(cfg, easy_task(n=512), progress=False).fit()
    first, last = result.history[0], result.history[-1]
    assert all(math.isfinite(v) for v in last.values())
    assert last["critic/loss"] < first["critic/loss"]


def with_sessions(data: TrainingData, length: int) -> TrainingData:
    """The rows as sessions of ``length`` consecutive rows (1 = one-step sessions)."""
    done = ((torch.arange(data.n_rows) % length) == length - 1).float()
    next_state = torch.where(done[:, None] > 0, data.state, data.state.roll(-1, dims=0))
    return dataclasses.replace(data, next_state=next_state, done=done)


@pytest.mark.parametrize(("algorithm", "objective_fields"), [
    ("drpo", {"quality": "advantage"}), ("drpo", {"quality": "q"}), ("iql", {}), ("crr", {})])
@pytest.mark.parametrize("length", [1, 4])
def test_gamma_trains_through_the_trainer_on_sessions(algorithm: str, objective_fields,
                                                      length: int) -> None:
    cfg = TrainConfig(algorithm=algorithm, steps=40, batch_size=64, log_every=20,
                      checkpoint_every=20, device="cpu", policy={"hidden": (32,)},
                      objective={"gamma": 0.9, **objective_fields})
    assert cfg.data_needs().transitions
    result = Trainer(cfg, with_sessions(easy_task(n=512), length), progress=False).fit()
    assert all(math.isfinite(v) for v in result.history[-1].values())


def test_filtered_bc_with_a_learned_signal_cuts_every_batch_not_the_dataset() -> None:
    assert objective_class("filtered_bc").dataset_kappa_of(
        make_config("filtered_bc", {"kappa": 0.3, "quality": "advantage"})) is None
    assert objective_class("filtered_bc").dataset_kappa_of(
        make_config("filtered_bc", {"kappa": 0.3, "quality": "return"})) == 0.3
    obj = objective("filtered_bc", quality="q", kappa=0.3)
    out = obj.loss(transitions_batch(n=100), 0)
    assert float(out.metrics["filter/kept"]) == pytest.approx(30.0)  # kappa N of every batch


@pytest.mark.parametrize(("name", "fields", "needs"), [
    ("drpo", {}, DataNeeds()),
    ("drpo", {"quality": "return", "gamma": 0.9}, DataNeeds(return_gamma=0.9)),
    ("drpo_exp", {"quality": "advantage"}, DataNeeds()),
    ("adaptive_bc", {"quality": "advantage", "gamma": 0.5}, DataNeeds(transitions=True)),
    ("drpo", {"quality": "q", "gamma": 0.9}, DataNeeds(transitions=True)),
    ("filtered_bc", {"quality": "return", "gamma": 0.8}, DataNeeds(return_gamma=0.8)),
    ("filtered_bc", {"quality": "q", "gamma": 0.8}, DataNeeds(transitions=True)),
    ("iql", {}, DataNeeds()), ("iql", {"gamma": 0.99}, DataNeeds(transitions=True)),
    ("crr", {}, DataNeeds()), ("crr", {"gamma": 0.9}, DataNeeds(transitions=True)),
    ("awr", {}, DataNeeds())])
def test_data_needs(name: str, fields, needs: DataNeeds) -> None:
    assert objective_class(name).data_needs_of(make_config(name, fields)) == needs


def test_return_uses_the_reward_column_as_exported() -> None:
    """quality = return: no critic; the data layer put the return-to-go in the reward column."""
    batch = transitions_batch()
    assert objective("drpo", quality="return").critic is None
    torch.testing.assert_close(objective("drpo", quality="return", gamma=0.9).loss(batch, 0).loss,
                               objective("drpo").loss(batch, 0).loss, rtol=0, atol=0)


def test_transitions_are_required_with_gamma() -> None:
    obj = objective("drpo", quality="advantage", gamma=0.9)
    r = torch.rand(8)
    with pytest.raises(ValueError, match="episode links"):
        obj.loss(Batch(torch.randn(8, D_STATE), torch.randn(8, D_ACTION), r, torch.zeros(8), r),
                 0)


def target_and_online(obj: torch.nn.Module) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
    critic = getattr(obj, "critic", None)
    if isinstance(critic, AdvantageCritic):
        return [(critic.value_target, critic.value)]
    if isinstance(critic, QCritic):
        return [(critic.q_target, critic.q)]
    if obj.name == "iql":
        return [(obj.q1_target, obj.q1), (obj.q2_target, obj.q2)]
    return [(obj.q_target, obj.q)]


@pytest.mark.parametrize(("name", "fields"), [
    ("drpo", {"quality": "advantage"}), ("filtered_bc", {"quality": "q"}), ("iql", {}),
    ("crr", {})])
def test_target_networks_move_by_polyak_in_after_step(name: str, fields) -> None:
    obj = objective(name, gamma=0.9, target_rate=0.1, **fields)
    pairs = target_and_online(obj)
    before = [[p.clone() for p in target.parameters()] for target, _ in pairs]
    assert all(torch.equal(t, o) for (target, online) in pairs
               for t, o in zip(target.parameters(), online.parameters(), strict=True))
    opt = torch.optim.Adam([p for p in obj.parameters() if p.requires_grad], lr=1e-2)
    out = obj.loss(transitions_batch(), 0)
    opt.zero_grad()
    out.loss.backward()
    opt.step()
    for (target, _), old in zip(pairs, before, strict=True):  # the optimiser leaves it alone
        assert all(torch.equal(p, q) for p, q in zip(target.parameters(), old, strict=True))
        assert not any(p.requires_grad for p in target.parameters())
    obj.after_step(0)
    for (target, online), old in zip(pairs, before, strict=True):
        for p, q, o in zip(target.parameters(), old, online.parameters(), strict=True):
            assert not torch.equal(p, q)
            torch.testing.assert_close(p, 0.9 * q + 0.1 * o)


# ---- gamma = 0 is the former bandit case, bit for bit -----------------------------------------
def test_bandit_iql_and_crr_have_no_target_networks_and_their_former_loss() -> None:
    batch = transitions_batch()
    s, a, r = batch.state, batch.action, batch.reward
    iql = objective("iql")
    assert {n.split(".")[0] for n in iql.state_dict()} == {"policy", "q1", "q2", "value"}
    q1, q2, v = iql.q1(s, a), iql.q2(s, a), iql.value(s)
    q_min = torch.minimum(q1, q2)
    tau = iql.config.expectile
    diff = q_min - v
    v_loss = (torch.where(diff < 0, 1 - tau, tau) * diff.pow(2)).mean()
    w = exp_weights(q_min - v, 1.0 / 3.0, 100.0)
    q_loss = (r - q1).pow(2).mean() + (r - q2).pow(2).mean()
    expected = -(w * iql.policy.log_prob(s, a)).mean() + q_loss + v_loss
    assert torch.equal(iql.loss(batch, 0).loss, expected)

    crr = objective("crr")
    assert {n.split(".")[0] for n in crr.state_dict()} == {"policy", "q"}
    state = batch.generator.get_state()
    got = crr.loss(batch, 0).loss
    batch.generator.set_state(state)  # the same draws of a_j ~ pi(. | s), and no others
    q = crr.q(s, a)
    sampled = crr.policy.sample(s.repeat(4, 1), batch.generator)
    advantage = q - crr.q(s.repeat(4, 1), sampled).view(4, -1).mean(dim=0)
    w = exp_weights(advantage, 1.0, 20.0)
    expected = -(w * crr.policy.log_prob(s, a)).mean() + (r - q).pow(2).mean()
    assert torch.equal(got, expected)


# ---- data parallel: the learned signal of the global batch -----------------------------------
def test_two_ranks_rank_the_global_batch_by_the_gathered_signal(tmp_path) -> None:
    """Each rank evaluates the critic on its shard; the all-gathered signal ranks the global
    batch: the gradients averaged over two gloo ranks equal one process's (advantage with
    gamma 0.9, and q)."""
    import torch.multiprocessing as mp

    ddp_steps(0, 1, str(tmp_path / "unused"), str(tmp_path / "one.pt"))
    mp.spawn(ddp_steps, args=(2, str(tmp_path / "init"), str(tmp_path / "two.pt")), nprocs=2)
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert len(one) == len(DDP_CASES)
    for case_one, case_two in zip(one, two, strict=True):
        for a, b in zip(case_one["grads"], case_two["grads"], strict=True):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
        assert any(bool(g.abs().sum() > 0) for g in case_one["grads"])
        torch.testing.assert_close(case_two["keep_share"], case_one["keep_share"])
