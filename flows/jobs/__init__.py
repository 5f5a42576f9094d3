"""The pipeline's jobs: each reads top to bottom over ``drpo_core`` and the data layer, opens
what it needs (the DuckDB file, the MLflow client) and returns plain results. The Prefect flows
(flows/pipeline.py) and the production commands of the CLI call these same functions.

    data.py      ingest, validate, filter: one event_date or window at a time
    window.py    the training window of a logical date: filter, then its tensors
    train.py     one training run, reused when finished and resumed when killed
    evaluate.py  challenger and champion scored together on the same held-out units
    register.py  the MLflow version of a run
    promote.py   the gate's decision and the champion alias (by hand too)
"""
