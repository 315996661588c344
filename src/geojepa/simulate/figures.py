"""Overview figure of a simulated site: drivers, a few sensors per kind, events shaded.

Guarantees: uses matplotlib's non-interactive Agg backend (no display needed), writes
the PNG atomically, and shades every labelled event that touches a plotted sensor
(sensor faults in orange, geotechnical events in purple).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from geojepa.atomic import atomic_path
from geojepa.simulate.api import SimulatedSite
from geojepa.site import MONITORING_KINDS

KIND_ORDER: tuple[str, ...] = MONITORING_KINDS
COLOURS = {"sensor_fault": "tab:orange", "geotechnical": "tab:purple"}


def plot_simulated_site(
    sim: SimulatedSite, path: str | Path, per_kind: int = 3, dpi: int = 110
) -> Path:
    """Save a multi-panel PNG of `sim` to `path` and return the path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    site = sim.site
    sensors = site.sensors.set_index("id")
    kinds = [k for k in KIND_ORDER if (sensors["kind"] == k).any()]
    labels = site.labels
    # pick sensors with events first so the shading shows something
    event_ids: list[str] = []
    for s in labels["sensors"]:
        event_ids += [x for x in str(s).split(";") if x]
    n_panels = 2 + len(kinds)
    fig, axes = plt.subplots(n_panels, 1, figsize=(11, 2.0 * n_panels), sharex=True)
    drv = sim.drivers
    t = pd.DatetimeIndex(drv.index).tz_localize(None)
    ax = axes[0]
    step_h = (t[1] - t[0]).total_seconds() / 3600.0 if len(t) > 1 else 1.0
    daily = drv["rain"].resample("1D").sum()
    ax.bar(pd.DatetimeIndex(daily.index).tz_localize(None), daily.to_numpy(), width=1.0)
    ax.set_ylabel("rain\nmm/day")
    ax2 = ax.twinx()
    ax2.plot(t, drv["temperature"].to_numpy(), color="tab:red", lw=0.4, alpha=0.7)
    ax2.set_ylabel("air °C", color="tab:red")
    ax = axes[1]
    if "reservoir" in drv:
        ax.plot(t, drv["reservoir"].to_numpy(), color="tab:blue")
        ax.set_ylabel("reservoir\nm a.s.l.")
    elif "fill" in drv:
        ax.plot(t, drv["fill"].to_numpy(), color="tab:brown")
        ax.set_ylabel("fill height\nm")
    else:
        ax.plot(t, drv["pressure"].to_numpy(), color="tab:gray", lw=0.6)
        ax.set_ylabel("barometric\nkPa")
    readings = site.readings
    for ax, kind in zip(axes[2:], kinds, strict=True):
        ids = list(sensors.index[sensors["kind"] == kind])
        chosen = [i for i in ids if i in event_ids][:per_kind]
        chosen += [i for i in ids if i not in chosen][: per_kind - len(chosen)]
        for sid in sorted(chosen):
            r = readings[readings["sensor_id"] == sid]
            tt = r["timestamp"].dt.tz_localize(None).to_numpy()
            sparse = len(r) < 0.2 * len(t)
            ax.plot(
                tt,
                r["value"].to_numpy(),
                lw=0.7,
                marker="o" if sparse else None,
                ms=2.5,
                label=f"{sid} ({sensors.loc[sid, 'group']})",
            )
        _shade(ax, labels, chosen)
        unit = str(sensors.loc[ids[0], "unit"])
        ax.set_ylabel(f"{kind.replace('_', ' ')}\n{unit}")
        ax.legend(loc="upper left", fontsize=7, ncol=len(chosen), frameon=False)
    scenario = str(sim.params.get("scenario", ""))
    fam = sim.truth.get("family", {})
    fig.suptitle(
        f"simulated {scenario} site, seed {sim.params.get('seed')}: {fam.get('soil', '')} soil, "
        f"{fam.get('climate', '')} climate, {len(sensors)} sensors, {step_h:g} h grid "
        f"(orange: sensor faults, purple: geotechnical events)",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", metadata={"Software": None})
        tmp.chmod(0o644)
    plt.close(fig)
    return out


def _shade(ax: object, labels: pd.DataFrame, ids: list[str]) -> None:
    starts = pd.DatetimeIndex(labels["start"]).tz_localize(None)
    ends = pd.DatetimeIndex(labels["end"]).tz_localize(None)
    cats = labels["category"].astype(str).tolist()
    sens = labels["sensors"].astype(str).tolist()
    if len(labels) == 0:
        return
    lo, hi = ax.get_xlim()  # type: ignore[attr-defined]
    least = pd.Timedelta(days=max(hi - lo, 1.0) / 250.0)  # keep one-sample events visible
    for a, b, cat, s in zip(starts, ends, cats, sens, strict=True):
        if not set(s.split(";")) & set(ids):
            continue
        if b - a < least:
            mid = a + (b - a) / 2
            a, b = mid - least / 2, mid + least / 2
        ax.axvspan(a, b, color=COLOURS.get(cat, "gray"), alpha=0.25, lw=0)  # type: ignore[attr-defined]
