"""Run configuration: presets, YAML with unknown keys rejected (file:line), round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from geojepa.config import RunConfig, load_config, preset, save_config
from geojepa.errors import InputError


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "run.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_presets_resolve_and_round_trip(tmp_path: Path) -> None:
    for name in ("tiny", "small", "base"):
        cfg = preset(name)
        assert cfg.preset == name
        assert cfg.model.patch == cfg.window.patch
        assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert preset("small").model.dim > preset("tiny").model.dim
    cfg = load_config(preset_name="tiny", steps=7, seed=3)
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


def test_yaml_overrides_sections(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "seed: 5\n"
        "model:\n  dim: 64\n  fusion: factorised\n"
        "mask:\n  weights: {temporal: 1.0}\n  future_ratio: [0.2, 0.3]\n"
        "window:\n  length: 64\n  scales: [1, 4]\n"
        "method:\n  sigreg_weight: 0.1\n"
        "train:\n  steps: 12\n  lr: 1\n  bf16: true\n  interval: 1h\n",
    )
    cfg = load_config(path)
    assert cfg.seed == 5 and cfg.model.dim == 64 and cfg.model.fusion == "factorised"
    assert dict(cfg.mask.weights) == {"temporal": 1.0}
    assert cfg.mask.future_ratio == (0.2, 0.3)
    assert cfg.window.length == 64 and cfg.window.scales == (1, 4)
    assert cfg.method["sigreg_weight"] == 0.1 and cfg.method["loss"] == "smooth_l1"
    assert cfg.train.steps == 12 and cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert cfg.train.bf16 is True and cfg.train.interval == "1h"
    # explicit overrides beat the file
    assert load_config(path, steps=3, seed=9).train.steps == 3
    assert load_config(path, steps=3, seed=9).seed == 9


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("train:\n  steps: 10\n  stpes: 3\n", ":3:3", "'stpes'"),
        ("modle:\n  dim: 3\n", ":1:1", "'modle'"),
        ("model:\n  dim: 64\n  widht: 2\n", ":3:3", "'widht'"),
        ("mask:\n  weights: {temporal: 1.0, blur: 2.0}\n", ":1:1", "blur"),
        ("method:\n  los: l2\n", ":2:3", "'los'"),
        ("train:\n  steps: many\n", ":2:3", "not an integer"),
        ("train:\n  bf16: 1\n", ":2:3", "true/false"),
        ("window:\n  length: 100\n", ":2:3", "multiple of patch"),
        ("train:\n  steps: 0\n", ":2:3", "steps must be"),  # the key's own line
        ("train:\n  steps: 10\n  interval: 3X\n", ":3:3", "not a time step"),
        ("train:\n  interval: 0h\n", ":2:3", "positive time step"),
        ("model:\n  dim: 64\nseed: -1\n", ":3:1", "seed must be a whole number >= 0"),
        ("train: [1, 2\n", ":", "not valid YAML"),
        ("preset: huge\n", ":1:1", "unknown preset"),
    ],
)
def test_bad_yaml_names_file_line_and_key(tmp_path: Path, text: str, where: str, what: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_config(path)
    msg = str(info.value)
    assert msg.startswith(str(path) + where), msg
    assert what in msg


def test_unknown_key_lists_known_keys(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="known keys: steps, batch_size"):
        load_config(_write(tmp_path, "train:\n  nope: 1\n"))


def test_patch_mismatch_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="patch"):
        load_config(_write(tmp_path, "model:\n  patch: 8\nwindow:\n  patch: 16\n"))
    # a model patch alone moves the window patch with it
    assert load_config(_write(tmp_path, "model:\n  patch: 8\n")).window.patch == 8
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "absent.yaml")


def test_numbers_in_exponent_notation_are_numbers(tmp_path: Path) -> None:
    # YAML 1.1 (PyYAML) reads `5e-4` (no dot) as text; it is a number to anyone writing it
    cfg = load_config(
        _write(tmp_path, "train:\n  lr: 5e-4\n  min_lr: 1E-7\nmask:\n  weights: {temporal: 2e0}\n")
    )
    assert cfg.train.lr == 5e-4 and cfg.train.min_lr == 1e-7
    assert dict(cfg.mask.weights) == {"temporal": 2.0}
    with pytest.raises(InputError, match="not an integer"):
        load_config(_write(tmp_path, "train:\n  steps: 1e3\n"))  # a count stays an integer


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("train:\n  lr: .inf\n", "not a finite number"),
        # a NaN floor compares false with every value: the guard could never fire
        ("train:\n  collapse_min_rank_fraction: .nan\n", "not a finite number"),
        # RankMe / D and the std ratio are at most 1: a floor above 1 fires on every model
        ("train:\n  collapse_min_rank_fraction: 5\n", "collapse_min_rank_fraction"),
        ("train:\n  collapse_min_std_ratio: 1.5\n", "collapse_min_std_ratio"),
        ("train:\n  collapse_min_std_ratio: -0.1\n", "collapse_min_std_ratio"),
        # refused by the method (JEPAConfig) only when training started, without a line
        ("method:\n  loss: l3\n", "unknown loss"),
        ("method:\n  sigreg_weight: -1\n", "sigreg_weight"),
    ],
)
def test_values_a_run_would_refuse_or_ignore_are_refused_at_load(
    tmp_path: Path, text: str, what: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_config(path)
    msg = str(info.value)
    assert msg.startswith(str(path) + ":"), msg
    assert what in msg, msg


@pytest.mark.parametrize(
    ("section", "what"),
    [
        ("{dim: 30, heads: 4}", "model.dim 30 is not divisible by model.heads 4"),
        ("{predictor_dim: 30, predictor_heads: 4}", "model.predictor_dim 30 is not divisible"),
        ("{dim: -8}", "model.dim must be a whole number >= 1"),
        ("{depth: 0}", "model.depth must be a whole number >= 1"),
        ("{predictor_depth: 0}", "model.predictor_depth must be a whole number >= 1"),
        ("{dropout: 1.5}", "model.dropout must be in"),
        ("{mlp_ratio: 0}", "model.mlp_ratio must be > 0"),
        ("{fusion: bogus}", "unknown fusion mode"),
        ("{cell_flag: present}", "unknown model.cell_flag"),
    ],
)
def test_a_model_no_network_can_be_built_from_is_refused_at_load(
    tmp_path: Path, section: str, what: str
) -> None:
    # before: these failed mid-run as internal errors (exit 1), or trained a model with no
    # transformer block at all (depth 0)
    path = _write(tmp_path, f"model: {section}\n")
    with pytest.raises(InputError, match=what) as info:
        load_config(path)
    assert info.value.file is not None and Path(info.value.file).name == "run.yaml"
