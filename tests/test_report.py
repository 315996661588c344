"""The HTML report: built from whatever a run folder holds, self-contained, honest on bad input.

The fixtures here (`make_site`, `make_run`) are also used by test_report_browser.py.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geojepa.cli import main
from geojepa.errors import InputError
from geojepa.report import build_report
from geojepa.report.analysis import alarm_episodes, attribution, match_events, pca_2d
from geojepa.report.html import markdown_html
from geojepa.report.inputs import read_metrics, read_scores
from geojepa.site import Sensor, Site, sensors_frame

START = pd.Timestamp("2024-01-01", tz="UTC")
SECTIONS = (
    "site",
    "alarms",
    "attribution",
    "series",
    "forecasts",
    "benchmark",
    "training",
    "embeddings",
    "run",
)


# ----------------------------------------------------------------------------- fixtures
def make_site(rng: np.random.Generator, *, days: int = 60, extra_piezometers: int = 0) -> Site:
    """A small embankment-like site: piezometers in two boreholes, settlement plates with
    trigger levels, an inclinometer, a GNSS point and a rain gauge; hourly; two events."""
    times = pd.date_range(START, periods=days * 24, freq="h")
    n = len(times)
    t_days = np.arange(n) / 24.0
    rain = np.where(rng.random(n) < 0.03, rng.exponential(4.0, n), 0.0)
    kernel = np.exp(-np.arange(96) / 24.0)
    response = np.convolve(rain, kernel)[:n]
    sensors = [
        Sensor("P1", "piezometer", "kPa", 0.0, 0.0, 95.0, "BH1"),
        Sensor("P2", "piezometer", "kPa", 0.0, 0.0, 90.0, "BH1"),
        Sensor("P3", "piezometer", "kPa", 40.0, 10.0, 92.0, "BH2"),
        Sensor(
            "S1",
            "settlement",
            "mm",
            10.0,
            -5.0,
            100.0,
            "",
            {"triggers": {"amber": 80.0, "red": 120.0}},
        ),
        Sensor("S2", "settlement", "mm", 25.0, -5.0, 100.0, "", {"amber": 60.0, "red": 90.0}),
        Sensor("I1", "inclinometer", "mm", 20.0, 5.0, 98.0, "BH3"),
        Sensor("G1", "gnss", "mm", 30.0, 20.0, 101.0, ""),
        Sensor("R1", "rain_gauge", "mm", 5.0, 15.0, 101.0, ""),
    ]
    sensors += [
        Sensor(
            f"PX{k}", "piezometer", "kPa", 50.0 + 5 * k, 2.0 * k, 90.0 - k % 5, f"BH{4 + k // 3}"
        )
        for k in range(extra_piezometers)
    ]
    values: dict[str, np.ndarray] = {
        "P1": 50 + 2.0 * response + rng.normal(0, 0.3, n),
        "P2": 70 + 1.2 * np.roll(response, 12) + rng.normal(0, 0.3, n),
        "P3": 60 + 1.5 * np.roll(response, 6) + rng.normal(0, 0.3, n),
        "S1": t_days / (0.05 + 0.012 * t_days) + rng.normal(0, 0.3, n),
        "S2": t_days / (0.08 + 0.015 * t_days) + rng.normal(0, 0.3, n),
        "I1": 0.05 * t_days + rng.normal(0, 0.1, n),
        "G1": 0.04 * t_days + rng.normal(0, 1.0, n),
        "R1": rain,
    }
    for k in range(extra_piezometers):
        values[f"PX{k}"] = 40 + 1.0 * np.roll(response, 3 * k) + rng.normal(0, 0.3, n)
    spike_at = int(n * 0.75)
    values["P1"][spike_at] += 25.0
    drift = slice(int(n * 0.83), int(n * 0.9))
    values["S2"][drift] += np.linspace(0, 6, drift.stop - drift.start)
    frames = [
        pd.DataFrame(
            {
                "timestamp": times,
                "sensor_id": sid,
                "value": v,
                "quality": "ok",
                "source": "fixture.csv",
            }
        )
        for sid, v in values.items()
    ]
    readings = pd.concat(frames, ignore_index=True)
    readings.loc[readings.index[5:9], "quality"] = "outlier"
    labels = pd.DataFrame(
        {
            "start": [times[spike_at], times[drift.start]],
            "end": [times[spike_at + 1], times[drift.stop - 1]],
            "kind": ["spike", "drift"],
            "sensors": ["P1", "S2"],
            "category": ["sensor_fault", "sensor_fault"],
            "source": ["fixture", "fixture"],
        }
    )
    return Site(
        name="Fixture embankment", sensors=sensors_frame(sensors), readings=readings, labels=labels
    )


def make_scores(site: Site, rng: np.random.Generator) -> pd.DataFrame:
    """A detect-style scores table: per-sensor scores high where the labelled events are,
    plus one nuisance alarm on G1."""
    times = pd.date_range(site.span()[0], site.span()[1], freq="h")  # type: ignore[index]
    n = len(times)
    ids = list(site.sensors["id"])
    per = {sid: np.abs(rng.normal(0, 0.4, n)) for sid in ids}
    for ev in site.labels.to_dict("records"):
        on = (times >= ev["start"]) & (times <= ev["end"])
        for sid in str(ev["sensors"]).split(";"):
            per[sid][on] += 6.0
    nuisance = slice(int(n * 0.65), int(n * 0.65) + 3)
    per["G1"][nuisance] += 4.0
    score = np.max(np.column_stack(list(per.values())), axis=1)
    alarm = np.where(score > 5.0, "red", np.where(score > 3.0, "amber", "green"))
    df = pd.DataFrame(
        {"timestamp": times.strftime("%Y-%m-%dT%H:%M:%SZ"), "score": score, "alarm": alarm}
    )
    for sid in ids:
        df[f"score:{sid}"] = per[sid]
    return df


def make_run(
    root: Path, site: Site, rng: np.random.Generator, *, site_dir: Path | None = None
) -> Path:
    """A run folder with every piece the report reads."""
    run = root / "run"
    run.mkdir(parents=True)
    span = site.span()
    assert span is not None
    until = START + pd.Timedelta(days=30)
    config = {
        "preset": "tiny",
        "seed": 0,
        "data": {"until": until.isoformat(), **({"site": str(site_dir)} if site_dir else {})},
        "model": {"embed_dim": 64, "depth": 4},
        "train": {"steps": 200, "lr": 1e-3},
    }
    import yaml

    (run / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    lines = []
    for step in range(0, 201, 10):
        row: dict[str, object] = {
            "step": step,
            "loss": float(0.8 * np.exp(-step / 80) + 0.05 + rng.normal(0, 0.005)),
            "lr": 1e-3 * min(1.0, step / 20) * 0.5 * (1 + np.cos(np.pi * step / 200)),
        }
        if step % 50 == 0:
            row |= {
                "val/rankme": 20 + step / 10,
                "val/lidar": 15 + step / 20,
                "val/embed_std": 0.1 + step / 4000,
                "val/dim": 64,
            }
        lines.append(json.dumps(row))
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    make_scores(site, rng).to_csv(run / "scores.csv", index=False)
    # a forecast for S1 over 3 days after a cutoff, near the true curve, with a band
    cutoff = START + pd.Timedelta(days=10)
    ft = pd.date_range(cutoff + pd.Timedelta(hours=1), periods=72, freq="h")
    td = (ft - START) / pd.Timedelta(days=1)
    pred = np.asarray(td / (0.05 + 0.012 * td)) + 0.1
    pd.DataFrame(
        {
            "timestamp": ft.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "prediction": pred,
            "lower": pred - 1.5,
            "upper": pred + 1.5,
        }
    ).to_csv(run / "forecast_S1.csv", index=False)
    (run / "benchmark.md").write_text(
        "# Detection benchmark\n\nAUC-PR, mean ± std over 3 seeds.\n\n"
        "| method | AUC-PR | F1 |\n|---|---:|---:|\n| GeoJEPA | 0.61 ± 0.04 | 0.55 |\n"
        "| robust z-score | 0.48 ± 0.05 | 0.41 |\n| <script>x</script> | 0.1 | 0.1 |\n",
        encoding="utf-8",
    )
    starts = pd.date_range(START, periods=120, freq="12h")
    phase = 2 * np.pi * np.arange(120) / 120
    emb = np.column_stack(
        [np.cos(phase), np.sin(phase)] + [rng.normal(0, 0.2, 120) for _ in range(14)]
    )
    np.savez(run / "embeddings.npz", embeddings=emb, start=starts.tz_localize(None).to_numpy())
    (run / "checkpoint.pt").write_bytes(b"not read by the report")
    return run


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """One full report per module (it is the slow part): run folder, site folder, page.

    The run's configuration names the site, and the report is asked without one, so this
    also covers finding the site from the run."""
    root = tmp_path_factory.mktemp("full")
    site = make_site(np.random.default_rng(1))
    site.save(root / "site")
    run = make_run(root, Site.load(root / "site"), np.random.default_rng(2), site_dir=root / "site")
    out = build_report(run, None, root / "out" / "report.html")
    return run, root / "site", out.read_text(encoding="utf-8")


@pytest.fixture
def site_dir(built: tuple[Path, Path, str]) -> Path:
    return built[1]


@pytest.fixture
def run_dir(tmp_path: Path, built: tuple[Path, Path, str]) -> Path:
    """A private copy of the full run folder, free to spoil."""
    import shutil

    return Path(shutil.copytree(built[0], tmp_path / "run"))


def _external_refs(html: str) -> list[str]:
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html, flags=re.IGNORECASE)
    refs += re.findall(r"url\(([^)]*)\)", html)
    refs += re.findall(r"@import", html)
    return [r for r in refs if not (r.startswith("#") or r.startswith("data:"))]


def _section(html: str, anchor: str) -> str:
    return html.split(f'<section id="{anchor}">')[1].split("</section>")[0]


# ----------------------------------------------------------------------------- the page
def test_full_report_has_every_section_and_is_self_contained(built: tuple[Path, Path, str]) -> None:
    html = built[2]
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in html
        assert f'href="#{anchor}"' in html  # in the table of contents
    assert "Skipped:" not in html, re.findall(r"Skipped: [^<]*", html)
    assert _external_refs(html) == []
    assert "<script" not in html.lower()  # the benchmark's <script> cell is escaped
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert html.count("data:image/png;base64,") >= 10
    assert "Fixture embankment" in html  # the site, found from the run's configuration
    assert "kPa" in html and "mm" in html
    assert len(html.encode()) < 3_000_000


def test_headline_counts_events_and_false_alarms(built: tuple[Path, Path, str]) -> None:
    cards = dict(
        (k, v)
        for v, k in re.findall(
            r'<div class="v">([^<]*)</div><div class="k">([^<]*)</div>', built[2]
        )
    )
    # both labelled events come after training data ends and both are alarmed (red); the
    # G1 nuisance alarm (amber) is the one false alarm, over one month after the split
    assert cards["events caught (after training)"] == "2 / 2"
    assert cards["alarms red · amber (after training)"] == "2 · 1"
    assert "alarms red · amber (training period)" not in cards  # none before the split
    assert cards["sensors · 5 kinds"] == "8"
    assert cards["training steps"] == "200"
    assert cards["RankMe"] == "40.0 / 64"
    assert 0.9 < float(cards["false alarms / month (after training)"]) < 1.1
    scores = pd.read_csv(built[0] / "scores.csv", parse_dates=["timestamp"])
    after = scores[scores["timestamp"] >= START + pd.Timedelta(days=30)]
    expected = (after["alarm"] != "green").mean() * 100
    assert cards["time in alarm (after training)"] == f"{expected:.0f} %"


def test_attribution_names_the_faulty_gauge(built: tuple[Path, Path, str]) -> None:
    rows = re.findall(r"<tr>(.*?)</tr>", _section(built[2], "attribution"))
    assert any("P1 " in r and "spike (P1)" in r for r in rows)
    assert any("S2 " in r and "drift (S2)" in r for r in rows)
    assert any("G1 " in r and "spike" not in r and "drift" not in r for r in rows)


def test_forecast_error_table_ranks_a_good_forecast_above_persistence(
    built: tuple[Path, Path, str],
) -> None:
    pytest.importorskip("geojepa.forecast.classic")
    section = _section(built[2], "forecasts")
    maes = {
        m: float(v)
        for m, v in re.findall(r'<tr><td>([^<]+)</td><td class="num">([0-9.eE+-]+)</td>', section)
    }
    # the file has no method column: named after the file, never claimed as GeoJEPA's
    assert {"forecast forecast_S1.csv", "persistence", "hyperbolic"} <= set(maes)
    assert maes["forecast forecast_S1.csv"] < maes["persistence"]
    assert "GeoJEPA" not in section
    assert "band holds" in section


def test_report_without_run_outputs_skips_sections_with_a_note(
    tmp_path: Path, site_dir: Path
) -> None:
    run = tmp_path / "empty-run"
    run.mkdir()
    html = build_report(run, site_dir, tmp_path / "r.html", max_series_sensors=2).read_text(
        encoding="utf-8"
    )
    for anchor in ("alarms", "attribution", "forecasts", "benchmark", "training", "embeddings"):
        assert "Skipped:" in _section(html, anchor), anchor
    for anchor in ("site", "series"):
        section = _section(html, anchor)
        assert "Skipped:" not in section and "data:image/png" in section
    assert "Showing 2 of 8 sensors" in html


def test_report_without_site_still_draws_the_run(tmp_path: Path, run_dir: Path) -> None:
    run = tmp_path / "only-metrics"
    run.mkdir()
    (run / "metrics.jsonl").write_bytes((run_dir / "metrics.jsonl").read_bytes())
    out = build_report(run, None, tmp_path / "r.html")
    html = out.read_text(encoding="utf-8")
    assert "Skipped:" in _section(html, "site")
    assert "data:image/png" in _section(html, "training")
    assert out.stat().st_mode & 0o444 == 0o444  # readable by all, unlike a temporary file


def test_forecast_methods_from_the_csv_are_drawn_as_given(
    tmp_path: Path, run_dir: Path, site_dir: Path
) -> None:
    fc = pd.read_csv(run_dir / "forecast_S1.csv")
    fc["my_method"] = fc["prediction"] + 100.0
    fc["method"] = "my_model"  # the file's own prediction was made by this method
    fc.drop(columns=["lower", "upper"]).to_csv(tmp_path / "fc.csv", index=False)
    empty = tmp_path / "empty-run"
    empty.mkdir()
    html = build_report(
        empty,
        site_dir,
        tmp_path / "r.html",
        forecasts={"S1": tmp_path / "fc.csv"},
        max_series_sensors=1,
    ).read_text(encoding="utf-8")
    section = _section(html, "forecasts")
    maes = dict(re.findall(r'<tr><td>([^<]+)</td><td class="num">([0-9.eE+-]+)</td>', section))
    assert set(maes) == {"my_model", "my_method"}
    assert "GeoJEPA" not in section.split("</p>", 1)[1]  # named after the file's method
    assert float(maes["my_method"]) > 99.0
    assert "band holds" not in section  # no band in this file


def test_large_site_report_stays_small(tmp_path: Path) -> None:
    site = make_site(np.random.default_rng(4), days=90, extra_piezometers=22)  # 30 sensors
    assert len(site.sensors) == 30
    site.save(tmp_path / "site")
    run = make_run(tmp_path, site, np.random.default_rng(5))
    t0 = time.perf_counter()
    out = build_report(run, tmp_path / "site", tmp_path / "r.html")
    seconds = time.perf_counter() - t0
    size = out.stat().st_size
    assert size < 5_000_000, size
    assert seconds < 60, seconds


# ----------------------------------------------------------------------------- bad input
def test_bad_alarm_state_names_file_line_and_column(
    tmp_path: Path, run_dir: Path, site_dir: Path
) -> None:
    df = pd.read_csv(run_dir / "scores.csv")
    df.loc[6, "alarm"] = "purple"
    df.to_csv(run_dir / "scores.csv", index=False)
    out = tmp_path / "r.html"
    out.write_text("old report", encoding="utf-8")
    with pytest.raises(InputError) as err:
        build_report(run_dir, site_dir, out)
    assert err.value.line == 8 and err.value.column == "alarm"
    assert "scores.csv:8:alarm" in err.value.render()
    assert out.read_text(encoding="utf-8") == "old report"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".r.html")) == []


def test_bad_metrics_line_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"step": 1, "loss": 0.5}\n\n{"step": 2, "loss": \n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_metrics(p)
    assert err.value.line == 3


def test_scores_times_must_increase(tmp_path: Path) -> None:
    p = tmp_path / "scores.csv"
    p.write_text(
        "timestamp,score,alarm\n2024-01-01T00:00Z,1,green\n2024-01-01T00:00Z,1,green\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as err:
        read_scores(p)
    assert err.value.line == 3


def test_non_numeric_score_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "scores.csv"
    p.write_text(
        "timestamp,score,alarm,score:A\n2024-01-01T00:00Z,1,green,0.5\n2024-01-01T01:00Z,1,green,oops\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as err:
        read_scores(p)
    assert (err.value.line, err.value.column) == (3, "score:A")


def test_a_time_without_a_score_has_no_alarm_level(tmp_path: Path) -> None:
    # detect and geojepa-edge leave the alarm empty where no score exists
    p = tmp_path / "scores.csv"
    p.write_text(
        "timestamp,score,alarm\n2024-01-01T00:00Z,,\n2024-01-01T01:00Z,2.5,red\n"
        "2024-01-01T02:00Z,0.1,green\n",
        encoding="utf-8",
    )
    table = read_scores(p).table
    assert table["alarm"].tolist() == ["", "red", "green"]
    assert alarm_episodes(table, pd.Timedelta("1h"))["level"].tolist() == ["red"]
    p.write_text("timestamp,score,alarm\n2024-01-01T00:00Z,1.0,\n", encoding="utf-8")
    with pytest.raises(InputError, match="unknown alarm state") as err:
        read_scores(p)  # a score without a level is an error
    assert err.value.line == 2


def test_cli_report_exit_codes(tmp_path: Path, run_dir: Path, site_dir: Path) -> None:
    run = tmp_path / "small-run"
    run.mkdir()
    (run / "metrics.jsonl").write_bytes((run_dir / "metrics.jsonl").read_bytes())
    out = tmp_path / "cli.html"
    with pytest.raises(SystemExit) as ok:
        main(
            [
                "report",
                str(run),
                "--site",
                str(site_dir),
                "--out",
                str(out),
                "--max-sensors",
                "1",
                "--forecast",
                f"S1={run_dir / 'forecast_S1.csv'}",
            ]
        )
    assert ok.value.code == 0 and out.is_file()
    assert "S1 — forecast_S1.csv" in out.read_text(encoding="utf-8")
    with pytest.raises(SystemExit) as missing:
        main(["report", str(tmp_path / "nope"), "--site", str(site_dir), "--out", str(out)])
    assert missing.value.code == 2
    with pytest.raises(SystemExit) as bad_site:
        main(["report", str(run), "--site", str(tmp_path), "--out", str(out)])
    assert bad_site.value.code == 2
    with pytest.raises(SystemExit) as mixed:
        main(
            [
                "report",
                str(run),
                "--site",
                str(site_dir),
                "--out",
                str(out),
                "--forecast",
                f"S1={run_dir / 'forecast_S1.csv'}",
                "--forecast",
                str(run_dir / "forecast_S1.csv"),
            ]
        )
    assert mixed.value.code == 2


# ----------------------------------------------------------------------------- analysis
def _table(alarms: list[str], step: str = "h") -> pd.DataFrame:
    t = pd.date_range(START, periods=len(alarms), freq=step)
    return pd.DataFrame(
        {"timestamp": t, "score": np.arange(len(alarms), dtype=float), "alarm": alarms}
    )


def test_alarm_episodes_are_runs_of_amber_or_red() -> None:
    t = _table(["green", "amber", "red", "amber", "green", "green", "amber", "green", "red"])
    eps = alarm_episodes(t, pd.Timedelta("1h"))
    assert list(eps["level"]) == ["red", "amber", "red"]
    assert list(eps["rows"]) == [3, 1, 1]
    assert eps["start"].iloc[0] == START + pd.Timedelta("1h")
    assert eps["end"].iloc[0] == START + pd.Timedelta("4h")  # last alarmed row + one step
    assert list(eps["peak_score"]) == [3.0, 6.0, 8.0]
    assert alarm_episodes(_table(["green"] * 4), pd.Timedelta("1h")).empty


def test_attribution_shares_follow_the_per_sensor_scores() -> None:
    t = _table(["green", "red", "red", "green"])
    per = pd.DataFrame(
        {"A": [0.0, 3.0, 3.0, 0.0], "B": [0.0, 1.0, 1.0, 9.0], "C": [0.0, -2.0, -2.0, 0.0]}
    )
    eps = alarm_episodes(t, pd.Timedelta("1h"))
    att = attribution(per, t, eps)
    assert list(att["sensor_id"]) == ["A", "B"]  # C below zero is not responsible
    np.testing.assert_allclose(att["share"], [0.75, 0.25])


def test_match_events_counts_hits_and_false_alarms() -> None:
    t = _table(["green", "red", "green", "green", "amber", "green", "green", "green"])
    eps = alarm_episodes(t, pd.Timedelta("1h"))
    labels = pd.DataFrame(
        {
            "start": [START + pd.Timedelta("1h"), START + pd.Timedelta("6h")],
            "end": [START + pd.Timedelta("2h"), START + pd.Timedelta("7h")],
            "kind": ["spike", "drift"],
            "sensors": ["A", "B"],
        }
    )
    m = match_events(eps, labels, (START, START + pd.Timedelta("8h")))
    assert (m.events, m.caught, m.alarms, m.false_alarms) == (2, 1, 2, 1)
    assert m.episode_events == {1: [0], 2: []}
    late = match_events(eps, labels, (START + pd.Timedelta("3h"), START + pd.Timedelta("8h")))
    assert (late.events, late.caught, late.alarms) == (1, 0, 1)


def test_pca_finds_the_dominant_direction() -> None:
    rng = np.random.default_rng(7)
    x = np.column_stack([rng.normal(0, 10, 200), rng.normal(0, 1, 200), rng.normal(0, 0.1, 200)])
    proj = pca_2d(x)
    assert proj.points.shape == (200, 2)
    assert proj.explained[0] > 0.95
    assert abs(np.corrcoef(proj.points[:, 0], x[:, 0])[0, 1]) > 0.99


def test_markdown_tables_are_rendered_and_escaped() -> None:
    html = markdown_html("## Results\n\n| a | b |\n|---|--:|\n| `x` | <b>1</b> |\n")
    assert "<h4>Results</h4>" in html
    assert "<th" in html and "<td" in html
    assert "<code>x</code>" in html
    assert "&lt;b&gt;1&lt;/b&gt;" in html


def test_a_folder_with_nothing_to_report_is_refused(tmp_path: Path) -> None:
    # before: an empty folder without a site gave a report of skipped sections, exit 0
    empty = tmp_path / "notarun"
    empty.mkdir()
    out = tmp_path / "r.html"
    with pytest.raises(InputError, match="holds nothing a report shows"):
        build_report(empty, None, out)
    with pytest.raises(SystemExit) as refused:
        main(["report", str(empty), "--out", str(out)])
    assert refused.value.code == 2 and not out.exists()
