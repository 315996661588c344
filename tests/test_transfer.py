"""Transfer protocol: label draws, the split in time, win counting, the run cache."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geojepa.config import RunConfig
from geojepa.errors import InputError
from geojepa.forecast.features import EncoderFeatures
from geojepa.frame import SensorFrame
from geojepa.simulate import simulate_site
from geojepa.site import Site
from geojepa.transfer import (
    TransferSite,
    check_disjoint,
    draw_labels,
    forecast_config,
    pretrained_run,
    random_run,
    site_samples,
    transfer_records,
    transfer_site,
    wins,
)
from geojepa.windows import WindowSpec


def tiny_config(steps: int = 3, seed: int = 0) -> RunConfig:
    cfg = forecast_config(steps, seed, batch_size=4)
    return replace(
        cfg,
        model=replace(cfg.model, dim=32, depth=1, heads=2, predictor_dim=16, patch=4),
        window=WindowSpec(length=16, stride=4, patch=4),
        train=replace(cfg.train, val_windows=4, lidar_views=2),
    )


@pytest.fixture(scope="module")
def sim() -> Site:
    return simulate_site("embankment", 8, 120, "3h", 3).site


@pytest.fixture(scope="module")
def target(sim: Site) -> TransferSite:
    return transfer_site(sim, "embankment", name="emb")


def test_label_draws_are_seeded_sized_and_sorted() -> None:
    a = draw_labels(1000, 0.05, seed=1)
    assert a.size == 50 and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, draw_labels(1000, 0.05, seed=1))
    assert not np.array_equal(a, draw_labels(1000, 0.05, seed=2))
    assert draw_labels(100, 0.01, seed=0).size == 4  # at least min_labels
    assert draw_labels(3, 0.5, seed=0).size == 3
    assert draw_labels(50, 1.0, seed=0).size == 50


def test_training_samples_never_read_the_test_period(target: TransferSite) -> None:
    assert target.targets and 0 < target.split < target.frame.n_times
    feats = EncoderFeatures(random_run(tiny_config()))
    train = site_samples(feats, target, (7.0, 30.0), test=False, stride=2.0)
    test = site_samples(feats, target, (7.0, 30.0), test=True, stride=7.0)
    assert train.x.shape[0] > 10 and test.x.shape[0] > 0
    f = target.frame
    values = f.values.copy()
    values[target.split :] = -1e6
    wrecked = TransferSite(
        target.name,
        target.family,
        SensorFrame(values, f.observed, f.time, f.sensors, f.interval),
        target.targets,
        target.split,
    )
    again = site_samples(feats, wrecked, (7.0, 30.0), test=False, stride=2.0)
    np.testing.assert_allclose(again.x, train.x)
    np.testing.assert_allclose(again.change, train.change, equal_nan=True)


def test_transfer_records_compare_encoders_on_the_same_labels(target: TransferSite) -> None:
    encoders = {
        "pretrained": EncoderFeatures(random_run(tiny_config(), seed=1)),
        "scratch": EncoderFeatures(random_run(tiny_config(), seed=2)),
        "level": EncoderFeatures(None, spec=WindowSpec(length=16, stride=4, patch=4)),
    }
    rec = transfer_records(target, encoders, (7.0, 30.0), seed=0, heads=("ridge",))
    assert set(rec["encoder"]) == set(encoders)
    assert set(rec["fraction"]) == {0.01, 0.05, 0.1, 1.0}
    one = rec.groupby(["fraction"])["labels"].nunique()
    assert (one == 1).all()  # every encoder got the same number of labels
    assert (rec["persistence_mae"] > 0).all()
    # with every label each horizon has a model; a draw of 4 labels may have no 30-day target
    assert np.isfinite(rec.loc[rec["fraction"] == 1.0, "mae"]).all()
    assert np.isfinite(rec.loc[rec["horizon"] == 7.0, "mae"]).all()


def test_transfer_heads_include_the_median_mlp() -> None:
    from geojepa.forecast.heads import MEDIAN_DELTA, MLPHead
    from geojepa.transfer import _head

    median, mlp = _head("median", 0), _head("mlp", 0)
    assert isinstance(median, MLPHead) and median.delta == MEDIAN_DELTA
    assert isinstance(mlp, MLPHead) and mlp.delta == 1.0
    with pytest.raises(ValueError, match="unknown head"):
        _head("lasso", 0)


def _row(site: str, fraction: float, encoder: str, seed: int, mae: float) -> dict[str, object]:
    return dict(
        site=site,
        family="f",
        head="ridge",
        fraction=fraction,
        horizon=7.0,
        encoder=encoder,
        seed=seed,
        mae=mae,
    )


def test_wins_counts_and_flags_losses_beyond_one_std() -> None:
    rows = []
    # site a: pretrained ahead on both seeds; site b: behind by more than one std
    for site, fraction, pairs in (
        ("a", 0.01, [(1.0, 2.0), (1.2, 2.2)]),
        ("b", 0.05, [(3.0, 1.0), (3.1, 1.1)]),
    ):
        for seed, (p, s) in enumerate(pairs):
            rows += [_row(site, fraction, "pretrained", seed, p)]
            rows += [_row(site, fraction, "scratch", seed, s)]
    rows.append(_row("b", 1.0, "pretrained", 0, 0.0))
    w = wins(pd.DataFrame(rows)).set_index("site")
    assert len(w) == 2  # the 100 % row is not a <= 10 % pair
    assert bool(w.loc["a", "wins"]) and not bool(w.loc["a", "worse_by_more_than_1std"])
    assert not bool(w.loc["b", "wins"]) and bool(w.loc["b", "worse_by_more_than_1std"])


def test_run_cache_is_reused_only_for_the_same_sites(sim: Site, tmp_path: Path) -> None:
    cfg = tiny_config()
    other = simulate_site("slope", 8, 120, "3h", 4).site
    folder = tmp_path / "run"
    run = pretrained_run([other], folder, cfg)
    assert run.step == 3
    check_disjoint(run, sim.name)
    with pytest.raises(InputError):
        check_disjoint(run, other.name)
    again = pretrained_run([other], folder, cfg)  # cached: loaded, not retrained
    assert again.step == 3
    with pytest.raises(InputError, match="other sites"):
        pretrained_run([sim], folder, cfg)


def test_fine_tuned_run_starts_from_the_pretrained_one_and_caches_its_start(
    sim: Site, tmp_path: Path
) -> None:
    """pretrained_run(init=...): the run continues from the given run's weights; its cache
    folder records the start and refuses another start."""
    import json

    other = simulate_site("slope", 8, 120, "3h", 4).site
    source = pretrained_run([other], tmp_path / "src", tiny_config(seed=1))
    cfg = tiny_config(seed=0)
    tuned = pretrained_run([sim], tmp_path / "ft", cfg, init=source)
    fresh = pretrained_run([sim], tmp_path / "own", cfg)
    a, b, c = (r.model.state_dict() for r in (tuned, source, fresh))
    near = max(float((a[k] - b[k]).abs().max()) for k in a)
    far = max(float((c[k] - b[k]).abs().max()) for k in a)
    assert near < far / 5  # three small steps from the source stay near it
    manifest = json.loads((tmp_path / "ft" / "transfer.json").read_text())
    assert manifest["init"]["sites"] == [other.name] and manifest["init"]["step"] == 3
    assert pretrained_run([sim], tmp_path / "ft", cfg, init=source).step == 3  # cached
    with pytest.raises(InputError, match="other sites or settings"):
        pretrained_run([sim], tmp_path / "ft", cfg)  # the same folder, another start


def _sources(target: TransferSite) -> tuple[TransferSite, ...]:
    cut = pd.Timestamp(target.frame.time[target.split]).tz_localize("UTC")
    return tuple(
        transfer_site(
            simulate_site(sc, 8, 120, "3h", seed).site, sc, split=cut, name=f"{sc}-{seed}"
        )
        for sc, seed in (("embankment", 5), ("slope", 6))
    )


def test_source_head_arms_share_labels_and_read_only_the_sources_past(
    target: TransferSite,
) -> None:
    """pretrained_src / level_src: a head fitted on source samples before the target's test
    period, corrected on the same target labels as every other arm."""
    from geojepa.transfer import source_samples

    spec = WindowSpec(length=16, stride=4, patch=4)
    encoders = {
        "pretrained": EncoderFeatures(random_run(tiny_config(), seed=1)),
        "level": EncoderFeatures(None, spec=spec),
    }
    sources = _sources(target)
    rec = transfer_records(
        target,
        encoders,
        (7.0, 30.0),
        seed=0,
        heads=("ridge",),
        fractions=(0.05, 1.0),
        sources=sources,
        source_encoders=("pretrained", "level"),
    )
    assert set(rec["encoder"]) == {"pretrained", "level", "pretrained_src", "level_src"}
    assert (rec.groupby("fraction")["labels"].nunique() == 1).all()
    assert np.isfinite(rec.loc[rec["encoder"] == "level_src", "mae"]).all()
    # a source's rows after the cut never reach its samples
    feats = EncoderFeatures(None, spec=spec)
    src = source_samples(feats, sources, (7.0, 30.0), stride=2.0)
    assert set(np.unique(src.sensor)) == {0, 1}
    s = sources[0]
    f = s.frame
    values = f.values.copy()
    values[s.split :] = 1e6
    wrecked = replace(s, frame=SensorFrame(values, f.observed, f.time, f.sensors, f.interval))
    again = source_samples(feats, (wrecked, sources[1]), (7.0, 30.0), stride=2.0)
    np.testing.assert_allclose(again.change, src.change, equal_nan=True)
    np.testing.assert_allclose(again.x, src.x)


def test_sources_must_end_before_the_test_period_and_not_be_the_target(
    target: TransferSite,
) -> None:
    from geojepa.transfer import check_sources

    sources = _sources(target)
    check_sources(target, sources)
    with pytest.raises(ValueError, match="own source"):
        check_sources(target, (target,))
    late = replace(sources[0], split=sources[0].frame.n_times)  # the whole record
    with pytest.raises(ValueError, match="cut it there"):
        check_sources(target, (late,))
    encoders = {"level": EncoderFeatures(None, spec=WindowSpec(length=16, stride=4, patch=4))}
    with pytest.raises(ValueError, match="not among the encoders"):
        transfer_records(target, encoders, (7.0,), 0, sources=sources, source_encoders=("x",))


def test_target_only_run_reads_the_targets_training_period_alone(
    sim: Site, target: TransferSite, tmp_path: Path
) -> None:
    import torch

    from geojepa.checkpoint import read_checkpoint
    from geojepa.transfer import split_time, target_only_run

    cfg = tiny_config(steps=3)
    a = target_only_run(sim, target, tmp_path / "a", cfg)
    cut = split_time(target)
    assert cut == pd.Timestamp(target.frame.time[target.split]).tz_localize("UTC")
    r = sim.readings.copy()
    r.loc[r["timestamp"] >= cut, "value"] = 1e6  # wreck the test period
    wrecked = Site(name=sim.name, sensors=sim.sensors, readings=r, labels=sim.labels)
    b = target_only_run(wrecked, target, tmp_path / "b", cfg)
    wa = read_checkpoint(Path(a.run_dir) / "checkpoint.pt")["model"]
    wb = read_checkpoint(Path(b.run_dir) / "checkpoint.pt")["model"]
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_wins_pairs_seeds_and_counts_a_missing_forecast_against_the_encoder() -> None:
    """Means are over the seeds both arms were measured on; an encoder without a forecast
    (NaN) on a seed where the baseline has one neither wins nor escapes the one-std flag."""
    rows = []
    # site a: pretrained_src has no forecast on seed 2, where the baseline does
    for seed, (p, s) in enumerate([(1.0, 1.5), (1.0, 1.5), (float("nan"), 0.1)]):
        rows += [_row("a", 0.01, "pretrained_src", seed, p), _row("a", 0.01, "scratch", seed, s)]
    # site b: seed 2 ran for the encoder only (an easy draw); on the shared seeds it loses
    for seed, (p, s) in enumerate([(2.0, 1.9), (2.0, 1.9)]):
        rows += [_row("b", 0.01, "pretrained", seed, p), _row("b", 0.01, "scratch", seed, s)]
    rows.append(_row("b", 0.01, "pretrained", 2, 0.1))
    # site c: the baseline has no forecast on seed 0: compared on seeds 1 and 2 only
    for seed, (p, s) in enumerate([(5.0, float("nan")), (1.0, 1.2), (1.0, 1.2)]):
        rows += [_row("c", 0.01, "pretrained", seed, p), _row("c", 0.01, "scratch", seed, s)]
    rec = pd.DataFrame(rows)
    a = wins(rec, "pretrained_src").set_index("site").loc["a"]
    assert not bool(a["wins"]) and bool(a["worse_by_more_than_1std"])
    w = wins(rec).set_index("site")
    assert not bool(w.loc["b", "wins"])
    assert w.loc["b", "mean"] == pytest.approx(2.0) and int(w.loc["b", "seeds"]) == 2
    assert bool(w.loc["c", "wins"]) and w.loc["c", "mean"] == pytest.approx(1.0)
    assert not bool(w.loc["c", "worse_by_more_than_1std"])


def test_training_samples_of_a_site_without_a_training_period_are_empty(
    target: TransferSite,
) -> None:
    """split 0: every row is in the test period, so no row may label the head (the cut
    before row split - 1 must not wrap round to the whole record)."""
    feats = EncoderFeatures(None, spec=WindowSpec(length=16, stride=4, patch=4))
    none = site_samples(feats, replace(target, split=0), (7.0,), test=False, stride=2.0)
    assert none.x.shape[0] == 0


def test_loso_run_refuses_the_held_out_site_under_another_key(sim: Site, tmp_path: Path) -> None:
    """The leave-one-site-out guard compares the sites' own names, not the mapping's keys:
    the held-out site listed twice must not reach the pretraining."""
    from geojepa.transfer import loso_run

    assert sim.name != "emb"
    with pytest.raises(InputError, match="transfer target"):
        loso_run({"emb": sim, "emb-again": sim}, "emb", tmp_path, tiny_config())
