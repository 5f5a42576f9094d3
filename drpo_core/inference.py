"""Using a trained policy: the numpy adapter every evaluator calls, and the eager policy of a run.

``numpy_policy`` turns any torch module mapping states to action embeddings (a
``GaussianPolicy``, its ``MeanActionHead`` or a TorchScript ``policy.pt``) into the
``states -> actions`` function the simulator and the off-policy estimators take.
``load_run_policy`` rebuilds the eager ``GaussianPolicy`` from a run's public
``policy_state.pt`` (dimensions, policy config, weights), never from the trainer's checkpoint.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from drpo_core.policy import GaussianPolicy, PolicyConfig

POLICY_STATE_FILE = "policy_state.pt"

NumpyPolicy = Callable[[np.ndarray], np.ndarray]


def numpy_policy(module: torch.nn.Module) -> NumpyPolicy:
    """``states (n, d_state) -> actions (n, d_action)``, float32, without gradients."""

    def act(states: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(np.ascontiguousarray(states, dtype=np.float32))
        with torch.no_grad():
            try:
                return module(batch).float().cpu().numpy()
            except RuntimeError as err:
                raise ValueError(f"the policy does not accept states of shape "
                                 f"{tuple(batch.shape)} ({str(err).splitlines()[0]})") from None

    return act


def save_policy_state(policy: GaussianPolicy, path: Path) -> Path:
    """Write what ``load_run_policy`` needs: dimensions, policy config and CPU weights."""
    state = {"d_state": policy.d_state, "d_action": policy.d_action,
             "config": policy.config.model_dump(mode="json"),
             "weights": {k: v.detach().cpu() for k, v in policy.state_dict().items()}}
    tmp = Path(path).with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return Path(path)


def load_run_policy(run_dir: Path) -> GaussianPolicy:
    """The eager policy of a finished run (``run_dir/policy_state.pt``), in eval mode on CPU."""
    path = Path(run_dir) / POLICY_STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {POLICY_STATE_FILE} in {run_dir}: the run did not finish")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        policy = GaussianPolicy(int(state["d_state"]), int(state["d_action"]),
                                PolicyConfig.model_validate(state["config"]))
        policy.load_state_dict(state["weights"])
    except (RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as err:
        raise ValueError(f"{path} is not a policy state ({str(err).splitlines()[0]})") from None
    return policy.eval()
