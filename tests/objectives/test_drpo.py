"""DRPO exactly as Algorithm 1: weights, threshold, controller, and the kappa = 1 limit."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given, settings

from drpo_core.filtering import (
    ControllerConfig,
    VarianceFeedbackController,
    _top_kappa_device,
    masked_std,
    top_kappa,
    top_kappa_weights,
    top_share_mask,
)
from drpo_core.objectives import Batch, make_objective
from drpo_core.policy import GaussianPolicy


def drpo(**controller) -> torch.nn.Module:
    torch.manual_seed(0)
    return make_objective("drpo", GaussianPolicy(3, 2), {"controller": controller})


def test_kept_weights_nonnegative_and_boundary_row_zero() -> None:
    r = torch.tensor([0.9, 0.1, 0.5, 0.7, 0.3, 0.8, 0.2, 0.6])
    obj = drpo()  # P0 = 0.5 -> K = 4: {0.9, 0.8, 0.7, 0.6}
    kept = obj.controller.filter(r)
    assert kept.mask.tolist() == [True, False, False, True, False, True, False, True]
    assert kept.nu.item() == pytest.approx(0.6)
    w = obj.weights(r, kept)
    assert (w >= 0).all()
    assert w[7].item() == 0.0  # the boundary row (r = nu) gets zero weight
    assert (w[~kept.mask] == 0).all()
    advantage = torch.tensor([0.3, 0.1, 0.2, 0.0])
    expected = advantage / (advantage.std(correction=0) + 1e-8)  # scaled, not centred
    torch.testing.assert_close(w[[0, 3, 5, 7]], expected)


def test_controller_multiplies_by_exactly_102_and_098() -> None:
    ctrl = VarianceFeedbackController()
    homogeneous_top = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.1, 0.2, 0.3])  # std_top = 0
    ctrl.update(homogeneous_top, ctrl.filter(homogeneous_top))
    assert ctrl.keep_share.item() == 0.5 * 1.02
    ctrl = VarianceFeedbackController()
    noisy_top = torch.tensor([100.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])  # std_top ~ std_all
    ctrl.update(noisy_top, ctrl.filter(noisy_top))
    assert ctrl.keep_share.item() == 0.5 * 0.98


def test_controller_respects_bounds() -> None:
    up = torch.tensor([1.0] * 99 + [0.0])  # K = N P = 99: the kept rewards are all equal
    high = VarianceFeedbackController(ControllerConfig(initial_keep_share=0.99))
    high.update(up, high.filter(up))
    assert high.keep_share.item() == 1.0
    down = torch.tensor([1000.0, 1.0, 1.0, 1.0, 1.0] + [0.0] * 95)  # K = 5, heavy top
    low = VarianceFeedbackController(ControllerConfig(initial_keep_share=0.0505))
    low.update(down, low.filter(down))
    assert low.keep_share.item() == 0.05
    fixed = VarianceFeedbackController(ControllerConfig(adaptive=False))
    fixed.update(down, fixed.filter(down))
    assert fixed.keep_share.item() == 0.5


def test_keep_all_with_uniform_weights_equals_bc_exactly() -> None:
    torch.manual_seed(0)
    policy = GaussianPolicy(3, 2)
    abc = make_objective("adaptive_bc", policy,
                         {"controller": {"initial_keep_share": 1.0, "adaptive": False}})
    bc = make_objective("bc", policy)
    g = torch.Generator().manual_seed(1)
    s, a, r = torch.randn(50, 3, generator=g), torch.randn(50, 2, generator=g), torch.rand(50)
    batch = Batch(s, a, r, torch.zeros(50), r)
    torch.testing.assert_close(abc.loss(batch, 0).loss, bc.loss(batch, 0).loss,
                               rtol=1e-6, atol=0.0)


def test_all_equal_rewards_give_no_gradient_and_no_crash() -> None:
    obj = drpo()
    r = torch.full((16,), 0.3)
    batch = Batch(torch.randn(16, 3), torch.randn(16, 2), r, torch.zeros(16), r)
    out = obj.loss(batch, 0)
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.loss.item() == 0.0
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in obj.parameters())


rewards = st.lists(
    st.one_of(st.floats(-10, 10, allow_nan=False, width=32), st.sampled_from([0.0, 0.5, 1.0])),
    min_size=1, max_size=300,
)


def greedy_kept_mass(r: np.ndarray, kappa: float) -> np.ndarray:
    """Reference of the SQL's tie rule, written as the LP it solves (App. F.1): fill the mass
    kappa n greedily from the best distinct reward down; a group that does not fit whole shares
    what is left equally."""
    left = kappa * len(r)
    mass = np.zeros(len(r))
    for value in sorted(set(r.tolist()), reverse=True):
        rows = r == value
        take = min(1.0, left / rows.sum())
        mass[rows] = take
        left -= take * rows.sum()
        if left <= 1e-12:
            break
    return mass


def test_tie_rule_on_a_hand_example() -> None:
    r = torch.tensor([5.0, 3.0, 3.0, 3.0, 1.0])
    kept = top_kappa(r, 0.5)  # kappa n = 2.5: 5 whole, the three 3s share 1.5
    torch.testing.assert_close(kept.weight, torch.tensor([1.0, 0.5, 0.5, 0.5, 0.0]))
    assert kept.nu.item() == 3.0 and kept.count.item() == 2.5
    kept = top_kappa(r, 0.1)  # kappa n = 0.5 < 1: the best row keeps half its mass
    torch.testing.assert_close(kept.weight, torch.tensor([0.5, 0.0, 0.0, 0.0, 0.0]))
    kept = top_share_mask(torch.arange(10.0), torch.tensor(0.55, dtype=torch.float64))
    torch.testing.assert_close(kept.weight, torch.tensor([0.0] * 4 + [0.5] + [1.0] * 5))


@settings(max_examples=200, deadline=None)
@given(r=rewards, p=st.floats(0.01, 1.0))
def test_filter_equals_the_numpy_reference_on_random_rewards_with_ties(r: list[float],
                                                                      p: float) -> None:
    reward = torch.tensor(r, dtype=torch.float32)
    r64 = reward.double().numpy()
    kept = top_share_mask(reward, torch.tensor(p, dtype=torch.float64))
    reference = greedy_kept_mass(r64, p)
    np.testing.assert_allclose(kept.weight.double().numpy(), reference, atol=1e-5)
    np.testing.assert_allclose(top_kappa_weights(r64, p), reference, atol=1e-9)
    device = _top_kappa_device(reward, torch.tensor(p, dtype=torch.float64))  # the GPU's path
    torch.testing.assert_close(device.weight, kept.weight, rtol=0, atol=1e-6)
    assert device.nu == kept.nu and device.count.item() == pytest.approx(kept.count.item())
    assert kept.count.item() == pytest.approx(p * len(r), abs=1e-4)  # exactly kappa n
    assert reward[kept.mask].min().item() == kept.nu.item()
    if not kept.mask.all():
        assert reward[~kept.mask].max() <= kept.nu
    obj = drpo()
    w = obj.weights(reward, kept)
    assert torch.isfinite(w).all() and (w >= 0).all()
    assert (w[~kept.mask] == 0).all()
    assert (w[reward == kept.nu] == 0).all()  # advantage 0 at the cut
    kept_mass = kept.weight.double().numpy()  # the kept rows' std under their masses
    mean = (r64 * kept_mass).sum() / kept_mass.sum()
    std = np.sqrt(((r64 - mean) ** 2 * kept_mass).sum() / kept_mass.sum())
    assert masked_std(reward, kept.weight).item() == pytest.approx(std, rel=1e-4, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(batches=st.lists(st.lists(st.floats(0, 1, width=32), min_size=4, max_size=64),
                        min_size=1, max_size=40))
def test_controller_stays_within_bounds(batches: list[list[float]]) -> None:
    ctrl = VarianceFeedbackController()
    for b in batches:
        r = torch.tensor(b)
        before = ctrl.keep_share.item()
        ctrl.update(r, ctrl.filter(r))
        after = ctrl.keep_share.item()
        assert 0.05 <= after <= 1.0
        assert after in (min(1.0, before * 1.02), max(0.05, before * 0.98))
