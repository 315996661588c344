"""ONNX export: single files, parity with PyTorch, and the torch-free edge scorer matching
the torch-side scoring path that `geojepa detect` uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from geojepa.edge.bundle import META_FILE, load_meta
from geojepa.edge.score import EdgeModel
from geojepa.errors import InputError
from geojepa.export import (
    INT8_MIN_SPEARMAN,
    PARITY_TOL,
    TIE_MARGIN,
    ExportReport,
    export_run,
    spearman,
)
from geojepa.site import Sensor, Site, sensors_frame
from test_edge import BLOCKER

if TYPE_CHECKING:
    from geojepa.export import SiteCheck

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
KINDS = ["rain_gauge", "piezometer", "piezometer", "settlement", "thermometer", "piezometer"]


def make_site(seed: int, n_times: int = 24 * 24, n_sensors: int = 6) -> Site:
    """Hourly site: rain drives piezometers, settlement trends, a daily temperature; some
    gaps; a step in one piezometer late in the record."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_times)
    rain = np.where(rng.random(n_times) < 0.04, rng.exponential(5.0, n_times), 0.0)
    cols = []
    for c in range(n_sensors):
        kind = KINDS[c % len(KINDS)]
        if kind == "rain_gauge":
            sig = rain
        elif kind == "piezometer":
            resp = np.zeros(n_times)
            for i in range(1, n_times):
                resp[i] = 0.9 * resp[i - 1] + 0.4 * rain[i - 1]
            sig = 20.0 + c + resp + rng.normal(0, 0.1, n_times)
        elif kind == "settlement":
            sig = -0.02 * t + rng.normal(0, 0.05, n_times)
        else:
            sig = 10 + 5 * np.sin(2 * np.pi * t / 24.0) + rng.normal(0, 0.2, n_times)
        cols.append(sig)
    values = np.stack(cols, axis=1)
    values[int(0.85 * n_times) :, 2] += 4.0  # a step in P2 in the test period
    observed = rng.random(values.shape) > 0.05
    times = pd.date_range("2024-05-01", periods=n_times, freq="h", tz="UTC")
    ids = [f"S{c}" for c in range(n_sensors)]
    ii, cc = np.nonzero(observed)
    readings = pd.DataFrame(
        {
            "timestamp": times[ii],
            "sensor_id": np.asarray(ids)[cc],
            "value": values[ii, cc],
            "quality": "ok",
            "source": "synthetic.csv",
        }
    )
    sensors = sensors_frame(
        [
            Sensor(ids[c], KINDS[c % len(KINDS)], "kPa", float(10 * c), 5.0, -2.0 * c, f"BH{c % 2}")
            for c in range(n_sensors)
        ]
    )
    return Site("synthetic", sensors, readings)


def write_run(run_dir: Path, site: Site, seed: int) -> None:
    """A run folder with a small, untrained JEPA (export does not care about training)."""
    from geojepa.checkpoint import save_untrained_run
    from geojepa.config import preset

    cfg = preset("tiny")
    model_cfg = replace(
        cfg.model,
        dim=32,
        depth=1,
        heads=2,
        predictor_dim=32,
        predictor_depth=1,
        predictor_heads=2,
        patch=8,
    )
    window = replace(cfg.window, length=48, stride=8, patch=8)
    cfg = replace(cfg, model=model_cfg, window=window, seed=seed)
    save_untrained_run(run_dir, site, cfg, train_fraction=0.6)


