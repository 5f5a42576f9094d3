"""The CPU's numpy path of the batch filter and controller against the tensor path (the one an
accelerator runs): the same kept masses, std, P and training trajectory."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from drpo_core import filtering
from drpo_core.filtering import ControllerConfig, VarianceFeedbackController, masked_std
from drpo_core.objectives import Batch, make_objective
from drpo_core.policy import GaussianPolicy
from drpo_core.trainer import TrainConfig, Trainer
from tests.helpers import easy_task


def _batches(count: int) -> list[torch.Tensor]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        n = int(rng.integers(1, 400))
        values = (rng.choice([0.0, 0.25, 0.5, 1.0], n) if i % 2  # many ties at the cut
                  else rng.normal(size=n))
        out.append(torch.from_numpy(values.astype(np.float32)))
    return out


def test_host_and_tensor_paths_agree_on_random_batches(monkeypatch) -> None:
    for r in _batches(300):
        kappa = 0.05 + (len(r) % 19) / 20
        host = VarianceFeedbackController(ControllerConfig(initial_keep_share=kappa))
        kept = host.filter(r)
        sigma = masked_std(r, kept.weight, kept.count)
        ratio = host.update(r, kept, sigma)
        with monkeypatch.context() as m:
            m.setattr(filtering, "HOST_DEVICES", frozenset())  # the accelerator's code, on CPU
            tensor = VarianceFeedbackController(ControllerConfig(initial_keep_share=kappa))
            kept_t = tensor.filter(r)
            sigma_t = masked_std(r, kept_t.weight, kept_t.count)
            ratio_t = tensor.update(r, kept_t, sigma_t)
        assert torch.equal(kept.weight, kept_t.weight) and torch.equal(kept.mask, kept_t.mask)
        assert kept.nu.item() == kept_t.nu.item()
        assert kept.count.item() == pytest.approx(kept_t.count.item(), rel=1e-6)
        assert sigma.item() == pytest.approx(sigma_t.item(), rel=1e-6, abs=1e-7)
        assert ratio.item() == pytest.approx(ratio_t.item(), rel=1e-5, abs=1e-6)
        assert host.keep_share.item() == tensor.keep_share.item()


def test_the_sparse_host_filter_keeps_the_rule_and_its_std() -> None:
    """The kept rows alone carry the rule (the reference: top_kappa_weights), and the std read
    from the excess over the cut equals the masked std over the whole batch, ties included."""
    for r in _batches(300):
        kappa = 0.05 + (len(r) % 19) / 20
        values = r.numpy()
        kept = filtering.top_kappa_host(values, kappa)
        dense = kept.dense(len(values))
        np.testing.assert_allclose(dense, filtering.top_kappa_weights(values, kappa), rtol=1e-6)
        assert (np.diff(kept.rows) > 0).all() and (dense[kept.rows] == kept.weight).all()
        assert (np.delete(dense, kept.rows) == 0).all()
        whole = filtering.masked_std_host(values, dense, float(kept.count))
        assert kept.std() == pytest.approx(whole, rel=1e-6, abs=1e-7)


def test_the_host_read_of_p_follows_every_write_of_the_buffer() -> None:
    controller = VarianceFeedbackController()
    assert controller.keep_share_host() == 0.5
    controller.keep_share.fill_(0.3)
    assert controller.keep_share_host() == 0.3
    controller.load_state_dict({"keep_share": torch.tensor(0.7, dtype=torch.float64)})
    assert controller.keep_share_host() == 0.7
    controller.update_host(np.float32(1.0), np.float32(1.0))  # not homogeneous: tighten
    assert controller.keep_share_host() == controller.keep_share.item() == 0.7 * 0.98
    twin = copy.deepcopy(controller)
    twin.keep_share.fill_(0.2)
    assert twin.keep_share_host() == 0.2 and controller.keep_share_host() == 0.7 * 0.98
    controller.keep_share = torch.tensor(0.9, dtype=torch.float64)  # a new buffer
    assert controller.keep_share_host() == 0.9


def test_a_nan_reward_poisons_its_row_on_the_host() -> None:
    r = torch.tensor([3.0, float("nan"), 1.0, float("inf"), 2.0])
    kept = filtering.top_kappa(r, 0.4)
    assert torch.isnan(kept.weight[[1, 3]]).all() and not kept.mask[[1, 3]].any()


def _train(steps: int) -> tuple[torch.Tensor, list[float]]:
    cfg = TrainConfig(algorithm="drpo", steps=steps, batch_size=64, log_every=10,
                      checkpoint_every=steps, device="cpu", policy={"hidden": (16, 16)})
    result = Trainer(cfg, easy_task(n=2048), progress=False).fit()
    params = torch.cat([p.detach().flatten() for p in result.policy.parameters()])
    return params, [h["filter/keep_share"] for h in result.history]


def test_a_seeded_run_follows_the_same_trajectory_on_both_paths(monkeypatch) -> None:
    host_params, host_shares = _train(200)
    monkeypatch.setattr(filtering, "HOST_DEVICES", frozenset())
    tensor_params, tensor_shares = _train(200)
    # the controller took the same branch at every step (a branch moves P by 2 %; the host
    # path sums its metrics exactly, the tensor path in float32)
    assert host_shares == pytest.approx(tensor_shares, rel=1e-6)
    torch.testing.assert_close(host_params, tensor_params, rtol=0.0, atol=1e-6)


def _loss_and_metrics(algorithm: str, options: dict, reward_all: torch.Tensor
                      ) -> tuple[float, dict[str, float], float]:
    """One loss of ``algorithm`` on rank 0 of two (the first half of the global batch)."""
    torch.manual_seed(0)
    objective = make_objective(algorithm, GaussianPolicy(3, 2), options)
    n = len(reward_all) // 2
    state, action = torch.randn(n, 3), torch.randn(n, 2)
    batch = Batch(state, action, reward_all[:n], torch.zeros(n), reward_all,
                  shard=slice(0, n), world_size=2)
    out = objective.loss(batch, 0)
    out.loss.backward()
    grad = sum(float(p.grad.abs().sum()) for p in objective.policy.parameters()
               if p.grad is not None)
    return out.loss.item(), {k: float(v) for k, v in out.metrics.items()}, grad


@pytest.mark.parametrize(("algorithm", "options"), [
    ("drpo", {}), ("drpo", {"baseline": "mean_top"}), ("drpo_exp", {}), ("adaptive_bc", {})])
def test_the_fused_host_loss_matches_the_tensor_loss(monkeypatch, algorithm: str,
                                                     options: dict) -> None:
    for reward_all in _batches(12):  # odd: many ties at the cut; even: none
        reward_all = reward_all[: len(reward_all) // 2 * 2]
        if len(reward_all) < 2:
            continue
        host = _loss_and_metrics(algorithm, options, reward_all)
        with monkeypatch.context() as m:
            m.setattr(filtering, "HOST_DEVICES", frozenset())
            tensor = _loss_and_metrics(algorithm, options, reward_all)
        assert host[0] == pytest.approx(tensor[0], rel=1e-5, abs=1e-6)
        assert host[1].keys() == tensor[1].keys()
        for name, value in host[1].items():
            assert value == pytest.approx(tensor[1][name], rel=1e-5, abs=1e-6), name
        assert host[2] == pytest.approx(tensor[2], rel=1e-4, abs=1e-6)


def test_a_nan_reward_makes_the_fused_host_loss_nan() -> None:
    reward_all = torch.tensor([3.0, float("nan"), 1.0, 2.0, 0.5, 4.0])
    loss, _, _ = _loss_and_metrics("drpo", {}, reward_all)
    assert np.isnan(loss)
