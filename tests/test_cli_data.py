"""The data verbs: ingest, info, readings — exit codes and what the user sees."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from geojepa.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else 1), out.out, out.err


def _wide(tmp_path: Path) -> Path:
    p = tmp_path / "logger.csv"
    rows = "".join(
        f"2024-01-01T{h:02d}:00:00Z,{h}.5,{100 - h},{int(h in (3, 4))}\n" for h in range(8)
    )
    p.write_text("timestamp,P1,P2,slip\n,kPa,kPa,\n" + rows)
    return p


def test_ingest_info_readings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _wide(tmp_path)
    sensors = tmp_path / "sensors.csv"
    sensors.write_text(
        "id,kind,unit,x,y,z,group\nP1,piezometer,kPa,0,0,-5,BH1\nP2,piezometer,kPa,0,0,-9,BH1\n"
    )
    code, out, _ = run(
        [
            "ingest",
            str(f),
            "--out",
            str(tmp_path / "site"),
            "--sensors",
            str(sensors),
            "--label-col",
            "slip",
        ],
        capsys,
    )
    assert code == 0
    assert "16 new" in out and "1 new labels" in out
    code, out, _ = run(["info", str(tmp_path / "site")], capsys)
    assert code == 0
    assert "P1" in out and "piezometer" in out and "grid interval 0 days 01:00:00" in out
    assert "labels: 1" in out
    code, out, _ = run(["info", str(tmp_path / "site"), "--json"], capsys)
    info = json.loads(out)
    assert info["n_readings"] == 16 and info["interval"] == "0 days 01:00:00"
    s = {r["id"]: r for r in info["sensors"]}
    assert s["P1"]["z"] == -5.0 and s["P1"]["readings"] == 8 and s["P1"]["missing_fraction"] == 0.0
    assert info["labels"][0]["kind"] == "slip"
    assert info["quality"] == {"ok": 16}
    out_csv = tmp_path / "r.csv"
    code, out, _ = run(["readings", str(tmp_path / "site"), "--out", str(out_csv)], capsys)
    assert code == 0
    lines = out_csv.read_text().splitlines()
    assert lines[0] == "timestamp,sensor_id,value,quality,source"
    assert lines[1] == "2024-01-01T00:00:00Z,P1,0.5,ok,logger.csv"
    assert len(lines) == 17


def test_reingest_says_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _wide(tmp_path)
    run(["ingest", str(f), "--out", str(tmp_path / "s"), "--label-col", "slip"], capsys)
    code, out, _ = run(
        ["ingest", str(f), "--out", str(tmp_path / "s"), "--label-col", "slip"], capsys
    )
    assert code == 0 and "0 new" in out and "unchanged" in out
    code, out, _ = run(
        ["ingest", str(f), "--out", str(tmp_path / "s"), "--label-col", "slip", "--json"], capsys
    )
    assert json.loads(out)["readings_added"] == 0


@pytest.mark.parametrize(
    ("content", "extra", "needle"),
    [
        (b"", [], "empty"),
        (b"time,a\n", [], "no data rows"),
        (b"\x00\x00\x00", [], "binary"),
        (b"time;a\n2024-01-01;1\n", ["--sep", ","], "seems to use ';'"),
        (b"time,a\n2024-01-01,1\nnope,2\n", [], ":3:time: cannot read the timestamp"),
        (b"time,a\n2024-01-02,1\n2024-01-01,2\n", [], ":3:time: time goes backwards"),
        (b"time,a\n2024-01-01,1\n2024-01-01,2\n", [], ":3: the row repeats the time"),
        (b"time,a\n2024-01-01,1\n2024-01-02,x\n", [], ":3:a: text 'x'"),
        (b"time,a\n2024-01-01T00:00Z,1\n2024-01-02T00:00,1\n", [], "mixed time offsets"),
        (b"time,a\n2024-01-01,1\n2024-01-02,\xb0\n", [], ":3:12: bytes that are not valid utf-8"),
        (
            b"time,a,ev\n2024-01-01,1,0\n2024-01-02,1,5\n",
            ["--label-col", "ev"],
            "labels must be 0 or 1",
        ),
        (b"time,a\n2024-01-01,1\n", ["--tz", "Nowhere/Land"], "unknown time zone"),
        (b"time,a\n" + b"9" * 2_000_000 + b"\n", [], ":2: line is"),
    ],
)
def test_bad_input_exit_2_one_message(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    extra: list[str],
    needle: str,
) -> None:
    f = tmp_path / "bad.csv"
    f.write_bytes(content)
    code, _out, err = run(["ingest", str(f), "--out", str(tmp_path / "site"), *extra], capsys)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err
    assert err.count("error:") == 1
    assert not (tmp_path / "site").exists()


def test_unknown_kind_names_the_known_kinds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _wide(tmp_path)
    s = tmp_path / "s.csv"
    s.write_text("id,kind\nP1,flux_capacitor\n")
    code, _, err = run(
        ["ingest", str(f), "--out", str(tmp_path / "x"), "--sensors", str(s)], capsys
    )
    assert code == 2 and "s.csv:2:kind" in err and "piezometer" in err and "rain_gauge" in err


def test_info_on_a_non_site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["info", str(tmp_path)], capsys)
    assert code == 2 and "not a site folder" in err


def test_installed_command_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "geojepa"
    if not exe.exists():
        pytest.skip("geojepa command not installed in this environment")
    f = _wide(tmp_path)
    bad = tmp_path / "b.csv"
    bad.write_text("time,a\n2024-01-02,1\n2024-01-01,1\n")
    ok = subprocess.run(
        [str(exe), "ingest", str(f), "--out", str(tmp_path / "s")], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    res = subprocess.run(
        [str(exe), "ingest", str(bad), "--out", str(tmp_path / "s")], capture_output=True, text=True
    )
    assert res.returncode == 2 and "b.csv:3" in res.stderr and "Traceback" not in res.stderr


def test_info_gives_each_sensor_its_own_step_and_gaps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A daily gauge beside an hourly one: on the site's hourly grid it is 96 % missing,
    # which said nothing of the three days its record lacks.
    t = pd.date_range("2024-01-01", periods=24 * 20, freq="h")
    rows = [
        f"{ts.isoformat()},{f'{i / 24:.1f}' if ts.hour == 0 and not 5 <= i // 24 < 8 else ''},"
        f"{i % 7}"
        for i, ts in enumerate(t)
    ]
    f = tmp_path / "mix.csv"
    f.write_text("time,D,H\n" + "\n".join(rows) + "\n")
    assert run(["ingest", str(f), "--out", str(tmp_path / "s")], capsys)[0] == 0
    code, out, _ = run(["info", str(tmp_path / "s"), "--json"], capsys)
    assert code == 0
    by_id = {s["id"]: s for s in json.loads(out)["sensors"]}
    assert by_id["D"]["missing_fraction"] > 0.9
    assert by_id["D"]["interval"] == str(pd.Timedelta("1D")) and by_id["D"]["gap_fraction"] == 0.15
    assert by_id["H"]["interval"] == str(pd.Timedelta("1h")) and by_id["H"]["gap_fraction"] == 0.0
    code, text, _ = run(["info", str(tmp_path / "s")], capsys)
    assert "gaps" in text and "15.0%" in text
