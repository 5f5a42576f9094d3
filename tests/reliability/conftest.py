"""The ``reliability`` marker and the ``--reliability-report PATH`` option (see report.py).

    pytest tests/reliability -m "slow or not slow" --reliability-report docs/reliability.md

runs every case of the catalogue and writes the table with each case's result in this run.
A marker with an unknown kind or guarantee, or a case text naming a parameter the test does not
have, fails the collection (the catalogue cannot drift from the tests).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from .report import GUARDS, KINDS, Case, fill, render

HERE = Path(__file__).parent
RESULTS = pytest.StashKey[dict[str, tuple[str, str]]]()
DESELECTED = pytest.StashKey[list[pytest.Item]]()
ORDER = pytest.StashKey[dict[str, int]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--reliability-report", metavar="PATH", default=None,
                     help="write the reliability catalogue (markdown) of the cases run here")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "reliability(kind, case, outcome, guards=()): a class of the reliability "
        f"catalogue; kind one of {KINDS}, guards a subset of {tuple(GUARDS)} "
        "(tests/reliability/report.py)")
    config.stash[RESULTS] = {}
    config.stash[DESELECTED] = []
    config.stash[ORDER] = {}


def in_catalogue_folder(item: pytest.Item) -> bool:
    return Path(str(item.path)).is_relative_to(HERE)


def describe(item: pytest.Item) -> Case | None:
    """The item's catalogue entry (result still unknown), None for a test without the marker."""
    marker = item.get_closest_marker("reliability")
    if marker is None:
        return None
    kind = marker.kwargs.get("kind", marker.args[0] if marker.args else None)
    guards = tuple(marker.kwargs.get("guards", ()))
    if kind not in KINDS or not set(guards) <= set(GUARDS):
        raise pytest.UsageError(f"{item.nodeid}: reliability marker with kind {kind!r} and "
                                f"guards {guards}; expected a kind of {KINDS} and guards of "
                                f"{tuple(GUARDS)}")
    params = getattr(getattr(item, "callspec", None), "params", {})
    try:
        case, outcome = (fill(marker.kwargs[k], params) for k in ("case", "outcome"))
    except KeyError as err:
        raise pytest.UsageError(f"{item.nodeid}: reliability marker needs case= and outcome=, "
                                f"naming only the test's parameters ({err})") from None
    return Case(item.nodeid, kind, case, outcome, guards, "not run")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Checks every marker (a malformed one fails the collection) and keeps the collection
    order, before any deselection, for the document's rows."""
    for item in items:
        describe(item)
        config.stash[ORDER].setdefault(item.nodeid, len(config.stash[ORDER]))


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        items[0].config.stash[DESELECTED].extend(items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    results = item.config.stash[RESULTS]
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
            reason = report.wasxfail.removeprefix("reason: ")
        else:
            outcome = report.outcome
            reason = str(report.longrepr[-1]) if report.skipped and isinstance(
                report.longrepr, tuple) else ""
        results.setdefault(item.nodeid, (outcome, reason))
    elif report.when == "teardown" and report.failed:
        results[item.nodeid] = ("failed", "teardown failed")
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = session.config.getoption("--reliability-report")
    if not target:
        return
    results = session.config.stash[RESULTS]
    items = [i for i in [*session.items, *session.config.stash[DESELECTED]]
             if in_catalogue_folder(i)]
    cases, others = [], []
    order = session.config.stash[ORDER]
    for item in sorted(items, key=lambda i: order.get(i.nodeid, len(order))):
        result, reason = results.get(item.nodeid, ("not run", ""))
        entry = describe(item)
        if entry is None:
            others.append((item.nodeid, result))
            continue
        cases.append(Case(entry.nodeid, entry.kind, entry.case, entry.outcome, entry.guards,
                          result, reason))
    text = render(cases, others, dt.datetime.now(dt.UTC))
    Path(target).write_text(text)
