"""The registered model: an MLflow pyfunc that maps a batch of states to the top-k item ids.

Self-contained on purpose: MLflow stores this file with the model ("models from code"), so
``mlflow.pyfunc.load_model('models:/drpo-policy@champion')`` and ``mlflow models serve`` need
only numpy, torch and mlflow, never this project. Nothing here imports ``flows`` or
``drpo_core``.

The model carries two artifacts and a config:

- ``policy``: the TorchScript ``policy.pt`` (state float32[d_state] -> mean action
  float32[d_action]); its SHA-256 is in the config and is checked before ``torch.jit.load``.
- ``catalogue``: ``catalogue.npz`` with ``ids`` (unicode, n_items) and ``embeddings``
  (float32, n_items x d_action).
- config ``k`` (default number of items per state, overridable per request through the params
  field ``k``) and ``policy_sha256``.

Retrieval is the simulator's: cosine similarity between the policy's mean action and every
catalogue embedding (App. H, "KNN retrieval"); the k best items in descending similarity, ties
broken by catalogue order so a request always gets the same answer.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import mlflow
import numpy as np

POLICY_ARTIFACT, CATALOGUE_ARTIFACT = "policy", "catalogue"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def top_k_items(actions: np.ndarray, embeddings: np.ndarray, ids: np.ndarray, k: int
                ) -> np.ndarray:
    """ids of the k catalogue items with the highest cosine to each action: (n, k) str."""
    if not 1 <= k <= len(ids):
        raise ValueError(f"k must be between 1 and the catalogue size {len(ids)}, got {k}")
    cosine = unit_rows(actions.astype(np.float64)) @ unit_rows(embeddings.astype(np.float64)).T
    order = np.argsort(-cosine, axis=1, kind="stable")[:, :k]  # stable: ties by catalogue order
    return ids[order]


class Recommender(mlflow.pyfunc.PythonModel):
    """pyfunc: states (n, d_state) float32 -> item ids (n, k)."""

    # the signature (a float32 tensor of states) is the input contract; no type hints on
    # predict, and MLflow's hint-based validation (which would warn about them) is off
    _skip_type_hint_validation = True

    def load_context(self, context):
        import torch

        config = context.model_config or {}
        policy_path = context.artifacts[POLICY_ARTIFACT]
        expected = config.get("policy_sha256")
        actual = file_sha256(policy_path)
        if expected is None or actual != expected:
            raise ValueError(f"policy artifact {Path(policy_path).name} has SHA-256 {actual}, "
                             f"the model records {expected}: refusing to load it")
        with warnings.catch_warnings():  # torch 2.13 marks TorchScript deprecated; it works
            warnings.simplefilter("ignore", DeprecationWarning)
            self.policy = torch.jit.load(policy_path, map_location="cpu").eval()
        with np.load(context.artifacts[CATALOGUE_ARTIFACT], allow_pickle=False) as catalogue:
            self.ids = catalogue["ids"]
            self.embeddings = catalogue["embeddings"].astype(np.float32)
        self.k = int(config.get("k", 10))

    def predict(self, context, model_input, params=None):
        import torch

        states = np.asarray(getattr(model_input, "values", model_input), dtype=np.float32)
        if states.ndim != 2 or not np.isfinite(states).all():
            raise ValueError(f"expected a finite float32 batch of states (n, d_state), got "
                             f"shape {states.shape}")
        k = int((params or {}).get("k") or self.k)
        with torch.no_grad():
            actions = self.policy(torch.from_numpy(states)).numpy()
        return top_k_items(actions, self.embeddings, self.ids, k)


mlflow.models.set_model(Recommender())
