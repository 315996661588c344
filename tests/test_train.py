"""The pretraining loop: schedules, exact resume, --until, collapse stop, tracking, sites."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from geojepa.checkpoint import load_run, read_checkpoint
from geojepa.config import RunConfig, preset
from geojepa.errors import CollapseError, InputError
from geojepa.site import Sensor, Site, sensors_frame
from geojepa.train import Schedule, TrainResult, batch_plan, pretrain


def toy_site(
    seed: int = 0,
    n_piezo: int = 4,
    days: int = 20,
    freq: str = "1h",
    name: str = "toy",
    start: str = "2024-01-01",
) -> Site:
    """Rain gauge, piezometers responding to rain with lags, one creeping GNSS point."""
    rng = np.random.default_rng(seed)
    n = int(pd.Timedelta(f"{days}D") / pd.Timedelta(freq))
    times = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    rain = np.where(rng.random(n) < 0.03, rng.gamma(2.0, 3.0, n), 0.0)
    kernel = np.exp(-np.arange(48) / 12.0)
    sensors = [Sensor("R1", "rain_gauge", "mm", 0.0, 0.0, 0.0, "")]
    cols = {"R1": rain}
    for i in range(n_piezo):
        resp = np.convolve(rain, kernel * (0.5 + 0.2 * i))[:n]
        cols[f"P{i}"] = 50 + 5 * i + resp + rng.normal(0, 0.2, n)
        sensors.append(Sensor(f"P{i}", "piezometer", "kPa", 10.0 * i, 5.0, -5.0 - i, f"BH{i // 2}"))
    cols["G1"] = np.cumsum(0.01 + 0.002 * np.convolve(rain, kernel)[:n]) + rng.normal(0, 0.05, n)
    sensors.append(Sensor("G1", "gnss", "mm", 20.0, 20.0, 0.0, ""))
    parts = []
    for sid, v in cols.items():
        keep = rng.random(n) > 0.05
        parts.append(
            pd.DataFrame(
                {
                    "timestamp": times[keep],
                    "sensor_id": sid,
                    "value": v[keep],
                    "quality": "ok",
                    "source": "toy.csv",
                }
            )
        )
    return Site(
        name=name,
        sensors=sensors_frame(sensors),
        readings=pd.concat(parts, ignore_index=True),
    )


def small_config(steps: int = 6, **train: object) -> RunConfig:
    """A very small model and window so loop tests take seconds."""
    cfg = preset("tiny")
    kw: dict[str, object] = {
        "steps": steps,
        "batch_size": 4,
        "eval_every": 3,
        "log_every": 1,
        "checkpoint_every": 3,
        "val_windows": 6,
        "lidar_views": 2,
        "threads": 1,
    }
    kw.update(train)
    return replace(
        cfg,
        method={**cfg.method, "sigreg_weight": 0.0},  # batch-level: DDP shares differ with it
        model=replace(
            cfg.model, dim=32, depth=1, heads=2, predictor_dim=16, predictor_depth=1, patch=8
        ),
        window=replace(cfg.window, length=32, stride=16, patch=8),
        train=replace(cfg.train, **kw),  # type: ignore[arg-type]
    )


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return dict(read_checkpoint(run / "checkpoint.pt")["model"])


def test_schedules_follow_the_actual_number_of_steps() -> None:
    cfg = replace(
        preset("tiny"),
        train=replace(
            preset("tiny").train,
            steps=100,
            warmup_steps=10,
            lr=1e-3,
            min_lr=1e-5,
            ema_start=0.996,
            ema_end=1.0,
        ),
    )
    s = Schedule.of(cfg)
    lr0, wd0, m0 = s.at(0)
    assert lr0 == pytest.approx(1e-4) and wd0 == pytest.approx(0.04) and m0 == pytest.approx(0.996)
    assert s.at(9)[0] == pytest.approx(1e-3)
    lr_end, wd_end, m_end = s.at(99)
    assert lr_end == pytest.approx(1e-5) and wd_end == pytest.approx(0.4) and m_end == 1.0
    lrs = [s.at(i)[0] for i in range(10, 100)]
    assert all(a >= b for a, b in itertools.pairwise(lrs))  # cosine decays
    emas = [s.at(i)[2] for i in range(100)]
    assert all(a <= b for a, b in itertools.pairwise(emas))


def test_batch_plan_is_a_pure_function_of_seed_and_step() -> None:
    a = batch_plan(3, 17, [40, 10], 8)
    assert a[0] == batch_plan(3, 17, [40, 10], 8)[0]
    assert np.array_equal(a[1], batch_plan(3, 17, [40, 10], 8)[1])
    assert len(set(a[1].tolist())) == 8  # no repeats within a batch
    sites = [batch_plan(0, s, [40, 10], 4)[0] for s in range(400)]
    assert 0.7 < sites.count(0) / 400 < 0.9  # proportional to the windows (0.8)


def test_kill_and_resume_gives_the_same_weights(tmp_path: Path) -> None:
    site = toy_site()
    cfg = small_config(steps=6)
    full = pretrain([site], tmp_path / "full", cfg, tracking_uri="none", progress=False)
    assert full.step == 6 and not full.stopped
    # "kill" after the checkpoint at step 3, then resume with the stored configuration
    part = pretrain(
        [site], tmp_path / "cut", cfg, tracking_uri="none", progress=False, stop_after=3
    )
    assert part.stopped and part.step == 3
    # a record written after the checkpoint (as by a run killed later) is dropped on resume
    with (tmp_path / "cut" / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 4, "kind": "train", "loss": 123.0}) + "\n")
    rest = pretrain(
        [site], tmp_path / "cut", None, resume=True, tracking_uri="none", progress=False
    )
    assert rest.step == 6
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst <= 1e-6
    la = [r["loss"] for r in _records(tmp_path / "full") if r["kind"] == "train"]
    lb = [r["loss"] for r in _records(tmp_path / "cut") if r["kind"] == "train"]
    assert la == pytest.approx(lb, abs=1e-6) and len(la) == 6


def test_optimizer_is_fused_and_matches_the_reference_update() -> None:
    """The fused CPU AdamW (chosen for speed) takes the same step as torch's per-tensor loop."""
    from geojepa.checkpoint import build_model
    from geojepa.train import _make_optimizer

    cfg = small_config()
    model, ref = build_model(cfg, seed=0), build_model(cfg, seed=0)
    opt = _make_optimizer(model, cfg)
    loop = torch.optim.AdamW(
        ref.param_groups(cfg.train.weight_decay_start), lr=cfg.train.lr, betas=(0.9, 0.95)
    )
    assert opt.defaults["fused"] and not loop.defaults["fused"]
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        for p, q in zip(model.parameters(), ref.parameters(), strict=True):
            if p.requires_grad:
                g = torch.randn(p.shape, generator=gen)
                p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        loop.step()
    for p, q in zip(model.parameters(), ref.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6, rtol=1e-5)
    assert any(
        not torch.equal(p, q)
        for p, q in zip(model.parameters(), build_model(cfg, seed=0).parameters(), strict=True)
    )


