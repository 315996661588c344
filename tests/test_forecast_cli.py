"""The `forecast` verb: RUN SITE with the JEPA head, the classic methods (RUN optional), and
the library side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geojepa.cli import main
from geojepa.errors import InputError
from geojepa.forecast.apply import forecast_site, site_series
from geojepa.site import Sensor, Site, sensors_frame

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def plate_site(name: str, days: np.ndarray, settlement: np.ndarray, fill: np.ndarray) -> Site:
    """Plate SP1 and its fill FILL (group A) read on `days` after T0."""
    ts = T0 + pd.to_timedelta(days, unit="D")
    readings = pd.concat(
        [
            pd.DataFrame({"timestamp": ts, "sensor_id": "SP1", "value": settlement}),
            pd.DataFrame({"timestamp": ts, "sensor_id": "FILL", "value": fill}),
        ],
        ignore_index=True,
    )
    readings["quality"] = "ok"
    readings["source"] = "fixture.csv"
    sensors = sensors_frame(
        [Sensor("SP1", "settlement", "mm", group="A"), Sensor("FILL", "load", "m", group="A")]
    )
    return Site(name=name, sensors=sensors, readings=readings)


def embankment_site(seed: int = 0) -> Site:
    """One plate read every 2 days under two fill stages (stage 2 from day 60), and its fill."""
    rng = np.random.default_rng(seed)
    days = np.arange(0.0, 200.0, 2.0)
    x2 = np.clip(days - 60.0, 0.0, None)
    s = days / (4.0 + 0.02 * days) + np.where(days >= 60, x2 / (2.0 + 0.025 * x2), 0.0)
    s = s + rng.normal(0, 0.2, days.size)
    fill = np.where(days >= 60, 4.0, 2.0)
    return plate_site("emb", days, s, fill)


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    embankment_site().save(path)
    return path


def run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


@pytest.mark.parametrize(
    "method", ["hyperbolic", "asaoka", "consolidation", "linear", "persistence", "fukuzono"]
)
def test_forecast_verb_writes_h_grid_steps_after_the_cutoff(
    site_dir: Path, tmp_path: Path, method: str
) -> None:
    out = tmp_path / "f.csv"
    cutoff = "2024-04-10T12:00"
    args = ["forecast", str(site_dir), "--target", "SP1", "--cutoff", cutoff]
    assert run([*args, "--horizon", "6", "--out", str(out), "--method", method]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["timestamp", "prediction", "lower", "upper"]
    times = pd.to_datetime(table["timestamp"], utc=True)
    assert len(times) == 6
    assert times.iloc[0] > pd.Timestamp(cutoff, tz="UTC")
    assert (times.diff().dropna() == pd.Timedelta("2D")).all()  # the plate's 2-day grid
    assert (times.iloc[0] - pd.Timestamp(cutoff, tz="UTC")) <= pd.Timedelta("2D")
    ok = np.isfinite(table["prediction"])
    assert ok.all()
    assert (table["lower"] <= table["prediction"]).all()
    assert (table["prediction"] <= table["upper"]).all()


def test_hyperbolic_on_a_site_uses_the_load_stage_and_ignores_later_readings() -> None:
    site = embankment_site(1)
    cutoff = T0 + pd.Timedelta("150D")
    a = forecast_site(site, "SP1", cutoff, 10, "hyperbolic")
    assert a.load == "FILL"
    assert a.model.window_start_ == pytest.approx(60.0)  # type: ignore[attr-defined]
    # wreck every reading after the cutoff: the forecast is unchanged
    r = site.readings.copy()
    later = r["timestamp"] > cutoff
    r.loc[later, "value"] = 1e6
    tampered = Site(name=site.name, sensors=site.sensors, readings=r)
    b = forecast_site(tampered, "SP1", cutoff, 10, "hyperbolic")
    pd.testing.assert_frame_equal(a.table, b.table)
    s = site_series(site, "SP1", cutoff, load="FILL")
    assert s.t.max() <= 150.0 and set(s.drivers) == {"load"}


def test_readings_after_the_cutoff_do_not_move_the_forecast_times() -> None:
    """Hourly readings added after the cutoff (a logger switched to a faster rate) leave
    the grid of the forecast, inferred from the readings up to the cutoff, unchanged."""
    site = embankment_site(1)
    cutoff = T0 + pd.Timedelta("150D")
    a = forecast_site(site, "SP1", cutoff, 3, "linear")
    extra = pd.DataFrame(
        {
            "timestamp": cutoff + pd.to_timedelta(np.arange(1, 24 * 40), unit="h"),
            "sensor_id": "SP1",
            "value": 0.0,
            "quality": "ok",
            "source": "x",
        }
    )
    r = pd.concat([site.readings, extra], ignore_index=True)
    b = forecast_site(Site(name=site.name, sensors=site.sensors, readings=r), "SP1", cutoff, 3)
    c = forecast_site(site, "SP1", cutoff, 3)
    pd.testing.assert_frame_equal(b.table, c.table)
    assert list(a.table["timestamp"]) == list(b.table["timestamp"])


def test_a_weekly_sensor_is_forecast_on_its_own_weekday() -> None:
    from geojepa.forecast.apply import future_times

    days = np.arange(0, 140, 7.0)  # every Monday from 2024-01-01 (a Monday)
    r = pd.DataFrame(
        {
            "timestamp": T0 + pd.to_timedelta(days, unit="D"),
            "sensor_id": "SP1",
            "value": days * 0.1,
            "quality": "ok",
            "source": "x",
        }
    )
    site = Site(name="w", sensors=sensors_frame([Sensor("SP1", "settlement", "mm")]), readings=r)
    times = future_times(site, "SP1", T0 + pd.Timedelta("70D"), 3, None)
    expected = T0 + pd.to_timedelta([77, 84, 91], unit="D")
    assert list(times) == list(expected)


def test_consolidation_on_a_site_reads_the_whole_fill_history() -> None:
    site = embankment_site(1)
    cutoff = T0 + pd.Timedelta("150D")
    a = forecast_site(site, "SP1", cutoff, 10, "consolidation")
    assert a.load == "FILL" and a.model.fallback_ is None  # type: ignore[attr-defined]
    assert np.isfinite(a.model.t90_) and np.isfinite(a.model.primary_final_)  # type: ignore[attr-defined]
    # both fill stages enter the fit: increments at day 0 (2 m) and day 60 (2 m more)
    dq = a.model.load_dq_  # type: ignore[attr-defined]
    assert dq.sum() == pytest.approx(4.0) and dq.size >= 2


TINY_YAML = """\
preset: tiny
model: {dim: 32, depth: 1, heads: 2, predictor_dim: 16, predictor_depth: 1, patch: 4}
window: {length: 16, stride: 4}
train: {steps: 3, batch_size: 4, eval_every: 3, checkpoint_every: 3, val_windows: 4,
        lidar_views: 2, threads: 1}
