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
