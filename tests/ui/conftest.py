from tests.flows.conftest import home, mlflow_template  # noqa: F401  (shared fixtures)