"""


@pytest.fixture(scope="module")
def run_and_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A site and a tiny run pretrained for 3 steps on its first 100 days."""
    root = tmp_path_factory.mktemp("jepa")
    site = root / "site"
    embankment_site().save(site)
    cfg = root / "tiny.yaml"
    cfg.write_text(TINY_YAML)
    args = ["pretrain", str(site), "--run", str(root / "run"), "--config", str(cfg)]
    assert run([*args, "--until", "2024-04-10", "--tracking-uri", "none", "--no-progress"]) == 0
    return root / "run", site


@pytest.mark.parametrize("head", ["ridge", "mlp", "median"])
def test_forecast_verb_with_a_run(
    run_and_site: tuple[Path, Path], tmp_path: Path, head: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rdir, site = run_and_site
    out = tmp_path / "f.csv"
    cutoff = "2024-05-30T00:00"
    args = ["forecast", str(rdir), str(site), "--target", "SP1", "--cutoff", cutoff]
    assert run([*args, "--horizon", "5", "--out", str(out), "--head", head]) == 0
    assert f"jepa_{head}" in capsys.readouterr().out
    table = pd.read_csv(out)
    assert list(table.columns) == ["timestamp", "prediction", "lower", "upper"]
    times = pd.to_datetime(table["timestamp"], utc=True)
    assert len(table) == 5 and times.iloc[0] > pd.Timestamp(cutoff, tz="UTC")
    assert (times.diff().dropna() == pd.Timedelta("2D")).all()
    assert np.isfinite(table[["prediction", "lower", "upper"]].to_numpy()).all()
    assert (table["lower"] <= table["prediction"]).all()
    assert (table["prediction"] <= table["upper"]).all()


def test_jepa_site_forecast_ignores_readings_after_the_cutoff(
    run_and_site: tuple[Path, Path],
) -> None:
    from geojepa.checkpoint import load_run
    from geojepa.forecast.apply import forecast_site_jepa

    loaded = load_run(run_and_site[0])
    site = embankment_site()
    cutoff = T0 + pd.Timedelta("150D")
    a = forecast_site_jepa(loaded, site, "SP1", cutoff, 6)
    assert a.model.fallback_ is None  # type: ignore[attr-defined]
    r = site.readings.copy()
    r.loc[r["timestamp"] > cutoff, "value"] = -1e6
    b = forecast_site_jepa(loaded, Site(site.name, site.sensors, r), "SP1", cutoff, 6)
    pd.testing.assert_frame_equal(a.table, b.table)


@pytest.mark.parametrize("base", ["linear", "consolidation"])
def test_jepa_with_a_classic_base_corrects_it_and_reads_no_later_reading(
    run_and_site: tuple[Path, Path], tmp_path: Path, base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from geojepa.checkpoint import load_run
    from geojepa.forecast.apply import forecast_site_jepa

    rdir, site_path = run_and_site
    out = tmp_path / "f.csv"
    args = ["forecast", str(rdir), str(site_path), "--target", "SP1", "--cutoff", "2024-05-30"]
    assert run([*args, "--horizon", "4", "--out", str(out), "--base", base]) == 0
    assert f"hybrid_{base}_jepa_ridge" in capsys.readouterr().out
    assert np.isfinite(pd.read_csv(out)[["prediction", "lower", "upper"]].to_numpy()).all()
    loaded = load_run(rdir)
    site = embankment_site()
    cutoff = T0 + pd.Timedelta("150D")
    a = forecast_site_jepa(loaded, site, "SP1", cutoff, 6, base=base)
    assert a.model.fallback_ is None  # type: ignore[attr-defined]
    r = site.readings.copy()
    r.loc[r["timestamp"] > cutoff, "value"] = -1e6
    b = forecast_site_jepa(loaded, Site(site.name, site.sensors, r), "SP1", cutoff, 6, base=base)
    pd.testing.assert_frame_equal(a.table, b.table)
    plain = forecast_site_jepa(loaded, site, "SP1", cutoff, 6)
    assert not np.allclose(plain.table["prediction"], a.table["prediction"])


def test_classic_methods_accept_the_run_first_form(
    run_and_site: tuple[Path, Path], tmp_path: Path
) -> None:
    rdir, site = run_and_site
    tail = ["--target", "SP1", "--cutoff", "2024-04-10", "--horizon", "3", "--method", "linear"]
    outs = [tmp_path / f"{i}.csv" for i in range(3)]
    assert run(["forecast", str(rdir), str(site), *tail, "--out", str(outs[0])]) == 0
    assert run(["forecast", "-", str(site), *tail, "--out", str(outs[1])]) == 0
    assert run(["forecast", str(site), *tail, "--out", str(outs[2])]) == 0
    first = pd.read_csv(outs[0])
    for o in outs[1:]:
        pd.testing.assert_frame_equal(pd.read_csv(o), first)


def test_forecast_verb_errors_exit_2(site_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    base = ["--cutoff", "2024-03-01", "--horizon", "3", "--out", str(out)]
    # the JEPA default needs a RUN (a missing one, or '-', is a usage error)
    assert run(["forecast", str(site_dir), "--target", "SP1", *base]) == 2
    assert run(["forecast", "-", str(site_dir), "--target", "SP1", *base]) == 2
    assert run(["forecast", str(tmp_path / "norun"), str(site_dir), "--target", "SP1", *base]) == 2
    assert run(["forecast", "-", str(site_dir), "--target", "SP1", "--head", "x", *base]) == 2
    assert run(["forecast", "-", str(site_dir), "--target", "SP1", "--base", "x", *base]) == 2
    assert run(["forecast", str(site_dir), "--target", "NOPE", "--method", "linear", *base]) == 2
    assert run(["forecast", str(site_dir), "--target", "SP1", "--method", "magic", *base]) == 2
    bad_time = ["--cutoff", "not-a-time", "--horizon", "3", "--out", str(out)]
    assert run(["forecast", str(site_dir), "--target", "SP1", "--method", "linear", *bad_time]) == 2
    early = ["--cutoff", "2023-01-01", "--horizon", "3", "--out", str(out)]
    assert run(["forecast", str(site_dir), "--target", "SP1", "--method", "linear", *early]) == 2
    assert (
        run(["forecast", str(tmp_path / "nosite"), "--target", "SP1", "--method", "linear", *base])
        == 2
    )
    assert not out.exists()  # nothing half-written


def test_a_fill_plan_drives_the_back_analysis(
    site_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cutoff = "2024-04-10"  # day 100, fill 4 m since day 60
    args = ["forecast", str(site_dir), "--target", "SP1", "--cutoff", cutoff, "--horizon", "20"]
    held, planned = tmp_path / "held.csv", tmp_path / "planned.csv"
    assert run([*args, "--out", str(held), "--method", "consolidation"]) == 0
    plan = tmp_path / "plan.csv"
    plan.write_text("timestamp,load\n2024-04-20,6.0\n2024-05-01,6.0\n")  # +2 m over 10 days
    capsys.readouterr()
    cmd = [*args, "--out", str(planned), "--method", "consolidation", "--fill-plan", str(plan)]
    assert run(cmd) == 0
    said = capsys.readouterr()
    assert "following the fill plan to 6 by 2024-05-01" in said.out
    assert "beyond the largest load the record has seen (4 -> 6)" in caplog.text
    h, p = pd.read_csv(held), pd.read_csv(planned)
    pd.testing.assert_series_equal(h["timestamp"], p["timestamp"])
    # the first step (day 102) is barely moved by a lift still rising; later ones settle more
    assert p["prediction"].iloc[0] == pytest.approx(h["prediction"].iloc[0], abs=0.5)
    assert (p["prediction"].iloc[10:] > h["prediction"].iloc[10:] + 1.0).all()
    assert (p["lower"] <= p["prediction"]).all() and (p["prediction"] <= p["upper"]).all()


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("when,load\n2024-05-01,6\n", "plan.csv:1", "no 'timestamp' column"),
        ("timestamp,load\n2024-05-01,6\n\n2024-05-09,high\n", "plan.csv:4:load", "'high'"),
        ("timestamp,load\n2024-05-01,6\n2024-04-20,7\n", "plan.csv:3:timestamp", "after the row"),
        ("timestamp,load\n2024-04-01,6\n", "plan.csv:2:timestamp", "not after the cutoff"),
        ("timestamp,load\nsoon,6\n", "plan.csv:2", "soon"),
        ("\n\ntimestamp,load\n2024-05-01,6\n2024-05-09,x\n", "plan.csv:5:load", "'x'"),
        ("\n\nwhen,load\n2024-05-01,6\n", "plan.csv:3", "no 'timestamp' column"),
    ],
)
def test_a_bad_fill_plan_is_named_by_file_and_line(
    site_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    where: str,
    what: str,
) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text(text)
    out = tmp_path / "f.csv"
    args = ["forecast", str(site_dir), "--target", "SP1", "--cutoff", "2024-04-10"]
    args += ["--horizon", "5", "--out", str(out), "--method", "consolidation"]
    assert run([*args, "--fill-plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert where in err and what in err
    assert not out.exists()


def test_a_fill_plan_is_for_the_back_analysis_only(site_dir: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text("timestamp,load\n2024-05-01,6\n")
    args = ["forecast", str(site_dir), "--target", "SP1", "--cutoff", "2024-04-10"]
    args += ["--horizon", "5", "--out", str(tmp_path / "f.csv"), "--fill-plan", str(plan)]
    assert run([*args, "--method", "hyperbolic"]) == 2
    assert run([*args, "--method", "consolidation"]) == 0
    assert run([*args, "--method", "consolidation", "--fill-plan", str(tmp_path / "none.csv")]) == 2


def test_a_cutoff_past_the_target_s_last_reading_is_refused(
    site_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: a cutoff years after the record forecast from its last reading, exit 0
    out = tmp_path / "f.csv"
    args = ["forecast", str(site_dir), "--target", "SP1", "--horizon", "3", "--out", str(out)]
    assert run([*args, "--cutoff", "2030-01-01", "--method", "linear"]) == 2
    err = capsys.readouterr().err
    assert "last usable reading" in err and "2024-07-17" in err and "--cutoff" in err
    assert not out.exists()
    # a cutoff inside a gap of the record: the readings after it exist but are not read
    site = embankment_site()
    r = site.readings
    days = (r["timestamp"] - T0).dt.days
    gappy = Site(site.name, site.sensors, r[(days < 80) | (days > 140)].reset_index(drop=True))
    with pytest.raises(InputError, match="gap it never saw"):
        forecast_site(gappy, "SP1", T0 + pd.Timedelta("120D"), 3, "linear")
    # within three grid steps of the last reading: accepted (a cutoff between readings)
    assert len(forecast_site(gappy, "SP1", T0 + pd.Timedelta("83D"), 3, "linear").table) == 3


def test_an_unreadable_interval_names_the_option(site_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--interval '3X' is not a time step"):
        forecast_site(
            Site.load(site_dir), "SP1", T0 + pd.Timedelta("100D"), 3, "linear", interval="3X"
        )
    out = tmp_path / "f.csv"
    args = ["forecast", str(site_dir), "--target", "SP1", "--cutoff", "2024-04-01"]
    assert run([*args, "--horizon", "3", "--interval", "3X", "--out", str(out)]) == 2


def creep_site() -> Site:
    """A plate read every 4 days under three lifts (days 0, 20, 36: 3.3 m in all), settling by
    the back-analysis' own form, mostly secondary compression (a = 7, b = 33 per m, t90 24
    days), with 0.3 noise; and its fill."""
    from geojepa.soil import consolidation_curve

    days = np.arange(0.0, 400.0, 4.0)
    lifts = [(0.0, 1.6), (20.0, 1.2), (36.0, 0.5)]
    s = np.full(days.shape, 3.0)
    for day, dq in lifts:
        lag = days - day
        s += dq * (7.0 * consolidation_curve(lag, 24.0, 0.0) + 33.0 * np.log1p(lag.clip(0) / 24))
    s += np.random.default_rng(0).normal(0, 0.3, days.size)
    fill = np.array([sum(dq for day, dq in lifts if day <= x) for x in days])
    return plate_site("creep", days, s, fill)


def test_the_verb_says_which_grid_step_it_used(
    site_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default step is the median reading spacing rounded to a logger interval: 4 days
    become 7, and the verb says so (and how to get steps of 4 days)."""
    path = tmp_path / "creep"
    creep_site().save(path)
    out = tmp_path / "f.csv"
    args = ["forecast", str(path), "--target", "SP1", "--cutoff", "2024-10-27", "--horizon", "5"]
    assert run([*args, "--method", "linear", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "5 steps of SP1 every 7D by linear" in said
    assert "grid step 7D: the median reading spacing of SP1 (4D) rounded" in said
    assert "--interval 4D for steps of 4D" in said
    steps = pd.to_datetime(pd.read_csv(out)["timestamp"]).diff().dropna()
    assert (steps == pd.Timedelta("7D")).all()
    assert run([*args, "--method", "linear", "--out", str(out), "--interval", "4D"]) == 0
    said = capsys.readouterr().out
    assert "every 4D" in said and "grid step" not in said
    steps = pd.to_datetime(pd.read_csv(out)["timestamp"]).diff().dropna()
    assert (steps == pd.Timedelta("4D")).all()
    # a spacing that is a logger interval already: no note
    plate = ["forecast", str(site_dir), "--target", "SP1", "--cutoff", "2024-04-10"]
    assert run([*plate, "--horizon", "3", "--method", "linear", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "every 2D" in said and "grid step" not in said


def test_consolidation_says_the_end_of_primary_on_the_readings_scale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The model's settlement at the end of primary consolidation under the current load
    (not ``c + a * load``, a tenth of it on a record that is mostly creep), and when."""
    site = creep_site()
    path = tmp_path / "creep"
    site.save(path)
    out = tmp_path / "f.csv"
    args = ["forecast", str(path), "--target", "SP1", "--cutoff", "2024-10-27", "--horizon", "5"]
    assert run([*args, "--method", "consolidation", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    fit = forecast_site(site, "SP1", "2024-10-27", 5, "consolidation")
    model = fit.model
    value = model.primary_final_  # type: ignore[attr-defined]
    when = fit.at(model.primary_end_)  # type: ignore[attr-defined]
    assert when is not None
    assert f"end of primary consolidation under the current load {value:.4g} around " in said
    assert when.date().isoformat() in said
    # on the readings' scale: near what the plate read then (36 + 2.1 t90 days, t90 ~ 24)
    r = site.readings[site.readings["sensor_id"] == "SP1"]
    then = float(np.interp(when.value, r["timestamp"].astype("int64"), r["value"]))
    assert value == pytest.approx(then, rel=0.1)
    assert T0 + pd.Timedelta("60D") < when < T0 + pd.Timedelta("120D")