def _records(run: Path) -> list[dict[str, object]]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


def test_run_folder_contents_and_refusals(tmp_path: Path) -> None:
    site = toy_site()
    run = tmp_path / "r"
    res = pretrain([site], run, small_config(steps=3), tracking_uri="none", progress=False)
    assert {"config.yaml", "checkpoint.pt", "metrics.jsonl"} <= {p.name for p in run.iterdir()}
    kinds = [r["kind"] for r in _records(run)]
    assert kinds.count("train") == 3 and kinds.count("eval") == 1
    ev = next(r for r in _records(run) if r["kind"] == "eval")
    assert {"val/rankme", "val/lidar", "val/std_ratio", "val/alignment", "val/loss"} <= set(ev)
    assert res.quality is not None and res.quality.rankme > 1.0
    loaded = load_run(run)
    assert loaded.step == 3 and not loaded.model.training
    assert loaded.config == small_config(steps=3)
    with pytest.raises(InputError, match="already holds a checkpoint"):
        pretrain([site], run, small_config(steps=3), tracking_uri="none", progress=False)
    with pytest.raises(InputError, match="nothing to resume"):
        pretrain([site], tmp_path / "new", resume=True, tracking_uri="none", progress=False)
    with pytest.raises(InputError, match="sensors of the run"):
        other = toy_site(n_piezo=2)
        pretrain([other], run, resume=True, steps=4, tracking_uri="none", progress=False)


