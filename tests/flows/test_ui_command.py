"""`drpo ui`: the MLflow UI and the Prefect server answer at the URLs it prints, on the stores
of this DRPO_HOME, and stop together."""

from __future__ import annotations

import socket

import httpx
import pytest

from flows import ui


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_both_uis_answer_on_this_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DRPO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    ports = free_port(), free_port()
    procs = ui.start(*ports)
    try:
        urls = {name: url for name, (_, url) in ui.commands(*ports).items()}
        assert httpx.get(urls["MLflow"], timeout=10).status_code == 200
        health = httpx.get(f"{urls['Prefect']}/api/health", timeout=10)
        assert health.status_code == 200 and health.json() is True
        assert (tmp_path / "home" / "mlflow.db").exists()
        assert (tmp_path / "home" / "prefect").is_dir()
    finally:
        ui.stop(procs)
    assert all(p.poll() is not None for p in procs.values())
