"""What `geojepa info` says about a site.

`site_summary` gathers, per sensor: id, kind, unit, position, number of readings, first
and last time, missing fraction on the site's grid, non-``ok`` quality flags; and for the
site: grid interval, span, flag counts and the labels. `render_summary` prints it.

Guarantees: read-only (the site is not changed); every number comes from the stored
readings; the missing fraction of a sensor counts grid cells between the site's first and
last time without a usable reading (flags ``missing``/``non_finite`` are not usable), so a
daily GNSS sensor on a 10-minute grid shows what it is: mostly missing; beside it, the
sensor's own reading interval (``step``) and ``gaps``, the fraction of its own grid cells
between its first and last reading without a usable one (the holes in its record).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from geojepa.frame import infer_interval
from geojepa.io.result import count_quality
from geojepa.site import Quality, Site


def site_summary(site: Site) -> dict[str, Any]:
    """A JSON-ready description of `site` (see the module docstring)."""
    r = site.readings
    out: dict[str, Any] = {
        "name": site.name,
        "timezone_of_origin": site.meta.get("timezone", "UTC"),
        "n_sensors": len(site.sensors),
        "n_readings": len(r),
        "ingests": len(site.meta.get("ingests", [])),
    }
    if r.empty:
        out |= {"first": None, "last": None, "interval": None, "quality": {}, "sensors": []}
        out["sensors"] = [_sensor_row(s, None, None) for _, s in site.sensors.iterrows()]
        out["labels"] = _labels(site)
        return out
    step = infer_interval(r)
    t_ns = r["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    t0, t1 = int(t_ns.min()), int(t_ns.max())
    n_cells = (t1 - t0) // step.value + 1
    codes, ids = pd.factorize(r["sensor_id"].astype("str"))
    usable = ~r["quality"].isin([Quality.MISSING.value, Quality.NON_FINITE.value]).to_numpy(
        dtype=bool
    )
    usable &= np.isfinite(r["value"].to_numpy(dtype=np.float64))
    cell = (t_ns - t0) // step.value
    per: dict[str, dict[str, Any]] = {}
    q_str = r["quality"].astype("str").to_numpy()
    for k, sid in enumerate(ids):
        sel = codes == k
        ts = t_ns[sel]
        observed = len(np.unique(cell[sel & usable]))
        q = pd.Series(q_str[sel]).value_counts()
        own, gaps = _own_gaps(t_ns[sel & usable])
        per[str(sid)] = {
            "readings": int(sel.sum()),
            "first": pd.Timestamp(int(ts.min()), tz="UTC").isoformat(),
            "last": pd.Timestamp(int(ts.max()), tz="UTC").isoformat(),
            "missing_fraction": round(1.0 - observed / n_cells, 4),
            "interval": None if own is None else str(own),
            "gap_fraction": gaps,
            "flags": {str(f): int(n) for f, n in q.items() if f != Quality.OK.value},
        }
    out |= {
        "first": pd.Timestamp(t0, tz="UTC").isoformat(),
        "last": pd.Timestamp(t1, tz="UTC").isoformat(),
        "interval": str(step),
        "grid_steps": int(n_cells),
        "quality": count_quality(r),
        "sensors": [
            _sensor_row(s, per.get(str(s["id"])), n_cells) for _, s in site.sensors.iterrows()
        ],
        "labels": _labels(site),
    }
    return out


def _own_gaps(usable: np.ndarray) -> tuple[pd.Timedelta | None, float | None]:
    """A sensor's own reading interval (the median spacing of its usable readings, rounded
    as the site grid's) and the fraction of its own grid cells between its first and last
    usable reading without one: the holes in its record, whatever the site's span or
    finest grid. usable (n,) int64 ns."""
    if usable.size < 2:
        return None, None
    frame = pd.DataFrame({"sensor_id": "s", "timestamp": pd.to_datetime(usable, utc=True)})
    step = infer_interval(frame)
    t0 = int(usable.min())
    n = (int(usable.max()) - t0) // step.value + 1
    hit = len(np.unique((usable - t0) // step.value))
    return step, round(max(0.0, 1.0 - hit / n), 4)


def _sensor_row(s: pd.Series, stats: dict[str, Any] | None, n_cells: int | None) -> dict[str, Any]:
    def num(v: object) -> float | None:
        f = float(v)  # type: ignore[arg-type]
        return None if np.isnan(f) else f

    row: dict[str, Any] = {
        "id": str(s["id"]),
        "kind": str(s["kind"]),
        "unit": str(s["unit"]),
        "x": num(s["x"]),
        "y": num(s["y"]),
        "z": num(s["z"]),
        "group": str(s["group"]),
    }
    row |= stats or {
        "readings": 0,
        "first": None,
        "last": None,
        "missing_fraction": 1.0,
        "interval": None,
        "gap_fraction": None,
        "flags": {},
    }
    return row


def _labels(site: Site) -> list[dict[str, str]]:
    return [
        {
            "start": pd.Timestamp(lab["start"]).isoformat(),
            "end": pd.Timestamp(lab["end"]).isoformat(),
            "kind": str(lab["kind"]),
            "sensors": str(lab["sensors"]),
            "category": str(lab["category"]),
        }
        for _, lab in site.labels.iterrows()
    ]


def render_summary(s: dict[str, Any]) -> str:
    """Plain-text rendering of `site_summary` for a terminal."""
    lines = [
        f"site {s['name']}: {s['n_sensors']} sensors, {s['n_readings']} readings, "
        f"{s['ingests']} ingests (times stored in UTC; origin {s['timezone_of_origin']})",
    ]
    if s.get("first"):
        lines.append(
            f"span {s['first']} .. {s['last']}, grid interval {s['interval']} "
            f"({s['grid_steps']} steps)"
        )
        flags = ", ".join(f"{k} {v}" for k, v in s["quality"].items())
        lines.append(f"quality flags: {flags}")
    lines.append("")
    header = (
        "id", "kind", "unit", "x", "y", "z", "readings", "first", "last", "missing", "step",
        "gaps", "flags",
    )  # fmt: skip
    rows = []
    for r in s["sensors"]:

        def f(v: float | None) -> str:
            return "" if v is None else f"{v:g}"

        flags = " ".join(f"{k}:{v}" for k, v in r["flags"].items())
        rows.append(
            (
                r["id"], r["kind"], r["unit"], f(r["x"]), f(r["y"]), f(r["z"]),
                str(r["readings"]), (r["first"] or "")[:19], (r["last"] or "")[:19],
                f"{100 * r['missing_fraction']:.1f}%", r.get("interval") or "",
                "" if r.get("gap_fraction") is None else f"{100 * r['gap_fraction']:.1f}%",
                flags,
            )
        )  # fmt: skip
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    labels = s.get("labels", [])
    lines.append("")
    lines.append(f"labels: {len(labels)}")
    for lab in labels[:50]:
        lines.append(
            f"  {lab['start']} .. {lab['end']}  {lab['kind']}"
            + (f"  sensors={lab['sensors']}" if lab["sensors"] else "")
        )
    if len(labels) > 50:
        lines.append(f"  ... {len(labels) - 50} more (use --json)")
    return "\n".join(lines)
