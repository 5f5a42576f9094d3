"""Orchestration shells (CLI now; Prefect flows later) over ``drpo_core`` and ``sql``."""