def test_until_hides_later_readings(tmp_path: Path) -> None:
    """Two sites equal before --until and different after train to identical weights."""
    a = toy_site(seed=1)
    until = pd.Timestamp("2024-01-15", tz="UTC")
    late = a.readings["timestamp"] >= until
    changed = a.readings.copy()
    changed.loc[late, "value"] = changed.loc[late, "value"] * 10 + 7
    b = Site(name="toy", sensors=a.sensors, readings=changed)
    cfg = small_config(steps=2)
    pretrain([a], tmp_path / "a", cfg, until=until, tracking_uri="none", progress=False)
    pretrain([b], tmp_path / "b", cfg, until=until, tracking_uri="none", progress=False)
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert load_run(tmp_path / "a").train_end == until
    # and the same run without --until differs (the later data matters when allowed in)
    pretrain([b], tmp_path / "c", cfg, tracking_uri="none", progress=False)
    wc = _weights(tmp_path / "c")
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_collapse_guard_stops_the_run_and_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    # a rank floor of the full width (RankMe stays below D) makes every evaluation fail:
    # the run must stop, not go on
    cfg = small_config(steps=9, collapse_min_rank_fraction=1.0, collapse_patience=2)
    with pytest.raises(CollapseError, match=r"collapsed at step 6.*RankMe"):
        pretrain([toy_site()], tmp_path / "r", cfg, tracking_uri="none", progress=False)
    assert read_checkpoint(tmp_path / "r" / "checkpoint.pt")["step"] == 3
    # switched off, the same run completes
    off = replace(cfg, train=replace(cfg.train, stop_on_collapse=False))
    assert (
        pretrain([toy_site()], tmp_path / "s", off, tracking_uri="none", progress=False).step == 9
    )


def test_a_family_of_sites_with_different_sensors(tmp_path: Path) -> None:
    sites = [toy_site(seed=2, n_piezo=4, name="a"), toy_site(seed=3, n_piezo=2, name="b")]
    res = pretrain(
        sites, tmp_path / "r", small_config(steps=4), tracking_uri="none", progress=False
    )
    assert [s.name for s in res.sites] == ["a", "b"]
    run = load_run(tmp_path / "r")
    assert len(run.sites) == 2 and len(run.sites[1].sensors) == 4
    assert run.site_record(["P0", "P1", "G1"]) is run.sites[0]


