"""The reliability catalogue: what each test under tests/reliability tried and showed, written as
docs/reliability.md by ``pytest tests/reliability -m "slow or not slow" --reliability-report
docs/reliability.md`` (the option and the ``reliability`` marker live in conftest.py).

A test case joins the catalogue with ``@pytest.mark.reliability(kind=..., case=..., outcome=...,
guards=...)``: ``kind`` is one of KINDS, ``case`` what was tried, ``outcome`` what the test
asserts happens, ``guards`` which of the issue's guarantees (GUARDS) its assertions check.
``case`` and ``outcome`` may name the test's parameters in braces (``{location}``); a list
parameter is shown joined by spaces. The result column is the run's own outcome of that case, so
the document claims only what a test showed in the run that wrote it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

KINDS = ("bad input", "fault", "security")

#: the guarantees of issue 13 a case's assertions can check, with what the assertion is
GUARDS = {
    "rows": "no row lost: rows read = rows kept + rows quarantined, or the refused input wrote "
            "nothing",
    "values": "no silent value change: the stored values are the file's own, or the value is "
              "refused rather than changed",
    "one-line": "a refusal is one line naming what was wrong (no traceback in it)",
    "cli": "the installed drpo command exits non-zero with one `error:` line on stderr and no "
           "traceback",
}

COMMAND = 'pytest tests/reliability -m "slow or not slow" --reliability-report docs/reliability.md'

RESULT_TEXT = {"passed": "passed", "failed": "**FAILED**", "skipped": "skipped",
               "xfailed": "open (xfail)", "xpassed": "**XPASS** (gap closed: drop the xfail)",
               "not run": "not run"}

KNOWN_LIMITS = [
    "The catalogue holds the tests under `tests/reliability/` only (a marker registered in its "
    "conftest applies below it). Related checks elsewhere are not rows here: "
    "`tests/warehouse/test_ingest.py` (each row rule, duplicates across days, bad files abort "
    "with nothing written, a busy second writer), `tests/flows/test_registry.py` (tags and "
    "checksum with the version, tampered policy refused, rollbacks that stick), "
    "`tests/flows/test_gate.py` and `tests/flows/test_pipeline.py` (a window day that failed "
    "validation is refused).",
    "Kill -9 rows here are of the registering process (after the version is created, while "
    "the model is logged) and two concurrent registrations of one run_key. Kill -9 of a whole "
    "`drpo run` at each stage (ingest, train, evaluate, register, gate) with a rerun, and two "
    "concurrent runs of one date, are `tests/flows/test_kill.py` (slow; outside this folder, "
    "so not rows here); resuming a killed training from its checkpoint is "
    "`tests/flows/test_resume.py`.",
    "No container engine runs the compose stack here: its files are checked, and the MLflow "
    "server is started with the compose command and flags (the two slow docker cases).",
    "Object stores are not reachable from the tests: the URL-root rules and the DuckDB listing "
    "are checked on strings and local folders.",
    "File permissions are not tried: the tests may run as root, who reads a file of mode 000.",
    "State and action are stored as float32 (the contract's FLOAT[d]): a float64 vector "
    "element is rounded to the nearest float32; only elements beyond float32's range are "
    "refused (quarantined).",
    "A column's wrong type is refused only where the contract's rules cannot read it; types "
    "DuckDB casts without loss (integers or float16 for reward, ISO-8601 text for event_time) "
    "are accepted with their values.",
]


@dataclass(frozen=True)
class Case:
    nodeid: str
    kind: str
    case: str
    outcome: str
    guards: tuple[str, ...]
    result: str
    reason: str = ""


def fill(template: str, params: Mapping[str, object]) -> str:
    """``template`` with ``{name}`` replaced by the test's parameter (lists joined by spaces)."""
    shown = {k: " ".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
             for k, v in params.items()}
    return template.format(**shown) if params else template


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def short_name(nodeid: str) -> str:
    """``file::test`` with the parameter id when it is short (the case text shows the rest)."""
    path, _, name = nodeid.partition("::")
    function, _, params = name.partition("[")
    shown = name if len(params) <= 40 else function
    return f"`{path.rsplit('/', 1)[-1]}::{shown}`"


