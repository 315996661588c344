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