def test_mlflow_tracking_on_sqlite_beside_the_runs(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    run = tmp_path / "runs" / "r1"
    pretrain([toy_site()], run, small_config(steps=3), progress=False)
    db = tmp_path / "runs" / "mlflow.db"
    assert db.is_file()
    run_id = json.loads((run / "mlflow_run.json").read_text())["run_id"]
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    r = client.get_run(run_id)
    assert r.info.status == "FINISHED"
    assert r.data.params["train.steps"] == "3" and r.data.params["model.dim"] == "32"
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [1, 2, 3]
    assert client.get_metric_history(run_id, "val_rankme")[0].step == 3
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.yaml", "metrics.jsonl", "checkpoint.pt"} <= names
    # artifacts live beside the database, not in the working directory
    assert r.info.artifact_uri.startswith((tmp_path / "runs" / "mlartifacts").as_uri())


def test_extra_pretraining_slopes_have_their_own_names_and_rain() -> None:
    from geojepa.evaluate.probes import SIM_DAYS, extra_slopes
    from geojepa.simulate import simulate_site

    probed = simulate_site("slope", 16, SIM_DAYS, "1h", 0).site
    extra = extra_slopes(0, 2)
    later = extra_slopes(1, 1)  # the extra slopes of another probed seed
    sites = [probed, *extra, *later]
    assert len({s.name for s in sites}) == 4

    def rain(site: Site) -> np.ndarray:
        r = site.readings
        return r.loc[r["sensor_id"] == "RG01", "value"].to_numpy()

    series = [rain(s) for s in sites]
    assert all(len(x) > 1000 for x in series)
    for i in range(len(series)):
        for j in range(i + 1, len(series)):
            n = min(len(series[i]), len(series[j]))
            assert abs(np.corrcoef(series[i][:n], series[j][:n])[0, 1]) < 0.2


# --------------------------------------------------------------------------- slow: simulated
@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """The pooled probe experiment (docs/results/training.md), seed 0: the tiny preset
    pretrained on 8 simulated slopes before the split, probes pooled over all 8."""
    from geojepa.evaluate.probes import slope_probe_experiment

    run = tmp_path_factory.mktemp("sim") / "run"
    return slope_probe_experiment(run, seed=0, extra_sites=7, probe_sites=8)


@pytest.mark.slow
def test_tiny_preset_trains_on_simulated_slopes_within_ten_minutes(
    simulated: dict[str, float],
) -> None:
    assert simulated["train_seconds"] <= 600
    # no collapse by the guard's own floors (the run would have stopped otherwise)
    assert simulated["rankme_fraction"] >= 0.1 and simulated["std_ratio"] >= 0.3


@pytest.mark.slow
@pytest.mark.xfail(
    reason="target missed: RankMe 0.264, 0.256, 0.262, 0.255 D over seeds 0-3 with the tiny"
    " preset on 8 slopes (without a target EMA: 0.23-0.32 D;"
    " docs/results/training.md, 'Pooled probes')"
)
def test_tiny_preset_rankme_reaches_three_tenths_of_the_width(
    simulated: dict[str, float],
) -> None:
    assert simulated["rankme_fraction"] >= 0.3


@pytest.mark.slow
def test_frozen_embeddings_beat_a_random_encoder_on_the_rain_probe(
    simulated: dict[str, float],
) -> None:
    """Over seeds 0-3 the pooled next-day-rain probe was ahead of a random encoder of the
    same shape in 4 of 4 (+0.007, +0.006, +0.013, +0.009). The event probe is not shown
    (-0.001, -0.027, +0.013, +0.059: within two standard errors of 0; docs/results/training.md)."""
    assert simulated["rain_auc_jepa"] > simulated["rain_auc_random"]


def test_probes_pool_the_windows_of_several_slopes(tmp_path: Path) -> None:
    """The pooled probe: two slopes (one pretrained on, one not) give twice one slope's test
    windows, and every AUC is a real one (the probes fit on pooled, time-ordered windows)."""
    from geojepa.evaluate.probes import probe_config, slope_probe_experiment

    base = preset("tiny")
    small = replace(
        base,
        model=replace(base.model, dim=32, depth=1, heads=1, predictor_dim=16, predictor_depth=1),
        window=replace(base.window, length=128),
        train=replace(base.train, steps=2, batch_size=4, eval_every=2, checkpoint_every=2),
    )
    cfg = probe_config(small, seed=0)
    one = slope_probe_experiment(tmp_path / "one", seed=0, config=cfg)
    two = slope_probe_experiment(tmp_path / "two", seed=0, config=cfg, probe_sites=2)
    assert two["probe_sites"] == 2 and one["probe_sites"] == 1
    # same calendar, same window rule: the second slope adds as many test windows
    assert two["test_windows"] == 2 * one["test_windows"] > 0
    for res in (one, two):
        for k in ("event_auc_jepa", "event_auc_random", "rain_auc_jepa", "rain_auc_raw"):
            assert 0.0 <= res[k] <= 1.0
    # the same run on the same first slope: its pooled figures differ, so the second counted
    assert two["rain_auc_raw"] != one["rain_auc_raw"]


def test_the_no_ema_file_is_the_recipe_the_harnesses_offer() -> None:
    """examples/configs/tiny-noema.yaml (the pooled-probe alternative) and `no_ema_recipe`
    (offered to the detection and forecasting harnesses) name the same training recipe;
    the preset keeps its target EMA and a weaker SIGReg."""
    from geojepa.config import load_config, no_ema_recipe

    root = Path(__file__).resolve().parents[1]
    from_file = load_config(root / "examples" / "configs" / "tiny-noema.yaml")
    tiny = preset("tiny")
    offered = no_ema_recipe(replace(tiny, train=replace(tiny.train, steps=1000)))
    assert from_file == offered
    assert (offered.train.ema_start, offered.train.ema_end) == (0.0, 0.0)
    assert (tiny.train.ema_start, tiny.train.ema_end) == (0.999, 1.0)
    assert tiny.method["sigreg_weight"] < offered.method["sigreg_weight"]


def test_the_factorised_file_is_the_recipe_the_harnesses_offer() -> None:
    """examples/configs/tiny-factorised-sigreg.yaml and `factorised_sigreg_recipe` name the
    same recipe: factorised attention and SIGReg 10 / 256 on top of the preset, whose target
    EMA it keeps; the preset itself stays joint with a weaker SIGReg."""
    from geojepa.config import factorised_sigreg_recipe, load_config

    root = Path(__file__).resolve().parents[1]
    from_file = load_config(root / "examples" / "configs" / "tiny-factorised-sigreg.yaml")
    tiny = preset("tiny")
    offered = factorised_sigreg_recipe(replace(tiny, train=replace(tiny.train, steps=1000)))
    assert from_file == offered
    assert offered.model == replace(tiny.model, fusion="factorised")
    assert offered.train == replace(tiny.train, steps=1000)
    assert (offered.method["sigreg_weight"], offered.method["sigreg_slices"]) == (10.0, 256)
    assert tiny.model.fusion == "joint"
    assert tiny.method["sigreg_weight"] < offered.method["sigreg_weight"]


def _target_share(mask: Any, draws: int = 400) -> float:
    """Mean target fraction of the mask mixture on a full 16-sensor x 8-patch window."""
    from geojepa.codes import SensorInfo
    from geojepa.masking import MASK_GENERATORS

    c, p = 16, 8
    info = SensorInfo(
        kind=np.arange(c) % 6,
        family=np.arange(c) % 4,
        position=np.random.default_rng(0).normal(size=(c, 3)) * 20.0,
        has_position=np.ones(c, dtype=bool),
        group=-np.ones(c, dtype=np.int64),
    )
    valid = np.ones((c, p), dtype=bool)
    total = 0.0
    for name, weight in mask.weights.items():
        gen = MASK_GENERATORS[name](mask)
        rng = np.random.default_rng(1)
        total += weight * float(np.mean([gen(rng, valid, info).mean() for _ in range(draws)]))
    return total / sum(mask.weights.values())


def test_the_masking_sweep_files_hide_the_shares_the_docs_name() -> None:
    """docs/results/masking.md: light 18 %, the preset 40 %, heavy 64 %, heavier 80 % of the
    tokens are targets; the files change only the mask ranges, and the heavy file is the
    recipe the detection harness offers (`heavy_mask_recipe`)."""
    from geojepa.config import heavy_mask_recipe, load_config

    root = Path(__file__).resolve().parents[1] / "examples" / "configs"
    tiny = preset("tiny")
    shares = {"preset": _target_share(tiny.mask)}
    for name in ("light", "heavy", "heavier"):
        cfg = load_config(root / f"tiny-mask-{name}.yaml")
        assert replace(cfg, mask=tiny.mask) == tiny  # nothing but the masks differs
        assert cfg.mask.weights == tiny.mask.weights
        shares[name] = _target_share(cfg.mask)
    assert load_config(root / "tiny-mask-heavy.yaml") == heavy_mask_recipe(tiny)
    expected = {"light": 0.18, "preset": 0.40, "heavy": 0.64, "heavier": 0.80}
    for name, share in expected.items():
        assert abs(shares[name] - share) < 0.02, (name, shares[name])


def test_harness_recipes_name_the_preset_or_an_offered_recipe() -> None:
    from geojepa.config import (
        RECIPES,
        factorised_sigreg_recipe,
        fast_ema_recipe,
        heavy_mask_recipe,
        load_config,
        missing_flag_recipe,
        no_ema_recipe,
        with_recipe,
    )
    from geojepa.transfer import forecast_config

    tiny = preset("tiny")
    assert RECIPES == (
        "ema",
        "no_ema",
        "factorised_sigreg",
        "heavy_mask",
        "fast_ema",
        "missing_flag",
    )
    assert with_recipe(tiny, "ema") == tiny and with_recipe(tiny, "no_ema") == no_ema_recipe(tiny)
    assert with_recipe(tiny, "factorised_sigreg") == factorised_sigreg_recipe(tiny)
    assert with_recipe(tiny, "heavy_mask") == heavy_mask_recipe(tiny)
    fast = with_recipe(tiny, "fast_ema")
    assert fast == fast_ema_recipe(tiny) and fast.train.ema_start == 0.99
    assert replace(fast, train=tiny.train) == tiny  # only the EMA's start differs
    root = Path(__file__).resolve().parents[1] / "examples" / "configs"
    assert load_config(root / "tiny-ema-fast.yaml") == fast
    flag = with_recipe(tiny, "missing_flag")
    assert flag == missing_flag_recipe(tiny) and flag.model.cell_flag == "missing"
    assert tiny.model.cell_flag == "observed" and replace(flag, model=tiny.model) == tiny
    assert load_config(root / "tiny-missing-flag.yaml") == flag
    assert forecast_config(50, recipe="factorised_sigreg").model.fusion == "factorised"
    assert forecast_config(50).train.ema_start == 0.999  # the forecasting tables' recipe
    assert forecast_config(50, recipe="no_ema").method == no_ema_recipe(tiny).method
    with pytest.raises(ValueError, match="unknown recipe"):
        with_recipe(tiny, "lejepa")


def test_an_ema_end_below_ema_start_is_refused_with_what_to_set(tmp_path: Path) -> None:
    """The tiny preset's EMA runs from 0.999: a file that sets only ema_end: 0 (meaning no
    EMA) is refused, naming the file and line and both keys to set."""
    from geojepa.config import load_config

    cfg = tmp_path / "run.yaml"
    cfg.write_text("preset: tiny\ntrain: {ema_end: 0.0}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"run\.yaml:2.*no target EMA set both to 0"):
        load_config(cfg)
    cfg.write_text("preset: tiny\ntrain: {ema_start: 0.0, ema_end: 0.0}\n", encoding="utf-8")
    assert load_config(cfg).train.ema_end == 0.0


def test_init_starts_from_another_runs_weights_with_a_fresh_schedule(tmp_path: Path) -> None:
    """--init: the new run's step-0 weights are the source's; its normaliser is the new site's;
    the schedule restarts; the source is recorded; a different model or --resume is refused."""
    source_site, target_site = toy_site(seed=0), toy_site(seed=3, name="other", start="2025-01-01")
    cfg = replace(small_config(steps=3), seed=7)  # not the seed of the runs below

    def run(site: Site, name: str, config: RunConfig | None, **kw: object) -> TrainResult:
        return pretrain([site], tmp_path / name, config, tracking_uri="none", progress=False, **kw)  # type: ignore[arg-type]

    run(source_site, "src", cfg)
    src = _weights(tmp_path / "src")
    # a vanishing learning rate keeps the weights it starts from (the EMA target moves a
    # little toward the context encoder: ~1e-6)
    frozen = replace(cfg, seed=0, train=replace(cfg.train, lr=1e-12, min_lr=0.0))
    run(target_site, "same", frozen, init=tmp_path / "src")
    kept = _weights(tmp_path / "same")
    assert kept.keys() == src.keys()
    assert max(float((kept[k].float() - src[k].float()).abs().max()) for k in src) < 1e-4
    # a run from its own seed ends elsewhere: the agreement above is the init's doing
    run(target_site, "scratch", frozen)
    own = _weights(tmp_path / "scratch")
    assert max(float((own[k].float() - src[k].float()).abs().max()) for k in src) > 1e-2

    # a real continuation: the config defaults to the source's, the schedule restarts at 0
    res = run(target_site, "cont", None, steps=3, init=tmp_path / "src")
    assert res.step == 3 and res.total_steps == 3
    cont = load_run(tmp_path / "cont")
    assert cont.config == cfg
    assert [s.name for s in cont.sites] == ["other"]
    # the normaliser is fitted on the new site (as the run from its own seed's), not copied
    np.testing.assert_allclose(
        cont.normaliser.center, load_run(tmp_path / "scratch").normaliser.center
    )
    assert not np.allclose(cont.normaliser.center, load_run(tmp_path / "src").normaliser.center)
    ema = [r["ema"] for r in _records(tmp_path / "cont") if r["kind"] == "train"]
    assert ema[0] == pytest.approx(cfg.train.ema_start)  # momentum schedule from its start
    info = json.loads((tmp_path / "cont" / "init.json").read_text())
    assert info == {"run": str(tmp_path / "src"), "step": 3, "sites": ["toy"]}

    wider = replace(cfg, model=replace(cfg.model, dim=48))
    with pytest.raises(InputError, match=r"model section differs.*dim"):
        run(target_site, "bad", wider, init=tmp_path / "src")
    assert not (tmp_path / "bad" / "checkpoint.pt").exists()
    with pytest.raises(InputError, match="--init starts a new run"):
        run(target_site, "cont", None, resume=True, init=tmp_path / "src")


def test_context_as_target_embeds_with_the_online_encoder(tmp_path: Path) -> None:
    """The probe diagnostic: the copy's target encoder holds the online encoder's weights
    (after a run with a slow EMA the two differ), the original run is untouched, and an
    unknown encoder name is refused."""
    from geojepa.evaluate.probes import context_as_target, slope_probe_experiment

    small = small_config(steps=6)
    pretrain([toy_site()], tmp_path / "run", small, tracking_uri="none", progress=False)
    run = load_run(tmp_path / "run")
    online = {k: v.clone() for k, v in run.model.encoder.state_dict().items()}
    target = {k: v.clone() for k, v in run.model.target_encoder.state_dict().items()}
    assert any(not torch.equal(online[k], target[k]) for k in online)
    ctx = context_as_target(run)
    for k, v in ctx.model.target_encoder.state_dict().items():
        assert torch.equal(v, online[k])
    for k, v in run.model.target_encoder.state_dict().items():
        assert torch.equal(v, target[k])  # the original keeps its target encoder
    with pytest.raises(ValueError, match="encoder must be one of"):
        slope_probe_experiment(tmp_path / "x", config=small, encoder="predictor")


@pytest.mark.parametrize("clip", [0.0, 1e-3])
def test_train_step_clips_the_gradient_norm(clip: float) -> None:
    from conftest import synthetic_frame
    from geojepa.checkpoint import build_model
    from geojepa.masking import MaskCollator, MaskConfig
    from geojepa.train import _make_optimizer, train_step
    from geojepa.windows import Normaliser, WindowDataset, WindowSpec

    cfg = small_config()
    frame = synthetic_frame(4, 128, seed=0, missing=0.0)
    spec = WindowSpec(length=64, stride=16, patch=cfg.window.patch, min_observed=0.0)
    ds = WindowDataset(frame, Normaliser.fit(frame), spec)
    batch = MaskCollator(MaskConfig(), spec.patch, seed=0)([(0, ds[i]) for i in range(3)])
    model = build_model(cfg, seed=0)
    params = [p for p in model.parameters() if p.requires_grad]
    out = train_step(
        model, model, _make_optimizer(model, cfg), batch, params,
        lr=1e-4, weight_decay=0.04, momentum=0.996, grad_clip=clip, bf16=False, seed=0,
    )  # fmt: skip
    after = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))
    if clip == 0.0:
        assert np.isnan(out.grad_norm)  # off: not measured, not clipped
        assert after > 1e-3
    else:
        assert out.grad_norm > clip  # the norm before clipping, as logged
        assert after == pytest.approx(clip, rel=1e-3)  # the step used the clipped gradient


