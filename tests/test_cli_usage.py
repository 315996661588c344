"""The command line's usage errors: exit status 2 with a usage message, never an internal
error, whichever copy of click the installed typer raises from."""

from __future__ import annotations

import pytest

from geojepa.cli import main


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["readings", "some-site"], "Missing option '--out'"),
        (["detect"], "Missing argument"),
        (["detect", "run", "site", "--out", "s.csv", "--recent", "0"], "--recent"),
        (["no-such-verb"], "No such command"),
        (["readings", "some-site", "--out", "r.csv", "extra"], "unexpected extra argument"),
    ],
)
def test_usage_errors_exit_2_with_a_usage_message(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert says in err and "internal error" not in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["readings", "--help"])
    assert stop.value.code == 0
    assert "--out" in capsys.readouterr().out