@dataclass(frozen=True)
class Exported:
    site: Site
    site_dir: Path
    run: Path
    out: Path
    report: ExportReport


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    root = tmp_path_factory.mktemp("export")
    site = make_site(1)
    site.save(root / "site")
    write_run(root / "run", site, seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two cores shared by many: spinning threads only slow things
    try:
        report = export_run(root / "run", root / "edge", site=site, int8="auto", check_windows=6)
    finally:
        torch.set_num_threads(threads)
    yield Exported(site, root / "site", root / "run", root / "edge", report)


# ----------------------------------------------------------------------------- graphs
def test_graphs_are_single_files_that_pass_the_checker(exported: Exported) -> None:
    import onnx

    names = sorted(p.name for p in exported.out.iterdir())
    assert not [n for n in names if n.endswith(".data")]
    for name in ("encoder.onnx", "predictor.onnx"):
        model = onnx.load(str(exported.out / name))
        onnx.checker.check_model(model, full_check=True)
        assert not any(
            t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer
        )
        assert any(op.domain in ("", "ai.onnx") and op.version == 18 for op in model.opset_import)


def test_axes_are_dynamic(exported: Exported) -> None:
    import onnx

    model = onnx.load(str(exported.out / "predictor.onnx"))
    dims = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in model.graph.input
    }
    for name in ("values", "observed", "context", "target"):
        assert all(isinstance(d, str) for d in dims[name][:2]), dims[name]
    assert isinstance(dims["values"][2], str)  # time axis


def test_parity_at_three_shapes_within_tolerance(exported: Exported) -> None:
    shapes = {r.shape for r in exported.report.parity}
    assert len(shapes) >= 3
    assert {r.graph for r in exported.report.parity} == {"encoder", "predictor"}
    for r in exported.report.parity:
        assert r.max_abs_diff <= PARITY_TOL, r
    assert exported.report.energy_max_abs_diff <= PARITY_TOL
    assert exported.report.score_max_abs_diff <= TIE_MARGIN / 10  # alarms cannot flip


def test_metadata_round_trips_and_records_parity(exported: Exported) -> None:
    meta = load_meta(exported.out)
    assert meta.sensor_ids == list(exported.site.sensor_ids)
    assert meta.opset == 18
    assert meta.interval_seconds == 3600.0
    assert len(meta.parity) >= 7  # 3 shapes x 2 graphs + the energy check
    q = meta.quantization
    assert {"offered", "speedup", "spearman", "reason"} <= set(q)
    if q["offered"]:
        assert q["spearman"] >= INT8_MIN_SPEARMAN
        assert all(g.int8_file for g in meta.graphs.values())
    else:
        assert not [p for p in exported.out.iterdir() if ".int8." in p.name]