def test_a_frame_cut_at_an_off_grid_until_keeps_only_cells_that_end_by_it() -> None:
    """A gridded frame cannot split a cell: the cell straddling `until` (which averages
    readings after it) is dropped, so no value after `until` reaches the normaliser."""
    from geojepa.frame import to_frame
    from geojepa.train import _frame_of

    times = pd.date_range("2024-01-01", periods=6 * 48, freq="10min", tz="UTC")
    site = Site(
        name="s",
        sensors=sensors_frame([Sensor("A", "piezometer", "kPa", 0.0, 0.0, 0.0, "")]),
        readings=pd.DataFrame(
            {
                "timestamp": times,
                "sensor_id": "A",
                "value": np.arange(len(times), dtype=float),  # value = reading index
                "quality": "ok",
                "source": "x",
            }
        ),
    )
    frame = to_frame(site, interval="1h")
    until = pd.Timestamp("2024-01-01 12:30", tz="UTC")
    cut = _frame_of(frame, until, "1h")
    last_end = pd.Timestamp(cut.time[-1]).tz_localize("UTC") + pd.Timedelta(cut.interval)
    assert last_end <= until
    assert cut.n_times == 12  # 00:00 .. 11:00; the 12:00 cell holds 12:30-12:50 readings
    assert float(np.nanmax(cut.values)) < 75  # reading 75 is at 12:30
    on_grid = _frame_of(frame, pd.Timestamp("2024-01-01 12:00", tz="UTC"), "1h")
    assert on_grid.n_times == 12  # an on-grid until cuts where it always did


