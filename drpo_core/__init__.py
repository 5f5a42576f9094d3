"""drpo_core: DRPO (arXiv 2602.10430) and its baselines as a library.

Importable without Prefect, MLflow or Great Expectations.
"""

__version__ = "0.1.0"
