from __future__ import annotations

import json

import pytest
import torch
from pydantic import ValidationError

from drpo_core.export import export_torchscript, load_policy
from drpo_core.objectives.base import DataNeeds
from drpo_core.policy import GaussianPolicy
from drpo_core.trainer import CheckpointError, NonFiniteLossError, TrainConfig, Trainer
from drpo_core.training_run import run_training
from tests.helpers import easy_task


def small(**kw) -> TrainConfig:
    base = {"steps": 30, "batch_size": 32, "log_every": 10, "checkpoint_every": 10,
            "policy": {"hidden": (16,)}}
    return TrainConfig(**(base | kw))


def test_unknown_algorithm_lists_the_valid_ones() -> None:
    with pytest.raises(ValidationError, match="unknown algorithm 'ppo'; valid: drpo, drpo_exp"):
        TrainConfig(algorithm="ppo")
    with pytest.raises(ValidationError, match=r"objective.temperature"):
        TrainConfig(algorithm="awr", objective={"temperature": -1})
    with pytest.raises(ValidationError, match="multiple of log_every"):
        TrainConfig(log_every=30, checkpoint_every=100)


def test_non_finite_loss_stops_naming_step_and_objective(tmp_path) -> None:
    data = easy_task(n=256)
    data.reward[5:] = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"drpo: loss became non-finite at step 0"):
        run_training(small(), data, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "policy.pt").exists()


def test_apg_is_repelled_and_collapses_while_drpo_stays_put() -> None:
    """The paper's failure case: off-policy repulsion drives the mean away and sigma to its
    floor (the variance shrinks, as the authors' later correction says); DRPO does not."""
    data = easy_task(n=1024, good_share=0.05)
    data_norm = data.action.norm(dim=1).mean().item()
    results = {}
    for algorithm in ("apg", "drpo"):
        cfg = small(algorithm=algorithm, steps=2000, learning_rate=1e-3, log_every=100,
                    checkpoint_every=1000)
        result = Trainer(cfg, data, progress=False).fit()
        with torch.no_grad():
            norm = result.policy(data.state).norm(dim=1).mean().item()
        results[algorithm] = (norm, result.final_metrics["policy/sigma"])
    apg_norm, apg_sigma = results["apg"]
    drpo_norm, drpo_sigma = results["drpo"]
    assert apg_norm > 20 * data_norm and apg_sigma < 0.01  # e^-5 = 0.0067 is the floor
    assert drpo_norm < 2 * data_norm and drpo_sigma > 0.05


def test_batch_must_split_evenly_across_processes() -> None:
    from drpo_core.trainer import DistContext

    with pytest.raises(ValueError, match="must divide by the number of processes"):
        Trainer(small(batch_size=33), easy_task(n=64), dist_context=DistContext(0, 2),
                progress=False)


def test_corrupt_checkpoint_and_other_data_are_refused(tmp_path) -> None:
    data = easy_task(n=256)
    run_training(small(), data, tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="different data"):
        Trainer(small(steps=40), easy_task(n=256, seed=1), tmp_path, progress=False).fit(
            resume=True)
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable or corrupt"):
        run_training(small(steps=40), data, tmp_path, resume=True, progress=False)
    assert (tmp_path / "policy.pt").exists()  # a failed resume leaves the last policy alone


def test_run_outputs_and_refusal_to_mix_runs(tmp_path) -> None:
    data = easy_task(n=256)
    out = run_training(small(), data, tmp_path / "run", progress=False)
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"policy.pt", "metrics.json", "config.json", "checkpoint.pt", "loss.png",
            "keep_share.png", "sigma.png"} <= files
    metrics = json.loads(out.metrics_path.read_text())
    assert metrics["steps"] == 30 and len(metrics["history"]) == 3
    resolved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert resolved["objective"]["controller"]["relax_factor"] == 1.02
    with pytest.raises(FileExistsError, match=r"--resume .* or --overwrite"):
        run_training(small(), data, tmp_path / "run", progress=False)
    run_training(small(), data, tmp_path / "run", overwrite=True, progress=False)


def test_torchscript_export_matches_eager_and_loads_on_cpu(tmp_path) -> None:
    torch.manual_seed(0)
    policy = GaussianPolicy(6, 4)
    path = export_torchscript(policy, tmp_path / "policy.pt")
    loaded = load_policy(path, map_location="cpu")
    x = torch.randn(9, 6)
    out = loaded(x)
    assert out.dtype == torch.float32 and out.shape == (9, 4)
    torch.testing.assert_close(out, policy(x))
    (tmp_path / "bad.pt").write_text("junk")
    with pytest.raises(ValueError, match="not a TorchScript policy"):
        load_policy(tmp_path / "bad.pt")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_policy_trained_on_cuda_loads_on_cpu(tmp_path) -> None:  # pragma: no cover
    out = run_training(small(device="cuda"), easy_task(n=256), tmp_path, progress=False)
    loaded = load_policy(out.policy_path, map_location="cpu")
    assert loaded(torch.randn(2, 4)).device.type == "cpu"


