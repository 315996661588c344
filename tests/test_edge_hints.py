"""Bad-input advice in geojepa-edge's terms: the reader behind `geojepa ingest` advises
ingest's options; the gateway names only what it can do (`geojepa.edge.hints`)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from geojepa.edge.hints import EDGE_OPTIONS, edge_hint, for_edge
from geojepa.errors import InputError, UsageError

TIME_HINT = (
    "write times as ISO 8601 like 2024-03-31T14:15:00 or 2024-03-31 14:15:00+01:00, or give "
    "the ingest command their pattern with --time-format (e.g. '%d-%m-%Y %H:%M')"
)


def _options(parser: argparse.ArgumentParser) -> set[str]:
    out: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out |= _options(sub)
        else:
            out |= {o for o in action.option_strings if o.startswith("--") and o != "--help"}
    return out


def test_edge_options_are_those_of_the_command_line() -> None:
    from geojepa.edge.app import _parser

    assert _options(_parser()) == set(EDGE_OPTIONS)


def test_a_time_hint_keeps_the_fix_and_drops_the_ingest_option() -> None:
    got = edge_hint(TIME_HINT, line=5000)
    assert got == "write times as ISO 8601 like 2024-03-31T14:15:00 or 2024-03-31 14:15:00+01:00"


@pytest.mark.parametrize(
    ("hint", "want"),
    [
        ("check the export; nothing to ingest", "check the export; nothing to score"),
        ("nothing to ingest", "nothing to score"),
        (
            "save the file as UTF-8, or pass --encoding latin-1 if that is what it is",
            "save the file as UTF-8",
        ),
        ("pass --encoding latin-1 if that is what the file is", "save the file as UTF-8"),
        ("ingest its file in the same command or before", "fix line 7 of the file"),
        ("pass --sep ';'", "pass --sep ';'"),  # the gateway has --sep: kept as it is
        (
            "sort the rows by time; if the logger keeps local time with daylight saving, "
            "pass --tz with its zone (e.g. --tz Europe/Oslo)",
            "sort the rows by time; if the logger keeps local time with daylight saving, "
            "pass --tz with its zone (e.g. --tz Europe/Oslo)",
        ),
        (None, None),
    ],
)
def test_hints_name_only_what_the_gateway_can_do(hint: str | None, want: str | None) -> None:
    got = edge_hint(hint, line=7)
    assert got == want
    if got is not None:
        assert "ingest" not in got
        assert set(re.findall(r"--[a-z][a-z0-9-]*", got)) <= EDGE_OPTIONS


def test_for_edge_keeps_file_line_column_and_message(tmp_path: Path) -> None:
    err = InputError(
        "cannot read the timestamp: '2013-99-40'",
        file=tmp_path / "bad.csv",
        line=5000,
        column="time",
        hint=TIME_HINT,
    )
    out = for_edge(err)
    assert (out.file, out.line, out.column, out.message) == (
        err.file,
        5000,
        "time",
        err.message,
    )
    assert out.render().startswith(f"{tmp_path / 'bad.csv'}:5000:time: cannot read")
    assert "--time-format" not in out.render() and "ingest" not in out.render()
    fine = UsageError("unknown format 'x'", hint="use auto, long, wide or toa5")
    assert for_edge(fine) is fine  # nothing to rewrite: the very error
    usage = for_edge(UsageError("x", hint="nothing to ingest"))
    assert isinstance(usage, UsageError) and usage.hint == "nothing to score"
