"""The catalogue's writer: a guarantee reads 0 only when every case asserting it passed, open
and failed cases are counted apart, and parameters fill the case text."""

from __future__ import annotations

import datetime as dt

from .report import Case, fill, render

WHEN = dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.UTC)


def case(result: str, guards: tuple[str, ...] = ("rows",), kind: str = "bad input") -> Case:
    return Case(f"tests/reliability/test_x.py::test_{result}", kind, f"tried {result}",
                "refused", guards, result, "why" if result == "xfailed" else "")


def guarantee_row(text: str, starts: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {starts}"))


def test_a_guarantee_is_zero_only_when_every_case_asserting_it_passed() -> None:
    text = render([case("passed"), case("passed", ("values",))], [], WHEN)
    assert guarantee_row(text, "no row lost").endswith("| 1 | 1 | 0 |")
    assert "**2** of 2" in text and "Run of 2026-02-01 12:00 UTC" in text
    text = render([case("passed"), case("failed"), case("xfailed")], [], WHEN)
    row = guarantee_row(text, "no row lost")
    assert row.startswith("| no row lost") and "| 3 | 1 |" in row
    assert "1 open gap(s)" in row and "**1 case(s) failed or did not run**" in row
    assert "**1** of 3" in text
    assert "- tried xfailed: open (xfail) (why)" in text
    assert guarantee_row(text, "the installed drpo").endswith("and passed) |")


def test_rows_are_grouped_by_kind_and_other_tests_listed() -> None:
    text = render([case("passed", kind="fault"), case("passed", kind="security")],
                  [("tests/reliability/test_x.py::test_structure", "passed")], WHEN)
    assert "## Bad input (0)" in text and "## Fault (1)" in text and "## Security (1)" in text
    assert "- `test_x.py::test_structure`: passed" in text


def test_parameters_fill_the_case_text() -> None:
    assert fill("drpo {args} at {root}", {"args": ["run", "--date", "x"], "root": "/r"}) == \
        "drpo run --date x at /r"
    assert fill("a literal {brace}", {}) == "a literal {brace}"
