"""prefect.yaml and `drpo serve` describe the same two deployments with the flows' own
parameter model: what a worker would run is validated here, without a server."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from flows.params import RunParameters

ROOT = Path(__file__).resolve().parents[2]


def deployments() -> list[dict]:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["name"])
def test_prefect_yaml_parameters_validate_against_the_flow(deployment: dict) -> None:
    path, name = deployment["entrypoint"].split(":")
    module = path.removesuffix(".py").replace("/", ".")
    flow = getattr(importlib.import_module(module), name)
    given = dict(deployment.get("parameters", {}))
    if name == "backfill":
        given |= {"start": "2026-01-01", "end": "2026-01-02"}
    checked = flow.validate_parameters(given)
    assert isinstance(checked.get("params", RunParameters()), RunParameters)
    assert "pull" not in yaml.safe_load((ROOT / "prefect.yaml").read_text())


def test_a_bad_parameter_in_a_deployment_is_refused_by_the_flow() -> None:
    from prefect.exceptions import ParameterTypeError

    from flows.pipeline import nightly_retrain

    with pytest.raises(ParameterTypeError, match="kappa"):
        nightly_retrain.validate_parameters({"params": {"kappa": 1.5}})


def test_serve_and_prefect_yaml_name_the_same_deployments() -> None:
    from flows.serve import deployments as served

    assert sorted(d.name for d in served()) == sorted(d["name"] for d in deployments())


def test_quality_and_gamma_reach_the_objective_only_where_they_apply() -> None:
    params = RunParameters(quality="advantage", gamma=0.9)
    config = params.train_config()
    assert config.objective == {"quality": "advantage", "gamma": 0.9}
    assert config.data_needs().transitions and config.data_needs().return_gamma is None
    assert RunParameters().train_config().objective == {}  # the default run key is unchanged
    assert RunParameters(quality="return", gamma=0.5).train_config().data_needs(
    ).return_gamma == 0.5
    assert RunParameters(algorithm="iql", gamma=0.9).train_config().objective == {"gamma": 0.9}
    with pytest.raises(ValueError, match="quality does not apply to algorithm bc"):
        RunParameters(algorithm="bc", quality="advantage")
    with pytest.raises(ValueError, match="quality q needs a learned critic"):
        RunParameters(quality="q", kappa=0.5)