def test_tampered_graph_is_refused(exported: Exported, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "edge"
    shutil.copytree(exported.out, copy)
    with open(copy / "encoder.onnx", "r+b") as fh:
        fh.seek(-8, os.SEEK_END)
        fh.write(b"\x00" * 8)
    with pytest.raises(InputError, match="SHA-256"):
        load_meta(copy)


def _edited_bundle(exported: Exported, tmp_path: Path, edit: Callable[[dict], None]) -> Path:
    """A copy of the export whose JSON `edit` changed (the graphs' hashes still match)."""
    import shutil

    copy = tmp_path / "edge"
    shutil.copytree(exported.out, copy)
    meta = json.loads((copy / META_FILE).read_text(encoding="utf-8"))
    edit(meta)
    (copy / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return copy


def _drop_alarms(m: dict) -> None:
    del m["alarms"]


def _new_policy_setting(m: dict) -> None:
    m["alarms"]["policy"]["n_confirm"] = 2  # a setting of a newer geojepa


def _no_mask_kinds(m: dict) -> None:
    del m["energy"]["kinds"]


def _other_patch(m: dict) -> None:
    m["window"]["patch"] = 2 * int(m["model"]["patch"])


@pytest.mark.parametrize(
    "edit",
    [_drop_alarms, _new_policy_setting, _no_mask_kinds, _other_patch],
    ids=lambda f: f.__name__,
)
def test_a_bundle_with_incomplete_or_mismatched_settings_is_bad_input(
    exported: Exported, tmp_path: Path, edit: Callable[[dict], None]
) -> None:
    """Settings the scorer cannot use are refused when the bundle loads, as bad input
    (exit 2, naming the metadata file), not as an internal error half-way through."""
    from geojepa.edge.app import run
    from geojepa.edge.score import EdgeModel

    copy = _edited_bundle(exported, tmp_path, edit)
    with pytest.raises(InputError) as err:
        EdgeModel.load(copy, int8=False)
    assert str(err.value.file).endswith(META_FILE)
    readings = tmp_path / "readings.csv"
    _readings_csv(exported.site, readings)
    assert run(["score", str(copy), str(readings), "--fp32"]) == 2


def test_an_int8_graph_without_its_hash_is_refused(exported: Exported, tmp_path: Path) -> None:
    def unhashed(m: dict) -> None:
        m["graphs"]["encoder"]["int8_file"] = "encoder.onnx.bak"
        m["graphs"]["encoder"]["int8_sha256"] = None

    copy = _edited_bundle(exported, tmp_path, unhashed)
    (copy / "encoder.onnx.bak").write_bytes(b"not the graph the export checked")
    with pytest.raises(InputError, match="SHA-256"):
        load_meta(copy)


def test_int8_is_refused_where_its_scores_are_missing_and_fp32_are_not(
    exported: Exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scores that int8 loses (NaN where fp32 scores) must fail the agreement check: a
    rank correlation over the cells both score cannot see them."""
    import shutil

    import geojepa.export as ex
    from geojepa.edge.score import EdgeModel
    from geojepa.frame import to_frame

    copy = _edited_bundle(exported, tmp_path, lambda m: None)  # a copy the test may change
    model = EdgeModel.load(copy, int8=False)
    meta = model.meta
    graphs = {k: replace(g, int8_file=None, int8_sha256=None) for k, g in meta.graphs.items()}
    meta = replace(meta, graphs=graphs)
    frame = to_frame(exported.site, interval=meta.interval, sensor_ids=meta.sensor_ids)
    windows = ex._windows_of(frame, model.normaliser, model.window, 3, seed=0)
    patch = model.window.patch
    e_fp32 = ex._check_scores(model.engine, windows, patch, model.energy)
    assert np.isfinite(e_fp32).sum() >= 6
    real_check = ex._check_scores

    def lossy(engine: object, *args: object, **kw: object) -> np.ndarray:
        out = real_check(engine, *args, **kw).copy()  # type: ignore[arg-type]
        out[np.flatnonzero(np.isfinite(out))[::2]] = np.nan  # int8 loses every other score
        return out

    monkeypatch.setattr(ex, "quantize_int8", lambda src, dst: shutil.copyfile(src, dst))
    monkeypatch.setattr(ex, "_check_scores", lossy)
    q = ex._maybe_int8(
        copy, meta, graphs, windows, patch, model.energy, e_fp32, "force", model.calibration
    )
    assert not q["offered"] and not q["recommended"], q


class _NoisyInt8:
    """A stand-in for `OnnxEngine` whose int8 sessions add seeded noise (scale `sigma`) to
    the predictor's output: an int8 graph that disagrees with detect a little."""

    sigma = 0.002  # measured: Spearman ~0.997 with detect on the site (above the old 0.99)

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> None:
        import geojepa.edge.score as es

        base = es.OnnxEngine
        sigma = cls.sigma

        class Noisy(base):  # type: ignore[valid-type,misc]
            def __init__(self, folder: object, meta: object, **kw: object) -> None:
                super().__init__(folder, meta, **kw)
                self.noisy = bool(kw.get("int8", False))
                self.rng = np.random.default_rng(0)

            def predict(self, *args: object) -> np.ndarray:
                out = super().predict(*args)
                if self.noisy:
                    out = out + self.rng.normal(0.0, sigma, out.shape).astype(out.dtype)
                return out

        monkeypatch.setattr(es, "OnnxEngine", Noisy)


def test_int8_that_disagrees_with_detect_on_the_site_leaves_fp32_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """int8 is made the gateway's default only where its scores agree with detect's on
    the site given, at the README's edge = detect target (Spearman >= 0.999); a small
    disagreement (above the old 0.99 gate on a few check windows) keeps fp32, and the
    export says why, with the measured Spearman."""
    import shutil

    import geojepa.export as ex
    from geojepa.frame import to_frame

    site = make_site(1)
    write_run(tmp_path / "run", site, seed=0)
    monkeypatch.setattr(ex, "quantize_int8", lambda src, dst: shutil.copyfile(src, dst))
    monkeypatch.setattr(ex, "INT8_MIN_SPEEDUP", 0.0)  # "faster": only agreement decides
    _NoisyInt8.install(monkeypatch)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = export_run(tmp_path / "run", tmp_path / "edge", site=site, check_windows=6)
    finally:
        torch.set_num_threads(threads)
    q = report.quantization
    n = to_frame(site, interval=pd.Timedelta("1h")).n_times
    assert not q["offered"] and not q["recommended"], q
    assert q["rows"] == n  # measured on every grid time of the site, not a few windows
    assert q["spearman"] < INT8_MIN_SPEARMAN == 0.999
    assert f"Spearman {q['spearman']:.4f} < 0.999" in q["reason"]
    assert f"on the {n} grid times of site 'synthetic'" in q["reason"]
    assert "fp32 stays the default" in q["reason"]
    assert not list((tmp_path / "edge").glob("*.int8.onnx"))
    meta = load_meta(tmp_path / "edge")
    assert meta.quantization["recommended"] is False
    model = EdgeModel.load(tmp_path / "edge")  # the gateway's default
    assert all(g.int8_file is None for g in model.meta.graphs.values())


def _site_check(exported: Exported) -> tuple[EdgeModel, SiteCheck]:
    """(the loaded fp32 bundle, a `SiteCheck` of the exported site with fp32's scores)."""
    from geojepa.edge.score import score_frame
    from geojepa.export import SiteCheck
    from geojepa.frame import to_frame

    model = EdgeModel.load(exported.out, int8=False)
    frame = to_frame(exported.site, interval=model.meta.interval, sensor_ids=model.sensor_ids)
    check = SiteCheck(
        exported.site.name,
        frame,
        model.normaliser,
        model.window,
        model.energy,
        model.calibration,
        model.density,
        score_frame(model, frame),
    )
    return model, check


def test_int8_that_agrees_with_detect_on_the_site_is_the_default(
    exported: Exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import geojepa.export as ex

    copy = _edited_bundle(exported, tmp_path, lambda m: None)
    model, check = _site_check(exported)
    graphs = {k: replace(g, int8_file=None, int8_sha256=None) for k, g in model.meta.graphs.items()}
    meta = replace(model.meta, graphs=graphs)
    windows = ex._windows_of(check.frame, model.normaliser, model.window, 3, seed=0)
    patch = model.window.patch
    e_fp32 = ex._check_scores(model.engine, windows, patch, model.energy)
    monkeypatch.setattr(ex, "quantize_int8", lambda src, dst: shutil.copyfile(src, dst))
    monkeypatch.setattr(ex, "INT8_MIN_SPEEDUP", 0.0)
    args = (copy, meta, graphs, windows, patch, model.energy, e_fp32, "auto", model.calibration)
    q = ex._maybe_int8(*args, site_check=check)
    assert q["offered"] and q["recommended"], q
    assert q["spearman"] == pytest.approx(1.0) and q["alarms_differing"] == 0
    assert q["rows"] == check.frame.n_times
    assert "agree with detect's scores" in q["reason"]
    # without a site there is nothing to measure it on: never the default
    q = ex._maybe_int8(*args)
    assert not q["offered"] and not q["recommended"] and "--site" in q["reason"], q


def test_export_without_site_or_calibration_is_a_usage_error(
    exported: Exported, tmp_path: Path
) -> None:
    from geojepa.cli import main

    with pytest.raises(SystemExit) as err:
        main(["export", str(exported.run), "--out", str(tmp_path / "x")])
    assert err.value.code == 2
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- edge == torch
def _env_with(tmp_path: Path, code: str) -> dict[str, str]:
    block = tmp_path / "blocker"
    block.mkdir(parents=True, exist_ok=True)
    (block / "sitecustomize.py").write_text(code, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(block), str(ROOT / "src")])
    return env


def _torch_free(tmp_path: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """`python -m geojepa.edge ARGS` in a process where torch cannot be imported."""
    return subprocess.run(
        [sys.executable, "-m", "geojepa.edge", *args],
        env=_env_with(tmp_path, BLOCKER),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _readings_csv(site: Site, path: Path) -> None:
    r = site.readings.sort_values(["timestamp", "sensor_id"], kind="stable")
    out = r.assign(timestamp=r["timestamp"].map(lambda t: t.isoformat()))
    out.to_csv(path, index=False)


def _alarms(table: pd.DataFrame) -> list[str | None]:
    """The alarm column of a scores CSV as read back: None where the cell is empty."""
    return [None if pd.isna(a) else str(a) for a in table["alarm"]]


def _detect_csv(exported: Exported, out: Path) -> pd.DataFrame:
    """`geojepa detect RUN SITE --out CSV` (the torch side) on the same site."""
    from geojepa.cli import main

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(SystemExit) as err:
            main(["detect", str(exported.run), str(exported.site_dir), "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert err.value.code == 0
    return pd.read_csv(out)


def test_edge_score_without_torch_matches_geojepa_detect(
    exported: Exported, tmp_path: Path
) -> None:
    readings = tmp_path / "readings.csv"
    _readings_csv(exported.site, readings)
    out = tmp_path / "scores.csv"
    proc = _torch_free(
        tmp_path, ["score", str(exported.out), str(readings), "--out", str(out), "--fp32"]
    )
    assert proc.returncode == 0, proc.stderr
    edge = pd.read_csv(out)
    ref = _detect_csv(exported, tmp_path / "detect.csv")
    assert list(edge.columns) == list(ref.columns)
    assert list(edge["timestamp"]) == list(ref["timestamp"])
    rho = spearman(edge["score"].to_numpy(), ref["score"].to_numpy())
    assert rho >= 0.999, rho
    np.testing.assert_allclose(edge["score"], ref["score"], atol=1e-4, rtol=1e-4)
    assert _alarms(edge) == _alarms(ref)
    for col in [c for c in edge.columns if c.startswith("score:")]:
        np.testing.assert_allclose(edge[col], ref[col], atol=1e-4, rtol=1e-4)


def test_watch_once_equals_score(exported: Exported, tmp_path: Path) -> None:
    readings = tmp_path / "readings.csv"
    _readings_csv(exported.site, readings)
    out = tmp_path / "scores.csv"
    score = _torch_free(tmp_path, ["score", str(exported.out), str(readings), "--out", str(out)])
    assert score.returncode == 0, score.stderr
    watch = _torch_free(tmp_path, ["watch", str(exported.out), str(readings), "--once"])
    assert watch.returncode == 0, watch.stderr
    lines = [json.loads(x) for x in watch.stdout.splitlines()]
    table = pd.read_csv(out)
    assert [x["timestamp"] for x in lines] == list(table["timestamp"])
    got = np.array([np.nan if x["score"] is None else x["score"] for x in lines])
    np.testing.assert_allclose(got, table["score"].to_numpy(), rtol=1e-6, atol=1e-9)
    assert [x["alarm"] for x in lines] == _alarms(table)
    for x in lines:
        assert (x["alarm"] in ("amber", "red")) == (x["sensors"] != [])


def test_edge_reports_bad_input_with_exit_2(exported: Exported, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,sensor_id,value\n2024-05-01T00:00:00Z,S0,abc\n", encoding="utf-8")
    proc = _torch_free(tmp_path, ["score", str(exported.out), str(bad)])
    assert proc.returncode == 2
    assert "bad.csv:2:value" in proc.stderr
    proc = _torch_free(tmp_path, ["score", str(tmp_path), str(bad)])
    assert proc.returncode == 2 and META_FILE in proc.stderr


def _one_sensor_file(site: Site, path: Path, sensor: str) -> None:
    """A long table of `site` holding the readings of `sensor` only."""
    r = site.readings[site.readings["sensor_id"] == sensor]
    _readings_csv(Site(site.name, site.sensors, r), path)


def test_a_file_lacking_model_sensors_warns_and_leaves_unscored_rows_without_alarm(
    exported: Exported, tmp_path: Path
) -> None:
    """A file holding one of the model's six sensors: scored (exit 0), with a warning that
    names the five absent; grid times nothing scored get no alarm level (an empty cell,
    JSON null), never green; `watch` says and writes the same."""
    one = tmp_path / "one.csv"
    _one_sensor_file(exported.site, one, "S1")
    out = tmp_path / "scores.csv"
    proc = _torch_free(tmp_path, ["score", str(exported.out), str(one), "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert "no reading of 5 of the model's 6 sensors (S0, S2, S3, S4, S5)" in proc.stderr
    table = pd.read_csv(out)
    unscored = table["score"].isna().to_numpy()
    assert unscored.any() and not unscored.all()
    assert f"{unscored.sum()} of {len(table)} grid times have no score" in proc.stderr
    assert table.loc[unscored, "alarm"].isna().all()
    assert table.loc[~unscored, "alarm"].isin(["green", "amber", "red"]).all()
    watch = _torch_free(tmp_path, ["watch", str(exported.out), str(one), "--once"])
    assert watch.returncode == 0, watch.stderr
    lines = [json.loads(x) for x in watch.stdout.splitlines()]
    assert [x["alarm"] for x in lines] == _alarms(table)
    assert all(x["sensors"] == [] for x in lines if x["score"] is None)
    assert "(S0, S2, S3, S4, S5)" in watch.stderr
    assert "'absent_sensors': ['S0', 'S2', 'S3', 'S4', 'S5']" in watch.stderr


def test_a_time_without_a_score_has_no_alarm_level_in_the_scores_csv(tmp_path: Path) -> None:
    """The CSV of both `geojepa detect` and `geojepa-edge score` (one writer): a NaN score
    leaves the alarm empty, also while the TARP state holds amber through it."""
    from geojepa.detect import write_scores
    from geojepa.edge.score import Scores

    scores = Scores(
        time=pd.date_range("2024-01-01", periods=4, freq="h").to_numpy(),
        score=np.array([0.1, np.nan, 5.0, np.nan]),
        sensor=np.array([[0.1], [np.nan], [5.0], [np.nan]]),
        level=np.array([0, 0, 1, 1], dtype=np.int8),
        sensor_ids=("P1",),
    )
    write_scores(scores, tmp_path / "s.csv")
    table = pd.read_csv(tmp_path / "s.csv")
    assert _alarms(table) == ["green", None, "amber", None]


def _bad_time_file(path: Path, line: int) -> None:
    """A wide file of S1, hourly, whose line `line` holds a time that cannot be read."""
    times = pd.date_range("2024-05-01", periods=line + 50, freq="h")
    rows = ["time,S1"] + [f"{t:%Y-%m-%d %H:%M:%S},{i % 7}.5" for i, t in enumerate(times)]
    rows[line - 1] = "2024-99-40 00:00:00,1.5"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_edge_bad_input_advice_names_only_what_the_gateway_can_do(
    exported: Exported, tmp_path: Path
) -> None:
    """The reader behind `geojepa ingest` advises ingest's options; geojepa-edge keeps the
    file:line and the fault, and names only its own options or fixing the file."""
    bad = tmp_path / "badtime.csv"
    _bad_time_file(bad, 5000)
    proc = _torch_free(tmp_path, ["score", str(exported.out), str(bad)])
    assert proc.returncode == 2, proc.stderr
    assert "badtime.csv:5000:time: cannot read the timestamp" in proc.stderr
    assert "write times as ISO 8601" in proc.stderr
    assert "--time-format" not in proc.stderr and "ingest" not in proc.stderr
    assert "Traceback" not in proc.stderr
    for name, text in (("empty.csv", ""), ("header.csv", "time,S1\n")):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        proc = _torch_free(tmp_path, ["score", str(exported.out), str(path)])
        assert proc.returncode == 2, proc.stderr
        assert f"{name}" in proc.stderr and "nothing to score" in proc.stderr, proc.stderr
        assert "ingest" not in proc.stderr


def test_edge_score_without_pyarrow_uses_the_streaming_reader(
    exported: Exported, tmp_path: Path
) -> None:
    readings = tmp_path / "readings.csv"
    _readings_csv(exported.site, readings)
    outs = {}
    for name, code in (
        ("arrow", BLOCKER),
        ("no-arrow", BLOCKER.replace('"yaml"}', '"yaml", "pyarrow"}')),
    ):
        out = tmp_path / f"{name}.csv"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "geojepa.edge",
                "score",
                str(exported.out),
                str(readings),
                "--out",
                str(out),
            ],
            env=_env_with(tmp_path / name, code),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        outs[name] = pd.read_csv(out)
    assert "pyarrow" in BLOCKER.replace('"yaml"}', '"yaml", "pyarrow"}')
    pd.testing.assert_frame_equal(outs["arrow"], outs["no-arrow"], rtol=1e-9, atol=1e-12)


def grow_in_pieces(
    growing: Path, text: str, cut: int, size: int, polls: list[int] | None = None
) -> Callable[[], bool]:
    """Write text[:cut] to `growing` (it may end mid-line) and return the `stop` callback
    for `watch`: each time the follower reaches the end of the file it appends the next
    `size` characters (counted in `polls`), and says stop once everything is written."""
    growing.write_text(text[:cut], encoding="utf-8")
    rest = text[cut:]
    pieces = [rest[i : i + size] for i in range(0, len(rest), size)]

    def stop() -> bool:
        if polls is not None:
            polls.append(1)
        if pieces:
            with open(growing, "a", encoding="utf-8") as fh:
                fh.write(pieces.pop(0))
            return False
        return True

    return stop


def test_watch_follows_a_growing_file(exported: Exported, tmp_path: Path) -> None:
    import io

    from geojepa.edge.score import EdgeModel, score_file
    from geojepa.edge.watch import watch

    full = tmp_path / "full.csv"
    _readings_csv(exported.site, full)
    text = full.read_text(encoding="utf-8")
    cut = len(text) * 2 // 5
    growing = tmp_path / "growing.csv"
    polls: list[int] = []
    stop = grow_in_pieces(growing, text, cut, 7001, polls)  # odd sizes: cut lines
    sink = io.StringIO()
    res = watch(exported.out, growing, sink, poll=0.0, stop=stop, int8=False)
    lines = [json.loads(x) for x in sink.getvalue().splitlines()]
    scores = score_file(exported.out, full, int8=False)
    assert res.stats.bad_lines == 0 and res.stats.late == 0  # no partial line was misread
    stride = EdgeModel.load(exported.out, int8=False).stride
    n = len(lines)
    assert len(scores.score) - stride <= n < len(scores.score)  # the open stride waits
    ts = pd.DatetimeIndex(scores.time[:n]).tz_localize("UTC").map(lambda t: t.isoformat())
    assert [x["timestamp"] for x in lines] == list(ts)
    got = np.array([np.nan if x["score"] is None else x["score"] for x in lines])
    np.testing.assert_allclose(got, scores.score[:n], rtol=1e-6, atol=1e-9)
    assert len(polls) > 3


@pytest.mark.slow
def test_export_cli_writes_a_folder_the_edge_loads(tmp_path: Path) -> None:
    from geojepa.cli import main

    site = make_site(2)
    site.save(tmp_path / "site")
    write_run(tmp_path / "run", site, seed=1)
    with pytest.raises(SystemExit) as err:
        main(
            [
                "export",
                str(tmp_path / "run"),
                "--out",
                str(tmp_path / "edge"),
                "--site",
                str(tmp_path / "site"),
                "--int8",
                "off",
            ]
        )
    assert err.value.code == 0
    meta = load_meta(tmp_path / "edge")
    assert meta.quantization["offered"] is False
    assert sorted(meta.graphs) == ["encoder", "predictor"]
