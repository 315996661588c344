"""Density bundles (`geojepa export --score density`): the edge scorer scores the embedding
density as `geojepa detect --score density` does, `watch` streams it with the same window
alignment, a missing or altered ``density.npz`` is refused, and old energy bundles (no
score recorded) still load and score the energy."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geojepa.edge.bundle import DENSITY_FILE, META_FILE, load_meta
from geojepa.errors import InputError
from geojepa.export import ExportReport, export_run, spearman
from geojepa.site import Site
from test_edge import BLOCKER

torch = pytest.importorskip("torch")

from test_export import grow_in_pieces, make_site, write_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHIFT = pd.Timedelta(hours=3)  # the site starts 3 cells after a patch boundary (patch 8)


@dataclass(frozen=True)
class Bundle:
    site: Site
    run: Path
    out: Path
    readings: Path
    report: ExportReport


def _shifted(site: Site, by: pd.Timedelta) -> Site:
    """`site` with every reading `by` later: its first cell no longer starts a patch."""
    r = site.readings.copy()
    r["timestamp"] = pd.to_datetime(r["timestamp"], utc=True) + by
    return Site(site.name, site.sensors, r)


def _readings_csv(site: Site, path: Path) -> None:
    r = site.readings.sort_values(["timestamp", "sensor_id"], kind="stable")
    r.assign(timestamp=r["timestamp"].map(lambda t: t.isoformat())).to_csv(path, index=False)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bundle]:
    root = tmp_path_factory.mktemp("density")
    site = _shifted(make_site(3, n_times=24 * 16, n_sensors=4), SHIFT)
    write_run(root / "run", site, seed=0)
    _readings_csv(site, root / "readings.csv")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two cores shared by many: spinning threads only slow things
    try:
        report = export_run(
            root / "run", root / "edge", site=site, score="density", int8="auto", check_windows=4
        )
        yield Bundle(site, root / "run", root / "edge", root / "readings.csv", report)
    finally:
        torch.set_num_threads(threads)


def _copy(bundle: Bundle, tmp_path: Path) -> Path:
    copy = tmp_path / "edge"
    shutil.copytree(bundle.out, copy)
    return copy


def _scores(lines: list[dict[str, object]], key: str = "score") -> np.ndarray:
    return np.array([np.nan if x[key] is None else x[key] for x in lines], dtype=np.float64)


# ----------------------------------------------------------------------------- the bundle
def test_density_bundle_records_its_score_file_and_version(bundle: Bundle) -> None:
    raw = json.loads((bundle.out / META_FILE).read_text(encoding="utf-8"))
    assert raw["score"] == "density"
    assert raw["density"]["file"] == DENSITY_FILE
    assert (bundle.out / DENSITY_FILE).is_file()
    assert raw["format_version"] == 2  # a version-1 gateway refuses it (energy only)
    assert bundle.report.score == "density"
    assert bundle.report.density_max_abs_diff is not None
    assert bundle.report.density_max_abs_diff <= 1e-3
    assert "density" in {p["graph"] for p in raw["parity"]}
    meta = load_meta(bundle.out)
    energy = replace(meta, score="energy", density=None)
    assert energy.to_dict()["format_version"] == 1  # energy bundles stay readable by all


def test_a_density_bundle_carries_the_encoder_graph_alone(bundle: Bundle) -> None:
    from geojepa.edge.score import OnnxEngine

    meta = load_meta(bundle.out)
    assert sorted(meta.graphs) == ["encoder"]
    assert not list(bundle.out.glob("predictor*.onnx"))
    assert {r.graph for r in bundle.report.parity} == {"encoder"}
    assert bundle.report.energy_max_abs_diff is None  # no energy to compare in this bundle
    engine = OnnxEngine(bundle.out, meta)
    with pytest.raises(InputError, match="no predictor graph"):
        engine.predict(None, *([np.zeros((1, 1))] * 4), np.zeros(1))  # type: ignore[arg-type]
    # an energy bundle needs its predictor: relabelled as one, the same folder is refused
    with pytest.raises(InputError, match="no predictor graph"):
        OnnxEngine(bundle.out, replace(meta, score="energy", density=None))


def test_an_old_gateway_refuses_a_density_bundle(
    bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    import geojepa.edge.bundle as b

    monkeypatch.setattr(b, "FORMAT_VERSION", 1)  # the check a version-1 reader runs
    with pytest.raises(InputError, match="newer than this scorer reads"):
        load_meta(bundle.out)


# ----------------------------------------------------------------------------- edge == detect
def test_edge_scores_a_density_bundle_as_detect_does(bundle: Bundle) -> None:
    from geojepa.detect import detect_run
    from geojepa.edge.score import EdgeModel, score_file, scores_table

    model = EdgeModel.load(bundle.out, int8=False)
    assert model.score == "density" and model.density is not None
    assert model.stride == model.window.patch
    edge = scores_table(score_file(bundle.out, bundle.readings, int8=False))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = scores_table(detect_run(bundle.run, bundle.site, score="density"))
        energy = scores_table(detect_run(bundle.run, bundle.site, score="energy"))
    finally:
        torch.set_num_threads(threads)
    assert list(edge.columns) == list(ref.columns)
    assert list(edge["timestamp"]) == list(ref["timestamp"])
    assert np.isfinite(ref["score"]).mean() > 0.9
    rho = spearman(edge["score"].to_numpy(), ref["score"].to_numpy())
    assert rho >= 0.999, rho
    cols = [c for c in edge.columns if c.startswith("score")]
    np.testing.assert_array_equal(np.isnan(edge[cols].to_numpy()), np.isnan(ref[cols].to_numpy()))
    delta = np.nanmax(np.abs(edge[cols].to_numpy() - ref[cols].to_numpy()))
    assert delta <= 1e-4, delta  # on the alarm scale (per-sensor training spread)
    assert list(edge["alarm"]) == list(ref["alarm"])
    # and it is the density, not the energy put on the density's scale
    assert not np.allclose(
        np.nan_to_num(edge[cols].to_numpy()), np.nan_to_num(energy[cols].to_numpy()), atol=1e-2
    )


# ----------------------------------------------------------------------------- watch == score
def _torch_free(tmp_path: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """`python -m geojepa.edge ARGS` where torch, scikit-learn and the like cannot load."""
    block = tmp_path / "blocker"
    block.mkdir(parents=True, exist_ok=True)
    (block / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(block), str(ROOT / "src")])
    return subprocess.run(
        [sys.executable, "-m", "geojepa.edge", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_watch_once_equals_score_on_a_density_bundle(bundle: Bundle, tmp_path: Path) -> None:
    from geojepa.edge.score import alarm_labels, score_file

    proc = _torch_free(tmp_path, ["watch", str(bundle.out), str(bundle.readings), "--once"])
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    scores = score_file(bundle.out, bundle.readings)
    ts = pd.DatetimeIndex(scores.time).tz_localize("UTC").map(lambda t: t.isoformat())
    assert [x["timestamp"] for x in lines] == list(ts)
    np.testing.assert_allclose(_scores(lines), scores.score, rtol=1e-5, atol=1e-6)
    for j, sid in enumerate(scores.sensor_ids):
        got = np.array([np.nan if x["scores"][sid] is None else x["scores"][sid] for x in lines])
        np.testing.assert_allclose(got, scores.sensor[:, j], rtol=1e-5, atol=1e-6)
    # the TARP level's label; null where nothing was scored (as the CSV leaves it empty)
    assert [x["alarm"] for x in lines] == list(alarm_labels(scores))
    labels = ["green", "amber", "red"]
    held = [labels[v] for v in scores.level]
    assert [x["alarm"] or held[i] for i, x in enumerate(lines)] == held


def test_watch_follows_a_growing_file_with_a_density_bundle(bundle: Bundle, tmp_path: Path) -> None:
    from geojepa.edge.score import EdgeModel, score_file
    from geojepa.edge.watch import watch

    text = bundle.readings.read_text(encoding="utf-8")
    cut = len(text) // 3
    growing = tmp_path / "growing.csv"
    stop = grow_in_pieces(growing, text, cut, 5003)  # ends mid-line; odd sizes cut lines
    sink = io.StringIO()
    res = watch(bundle.out, growing, sink, poll=0.0, stop=stop, int8=False)
    lines = [json.loads(x) for x in sink.getvalue().splitlines()]
    scores = score_file(bundle.out, bundle.readings, int8=False)
    stride = EdgeModel.load(bundle.out, int8=False).stride
    n = len(lines)
    assert res.stats.bad_lines == 0 and res.stats.late == 0
    assert len(scores.score) - stride <= n < len(scores.score)  # the open stride waits
    # the stream's first cell is mid-patch: windows end on the absolute grid, as detect's
    first = pd.Timestamp(lines[0]["timestamp"]).value // pd.Timedelta(hours=1).value
    assert first % stride == 3
    np.testing.assert_allclose(_scores(lines), scores.score[:n], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- refusals
def test_a_missing_density_file_is_refused(bundle: Bundle, tmp_path: Path) -> None:
    from geojepa.edge.score import EdgeModel

    copy = _copy(bundle, tmp_path)
    (copy / DENSITY_FILE).unlink()
    with pytest.raises(InputError, match=f"density file {DENSITY_FILE} is missing"):
        load_meta(copy)
    with pytest.raises(InputError, match=DENSITY_FILE):
        EdgeModel.load(copy, int8=False)


def test_an_altered_density_file_is_refused(
    bundle: Bundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from geojepa.density_score import DensityModel
    from geojepa.edge.app import run

    copy = _copy(bundle, tmp_path)
    d = DensityModel.load(copy / DENSITY_FILE)
    replace(d, mean=d.mean + 1.0).save(copy / DENSITY_FILE)  # a valid file, other numbers
    with pytest.raises(InputError, match=f"density file {DENSITY_FILE} differs.*SHA-256") as err:
        load_meta(copy)
    assert err.value.file == str(copy / DENSITY_FILE)
    assert run(["score", str(copy), str(bundle.readings)]) == 2
    assert DENSITY_FILE in capsys.readouterr().err


def test_a_density_score_without_its_file_record_is_refused(bundle: Bundle, tmp_path: Path) -> None:
    copy = _copy(bundle, tmp_path)
    raw = json.loads((copy / META_FILE).read_text(encoding="utf-8"))
    del raw["density"]  # the JSON says density but names no file to check
    (copy / META_FILE).write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(InputError, match="density file"):
        load_meta(copy)


# ----------------------------------------------------------------------------- old bundles
def test_an_energy_bundle_without_the_new_fields_loads_and_scores_the_energy(
    bundle: Bundle, tmp_path: Path
) -> None:
    """An energy bundle rewritten as a bundle of before density bundles: version 1, no
    score field; it scores as `detect` (energy) does, and `watch` as `score` (the last,
    partial stride too: the site ends mid-stride)."""
    from geojepa.detect import detect_run
    from geojepa.edge.score import EdgeModel, score_file
    from geojepa.edge.watch import watch
    from geojepa.energy import EnergySpec

    copy = tmp_path / "edge"
    spec = EnergySpec(recent=2)  # an energy stride (16) other than the density's (8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        export_run(bundle.run, copy, site=bundle.site, energy=spec, int8="off", check_windows=2)
        ref = detect_run(bundle.run, bundle.site, spec=spec, score="energy")
    finally:
        torch.set_num_threads(threads)
    raw = json.loads((copy / META_FILE).read_text(encoding="utf-8"))
    assert raw["score"] == "energy" and "density" not in raw
    del raw["score"]
    raw["format_version"] = 1
    (copy / META_FILE).write_text(json.dumps(raw), encoding="utf-8")
    model = EdgeModel.load(copy, int8=False)
    assert model.score == "energy" and model.density is None
    assert model.stride == 2 * model.window.patch
    got = score_file(copy, bundle.readings, int8=False)
    assert np.array_equal(got.time, ref.time)
    np.testing.assert_allclose(got.sensor, ref.sensor, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(got.score, ref.score, atol=1e-4, rtol=1e-4)
    assert np.array_equal(got.level, ref.level)
    sink = io.StringIO()
    watch(copy, bundle.readings, sink, once=True, int8=False)
    lines = [json.loads(x) for x in sink.getvalue().splitlines()]
    assert len(lines) == len(got.score)
    np.testing.assert_allclose(_scores(lines), got.score, rtol=1e-6, atol=1e-9)
