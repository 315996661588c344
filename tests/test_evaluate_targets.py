"""The targets table reads a summary only: ratio to the best baseline over the same groups,
subtle kinds per kind, false alarms against trigger levels; missing figures are "not
measured", never "met"."""

from __future__ import annotations

from typing import Any

from geojepa.evaluate.targets import baselines_of, measure_targets, targets_markdown


def _row(det: str, kind: str, sc: str, auc: float, fa: float = 1.0) -> dict[str, Any]:
    return {
        "scenario": sc,
        "intensity": 1.0,
        "detector": det,
        "kind": kind,
        "auc_pr_mean": auc,
        "fa_per_month_at_recall_mean": fa,
    }


def test_ratio_subtle_kinds_and_false_alarms() -> None:
    summary = [
        _row("geojepa_fused", "all", "a", 0.55, fa=1.0),
        _row("geojepa_fused", "all", "b", 0.4, fa=3.0),
        _row("trigger", "all", "a", 0.3, fa=4.0),
        _row("trigger", "all", "b", 0.5, fa=4.0),
        _row("robust_z", "all", "a", 0.2),
        _row("robust_z", "all", "b", 0.2),
        _row("geojepa", "all", "a", 0.99),  # another GeoJEPA form: not a baseline
        _row("random", "all", "a", 0.9),  # not a baseline either
        _row("geojepa_fused", "drift", "a", 0.2),
        _row("robust_z", "drift", "a", 0.3),
        _row("trigger", "drift", "a", 0.1),
        _row("geojepa_fused", "seepage_change", "b", 0.5),
        _row("trigger", "seepage_change", "b", 0.4),
    ]
    dets = ["trigger", "robust_z", "geojepa", "geojepa_fused", "random"]
    assert baselines_of(dets) == ["trigger", "robust_z"]
    rows = {r.target: r for r in measure_targets(summary, "geojepa_fused", dets)}
    ratio = rows["mean AUC-PR >= 1.25x the best baseline"]
    assert (ratio.reference_name, ratio.reference) == ("trigger", 0.4)
    assert abs(ratio.headline - 0.475) < 1e-12
    assert ratio.met is False  # 0.475 < 1.25 * 0.4
    drift = rows["ahead of every baseline on drift"]
    assert drift.reference_name == "robust_z" and drift.met is False
    assert rows["ahead of every baseline on seepage_change"].met is True
    assert rows["ahead of every baseline on accelerating_creep"].met is None
    fa = rows["false alarms / month <= trigger levels' at equal recall"]
    assert (fa.headline, fa.reference, fa.met) == (2.0, 4.0, True)
    table = targets_markdown(list(rows.values()), "geojepa_fused")
    assert "| not measured |" in table and "1.19x" in table and "0.50x" in table