def guard_line(name: str, cases: list[Case]) -> str:
    """One guarantee: how many cases assert it, how many passed, and what the others show (an
    open case's guards name the guarantee its gap breaks)."""
    asserting = [c for c in cases if name in c.guards]
    passed = sum(c.result == "passed" for c in asserting)
    gaps = sum(c.result == "xfailed" for c in asserting)
    other = len(asserting) - passed - gaps
    if passed:
        shown = "0" if passed == len(asserting) else f"0 among the {passed} passed"
    else:
        shown = "not shown (no case in this run asserts it and passed)"
    if gaps:
        shown += f"; {gaps} open gap(s), see Open"
    if other:
        shown += f"; **{other} case(s) failed or did not run**"
    return f"| {GUARDS[name]} | {len(asserting)} | {passed} | {shown} |"


def render(cases: Iterable[Case], others: Iterable[tuple[str, str]], when: dt.datetime) -> str:
    """The markdown of docs/reliability.md."""
    cases = list(cases)
    others = list(others)
    counted = [c for c in cases if c.result == "passed"]
    by_kind = {k: [c for c in cases if c.kind == k] for k in KINDS}
    results = {r: sum(c.result == r for c in cases) for r in RESULT_TEXT}
    passed_by_kind = ", ".join(f"{k}: {sum(c.result == 'passed' for c in by_kind[k])}"
                               for k in KINDS)
    lines = [
        "# Reliability: bad input, faults, security",
        "",
        "Generated from the tests; do not edit by hand. Regenerate with",
        "",
        f"    {COMMAND}",
        "",
        f"Run of {when:%Y-%m-%d %H:%M} UTC. Each row is one test case under `tests/reliability/` "
        "(a test function or one of its parameters) that declares, with the `reliability` "
        "marker, its **kind** (bad input: data or arguments a user or producer gets wrong; "
        "fault: a crash, kill, full disk, unreachable or concurrent service; security: a "
        "location, credential or default an attacker could use), the **case** it tries and "
        "the **expected outcome** its assertions check. **Result** is what that case did in "
        "this run: only a passed case shows its outcome; an open case is an `xfail` test that "
        "shows a known gap and fails the suite once the gap is closed (strict).",
        "",
        "## Totals",
        "",
        f"- Classes shown (passed): **{len(counted)}** of {len(cases)} in the catalogue "
        f"({passed_by_kind}).",
        "- Results: " + ", ".join(f"{RESULT_TEXT[r].strip('*')} {n}"
                                  for r, n in results.items() if n) + ".",
        "",
        "| guarantee (issue 13) | cases asserting it | passed | violations |",
        "| --- | ---: | ---: | --- |",
        *(guard_line(g, cases) for g in GUARDS),
        "",
        "A guarantee's 0 counts the passed cases that assert it: none of them lost a row, "
        "changed a value or printed more than one line (no traceback). It is no claim about "
        "inputs no case tries; an open case is a class where the guarantee does not hold yet.",
        "",
    ]
    for kind in KINDS:
        rows = by_kind[kind]
        lines += [f"## {kind.capitalize()} ({len(rows)})", "",
                  "| # | case | expected outcome | guarantees checked | result | test |",
                  "| ---: | --- | --- | --- | --- | --- |"]
        for i, c in enumerate(rows, 1):
            result = RESULT_TEXT[c.result] + (f": {cell(c.reason)}" if c.reason else "")
            lines.append(f"| {i} | {cell(c.case)} | {cell(c.outcome)} | "
                         f"{', '.join(c.guards) or '-'} | {result} | {short_name(c.nodeid)} |")
        lines.append("")
    open_cases = [c for c in cases if c.result in ("xfailed", "xpassed", "failed")]
    lines += ["## Open", ""]
    if open_cases:
        lines += [f"- {cell(c.case)}: {RESULT_TEXT[c.result]}"
                  + (f" ({cell(c.reason)})" if c.reason else "") + f" ({short_name(c.nodeid)})"
                  for c in open_cases]
    else:
        lines.append("None in this run.")
    lines += ["", "## Other checks in tests/reliability", "",
              "Tests of the folder that declare no class (structure and lineage checks):", ""]
    lines += [f"- {short_name(nodeid)}: {RESULT_TEXT[result]}" for nodeid, result in others]
    lines += ["", "## Known limits", ""]
    lines += [f"- {text}" for text in KNOWN_LIMITS]
    return "\n".join(lines) + "\n"
