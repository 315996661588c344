"""The report's fixes from a user audit: who made a forecast, which load a plate carries,
several forecasts of one sensor, the period each headline number counts, units."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from geojepa.cli import main
from geojepa.report import build_report
from geojepa.report.analysis import alarm_episodes
from geojepa.report.artifacts import ForecastInput, read_forecast
from geojepa.report.build import headline
from geojepa.report.inputs import Scores
from geojepa.report.sections import Context, attribution_section
from geojepa.site import Sensor, Site, sensors_frame
from geojepa.soil import consolidation_curve

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def plates_site(unit: str = "") -> Site:
    """Two settlement plates, each under its own fill (a load sensor in its group), daily
    for 200 days; plate A's fill is raised on day 100, plate B's never."""
    days = np.arange(200.0)
    times = T0 + pd.to_timedelta(days, unit="D")
    fill_a = np.where(days >= 100, 4.0, np.where(days >= 5, 2.0, 0.0))
    fill_b = np.where(days >= 5, 1.0, 0.0)
    plate_a = sum(
        dq * 40.0 * consolidation_curve(days - d0, 50.0, 0.03)
        for d0, dq in ((5.0, 2.0), (100.0, 2.0))
    )
    plate_b = 40.0 * consolidation_curve(days - 5.0, 50.0, 0.03)
    values = {"A": plate_a, "A_fill": fill_a, "B": plate_b, "B_fill": fill_b}
    sensors = [
        Sensor("A", "settlement", unit, 0.0, 0.0, 0.0, "A"),
        Sensor("A_fill", "load", "m", 0.0, 0.0, 0.0, "A"),
        Sensor("B", "settlement", unit, 50.0, 0.0, 0.0, "B"),
        Sensor("B_fill", "load", "m", 50.0, 0.0, 0.0, "B"),
    ]
    readings = pd.concat(
        [
            pd.DataFrame(
                {"timestamp": times, "sensor_id": s, "value": v, "quality": "ok", "source": "x"}
            )
            for s, v in values.items()
        ],
        ignore_index=True,
    )
    return Site("plates", sensors_frame(sensors), readings)


def write_forecast(path: Path, first_day: int = 150, steps: int = 30, **extra: str) -> Path:
    ft = T0 + pd.to_timedelta(np.arange(first_day, first_day + steps), unit="D")
    pred = np.linspace(150.0, 160.0, steps)
    table = pd.DataFrame(
        {
            "timestamp": ft.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "prediction": pred,
            "lower": pred - 5.0,
            "upper": pred + 5.0,
        }
    )
    for k, v in extra.items():
        table[k] = v
    table.to_csv(path, index=False)
    return path


def context(site: Site | None, forecasts: tuple[ForecastInput, ...] = (), **kw: Any) -> Context:
    """A report `Context` with only what a test gives."""
    base = Context(site, None, None, None, forecasts, None, None, {}, None, None)
    return dataclasses.replace(base, **kw)


def forecasts_html(ctx: Context) -> str:
    from geojepa.report.forecasts import forecast_section

    return forecast_section(ctx).html()


# ----------------------------------------------------------------------------- 1. who made it
def test_a_forecast_file_without_a_method_column_is_not_claimed_as_geojepa(
    tmp_path: Path,
) -> None:
    """`geojepa forecast --method asaoka` writes no method column (the CSV contract): the
    report named its prediction "GeoJEPA" (a row `GeoJEPA 20.4`, "The GeoJEPA band ...")."""
    site = plates_site("mm")
    fc = read_forecast(write_forecast(tmp_path / "a.csv"), "A", ("A", "B"))
    assert fc.name == "forecast a.csv"
    html = forecasts_html(context(site, (fc,)))
    assert "GeoJEPA" not in html
    rows = re.findall(r"<tr><td>([^<]+)</td>", html)
    assert rows[0] == "forecast a.csv" and "persistence" in rows
    assert "The forecast a.csv band holds" in html
    # a method column still names it
    named = read_forecast(write_forecast(tmp_path / "b.csv", method="jepa"), "A", ("A", "B"))
    assert named.name == "jepa"
    # and so does a table made in code without a name
    assert ForecastInput(tmp_path / "c.csv", "A", named.table, ()).name == "forecast c.csv"


# ----------------------------------------------------------------------------- 2. which load
def test_the_classic_fits_read_the_plates_own_load_on_a_site_of_several_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more than one load sensor the report fitted hyperbolic/Asaoka to the whole
    history and left the consolidation back-analysis out; `geojepa forecast` picks the
    load in the plate's group (`default_load_sensor`), and so must the report."""
    import geojepa.report.forecasts as rf

    site = plates_site("mm")
    seen: list[np.ndarray | None] = []
    real = rf.classic_forecasts

    def spy(hist_t, hist_v, times, kind, load=None):  # type: ignore[no-untyped-def]
        seen.append(load)
        return real(hist_t, hist_v, times, kind, load=load)

    monkeypatch.setattr(rf, "classic_forecasts", spy)
    fc = read_forecast(write_forecast(tmp_path / "forecast_A.csv"), None, ("A", "B"))
    html = forecasts_html(context(site, (fc,)))
    assert len(seen) == 1 and seen[0] is not None
    assert seen[0][0] == 0.0 and seen[0][-1] == 4.0  # A_fill, raised on day 100, not B_fill
    assert "<td>consolidation</td>" in html
    assert "A_fill" in html  # the page says which load it read


