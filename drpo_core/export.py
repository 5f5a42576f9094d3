"""Export of a trained policy: a TorchScript file whose ``forward(state)`` is the mean action.

TorchScript is what serving stacks load without Python model code (``torch.jit.load``). PyTorch
2.13 marks ``torch.jit.script`` deprecated in favour of ``torch.export``; it still works, so the
warning is silenced here and nowhere else. The file is always written from CPU weights, so it
loads anywhere; ``load_policy`` maps to the requested device.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import torch

from drpo_core.policy import GaussianPolicy, MeanActionHead


def export_torchscript(policy: GaussianPolicy, path: Path) -> Path:
    """Write ``policy.pt``: float32 [batch, d_state] -> float32 [batch, d_action]."""
    head = MeanActionHead(copy.deepcopy(policy).float().cpu()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(head)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    scripted.save(str(tmp))
    os.replace(tmp, path)
    return path


def load_policy(path: Path, map_location: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"policy file {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location=map_location)
    except Exception as err:
        raise ValueError(f"policy file {path} is not a TorchScript policy ({err})") from None
    return module.eval()
