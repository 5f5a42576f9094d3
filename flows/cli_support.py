"""What the ``drpo`` command line needs besides its commands: one-line errors, ``key=value``
overrides, and the options of a pipeline run derived from ``RunParameters`` (written once)."""

from __future__ import annotations

import inspect
import json
import logging
import os
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, NoReturn, Optional, TypeVar, get_type_hints

import typer
from pydantic import ValidationError

from flows.params import RunParameters

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)


def describe_validation_error(err: ValidationError) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    return f"{field}: {msg}" if field else msg


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def user_errors(func: F) -> F:
    """Every error ends the command with one line on stderr, never a traceback: input errors
    exit 2, failures of the run exit 1 (``DRPO_DEBUG=1`` re-raises for the traceback)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except ValidationError as err:
            fail(describe_validation_error(err))
        except (ValueError, FileNotFoundError, FileExistsError) as err:
            fail(one_line(err))
        except Exception as err:
            if os.environ.get("DRPO_DEBUG"):
                raise
            fail(f"{type(err).__name__}: {one_line(err)}", code=1)

    return wrapper  # type: ignore[return-value]


class _WithoutTraceback(logging.Formatter):
    """Formats a record as ``inner`` does, minus its exception and stack text."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def console_without_tracebacks() -> None:
    """Prefect logs a failed task's traceback on the console; the CLI prints one line for the
    failure instead. The traceback still reaches the Prefect API (the run's logs in the UI)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and handler.formatter is not None \
                and not isinstance(handler.formatter, _WithoutTraceback):
            handler.setFormatter(_WithoutTraceback(handler.formatter))


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when possible (numbers, null, lists)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def run_parameter_options(func: F) -> F:
    """Give ``func`` one option per ``RunParameters`` field (help = the field's description)
    and pass the ones the user set as ``overrides``: the fields are written only once."""
    fields = RunParameters.model_fields
    hints = get_type_hints(func, include_extras=True)
    own = [p.replace(annotation=hints[p.name])
           for p in inspect.signature(func).parameters.values() if p.name != "overrides"]
    extra = [inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None,
        annotation=Annotated[Optional[field.annotation],  # noqa: UP045 (a runtime type)
                             typer.Option(help=f"{field.description} (default: "
                                               f"{field.default})", show_default=False)])
        for name, field in fields.items()]

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in fields}
        overrides = {k: v for k, v in given.items() if v is not None}
        return func(*args, overrides=overrides, **kwargs)

    params = own + extra
    wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper  # type: ignore[return-value]


def pipeline_module() -> Any:  # imported late: Prefect's home must be set first
    from flows.settings import embedded_environment

    embedded_environment()
    from flows import pipeline

    console_without_tracebacks()
    return pipeline


def run_flow(name: str, **parameters: Any) -> dict[str, Any]:
    """A flow of flows/pipeline.py on the CLI's API (flows/embedded.py)."""
    pipeline = pipeline_module()
    from flows.embedded import cli_api

    with cli_api(lambda message: typer.echo(message, err=True)) as crashed:
        for run_name in crashed:
            typer.echo(f"note: flow run {run_name} of a killed drpo process marked Crashed")
        return getattr(pipeline, name)(**parameters)