# ----------------------------------------------------------------------------- 3. twice
def test_two_forecasts_of_one_sensor_are_both_drawn(tmp_path: Path) -> None:
    """``--forecast A=a.csv --forecast A=b.csv`` kept only b.csv (a dict comprehension);
    the report draws several forecasts of one sensor, so both are drawn."""
    site = plates_site("mm")
    site.save(tmp_path / "site")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n', encoding="utf-8")
    a = write_forecast(tmp_path / "a.csv")
    b = write_forecast(tmp_path / "b.csv", method="hyperbolic")
    out = tmp_path / "r.html"
    args = ["report", str(run), "--site", str(tmp_path / "site"), "--out", str(out)]
    args += ["--max-sensors", "1", "--forecast", f"A={a}", "--forecast", f"A={b}"]
    with pytest.raises(SystemExit) as ok:
        main(args)
    assert ok.value.code == 0
    html = out.read_text(encoding="utf-8")
    assert "A — a.csv" in html and "A — b.csv" in html
    # the library takes several files per sensor too
    html = build_report(
        run, tmp_path / "site", out, forecasts={"A": [a, b]}, max_series_sensors=1
    ).read_text(encoding="utf-8")
    assert "A — a.csv" in html and "A — b.csv" in html
    # one file given twice for one sensor is a slip: refused, naming both
    with pytest.raises(SystemExit) as twice:
        main([*args[:-2], "--forecast", f"A={a}", "--forecast", f"A={a}"])
    assert twice.value.code == 2


def test_one_forecast_file_given_twice_is_refused_with_its_sensor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_forecast(tmp_path / "a.csv")
    with pytest.raises(SystemExit) as twice:
        main(
            [
                *("report", str(tmp_path), "--out", str(tmp_path / "r.html")),
                *("--forecast", f"A={a}", "--forecast", f"A={tmp_path / '.' / 'a.csv'}"),
            ]
        )
    assert twice.value.code == 2
    err = capsys.readouterr().err
    assert "--forecast" in err and "'A'" in err and "a.csv" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- 4. periods
def _scores(alarms: list[str]) -> Scores:
    t = T0 + pd.to_timedelta(np.arange(len(alarms)), unit="h")
    score = np.where(np.array(alarms) == "", np.nan, np.arange(len(alarms), dtype=float))
    table = pd.DataFrame({"timestamp": t, "score": score, "alarm": alarms})
    return Scores(Path("scores.csv"), table, pd.DataFrame(index=table.index))


def test_header_alarm_counts_count_the_period_they_are_shown_beside() -> None:
    """Header showed `alarms red · amber 0 · 7` (whole record) beside `time in alarm (after
    training) 1 %` while 6 of the 7 alarms were in the training period."""
    g, a, r = "green", "amber", "red"
    #        training (hours 0-9): 3 amber episodes      after training (10-19): 1 amber
    alarms = [*(g, a, g, a, g, a, g, g, g, g), *(g, g, a, a, g, g, g, g, g, g)]
    scores = _scores(alarms)
    eps = alarm_episodes(scores.table, scores.interval)
    split = T0 + pd.Timedelta(hours=10)
    cards = dict(headline(context(None, scores=scores, episodes=eps, split=split), None))
    assert cards["alarms red · amber (after training)"] == "0 · 1"
    assert cards["alarms red · amber (training period)"] == "0 · 3"
    assert cards["time in alarm (after training)"] == "20 %"
    # without a known split every figure says it counts all scored times
    cards = dict(headline(context(None, scores=scores, episodes=eps), None))
    assert cards["alarms red · amber (all scored times)"] == "0 · 4"
    assert cards["time in alarm (all scored times)"] == "25 %"
    assert not any("after training" in k for k in cards)
    # times without a score count neither way
    scores = _scores([g, r, "", "", g, g])
    eps = alarm_episodes(scores.table, scores.interval)
    cards = dict(headline(context(None, scores=scores, episodes=eps), None))
    assert cards["time in alarm (all scored times)"] == "25 %"


def test_alarm_table_shows_the_last_alarmed_time_and_its_period() -> None:
    """`end (UTC)` was the last alarmed time plus one step: a time scored green."""
    g, a = "green", "amber"
    scores = _scores([g, a, a, g, g, g, a, g])
    eps = alarm_episodes(scores.table, scores.interval)
    split = T0 + pd.Timedelta(hours=4)
    html = attribution_section(context(None, scores=scores, episodes=eps, split=split), None).html()
    head = re.findall(r"<th[^>]*>([^<]+)</th>", html)
    assert "end (UTC)" not in head and "last in alarm (UTC)" in head
    rows = re.findall(r"<tr>(.*?)</tr>", html)[1:]
    assert "2024-01-01 02:00" in rows[0] and "2024-01-01 03:00" not in rows[0]
    assert "<td>training</td>" in rows[0] and "<td>after training</td>" in rows[1]


# ----------------------------------------------------------------------------- 5. units
def test_error_table_without_a_unit_says_mae_alone(tmp_path: Path) -> None:
    fc = read_forecast(write_forecast(tmp_path / "a.csv"), "A", ("A", "B"))
    html = forecasts_html(context(plates_site(""), (fc,)))
    head = re.findall(r"<th[^>]*>([^<]+)</th>", html)
    assert "MAE" in head and "RMSE" in head and "unit" not in " ".join(head)
    html = forecasts_html(context(plates_site("mm"), (fc,)))
    assert "MAE (mm)" in re.findall(r"<th[^>]*>([^<]+)</th>", html)
