"""The demo: the whole pipeline on a simulated site, on CPU, ending in a report.

simulate (logger files) -> ingest (site folder) -> pretrain (tiny preset, training period
only) -> detect (JEPA energy, thresholds from the training period) -> forecast (JEPA probe
beside the classic methods) -> export (ONNX) -> edge scoring (onnxruntime, compared with
detect) -> report (one HTML page).

Guarantees: every step goes through the same library calls as the command-line verbs;
nothing after the training cutoff is seen by training or by threshold calibration; the
summary's numbers are measured in this run, on this run's test period, and printed beside
the baselines they should be read against.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from geojepa.atomic import write_text

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class DemoSettings:
    """What the demo simulates and how long it trains."""

    scenario: str = "embankment"
    n_sensors: int = 16
    days: float = 180.0
    freq: str = "1h"
    seed: int = 0
    intensity: float = 1.0
    train_fraction: float = 0.6
    steps: int = 200
    batch_size: int = 16
    preset: str = "tiny"
    forecast_horizon_days: float = 30.0
    level: str | None = None
    """window level (`WindowSpec.level`); None keeps the preset's."""
    threads: int | None = None
    """torch threads for the whole demo; None follows `geojepa.threads.cli_threads` (one
    thread on machines with <= 4 cores, ``GEOJEPA_THREADS`` overrides)."""


@dataclass
class DemoSummary:
    """Where the outputs are and the headline numbers, as measured in this run."""

    out_dir: str
    report: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"report: {self.report}"]
        for key, value in self.numbers.items():
            out.append(f"{key}: {_fmt(value)}")
        total = sum(self.seconds.values())
        steps = ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())
        out.append(f"time: {total:.0f} s ({steps})")
        cpu = sum(self.cpu_seconds.values())
        out.append(f"CPU time of this process: {cpu:.0f} s (all threads)")
        return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value)


class _Steps:
    """Times each step and logs it as it starts and ends."""

    def __init__(self, summary: DemoSummary, total: int) -> None:
        self.summary = summary
        self.total = total
        self.i = 0

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.i += 1
        log.info("[%d/%d] %s ...", self.i, self.total, name)
        t0 = time.perf_counter()
        c0 = time.process_time()
        yield
        dt = time.perf_counter() - t0
        self.summary.seconds[name] = dt
        self.summary.cpu_seconds[name] = time.process_time() - c0
        log.info("[%d/%d] %s done in %.1f s", self.i, self.total, name, dt)


def _try(name: str, fn: Callable[[], T]) -> T | None:
    """Run an optional comparison; a failure is logged and reported, never hidden."""
    try:
        return fn()
    except Exception as err:  # the demo goes on; the summary says what could not be shown
        log.warning("%s could not be computed: %s: %s", name, type(err).__name__, err)
        return None


def run_demo(out_dir: str | Path, settings: DemoSettings | None = None) -> DemoSummary:
    """Run the whole pipeline into `out_dir` and return the summary (also in summary.json).

    `out_dir` is made ready by `prepare_out`: a previous demo's output there is replaced, a
    non-empty folder the demo did not write is refused.

    Runs with ``settings.threads`` torch threads (default: the command line's policy) and
    restores the caller's setting after.
    """
    import torch

    from geojepa.threads import cli_threads

    s = settings or DemoSettings()
    before = torch.get_num_threads()
    threads = s.threads if s.threads is not None else cli_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run_demo(Path(out_dir), s)
    finally:
        torch.set_num_threads(before)


DEMO_MARK = ".geojepa-demo"
"""The file that marks a folder as a demo's output (written first, before anything else)."""


def _unmarked_demo(root: Path) -> bool:
    """A demo's output from before `DEMO_MARK`: its summary.json names this folder and holds
    the demo summary's keys, beside the demo's logger-files and site folders."""
    try:
        summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    keys = {"out_dir", "report", "seconds", "cpu_seconds", "numbers"}
    return (
        isinstance(summary, dict)
        and keys <= set(summary)
        and Path(str(summary["out_dir"])).name == root.name
        and (root / "logger-files").is_dir()
        and (root / "site").is_dir()
    )


def prepare_out(root: Path) -> None:
    """Make `root` ready for a fresh demo.

    Created when missing; kept as it is when empty; emptied when it holds `DEMO_MARK` or is
    an unmarked output of an earlier version (a previous demo's output, which a rerun
    replaces); refused with a `UsageError`, nothing touched, when it is a file or a
    non-empty folder the demo did not write.
    """
    import shutil

    from geojepa.errors import UsageError

    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} is a file, not a folder", hint="choose a folder with --out")
    if root.is_dir() and any(root.iterdir()):
        if not (root / DEMO_MARK).is_file() and not _unmarked_demo(root):
            raise UsageError(
                f"{root} is not empty and was not written by the demo; nothing in it was changed",
                hint="choose a new or empty folder with --out",
            )
        log.info("replacing the previous demo's output in %s", root)
        for child in root.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    root.mkdir(parents=True, exist_ok=True)
    write_text(
        root / DEMO_MARK,
        "Written by `geojepa demo`: a rerun into this folder replaces everything in it.\n",
    )


