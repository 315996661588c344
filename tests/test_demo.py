"""The demo runs the whole pipeline end to end on a small simulated site.

The default demo (180 days, 200 steps) is timed by benchmarks/bench_demo.py, not here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geojepa.demo import DemoSettings, run_demo


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    run_demo(out, DemoSettings(n_sensors=8, days=45.0, steps=4, batch_size=4))
    return out


def test_demo_writes_every_product(demo_out: Path) -> None:
    run = demo_out / "run"
    for rel in ("checkpoint.pt", "scores.csv", "benchmark.json", "embeddings.npz"):
        assert (run / rel).is_file(), rel
    assert list((run / "export").glob("*.onnx")), "no ONNX graph exported"
    assert list(run.glob("forecast_*_jepa.csv")), "no GeoJEPA forecast written"
    html = (demo_out / "report.html").read_text(encoding="utf-8")
    assert "<html" in html.lower() and len(html) > 10_000
    # the demo's own products are shown, not skipped
    assert "no benchmark file" not in html
    assert "no embeddings file" not in html


def test_demo_summary_numbers_are_measured(demo_out: Path) -> None:
    summary = json.loads((demo_out / "summary.json").read_text(encoding="utf-8"))
    nums = summary["numbers"]
    auc = nums["test-period cell AUC-PR"]
    assert set(auc) >= {"geojepa", "trigger", "robust_z", "random"}
    assert all(0.0 <= v <= 1.0 for v in auc.values())
    assert nums["edge vs detect Spearman"] >= 0.999  # the fp32 graphs: the scorer's parity
    if "edge int8 vs detect Spearman" in nums:  # int8 is offered only where it agrees
        assert nums["edge int8 vs detect Spearman"] >= 0.99
    assert nums["ONNX parity max |diff|"] <= 1e-4
    assert nums["ONNX files (MB)"]["fp32"] > 0.1
    fc = next(v for k, v in nums.items() if k.startswith("forecast MAE"))
    assert {"jepa", "hyperbolic", "linear", "persistence"} <= set(fc)
    assert set(summary["seconds"]) == set(summary["cpu_seconds"])
    assert report_path_exists(summary)


def report_path_exists(summary: dict[str, object]) -> bool:
    return Path(str(summary["report"])).is_file()


def test_a_demo_folder_is_marked_and_a_rerun_replaces_it(demo_out: Path, tmp_path: Path) -> None:
    """`make demo` twice in one checkout: the second run replaces the first's output (the
    folder carries the demo's mark) instead of stopping at the existing run folder."""
    from geojepa.demo import DEMO_MARK, prepare_out

    assert (demo_out / DEMO_MARK).is_file()
    old = tmp_path / "old-demo"
    (old / "run").mkdir(parents=True)
    (old / "run" / "checkpoint.pt").write_bytes(b"x")
    (old / "report.html").write_text("old", encoding="utf-8")
    (old / DEMO_MARK).write_text("mark", encoding="utf-8")
    prepare_out(old)
    assert sorted(p.name for p in old.iterdir()) == [DEMO_MARK]
    # an earlier version's output, without the mark: its summary and folders tell it
    legacy = tmp_path / "demo-out"
    (legacy / "logger-files").mkdir(parents=True)
    (legacy / "site").mkdir()
    keys = ("report", "seconds", "cpu_seconds", "numbers")
    summary = {"out_dir": "demo-out", **{k: {} for k in keys}}
    (legacy / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    prepare_out(legacy)
    assert sorted(p.name for p in legacy.iterdir()) == [DEMO_MARK]
    fresh = tmp_path / "a" / "b"
    prepare_out(fresh)  # created, parents too
    assert (fresh / DEMO_MARK).is_file()


def test_a_folder_the_demo_did_not_write_is_refused_untouched(tmp_path: Path) -> None:
    from geojepa.demo import prepare_out
    from geojepa.errors import UsageError

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(UsageError, match="not written by the demo") as err:
        prepare_out(mine)
    assert "--out" in str(err.value)
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    # a summary.json alone (no logger-files, no site folder) does not make a demo folder
    (mine / "summary.json").write_text(
        json.dumps({k: 0 for k in ("out_dir", "report", "seconds", "cpu_seconds", "numbers")}),
        encoding="utf-8",
    )
    with pytest.raises(UsageError, match="not written by the demo"):
        prepare_out(mine)
    assert (mine / "notes.txt").is_file()
    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match="is a file"):
        prepare_out(a_file)
    assert a_file.read_text(encoding="utf-8") == "x"
