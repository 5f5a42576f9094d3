"""The registry on a real MLflow SQLite store: what a version carries, the recommender it
serves, the checksum of its policy, and rollbacks that stick."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from flows import registry
from flows.gate import GateConfig, Scorecard, decide
from flows.recommender import file_sha256
from tests.flows.test_registry_support import D_STATE, N_ITEMS, catalogue, register, tiny_policy

KEY, KEY2, KEY3 = "0a1b2c3d4e5f6071", "1a1b2c3d4e5f6071", "2a1b2c3d4e5f6071"


def alias(client, name: str) -> int | None:
    mv = registry.alias_version(client, name)
    return None if mv is None else int(mv.version)


def test_a_version_is_created_with_its_tags_checksum_description_and_lineage(client, tmp_path):
    before = int(time.time() * 1000)
    result = register(client, KEY, tmp_path / "w")
    assert (result.version, result.created) == (1, True)
    mv = client.get_model_version(registry.MODEL_NAME, "1")
    assert mv.tags["run_key"] == KEY and mv.tags["logical_date"] == "2026-01-03"
    assert mv.tags["policy_sha256"] == file_sha256(tmp_path / "w" / "policy.pt")
    assert "2026-01-01..2026-01-02" in mv.description and "top-3 item ids" in mv.description
    assert "DRPO" in client.get_registered_model(registry.MODEL_NAME).description
    run = client.get_run(mv.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["run_key"] == KEY
    history = client.get_metric_history(mv.run_id, "losses/total")
    assert [(int(m.step), m.value) for m in history] == [(100, 1.5), (200, 1.25)]
    assert all(m.timestamp >= before for m in history)  # real times, not 1970
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == "0123456789abcdef"
    assert dataset_input.dataset.name == "window 2026-01-01..2026-01-02"
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"
    rows = json.loads(dataset_input.dataset.profile)["num_rows"]
    assert rows == 2  # one summary row per partition of the window

    again = register(client, KEY, tmp_path / "w")
    assert (again.version, again.created) == (1, False)
    assert len(client.search_model_versions(f"name = '{registry.MODEL_NAME}'")) == 1


def test_annotate_version_adds_the_gate_outcome(client, tmp_path):
    register(client, KEY, tmp_path / "w")
    registry.annotate_version(client, 1, tags={"gate.promoted": "True"},
                              description_line="Gate: promoted (gain +0.01 [0.005, 0.015]).")
    mv = client.get_model_version(registry.MODEL_NAME, "1")
    assert mv.tags["gate.promoted"] == "True"
    assert mv.description.startswith("DRPO policy") and mv.description.endswith("0.015]).")


def test_the_champion_recommends_top_k_item_ids_by_cosine(client, tmp_path):
    import mlflow

    register(client, KEY, tmp_path / "w", k=3)
    registry.promote(client, 1)
    model = mlflow.pyfunc.load_model(f"models:/{registry.MODEL_NAME}@champion")
    states = np.random.default_rng(5).standard_normal((6, D_STATE)).astype(np.float32)
    got = model.predict(states)
    assert got.shape == (6, 3)
    # reference: the policy's mean action against every catalogue embedding, by cosine
    head, _ = tiny_policy(tmp_path / "ref")
    ids, emb = catalogue()
    with torch.no_grad():
        actions = head(torch.from_numpy(states)).numpy()
    cos = (actions / np.linalg.norm(actions, axis=1, keepdims=True)) @ (
        emb / np.linalg.norm(emb, axis=1, keepdims=True)).T
    expected = np.array(ids)[np.argsort(-cos, axis=1)[:, :3]]
    assert (got == expected).all()
    assert model.predict(states, params={"k": 5}).shape == (6, 5)
    assert set(model.predict(states, params={"k": N_ITEMS}).ravel()) == set(ids)


def test_the_model_loads_and_predicts_without_the_project(client, tmp_path):
    register(client, KEY, tmp_path / "w", k=4)
    registry.promote(client, 1)
    script = (
        "import sys\n"
        "sys.modules['flows'] = None; sys.modules['drpo_core'] = None  # import -> error\n"
        "import mlflow, numpy as np\n"
        f"mlflow.set_tracking_uri({registry.tracking_uri()!r})\n"
        "m = mlflow.pyfunc.load_model('models:/drpo-policy@champion')\n"
        f"print(m.predict(np.ones((2, {D_STATE}), dtype=np.float32)).tolist())\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"'))
    assert len(rows) == 2 and all(len(r) == 4 and set(r) <= set(catalogue()[0]) for r in rows)


def test_a_tampered_policy_artifact_is_refused_before_it_is_loaded(client, tmp_path):
    register(client, KEY, tmp_path / "w")
    mv = client.get_model_version(registry.MODEL_NAME, "1")
    good = registry.download_policy(client, 1, tmp_path / "dl-good")
    assert file_sha256(good) == mv.tags["policy_sha256"]
    stored = Path(client.get_run(mv.run_id).info.artifact_uri.removeprefix("file://"))
    with open(stored / "policy.pt", "ab") as f:
        f.write(b"\0")  # one byte appended: a different file
    with pytest.raises(registry.PolicyChecksumError, match="was altered"):
        registry.download_policy(client, 1, tmp_path / "dl")
    assert not (tmp_path / "dl" / "policy.pt").exists()  # nothing left for anyone to load


def test_the_recommender_refuses_a_tampered_policy(client, tmp_path):
    import mlflow

    register(client, KEY, tmp_path / "w")
    mv = client.get_model_version(registry.MODEL_NAME, "1")
    model_id = mv.source.removeprefix("models:/")
    model_dir = client.get_logged_model(model_id).artifact_location.removeprefix("file://")
    (copy,) = Path(model_dir).rglob("policy.pt")
    copy.write_bytes(copy.read_bytes() + b"\0")
    with pytest.raises(Exception, match="SHA-256"):
        mlflow.pyfunc.load_model(f"models:/{registry.MODEL_NAME}/1")


def test_a_version_without_checksum_is_not_loaded_unless_allowed(client, tmp_path):
    register(client, KEY, tmp_path / "w")
    client.delete_model_version_tag(registry.MODEL_NAME, "1", "policy_sha256")
    with pytest.raises(registry.PolicyChecksumError, match="records no policy_sha256"):
        registry.download_policy(client, 1, tmp_path / "dl")
    assert registry.download_policy(client, 1, tmp_path / "dl", allow_unverified=True).exists()


def test_a_failed_registration_ends_its_run_failed_and_registers_nothing(client, tmp_path):
    from mlflow.entities import ViewType

    head, path = tiny_policy(tmp_path)
    ids, emb = catalogue()
    with pytest.raises(ValueError, match="catalogue_embeddings must be"):
        registry.log_and_register(
            client, run_key=KEY, run_name="bad", params={}, history=[], metrics={},
            artifacts=[], json_artifacts={}, policy_module=head, torchscript_path=path,
            d_state=D_STATE, tags={}, catalogue_ids=ids, catalogue_embeddings=emb[:-1])
    experiment = client.get_experiment_by_name(registry.EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
    assert run.info.status == "FAILED"
    assert client.search_model_versions(f"name = '{registry.MODEL_NAME}'") == []
    assert register(client, KEY, tmp_path / "w").version == 1


def test_without_a_catalogue_the_policy_is_logged_with_the_pytorch_flavour(client, tmp_path):
    import mlflow

    register(client, KEY, tmp_path / "w", with_catalogue=False)
    model = mlflow.pyfunc.load_model(f"models:/{registry.MODEL_NAME}/1")
    out = model.predict(np.zeros((3, D_STATE), dtype=np.float32))
    assert np.asarray(out).shape == (3, 3)  # the mean action (d_action = 3)


def test_rollback_blocks_the_version_from_automatic_promotion(client, tmp_path):
    for i, key in enumerate((KEY, KEY2)):
        register(client, key, tmp_path / f"w{i}", seed=i)
    registry.promote(client, 1, reason="gate")
    registry.promote(client, 2, reason="gate")
    assert registry.rollback(client) == (2, 1)
    assert alias(client, "champion") == 1
    assert registry.blocked_reason(client, 2) == "rolled_back"
    with pytest.raises(registry.BlockedVersionError, match="blocked"):
        registry.promote(client, 2, reason="gate")  # a rerun of the date: refused
    assert alias(client, "champion") == 1
    # the gate honours the block before it even compares scores
    values = np.linspace(0, 1, 50)
    decision = decide(Scorecard(1.0, 0.5, True, units=values + 1),
                      Scorecard(0.5, 0.0, True, units=values), GateConfig(),
                      blocked=registry.blocked_reason(client, 2))
    assert not decision.promote and "rolled_back" in decision.reason
    # an operator may still promote it by hand, which lifts the block
    assert registry.promote(client, 2, reason="manual (drpo promote)", manual=True) == 1
    assert alias(client, "champion") == 2 and registry.blocked_reason(client, 2) is None


def test_a_second_rollback_does_not_cycle_back(client, tmp_path):
    for i, key in enumerate((KEY, KEY2)):
        register(client, key, tmp_path / f"w{i}", seed=i)
    registry.promote(client, 2, reason="test")
    registry.promote(client, 1, reason="test")  # 1 records 2 as previous, 2 records nothing
    registry.promote(client, 2, reason="test")  # now 2 records 1: a cycle in the tags
    assert registry.rollback(client) == (2, 1)
    with pytest.raises(ValueError, match="no earlier champion that is not blocked"):
        registry.rollback(client)
    assert alias(client, "champion") == 1


def test_rollback_walks_past_blocked_versions(client, tmp_path):
    for i, key in enumerate((KEY, KEY2, KEY3)):
        register(client, key, tmp_path / f"w{i}", seed=i)
    for version in (1, 2, 3):
        registry.promote(client, version, reason="gate")
    assert registry.rollback(client) == (3, 2)
    assert registry.rollback(client) == (2, 1)
    registry.promote(client, 3, reason="manual", manual=True)  # 3 -> previous 1
    assert registry.rollback(client) == (3, 1)
    assert alias(client, "champion") == 1


def test_promote_of_a_missing_version_says_so(client):
    with pytest.raises(ValueError, match="has no version 999"):
        registry.promote(client, 999)


def test_the_registration_lock_is_reentrant_here_and_exclusive_across_processes(client):
    script = ("from flows import registry\n"
              "try:\n"
              f"    with registry.registration_lock({KEY!r}, timeout=0.5):\n"
              "        print('acquired')\n"
              "except RuntimeError as err:\n"
              "    print(err)\n")

    def other_process() -> str:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=120)
        return out.stdout.strip()

    with registry.registration_lock(KEY), registry.registration_lock(KEY):  # re-entrant
        assert "holds the registration lock" in other_process()
    assert other_process() == "acquired"
