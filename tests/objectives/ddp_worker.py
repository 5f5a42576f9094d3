"""Helpers of test_quality.py that a spawned rank imports: torch and the objectives only (no
data layer), so that starting a rank stays cheap."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from drpo_core.objectives import Batch, Objective, make_objective
from drpo_core.policy import GaussianPolicy, PolicyConfig

D_STATE, D_ACTION = 6, 2
SMALL = PolicyConfig(hidden=(32,))
DDP_BATCH = 64
DDP_CASES: tuple[dict[str, Any], ...] = ({"quality": "advantage", "gamma": 0.9},
                                         {"quality": "q"})


def objective(name: str, **fields: Any) -> Objective:
    torch.manual_seed(0)
    return make_objective(name, GaussianPolicy(D_STATE, D_ACTION, SMALL), fields)


def transitions_batch(n: int = 256, seed: int = 0, one_step: bool = False) -> Batch:
    """Sessions of 4 steps (done on the 4th), next_state = the following row's state."""
    g = torch.Generator().manual_seed(seed)
    state = torch.randn(n, D_STATE, generator=g)
    action = torch.randn(n, D_ACTION, generator=g)
    reward = torch.rand(n, generator=g)
    done = torch.ones(n) if one_step else ((torch.arange(n) % 4) == 3).float()
    next_state = torch.where(done[:, None] > 0, state, state.roll(-1, dims=0))
    return Batch(state, action, reward, torch.zeros(n), reward, next_state=next_state,
                 done=done, generator=torch.Generator().manual_seed(seed))


def shard_of(full: Batch, rank: int, world_size: int) -> Batch:
    """This rank's rows of the global batch, with every row's reward (as the trainer's)."""
    shard = slice(rank * DDP_BATCH // world_size, (rank + 1) * DDP_BATCH // world_size)
    return Batch(full.state[shard], full.action[shard], full.reward[shard],
                 full.behavior_logprob[shard], full.reward_all, shard=shard,
                 world_size=world_size, next_state=full.next_state[shard],
                 done=full.done[shard])


def ddp_steps(rank: int, world_size: int, init_file: str, out: str) -> None:
    """Per case of DDP_CASES: drpo's loss and gradient on this rank's shard of one global batch,
    the gradients averaged over the ranks as DDP does; rank 0 saves them (world_size 1: the
    single-process reference)."""
    torch.set_num_threads(1)
    if world_size > 1:
        dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                                world_size=world_size)
    results = []
    for fields in DDP_CASES:
        obj = objective("drpo", **fields)
        obj.loss(shard_of(transitions_batch(n=DDP_BATCH), rank, world_size), 0).loss.backward()
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in obj.parameters()]
        for g in grads if world_size > 1 else []:
            dist.all_reduce(g)
            g /= world_size
        results.append({"grads": grads, "keep_share": obj.controller.keep_share})
    if world_size > 1:
        dist.destroy_process_group()
    if rank == 0:
        torch.save(results, out)
