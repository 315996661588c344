"""MLflow tracking without a server: a stand-in client records what the tracker sends."""

from __future__ import annotations

from typing import Any

import pytest

from geojepa.tracking import MLflowTracker


class _Client:
    """Records log_batch and set_terminated calls; log_batch fails when `down`."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.batches: list[dict[str, Any]] = []
        self.terminated: list[tuple[str, str]] = []

    def log_batch(self, run_id: str, metrics: Any = (), params: Any = ()) -> None:
        if self.down:
            raise ConnectionError("tracking server unreachable")
        self.batches.append({"metrics": list(metrics), "params": list(params)})

    def set_terminated(self, run_id: str, status: str = "FINISHED") -> None:
        self.terminated.append((run_id, status))


def _tracker(client: _Client) -> MLflowTracker:
    t = MLflowTracker.__new__(MLflowTracker)  # no store: the client stands in for it
    t.run_id, t.client, t.flush_every, t._buffer, t.resumed = "r1", client, 200, [], False
    t._sent_upto = {}
    return t


def test_metrics_keep_their_step_and_finish_closes_the_run() -> None:
    client = _Client()
    t = _tracker(client)
    t.log_metrics({"val/rankme": 3.5, "val/lidar": float("nan"), "loss": 0.25}, step=200)
    t.finish("KILLED")
    (batch,) = client.batches
    assert {(m.key, m.value, m.step) for m in batch["metrics"]} == {
        ("val_rankme", 3.5, 200),
        ("loss", 0.25, 200),
    }
    assert client.terminated == [("r1", "KILLED")]


def test_a_failed_flush_does_not_leave_the_run_open() -> None:
    client = _Client(down=True)
    t = _tracker(client)
    t.log_metrics({"loss": 0.5}, step=10)
    with pytest.raises(ConnectionError):
        t.finish("FINISHED")
    # the run is still closed, as failed: the metrics that could not be sent are missing
    assert client.terminated == [("r1", "FAILED")]


def test_a_resumed_run_does_not_send_the_steps_it_sent_before_its_kill(tmp_path: Any) -> None:
    """Metrics flushed after the last checkpoint, then a kill: the resumed run re-runs those
    steps. Before, MLflow got their points twice (two values at one step in every plot)."""
    pytest.importorskip("mlflow")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    first = MLflowTracker(run_dir)
    for step in range(1, 6):
        first.log_metrics({"loss": 1.0 / step, "val/rankme": 10.0 + step}, step)
    first.flush()  # sent up to step 5; killed here (never finished)
    again = MLflowTracker(run_dir)  # resumed from the checkpoint at step 3
    assert again.resumed
    for step in range(4, 9):
        again.log_metrics({"loss": 1.0 / step, "val/rankme": 10.0 + step}, step)
    again.finish()
    for key in ("loss", "val_rankme"):
        steps = [m.step for m in again.client.get_metric_history(again.run_id, key)]
        assert sorted(steps) == list(range(1, 9))
