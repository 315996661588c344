"""The issue's detection targets, measured from a benchmark summary (`summarise` rows).

- AUC-PR ratio: the headline detector's mean AUC-PR over every (scenario, intensity)
  group (all event kinds) divided by the best baseline's mean over the same groups.
- Subtle kinds (drift, seepage change, accelerating creep): the headline's AUC-PR per kind
  (mean over the groups where the kind occurs) against the best baseline on that kind.
- False alarms per month at equal event recall: the headline's ``fa_per_month_at_recall``
  against the fixed trigger levels', mean over groups.

A *baseline* is any detector that is not a GeoJEPA form (name starting ``geojepa``), not
an ablation and not the random score. Every figure is read from the summary only: nothing
here sees labels or changes a score. Guarantees: a target is reported as "not measured"
(never as met) when a figure it needs is missing; ratios use the same groups for both
sides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geojepa.evaluate.protocol import ALL

__all__ = ["SUBTLE_KINDS", "TargetRow", "baselines_of", "measure_targets", "targets_markdown"]

SUBTLE_KINDS: tuple[str, ...] = ("drift", "seepage_change", "accelerating_creep")


@dataclass(frozen=True)
class TargetRow:
    """One target: what it asks, the headline's figure, the reference's, met or not."""

    target: str
    headline: float
    reference: float
    reference_name: str
    met: bool | None  # None: not measured

    def verdict(self) -> str:
        return "not measured" if self.met is None else ("met" if self.met else "missed")


def baselines_of(detectors: Sequence[str]) -> list[str]:
    """The baselines among `detectors` (not GeoJEPA, not an ablation, not random)."""
    return [
        d
        for d in detectors
        if not d.startswith("geojepa") and not d.startswith("ablation/") and d != "random"
    ]


def _mean_over_groups(
    summary: Sequence[dict[str, Any]], detector: str, kind: str, metric: str
) -> dict[tuple[str, float], float]:
    out = {}
    for r in summary:
        if r["detector"] == detector and r["kind"] == kind:
            v = r.get(f"{metric}_mean")
            if isinstance(v, float) and math.isfinite(v):
                out[(str(r["scenario"]), float(r["intensity"]))] = v
    return out


def _paired_mean(a: dict[Any, float], b: dict[Any, float]) -> tuple[float, float]:
    keys = sorted(set(a) & set(b))
    if not keys:
        return float("nan"), float("nan")
    return float(np.mean([a[k] for k in keys])), float(np.mean([b[k] for k in keys]))


def _best_baseline(
    rows: Sequence[dict[str, Any]], headline: str, bases: Sequence[str], kind: str
) -> tuple[str, float, float]:
    """The baseline with the highest mean AUC-PR on `kind` over the groups where the headline
    also has a value: (name, its mean, the headline's mean over the same groups)."""
    head = _mean_over_groups(rows, headline, kind, "auc_pr")
    name, ref_v, head_v = "", float("nan"), float("nan")
    for b in bases:
        h, ref = _paired_mean(head, _mean_over_groups(rows, b, kind, "auc_pr"))
        if math.isfinite(ref) and not ref <= ref_v:
            name, ref_v, head_v = b, ref, h
    return name, ref_v, head_v


def measure_targets(
    summary: Sequence[dict[str, Any]],
    headline: str,
    detectors: Sequence[str],
    ratio_target: float = 1.25,
    intensity: float | None = None,
) -> list[TargetRow]:
    """The targets for `headline` against the baselines among `detectors`.

    `intensity`: only groups at that intensity (None: all groups).
    """
    rows = [r for r in summary if intensity is None or float(r["intensity"]) == intensity]
    bases = baselines_of(detectors)
    out: list[TargetRow] = []
    best_name, best_ref, best_head = _best_baseline(rows, headline, bases, ALL)
    ratio_ok = None
    if math.isfinite(best_ref) and math.isfinite(best_head) and best_ref > 0:
        ratio_ok = best_head >= ratio_target * best_ref
    out.append(
        TargetRow(
            f"mean AUC-PR >= {ratio_target:g}x the best baseline",
            best_head,
            best_ref,
            best_name,
            ratio_ok,
        )
    )
    for kind in SUBTLE_KINDS:
        ref_name, ref_v, head_v = _best_baseline(rows, headline, bases, kind)
        met = None if not (math.isfinite(ref_v) and math.isfinite(head_v)) else head_v > ref_v
        out.append(TargetRow(f"ahead of every baseline on {kind}", head_v, ref_v, ref_name, met))
    if "trigger" in bases:
        h, ref = _paired_mean(
            _mean_over_groups(rows, headline, ALL, "fa_per_month_at_recall"),
            _mean_over_groups(rows, "trigger", ALL, "fa_per_month_at_recall"),
        )
        met = None if not (math.isfinite(h) and math.isfinite(ref)) else h <= ref
        out.append(
            TargetRow(
                "false alarms / month <= trigger levels' at equal recall", h, ref, "trigger", met
            )
        )
    return out


def targets_markdown(rows: Sequence[TargetRow], headline: str) -> str:
    """A Markdown table of `rows` (figures to 3 decimals; ratio for the AUC-PR target)."""
    lines = [
        f"| target | `{headline}` | best baseline | ratio | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = (
            f"{r.headline / r.reference:.2f}x"
            if math.isfinite(r.headline) and math.isfinite(r.reference) and r.reference > 0
            else "–"
        )
        h = f"{r.headline:.3f}" if math.isfinite(r.headline) else "–"
        ref = f"{r.reference:.3f} (`{r.reference_name}`)" if r.reference_name else "–"
        lines.append(f"| {r.target} | {h} | {ref} | {ratio} | {r.verdict()} |")
    return "\n".join(lines) + "\n"