class _Recorder:
    """A tracker that records how the run was closed."""

    def __init__(self) -> None:
        self.closed: list[str] = []

    def log_params(self, params: Any) -> None:
        return None

    def log_metrics(self, metrics: Any, step: int) -> None:
        return None

    def log_artifact(self, path: Any) -> None:
        raise OSError("the artifact store is down")

    def flush(self) -> None:
        return None

    def finish(self, status: str = "FINISHED") -> None:
        self.closed.append(status)


def test_a_run_that_fails_to_start_or_to_upload_is_closed_as_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import geojepa.train as train_mod

    rec = _Recorder()
    monkeypatch.setattr(train_mod, "make_tracker", lambda *a, **k: rec)

    def broken(*a: object, **k: object) -> None:
        raise RuntimeError("no validation windows")

    with monkeypatch.context() as m:
        m.setattr(train_mod, "validation_set", broken)
        with pytest.raises(RuntimeError, match="no validation windows"):
            pretrain([toy_site()], tmp_path / "a", small_config(steps=2), progress=False)
    assert rec.closed == ["FAILED"]  # closed, not left running
    with pytest.raises(OSError, match="artifact store"):
        pretrain([toy_site()], tmp_path / "b", small_config(steps=2), progress=False)
    assert rec.closed == ["FAILED", "FAILED"]  # an upload that failed is no finished run
