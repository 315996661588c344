"""`geojepa detect RUN SITE --out scores.csv [--from] [--to]`: exit codes, columns, one row per
grid time in the range, thresholds from the training period only, and equality with the
shared scoring path on a whole-site run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geojepa.cli import main
from geojepa.frame import to_frame
from geojepa.site import Site

torch = pytest.importorskip("torch")

from test_export import make_site, write_run  # noqa: E402


@dataclass(frozen=True)
class Setup:
    site: Site
    site_dir: Path
    run: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("detect")
    site = make_site(3, n_times=24 * 16, n_sensors=4)
    site.save(root / "site")
    write_run(root / "run", site, seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield Setup(site, root / "site", root / "run")
    finally:
        torch.set_num_threads(threads)


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


def test_detect_writes_one_row_per_grid_time(setup: Setup, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    assert _run(["detect", str(setup.run), str(setup.site_dir), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    frame = to_frame(setup.site)
    ids = list(frame.sensor_ids)
    assert list(table.columns) == ["timestamp", "score", "alarm"] + [f"score:{s}" for s in ids]
    assert len(table) == frame.n_times
    got = pd.DatetimeIndex(pd.to_datetime(table["timestamp"], utc=True))
    assert got.equals(frame.times())
    scored = table["score"].notna()
    assert set(table.loc[scored, "alarm"]) <= {"green", "amber", "red"}
    assert table.loc[~scored, "alarm"].isna().all()  # no score, no alarm level
    # per-time score is the largest score of the response sensors (forcing sensors are
    # context: read as input, their score columns empty); scores exist wherever data exists
    from geojepa.detectors.response import forcing_mask

    sensor = table[[f"score:{s}" for s in ids]].to_numpy()
    forcing = forcing_mask(frame)
    assert forcing.any() and not forcing.all()
    assert np.isnan(sensor[:, forcing]).all()
    response_max = np.nanmax(np.where(forcing, np.nan, sensor), axis=1)
    np.testing.assert_allclose(table["score"], response_max, rtol=1e-6)
    assert np.isfinite(table["score"]).mean() > 0.9


def test_from_to_selects_grid_times_and_matches_the_whole_run(setup: Setup, tmp_path: Path) -> None:
    whole = tmp_path / "whole.csv"
    part = tmp_path / "part.csv"
    assert _run(["detect", str(setup.run), str(setup.site_dir), "--out", str(whole)]) == 0
    frame = to_frame(setup.site)
    t0, t1 = frame.times()[200], frame.times()[260]
    args = ["--from", t0.isoformat(), "--to", t1.isoformat(), "--out", str(part)]
    assert _run(["detect", str(setup.run), str(setup.site_dir), *args]) == 0
    a, b = pd.read_csv(whole), pd.read_csv(part)
    assert len(b) == 61
    assert b["timestamp"].iloc[0] == a["timestamp"].iloc[200]
    assert b["timestamp"].iloc[-1] == a["timestamp"].iloc[260]
    cols = [c for c in a.columns if c.startswith("score")]
    np.testing.assert_allclose(b[cols].to_numpy(), a[cols].iloc[200:261].to_numpy(), rtol=1e-5)


def test_thresholds_ignore_rows_after_the_training_end(setup: Setup, tmp_path: Path) -> None:
    """Changing readings after train_end changes no threshold: the training rows' alarms
    are identical."""
    from geojepa.checkpoint import load_run
    from geojepa.detect import prepare_detect

    run = load_run(setup.run)
    cal = prepare_detect(run, setup.site).calibration
    r = setup.site.readings.copy()
    late = pd.to_datetime(r["timestamp"], utc=True) >= run.train_end
    r.loc[late, "value"] = r.loc[late, "value"] * 3.0 + 50.0
    changed = Site(setup.site.name, setup.site.sensors, r)
    cal2 = prepare_detect(run, changed).calibration
    assert cal2.policy == cal.policy
    np.testing.assert_array_equal(cal2.centre, cal.centre)
    np.testing.assert_array_equal(cal2.scale, cal.scale)


@pytest.mark.parametrize(
    "extra",
    [
        ["--from", "not-a-time"],
        ["--from", "2030-01-01", "--to", "2031-01-01"],
        ["--from", "2024-05-10", "--to", "2024-05-02"],
    ],
)
def test_bad_ranges_exit_2(setup: Setup, tmp_path: Path, extra: list[str]) -> None:
    out = tmp_path / "s.csv"
    assert _run(["detect", str(setup.run), str(setup.site_dir), "--out", str(out), *extra]) == 2
    assert not out.exists()


def test_missing_run_or_foreign_site_exit_2(setup: Setup, tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    assert _run(["detect", str(tmp_path / "nope"), str(setup.site_dir), "--out", str(out)]) == 2
    other = make_site(4, n_times=24 * 4, n_sensors=4)
    other = Site(
        other.name,
        other.sensors.assign(id=[f"X{i}" for i in range(4)]),
        other.readings.assign(sensor_id=other.readings["sensor_id"].str.replace("S", "X")),
    )
    other.save(tmp_path / "other")
    assert _run(["detect", str(setup.run), str(tmp_path / "other"), "--out", str(out)]) == 2
    assert not out.exists()


def test_density_score_ranges_match_the_whole_run_and_train_rows_only(
    setup: Setup, tmp_path: Path
) -> None:
    from geojepa.checkpoint import load_run
    from geojepa.detect import prepare_detect

    base = ["detect", str(setup.run), str(setup.site_dir), "--score", "density"]
    whole, part = tmp_path / "whole.csv", tmp_path / "part.csv"
    assert _run([*base, "--out", str(whole)]) == 0
    frame = to_frame(setup.site)
    t0, t1 = frame.times()[200], frame.times()[260]
    assert _run([*base, "--from", t0.isoformat(), "--to", t1.isoformat(), "--out", str(part)]) == 0
    a, b = pd.read_csv(whole), pd.read_csv(part)
    cols = [c for c in a.columns if c.startswith("score")]
    np.testing.assert_allclose(b[cols].to_numpy(), a[cols].iloc[200:261].to_numpy(), rtol=1e-5)
    assert np.isfinite(a["score"]).mean() > 0.9
    energy = tmp_path / "energy.csv"
    assert _run(["detect", str(setup.run), str(setup.site_dir), "--out", str(energy)]) == 0
    assert not np.allclose(
        np.nan_to_num(pd.read_csv(energy)[cols].to_numpy()), np.nan_to_num(a[cols].to_numpy())
    )
    # the density and its thresholds are fitted on training rows only
    run = load_run(setup.run)
    one = prepare_detect(run, setup.site, score="density")
    r = setup.site.readings.copy()
    late = pd.to_datetime(r["timestamp"], utc=True) >= run.train_end
    r.loc[late, "value"] = r.loc[late, "value"] * 3.0 + 50.0
    two = prepare_detect(run, Site(setup.site.name, setup.site.sensors, r), score="density")
    assert one.density is not None and two.density is not None
    np.testing.assert_array_equal(one.density.precision, two.density.precision)
    assert one.calibration.policy == two.calibration.policy
    assert _run([*base[:3], "--score", "magic", "--out", str(tmp_path / "x.csv")]) == 2
    # --recent is the energy's: refused with the density rather than silently ignored
    assert _run([*base, "--recent", "3", "--out", str(tmp_path / "y.csv")]) == 2
    assert not (tmp_path / "y.csv").exists()


def test_a_gauge_installed_after_the_training_period_is_left_out_not_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: detect exited 2 ("has 0 readings before the end of the training period") on a
    # run pretrain had accepted, and no option could leave the sensor out
    site = make_site(4, n_times=24 * 16, n_sensors=4)
    r = site.readings
    late = str(site.sensors["id"].iloc[1])
    t = pd.to_datetime(r["timestamp"], utc=True)
    cut = t.min() + (t.max() - t.min()) * 0.8
    keep = (r["sensor_id"] != late) | (t >= cut)
    new = Site(site.name, site.sensors, r[keep].reset_index(drop=True), site.labels)
    new.save(tmp_path / "site")
    write_run(tmp_path / "run", new, seed=0)
    out = tmp_path / "scores.csv"
    capsys.readouterr()
    code = _run(["detect", str(tmp_path / "run"), str(tmp_path / "site"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0
    assert "not scored" in err and f"({late})" in err
    table = pd.read_csv(out)
    assert table[f"score:{late}"].isna().all()
    others = [c for c in table.columns if c.startswith("score:") and c != f"score:{late}"]
    assert table[others].notna().any().any() and table["score"].notna().mean() > 0.5
