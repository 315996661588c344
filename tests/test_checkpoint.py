"""Checkpoints: self-describing, safe loading (weights_only), atomic writes; embeddings."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from geojepa.checkpoint import (
    CHECKPOINT_VERSION,
    SiteRecord,
    load_run,
    read_checkpoint,
    save_checkpoint,
    saved_config,
)
from geojepa.config import preset as config_preset
from geojepa.embed import embed_frame, embed_site
from geojepa.errors import InputError
from geojepa.frame import to_frame
from geojepa.train import pretrain
from geojepa.windows import Normaliser
from test_train import small_config, toy_site


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("ckpt") / "run"
    pretrain([toy_site()], run, small_config(steps=2), tracking_uri="none", progress=False)
    return run


def test_checkpoint_is_self_describing(run_dir: Path) -> None:
    state = read_checkpoint(run_dir / "checkpoint.pt")
    assert state["format"] == "geojepa-checkpoint" and state["version"] == CHECKPOINT_VERSION
    assert {"config", "sites", "model", "optimizer", "schedule", "rng", "step", "metrics"} <= set(
        state
    )
    assert state["schedule"]["total_steps"] == 2 and state["step"] == 2
    assert isinstance(state["rng"]["torch"], torch.Tensor)
    assert state["optimizer"]["state"], "optimiser moments are stored"
    site = state["sites"][0]
    assert site["normaliser"]["sensor_ids"] == ["R1", "P0", "P1", "P2", "P3", "G1"]
    run = load_run(run_dir)
    assert run.interval == pd.Timedelta("1h")
    assert run.sensors["kind"].tolist()[:2] == ["rain_gauge", "piezometer"]
    assert any(k.startswith("target_encoder.") for k in state["model"])


def test_load_refuses_pickled_code_foreign_files_and_newer_versions(
    tmp_path: Path, run_dir: Path
) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"format": "geojepa-checkpoint", "payload": Path("x")}, evil)  # a pickled class
    with pytest.raises(InputError, match="cannot read the checkpoint"):
        read_checkpoint(evil)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(InputError, match="not a GeoJEPA checkpoint"):
        read_checkpoint(other)
    state = read_checkpoint(run_dir / "checkpoint.pt")
    state["version"] = CHECKPOINT_VERSION + 1
    newer = tmp_path / "newer.pt"
    torch.save(state, newer)
    with pytest.raises(InputError, match="newer"):
        read_checkpoint(newer)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(InputError, match="damaged"):
        read_checkpoint(garbage)


def test_save_is_atomic(tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = load_run(run_dir)
    target = tmp_path / "checkpoint.pt"
    kw = {
        "config": run.config,
        "model": run.model,
        "optimizer": None,
        "step": 1,
        "total_steps": 2,
        "sites": run.sites,
    }
    save_checkpoint(target, **kw)  # type: ignore[arg-type]
    before = hashlib.sha256(target.read_bytes()).hexdigest()

    def broken_save(obj: object, f: object) -> None:
        Path(str(f)).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(target, **{**kw, "step": 2})  # type: ignore[arg-type]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_site_record_round_trip_keeps_missing_positions() -> None:
    site = toy_site()
    sensors = site.sensors.copy()
    sensors.loc[0, "x"] = np.nan
    frame = to_frame(site)
    rec = SiteRecord(
        name="toy",
        sensors=sensors,
        normaliser=Normaliser.fit(frame),
        interval=frame.interval,
        train_end=pd.Timestamp("2024-01-10", tz="UTC"),
        grid_start=pd.Timestamp("2024-01-01", tz="UTC"),
        n_windows=7,
    )
    back = SiteRecord.from_dict(rec.to_dict())
    pd.testing.assert_frame_equal(back.sensors, sensors)
    assert back.normaliser.to_dict() == rec.normaliser.to_dict()
    assert (back.interval, back.train_end, back.n_windows) == (rec.interval, rec.train_end, 7)


def test_embeddings_use_the_target_encoder_and_any_sensor_count(run_dir: Path) -> None:
    run = load_run(run_dir)
    site = toy_site()
    emb = embed_site(run, site)
    n = len(emb)
    assert emb.vectors.shape == (n, 32) and emb.per_sensor.shape == (n, 6, 32)
    assert np.all(np.isfinite(emb.vectors)) and emb.sensor_observed.all()
    # the same windows through the target encoder directly
    from geojepa.masking import full_batch
    from geojepa.windows import WindowDataset

    frame = to_frame(site, interval=run.interval)
    ds = WindowDataset(frame, run.normaliser, run.config.window)
    with torch.no_grad():
        direct = run.model.pooled(full_batch([ds[0], ds[1]], run.config.window.patch))
    assert np.allclose(emb.vectors[:2], direct.numpy(), atol=1e-5)
    with torch.no_grad():
        tokens = run.model.embed(full_batch([ds[0]], run.config.window.patch))  # (1, C, P, D)
    assert np.allclose(emb.last[0], tokens[0, :, -1].numpy(), atol=1e-5)  # freshest patch
    # perturbing the context encoder alone changes nothing: embeddings come from the target
    with torch.no_grad():
        for p in run.model.encoder.parameters():
            p.add_(1.0)
    assert np.allclose(embed_site(run, site).vectors, emb.vectors, atol=1e-6)
    # an unseen site with one sensor and one with 12 sensors run through the same weights
    one = site.select(["P0"])
    assert embed_frame(run, to_frame(one, interval=run.interval)).vectors.shape[1] == 32
    big = toy_site(seed=5, n_piezo=10)
    big_emb = embed_frame(run, to_frame(big, interval=run.interval), stride=8)
    assert big_emb.per_sensor.shape[1:] == (12, 32) and len(big_emb) > n


def test_a_checkpoint_saved_before_cell_flag_keeps_the_observed_flag(
    tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A missing key takes today's preset value: were the presets ever to flag missing
    # cells, a model trained with the observed flag would be fed the other one.
    state = read_checkpoint(run_dir / "checkpoint.pt")
    assert state["config"]["model"]["cell_flag"] == "observed"  # what runs save
    del state["config"]["model"]["cell_flag"]
    old = tmp_path / "old"
    old.mkdir()
    torch.save(state, old / "checkpoint.pt")
    assert saved_config(state, old / "checkpoint.pt").model.cell_flag == "observed"
    import geojepa.models as models

    with monkeypatch.context() as m:  # were the presets to change, the run keeps its flag
        m.setitem(models.PRESETS, "tiny", replace(models.PRESETS["tiny"], cell_flag="missing"))
        assert config_preset("tiny").model.cell_flag == "missing"
        run = load_run(old)
    assert run.config.model.cell_flag == "observed"
    # the flag reaches the embeddings: the same weights read with the other flag differ
    state["config"]["model"]["cell_flag"] = "missing"
    other = tmp_path / "other"
    other.mkdir()
    torch.save(state, other / "checkpoint.pt")
    flipped = load_run(other)
    assert flipped.config.model.cell_flag == "missing"
    frame = to_frame(toy_site(), interval=run.interval)
    a = embed_frame(run, frame).vectors
    b = embed_frame(flipped, frame).vectors
    assert a.shape == b.shape and not np.allclose(a, b)