def test_callbacks_receive_metrics_at_every_log_step() -> None:
    seen: list[tuple[int, dict[str, float]]] = []

    class Recorder:
        def on_log(self, step: int, metrics: dict[str, float]) -> None:
            seen.append((step, metrics))

    Trainer(small(), easy_task(n=256), callbacks=[Recorder()], progress=False).fit()
    assert [s for s, _ in seen] == [10, 20, 30]
    assert {"losses/total", "filter/keep_share", "filter/nu", "policy/sigma"} <= set(seen[0][1])
    assert abs(seen[0][1]["filter/keep_share"] - 0.5) < 0.1  # P moves 2 % a step from P0


def test_filtered_bc_keeps_the_top_kappa_mass_with_the_sql_tie_rule() -> None:
    """kappa n = 2.5 of 10 rows: the two best rows whole, the third half (old configs'
    ``fraction`` still loads as kappa)."""
    import numpy as np

    from drpo_core.data import TrainingData

    n = 10
    data = TrainingData(torch.randn(n, 2), torch.randn(n, 2), torch.arange(n).float(),
                        torch.zeros(n))
    cfg = TrainConfig(algorithm="filtered_bc", steps=1, batch_size=50_000, log_every=1,
                      checkpoint_every=1, objective={"fraction": 0.25})
    assert cfg.resolved_objective()["kappa"] == 0.25
    trainer = Trainer(cfg, data, progress=False)
    counts = np.bincount(trainer._batch().reward_all.long().numpy(), minlength=n) / 50_000
    np.testing.assert_allclose(counts, [0.0] * 7 + [0.2, 0.4, 0.4], atol=0.01)


def linked(n: int = 64):
    """easy_task rows with episode links: next_state = state + 100, done alternating."""
    from dataclasses import replace

    data = easy_task(n=n)
    return replace(data, next_state=data.state + 100.0, done=(torch.arange(n) % 2).float())


def test_batches_carry_the_episode_links_on_both_data_paths() -> None:
    from drpo_core.data import DrawnSample

    data = linked()
    cfg = small(algorithm="bc", batch_size=16)
    batch = Trainer(cfg, data, progress=False)._batch()  # rows drawn from the pool
    assert batch.has_transitions
    torch.testing.assert_close(batch.next_state, batch.state + 100.0)
    torch.testing.assert_close(batch.done, data.done[batch.rows])
    sample = DrawnSample(data.state, data.action, data.reward, data.behavior_logprob,
                         next_state=data.next_state, done=data.done, reward_all=data.reward,
                         batch_size=16)
    trainer = Trainer(cfg, sample, progress=False)
    trainer.step = 2  # step t reads draws [16 t, 16 (t + 1))
    batch = trainer._batch()
    torch.testing.assert_close(batch.next_state, data.state[32:48] + 100.0)
    torch.testing.assert_close(batch.done, data.done[32:48])
    plain = Trainer(cfg, easy_task(n=64), progress=False)._batch()
    assert not plain.has_transitions


def test_extend_data_keeps_the_episode_links() -> None:
    trainer = Trainer(small(algorithm="bc"), linked(), progress=False)
    trainer.extend_data(linked(32))
    assert trainer.data.n_rows == 96 and trainer.data.done is not None
    torch.testing.assert_close(trainer.data.next_state, trainer.data.state + 100.0)
    with pytest.raises(ValueError, match="new rows must carry the session data"):
        trainer.extend_data(easy_task(n=8))


def test_data_without_what_the_objective_needs_is_refused() -> None:
    from dataclasses import replace

    returns = replace(easy_task(n=64), return_gamma=0.9)
    with pytest.raises(ValueError, match=r"^bc needs the logged reward in the reward column; "
                       r"the training data holds the return-to-go with gamma=0.9"):
        Trainer(small(algorithm="bc"), returns, progress=False)
    assert small(algorithm="bc").data_needs() == DataNeeds()
    cfg = small(algorithm="iql", objective={"gamma": 0.9})
    assert cfg.data_needs().transitions
    with pytest.raises(ValueError, match=r"^iql needs next_state and done .*no episode links"):
        Trainer(cfg, easy_task(n=64), progress=False)
    Trainer(cfg, linked(), progress=False)  # with the links it trains


def test_the_gradient_clip_reaches_every_parameter() -> None:
    """With a clip far below the gradients' norm, Adam's steps shrink by its epsilon: the
    trainer clips the gradients it cleared and the optimiser steps (all of them)."""
    data = easy_task(n=512)
    moved = {}
    for clip in (None, 1e-12):
        trainer = Trainer(small(algorithm="bc", steps=20, grad_clip_norm=clip), data,
                          progress=False)
        before = [p.detach().clone() for p in trainer.policy.parameters()]
        trainer.fit()
        moved[clip] = max(float((p.detach() - b).abs().max())
                          for p, b in zip(trainer.policy.parameters(), before, strict=True))
    assert moved[None] > 1e-3  # 20 Adam steps of lr 3e-4
    assert moved[1e-12] < 1e-5


def test_host_metrics_average_over_each_log_window() -> None:
    """The CPU path reports DRPO's filter metrics as host floats: with P fixed, each window's
    mean is P itself and the kept mass N P."""
    data = easy_task(n=512)
    fixed = {"controller": {"adaptive": False, "initial_keep_share": 0.3}}
    result = Trainer(small(objective=fixed), data, progress=False).fit()
    assert len(result.history) == 3
    for record in result.history:
        assert record["filter/keep_share"] == 0.3
        assert record["filter/kept"] == pytest.approx(0.3 * 32)
