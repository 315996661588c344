"""Experiment tracking: metrics as JSON lines in the run folder, and MLflow.

- `JsonlLog` appends one JSON object per line to ``RUN/metrics.jsonl`` and, on resume,
  drops lines from steps after the checkpoint (so a resumed run's file equals an
  uninterrupted run's, apart from wall-clock fields).
- `MLflowTracker` logs params, metrics per step and artifacts through `MlflowClient` (no
  global active run). Its default store is MLflow's embedded SQLite database beside the run
  folders (``sqlite:///<runs parent>/mlflow.db``), artifacts in ``<runs parent>/mlartifacts``;
  `--tracking-uri` points at a shared server instead. ``none`` turns tracking off.
- `NullTracker` does nothing (tracking off, or ranks other than 0 under DDP).

Guarantees: tracking never changes training; metrics are buffered and flushed at least at
every `flush()`/`finish()`; `finish()` closes the MLflow run even when its last metrics
cannot be sent (as FAILED, the error raised); a resumed run continues the same MLflow run
(its id is kept in ``RUN/mlflow_run.json``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from geojepa.atomic import write_text

log = logging.getLogger(__name__)

EXPERIMENT = "geojepa"
DISABLED = ("none", "off", "")


def default_tracking_uri(run_dir: str | Path) -> str:
    """MLflow's embedded SQLite store beside the run folders."""
    parent = Path(run_dir).resolve().parent
    return f"sqlite:///{parent / 'mlflow.db'}"


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mapping -> {"a.b.c": "value"} with values as text (MLflow params)."""
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, list | tuple) else str(v)
    return out


class Tracker(Protocol):
    """Where a run reports to. Metrics are floats keyed by name, at a training step."""

    def log_params(self, params: Mapping[str, Any]) -> None: ...
    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...
    def log_artifact(self, path: str | Path) -> None: ...
    def flush(self) -> None: ...
    def finish(self, status: str = "FINISHED") -> None: ...


class NullTracker:
    """Tracking turned off."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        return None

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        return None

    def log_artifact(self, path: str | Path) -> None:
        return None

    def flush(self) -> None:
        return None

    def finish(self, status: str = "FINISHED") -> None:
        return None


class MLflowTracker:
    """One MLflow run per run folder; reopened on resume."""

    def __init__(
        self,
        run_dir: str | Path,
        tracking_uri: str | None = None,
        experiment: str = EXPERIMENT,
        flush_every: int = 200,
    ) -> None:
        from mlflow.tracking import MlflowClient

        self.run_dir = Path(run_dir)
        self.uri = tracking_uri or default_tracking_uri(run_dir)
        self.flush_every = flush_every
        self._buffer: list[Any] = []
        self.client = MlflowClient(tracking_uri=self.uri)
        id_file = self.run_dir / "mlflow_run.json"
        run_id: str | None = None
        if id_file.is_file():
            saved = json.loads(id_file.read_text(encoding="utf-8"))
            if saved.get("tracking_uri") == self.uri:
                run_id = str(saved["run_id"])
        # on resume: each metric's last step already in the store. A run killed after
        # sending metrics past its last checkpoint re-runs those steps; their points are
        # not sent twice (MLflow keeps every point it is given)
        self._sent_upto: dict[str, int] = {}
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            self.resumed = True
            for key in self.client.get_run(run_id).data.metrics:
                steps = [m.step for m in self.client.get_metric_history(run_id, key)]
                self._sent_upto[key] = max(steps, default=-1)
        else:
            exp = self.client.get_experiment_by_name(experiment)
            if exp is None:
                location = None
                if self.uri.startswith("sqlite:///") and tracking_uri is None:
                    location = (self.run_dir.resolve().parent / "mlartifacts").as_uri()
                exp_id = self.client.create_experiment(experiment, artifact_location=location)
            else:
                exp_id = exp.experiment_id
            run = self.client.create_run(exp_id, run_name=self.run_dir.name)
            run_id = run.info.run_id
            self.resumed = False
            write_text(id_file, json.dumps({"tracking_uri": self.uri, "run_id": run_id}) + "\n")
        self.run_id = run_id
        log.info("MLflow run %s at %s", self.run_id, self.uri)

    def log_params(self, params: Mapping[str, Any]) -> None:
        if self.resumed:  # already logged; MLflow refuses to change a param
            return
        from mlflow.entities import Param

        items = [Param(k, v[:6000]) for k, v in flatten(params).items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        for k, v in metrics.items():
            key = k.replace("/", "_")
            if int(step) <= self._sent_upto.get(key, -1):
                continue  # sent before the run was killed and resumed
            if isinstance(v, int | float) and math.isfinite(float(v)):
                self._buffer.append(Metric(key, float(v), now, int(step)))
        if len(self._buffer) >= self.flush_every:
            self.flush()

    def log_artifact(self, path: str | Path) -> None:
        self.flush()
        self.client.log_artifact(self.run_id, str(path))

    def flush(self) -> None:
        while self._buffer:
            chunk, self._buffer = self._buffer[:1000], self._buffer[1000:]
            self.client.log_batch(self.run_id, metrics=chunk)

    def finish(self, status: str = "FINISHED") -> None:
        """Send the buffered metrics and close the run; a run whose metrics could not be
        sent is still closed, as FAILED, and the error raised."""
        try:
            self.flush()
        except Exception:
            try:
                self.client.set_terminated(self.run_id, status="FAILED")
            except Exception as err:  # the store is gone: the flush error says why
                log.warning("MLflow run %s left open: %s", self.run_id, err)
            raise
        self.client.set_terminated(self.run_id, status=status)


def make_tracker(run_dir: str | Path, tracking_uri: str | None, enabled: bool = True) -> Tracker:
    """The tracker for a run: MLflow unless disabled (``none``) or not on rank 0."""
    if not enabled or (tracking_uri is not None and tracking_uri.strip().lower() in DISABLED):
        return NullTracker()
    return MLflowTracker(run_dir, tracking_uri)


class JsonlLog:
    """Append-only JSON-lines metrics file; `truncate_after(step)` on resume."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def truncate_after(self, step: int) -> int:
        """Keep only records with ``step <= step``; return how many were dropped."""
        if not self.path.is_file():
            return 0
        keep, dropped = [], 0
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill: drop it, counted
                dropped += 1
                continue
            if int(rec.get("step", 0)) <= step:
                keep.append(line)
            else:
                dropped += 1
        write_text(self.path, "".join(x + "\n" for x in keep))
        if dropped:
            log.info("metrics.jsonl: dropped %d records after step %d", dropped, step)
        return dropped

    def write(self, record: Mapping[str, Any]) -> None:
        clean = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in record.items()
        }
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(clean, sort_keys=True) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [
            json.loads(x) for x in self.path.read_text(encoding="utf-8").splitlines() if x.strip()
        ]