def _run_demo(root: Path, s: DemoSettings) -> DemoSummary:
    from geojepa.checkpoint import load_run
    from geojepa.config import load_config
    from geojepa.frame import label_mask, to_frame
    from geojepa.io import ingest
    from geojepa.simulate import simulate_site
    from geojepa.site import Site
    from geojepa.train import pretrain

    prepare_out(root)
    summary = DemoSummary(out_dir=str(root))
    steps = _Steps(summary, total=8)

    with steps.step("simulate"):
        sim = simulate_site(s.scenario, s.n_sensors, s.days, s.freq, s.seed, intensity=s.intensity)
        logger_dir = root / "logger-files"
        sim.write(logger_dir)
    with steps.step("ingest"):
        site_dir = root / "site"
        files = sorted((logger_dir / "loggers").iterdir())
        ingest(
            files,
            site_dir,
            sensors=logger_dir / "sensors.csv",
            labels=logger_dir / "events.csv",
            name=f"demo-{s.scenario}",
        )
        site = Site.load(site_dir)
    span = site.span()
    assert span is not None
    cutoff = span[0] + (span[1] - span[0]) * s.train_fraction
    cutoff = cutoff.floor("1h")
    summary.numbers["site"] = (
        f"{s.scenario}, {len(site.sensors)} sensors, {len(site.readings)} readings, "
        f"{len(site.labels)} labelled events"
    )
    summary.numbers["training period ends"] = cutoff.isoformat()

    run_dir = root / "run"
    with steps.step("pretrain"):
        config = load_config(
            None, preset_name=s.preset, seed=s.seed, steps=s.steps, batch_size=s.batch_size
        )
        if s.level is not None:
            config = replace(config, window=replace(config.window, level=s.level))
        result = pretrain([site], run_dir, config, until=cutoff, steps=s.steps, progress=True)
        if result.quality is not None:
            q = result.quality
            summary.numbers["RankMe / width"] = float(q.rankme) / float(q.dim)
        summary.numbers["final loss"] = float(result.final_loss)

    scores_csv = run_dir / "scores.csv"
    with steps.step("detect"):
        from geojepa.detect import detect_run, write_scores

        scores = detect_run(run_dir, site)
        write_scores(scores, scores_csv)
        frame = to_frame(site, sensor_ids=list(scores.sensor_ids))
        if frame.n_times != len(scores.time):
            frame = to_frame(site, interval=frame.interval, sensor_ids=list(scores.sensor_ids))
        truth = label_mask(site.labels, frame)
        density = detect_run(run_dir, site, score="density")  # `detect --score density`
        jepa = {"geojepa": scores.sensor, "geojepa_density": density.sensor}
        auc = _detection_numbers(frame, truth, jepa, cutoff, s.seed)
        summary.numbers["test-period cell AUC-PR"] = auc
        _write_benchmark(run_dir / "benchmark.json", auc, site, cutoff)
        levels = np.asarray(scores.level)[frame.index_of(cutoff) :]
        n_alarm, n_rows = int((levels > 0).sum()), len(levels)
        summary.numbers["test-period grid times in amber or red"] = (
            f"{n_alarm} of {n_rows} ({100.0 * n_alarm / max(n_rows, 1):.0f} %)"
        )

    forecasts = None
    with steps.step("forecast"):
        run = load_run(run_dir)
        forecasts = _try("forecast", lambda: _forecast(site, run, run_dir, cutoff, s, summary))

    export_dir = run_dir / "export"
    with steps.step("export"):
        from geojepa.export import export_run

        rep = export_run(run_dir, export_dir, site=site)
        summary.numbers["ONNX parity max |diff|"] = max(p.max_abs_diff for p in rep.parity)
        files = sorted(export_dir.glob("*.onnx"))
        fp32 = sum(f.stat().st_size for f in files if not f.name.endswith(".int8.onnx"))
        int8 = sum(f.stat().st_size for f in files if f.name.endswith(".int8.onnx"))
        summary.numbers["ONNX files (MB)"] = {"fp32": fp32 / 1e6, "int8": int8 / 1e6}

    with steps.step("edge scoring"):
        from geojepa.edge.score import EdgeModel, score_frame

        # the same fp32 graphs as detect's model (parity of the scorer), then what the
        # gateway loads by default (int8 where the export recommends it)
        edge = EdgeModel.load(export_dir, int8=False)
        frame = to_frame(site, interval=edge.meta.interval, sensor_ids=edge.sensor_ids)
        edge_scores = score_frame(edge, frame)
        summary.numbers["edge vs detect Spearman"] = _spearman(edge_scores.score, scores.score)
        if edge.meta.quantization.get("recommended", False):
            q_scores = score_frame(EdgeModel.load(export_dir), frame)
            summary.numbers["edge int8 vs detect Spearman"] = _spearman(
                q_scores.score, scores.score
            )

    with steps.step("report"):
        from geojepa.embed import embed_site, write_embeddings
        from geojepa.report import build_report

        emb_path = run_dir / "embeddings.npz"
        write_embeddings(embed_site(run, site), emb_path)
        out = build_report(
            run_dir,
            site_dir,
            root / "report.html",
            scores=scores_csv,
            forecasts=forecasts,
            embeddings=emb_path,
        )
        summary.report = str(out)
    write_text(root / "summary.json", json.dumps(asdict(summary), indent=2, default=str) + "\n")
    return summary


def _detection_numbers(
    frame: Any,
    truth: np.ndarray,
    jepa: dict[str, np.ndarray],
    cutoff: pd.Timestamp,
    seed: int,
) -> dict[str, float]:
    """Cell AUC-PR on the test period: GeoJEPA's scores (`jepa`: name -> per-sensor scores
    (T, C) on `frame`'s grid) beside fixed triggers, robust z and random.

    Every detector is fitted on the training rows only; labels are read only here, after
    all scores exist.
    """
    from geojepa.detectors import make_detector
    from geojepa.metrics import cell_auc_pr

    train_end = frame.index_of(cutoff)
    test = slice(train_end, frame.n_times)
    valid = frame.observed[test]
    out = {name: cell_auc_pr(sc[test], truth[test], valid) for name, sc in jepa.items()}
    for name in ("trigger", "rate_of_change", "robust_z", "iforest_raw", "random"):
        det = make_detector(name, seed=seed).fit(frame, train_end)
        sc = det.score(frame).sensor_scores
        out[name] = cell_auc_pr(sc[test], truth[test], valid)
    return out


def _write_benchmark(path: Path, auc: dict[str, float], site: Any, cutoff: pd.Timestamp) -> None:
    """The demo's detector comparison as a benchmark file the report shows."""
    test_events = site.labels[site.labels["start"] >= cutoff] if len(site.labels) else []
    data = {
        "what": "cell AUC-PR on this demo site's test period (after the training cutoff); "
        "every detector fitted on the training period only",
        "training period ends": cutoff.isoformat(),
        "labelled events in the test period": len(test_events),
        "detectors": [
            {"detector": name, "AUC-PR": value}
            for name, value in sorted(auc.items(), key=lambda kv: -kv[1])
        ],
    }
    write_text(path, json.dumps(data, indent=2) + "\n")


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3:
        return float("nan")
    ra = pd.Series(a[keep]).rank().to_numpy()
    rb = pd.Series(b[keep]).rank().to_numpy()
    return float(np.corrcoef(ra, rb)[0, 1])


def _forecast_target(site: Any) -> str | None:
    """The sensor to forecast: the settlement plate with the most readings (an automatic
    plate rather than a manually read one), else an extensometer, inclinometer or GNSS."""
    counts = site.readings["sensor_id"].value_counts()
    for kind in ("settlement", "extensometer", "inclinometer", "gnss"):
        ids = site.sensors.loc[site.sensors["kind"] == kind, "id"].astype(str)
        if len(ids):
            return str(max(ids, key=lambda i: (int(counts.get(i, 0)), -list(ids).index(i))))
    return None


def _forecast(
    site: Any,
    run: Any,
    run_dir: Path,
    cutoff: pd.Timestamp,
    s: DemoSettings,
    summary: DemoSummary,
) -> list[Path] | None:
    """Forecast one displacement-type sensor from the cutoff; errors against what happened."""
    from geojepa.atomic import atomic_path
    from geojepa.forecast.apply import forecast_site, forecast_site_jepa

    target = _forecast_target(site)
    if target is None:
        return None
    interval = pd.Timedelta("1D")
    horizon = round(pd.Timedelta(days=s.forecast_horizon_days) / interval)
    paths: list[Path] = []
    errors: dict[str, float] = {}
    actual = site.readings[site.readings["sensor_id"] == target].set_index("timestamp")["value"]
    for method in ("jepa", "hyperbolic", "consolidation", "linear", "persistence"):
        if method == "jepa":
            res = forecast_site_jepa(run, site, target, cutoff, horizon, interval=interval)
        else:
            res = forecast_site(site, target, cutoff, horizon, method, interval=interval)
        out = run_dir / f"forecast_{target}_{method}.csv"
        table = res.table.assign(sensor_id=target, method=method)
        with atomic_path(out) as tmp:
            table.to_csv(tmp, index=False)
        paths.append(out)
        pred = res.table.set_index(pd.to_datetime(res.table["timestamp"], utc=True))["prediction"]
        truth = actual.resample(interval).mean().reindex(pred.index)
        keep = truth.notna()
        if keep.any():
            errors[method] = float((pred[keep] - truth[keep]).abs().mean())
    summary.numbers[f"forecast MAE {target}, {s.forecast_horizon_days:.0f} days"] = errors
    return paths
