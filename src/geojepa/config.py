"""Run configuration: presets, YAML files with unknown keys rejected, and plain-dict round trips.

A `RunConfig` gathers everything a pretraining run needs: the model (`ModelConfig`), the mask
mixture (`MaskConfig`), the window geometry (`WindowSpec`), the method options of `JEPAConfig`
other than the model (``method``: loss, SIGReg), the loop (`TrainConfig`) and the seed.

YAML layout (every section optional; a ``preset`` key picks the starting point)::

    preset: tiny
    seed: 0
    model:  {dim: 128, depth: 4, fusion: joint, ...}
    mask:   {weights: {temporal: 0.3, tube: 0.2, ...}, future_ratio: [0.1, 0.25], ...}
    window: {length: 128, stride: 32, patch: 16, min_observed: 0.25, scales: [1], level: site}
    method: {loss: smooth_l1, sigreg_weight: 0.0}
    train:  {steps: 2000, batch_size: 32, lr: 0.0005, bf16: false, ...}

Guarantees: an unknown key, a value of the wrong type, a number that is not finite or a
value a section (the method's options included) refuses raises `InputError` naming the
file, the line and column of the key, and the known keys; a number is read as YAML 1.2 reads
it (``5e-4`` is a number, where PyYAML's YAML 1.1 gives text); presets
+ file + overrides resolve to one `RunConfig` whose `to_dict()` is plain JSON/YAML data and
whose `from_dict(to_dict())` is equal to it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from geojepa.errors import InputError
from geojepa.masking import MaskConfig
from geojepa.models import ModelConfig
from geojepa.models import preset as model_preset
from geojepa.timeformats import time_step
from geojepa.windows import WindowSpec

log = logging.getLogger(__name__)

PRESET_NAMES: tuple[str, ...] = ("tiny", "small", "base")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop's settings.

    LR: linear warmup over `warmup_steps` (None = `warmup_fraction` of the steps) then cosine
    to `min_lr`. Weight decay: cosine from `weight_decay_start` to `weight_decay_end` (never on
    biases, norms and mask tokens). Target EMA momentum: cosine from `ema_start` to `ema_end`
    over the run's actual number of steps; both 0 make the target encoder a copy of the
    online encoder after every step (targets under stop-gradient, no EMA, the collapse held
    off by SIGReg: `no_ema_recipe`). `interval`: grid interval (e.g. "1h"; None = inferred
    from the data). The validation set is the last `val_fraction` of the training period
    (at most `val_windows` windows), scored every `eval_every` steps.
    """

    steps: int = 2000
    batch_size: int = 32
    lr: float = 5e-4
    min_lr: float = 1e-6
    warmup_steps: int | None = None
    warmup_fraction: float = 0.1
    weight_decay_start: float = 0.04
    weight_decay_end: float = 0.4
    ema_start: float = 0.996
    ema_end: float = 1.0
    grad_clip: float = 1.0
    bf16: bool = False
    interval: str | None = None
    val_fraction: float = 0.1
    val_windows: int = 64
    eval_every: int = 200
    log_every: int = 10
    checkpoint_every: int = 200
    lidar_views: int = 4
    collapse_min_rank_fraction: float = 0.02
    collapse_min_std_ratio: float = 0.05
    collapse_min_alignment: float = 1e-6
    collapse_patience: int = 2
    stop_on_collapse: bool = True
    threads: int | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.steps >= 1, "steps must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0 and self.min_lr >= 0, "lr must be > 0 and min_lr >= 0"),
            (0.0 <= self.warmup_fraction < 1.0, "warmup_fraction must be in [0, 1)"),
            (self.warmup_steps is None or self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (
                0.0 <= self.ema_start <= self.ema_end <= 1.0,
                f"need 0 <= ema_start <= ema_end <= 1 (got {self.ema_start}, {self.ema_end}; "
                "for no target EMA set both to 0, for I-JEPA's ramp e.g. "
                "ema_start: 0.996, ema_end: 1.0)",
            ),
            (self.weight_decay_start >= 0 and self.weight_decay_end >= 0, "weight decay >= 0"),
            (self.grad_clip >= 0, "grad_clip must be >= 0 (0 = off)"),
            (0.0 <= self.val_fraction < 1.0, "val_fraction must be in [0, 1)"),
            (self.val_windows >= 2, "val_windows must be >= 2"),
            (self.eval_every >= 1 and self.log_every >= 1, "eval_every and log_every >= 1"),
            (self.checkpoint_every >= 1, "checkpoint_every must be >= 1"),
            (self.lidar_views >= 2, "lidar_views must be >= 2"),
            (
                0.0 <= self.collapse_min_rank_fraction <= 1.0,
                "collapse_min_rank_fraction must be in [0, 1] (RankMe / D; 0 = not checked)",
            ),
            (
                0.0 <= self.collapse_min_std_ratio <= 1.0,
                "collapse_min_std_ratio must be in [0, 1] (0 = not checked)",
            ),
            (self.collapse_patience >= 1, "collapse_patience must be >= 1"),
            (
                self.collapse_min_alignment >= 0,
                "collapse_min_alignment must be >= 0 (0 = not checked)",
            ),
            (self.threads is None or self.threads >= 1, "threads must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise InputError(msg, hint="fix the train section of the configuration")
        if self.interval is not None:
            time_step(self.interval, "interval")

    def warmup(self) -> int:
        if self.warmup_steps is not None:
            return min(self.warmup_steps, self.steps)
        return round(self.warmup_fraction * self.steps)


TRAIN_PRESETS: dict[str, TrainConfig] = {
    # tiny: measured on a simulated 16-sensor slope (a year, hourly) on 2 shared cores: 300
    # steps of 16 windows train in 1-2 min; a slow target (EMA from 0.999) and SIGReg (see
    # PRESET_METHOD) kept RankMe at 0.19-0.26 D where EMA 0.996 without SIGReg fell to
    # 0.05 D. On probes pooled over 8 slopes x 4 seeds it beats an untrained encoder on
    # next-day rain (+0.009 AUC); `no_ema_recipe` beat it there (+0.017) but forecast worse
    # and raised false alarms (docs/results/training.md, "Pooled probes"), so the preset
    # keeps this recipe.
    "tiny": TrainConfig(
        steps=300,
        batch_size=16,
        lr=5e-4,
        ema_start=0.999,
        eval_every=100,
        checkpoint_every=100,
    ),
    "small": TrainConfig(steps=5000, batch_size=64, lr=5e-4, eval_every=500),
    "base": TrainConfig(steps=20000, batch_size=128, lr=3e-4, eval_every=1000),
}


PRESET_METHOD: dict[str, dict[str, Any]] = {
    "tiny": {"sigreg_weight": 1.0},
    "small": {"sigreg_weight": 1.0},
    "base": {"sigreg_weight": 1.0},
}
"""JEPAConfig options per preset (SIGReg on: without it the plain EMA JEPA lost rank)."""


def _method_fields() -> dict[str, Any]:
    """Fields of JEPAConfig other than `model`, with their defaults."""
    from geojepa.jepa import JEPAConfig

    return {
        f.name: f.default
        for f in fields(JEPAConfig)
        if f.name != "model" and f.default is not dataclasses.MISSING
    }


@dataclass(frozen=True)
class RunConfig:
    """Everything a pretraining run needs. `method` holds JEPAConfig's non-model options."""

    model: ModelConfig = field(default_factory=ModelConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    window: WindowSpec = field(default_factory=WindowSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    preset: str = "tiny"

    def __post_init__(self) -> None:
        known = _method_fields()
        unknown = sorted(set(self.method) - set(known))
        if unknown:
            raise InputError(
                f"unknown method setting(s) {unknown}", hint="known: " + ", ".join(sorted(known))
            )
        object.__setattr__(self, "method", {**known, **dict(self.method)})
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(
                f"seed must be a whole number >= 0, got {self.seed!r}", hint="e.g. seed: 0"
            )
        if self.model.patch != self.window.patch:
            raise InputError(
                f"model.patch {self.model.patch} differs from window.patch {self.window.patch}",
                hint="set both to the same patch length",
            )

    def jepa_config(self) -> Any:
        """The `JEPAConfig` of this run."""
        from geojepa.jepa import JEPAConfig

        return JEPAConfig(model=self.model, **dict(self.method))

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "seed": self.seed,
            "model": _plain(dataclasses.asdict(self.model)),
            "mask": _plain(self.mask.to_dict()),
            "window": _plain(self.window.to_dict()),
            "method": _plain(dict(self.method)),
            "train": _plain(dataclasses.asdict(self.train)),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, file: str | Path | None = None) -> RunConfig:
        """Strict inverse of `to_dict` (missing keys take the preset's values)."""
        return _resolve(d, _Marks(file, {}), base=None)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)


def _plain(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


PRESET_LEVEL = "window"
"""Window level of every preset (`WindowSpec.level`): each sensor measured from its window's
median. On the demo's 180-day sites, trained and scored at site level the energy followed
the trending gauges out of their training range (embankment 91 %, dam 36 % of the test
period amber or red); at window level 0-6 %. It costs drift and step events on short
records (README, "Anomaly detection")."""


def preset(name: str = "tiny") -> RunConfig:
    """The named preset: model preset + its training defaults."""
    if name not in PRESET_NAMES:
        raise InputError(f"unknown preset {name!r}", hint="use one of " + ", ".join(PRESET_NAMES))
    model = model_preset(name)
    return RunConfig(
        model=model,
        window=WindowSpec(patch=model.patch, level=PRESET_LEVEL),
        train=TRAIN_PRESETS[name],
        method=PRESET_METHOD[name],
        preset=name,
    )


def no_ema_recipe(config: RunConfig) -> RunConfig:
    """`config` without a target EMA (the target encoder is a copy of the online encoder
    after every step, LeJEPA's way) and with SIGReg weight 10 over 256 slices, steps left as
    they are: the alternative recipe of "Pooled probes" in docs/results/training.md (1000
    steps there, `examples/configs/tiny-noema.yaml`), also offered to the detection and
    forecasting harnesses."""
    return replace(
        config,
        train=replace(config.train, ema_start=0.0, ema_end=0.0),
        method={**dict(config.method), "sigreg_weight": 10.0, "sigreg_slices": 256},
    )


def factorised_sigreg_recipe(config: RunConfig) -> RunConfig:
    """`config` with factorised (time-then-sensor) attention and SIGReg weight 10 over 256
    slices, its target EMA and steps left as they are: the recipe of "Factorised attention
    and a stronger SIGReg" in docs/results/training.md (1000 steps there,
    `examples/configs/tiny-factorised-sigreg.yaml`). It keeps RankMe >= 0.3 D where the
    preset does not, but its detection energy was weaker, so it is offered, not the preset."""
    return replace(
        config,
        model=replace(config.model, fusion="factorised"),
        method={**dict(config.method), "sigreg_weight": 10.0, "sigreg_slices": 256},
    )


def heavy_mask_recipe(config: RunConfig) -> RunConfig:
    """`config` with the mask ranges of `masking.HEAVY_RANGES` (about 64 % of a window's
    tokens are targets; the preset's about 40 %), everything else left as it is: the
    "heavy" point of the masking-ratio sweep (docs/results/masking.md)."""
    from geojepa.masking import HEAVY_RANGES

    return replace(config, mask=replace(config.mask, **HEAVY_RANGES))


def fast_ema_recipe(config: RunConfig) -> RunConfig:
    """`config` with the target EMA's momentum starting at 0.99 instead of the preset's
    0.999 (still to 1.0), everything else left as it is: over 300 steps the target encoder
    keeps about 22 % of its initial weights instead of 86 % (docs/results/masking.md, "A
    faster target EMA"; `examples/configs/tiny-ema-fast.yaml`)."""
    return replace(config, train=replace(config.train, ema_start=0.99))


def missing_flag_recipe(config: RunConfig) -> RunConfig:
    """`config` with the patch embedding flagging missing cells instead of observed ones
    (`ModelConfig.cell_flag`), everything else left as it is: the target encoder's RankMe
    0.42-0.44 D instead of 0.26 on the pooled probes, but its next-day-rain gain over an
    untrained encoder not shown (docs/results/training.md, "The missing-cell flag";
    `examples/configs/tiny-missing-flag.yaml`)."""
    return replace(config, model=replace(config.model, cell_flag="missing"))


_RECIPE_CHANGES: dict[str, Callable[[RunConfig], RunConfig]] = {
    "ema": lambda config: config,
    "no_ema": no_ema_recipe,
    "factorised_sigreg": factorised_sigreg_recipe,
    "heavy_mask": heavy_mask_recipe,
    "fast_ema": fast_ema_recipe,
    "missing_flag": missing_flag_recipe,
}

RECIPES: tuple[str, ...] = tuple(_RECIPE_CHANGES)
"""Training recipes a harness can ask for: "ema", the preset's own (what the main
forecasting, transfer and detection tables were measured with), "no_ema"
(`no_ema_recipe`), "factorised_sigreg" (`factorised_sigreg_recipe`), "heavy_mask"
(`heavy_mask_recipe`), "fast_ema" (`fast_ema_recipe`) or "missing_flag"
(`missing_flag_recipe`)."""


def with_recipe(config: RunConfig, recipe: str) -> RunConfig:
    """`config` under the named recipe (`RECIPES`); anything else is refused."""
    if recipe not in _RECIPE_CHANGES:
        raise ValueError(f"unknown recipe {recipe!r}; use one of {RECIPES}")
    return _RECIPE_CHANGES[recipe](config)


# --------------------------------------------------------------------------- YAML with marks
@dataclass(frozen=True)
class _Marks:
    """Where each key path was written: (line, column), 1-based."""

    file: str | Path | None
    at: dict[tuple[str, ...], tuple[int, int]]

    def error(self, path: tuple[str, ...], message: str, hint: str | None = None) -> InputError:
        line, col = self.at.get(path, (None, None))
        while line is None and path:
            path = path[:-1]
            line, col = self.at.get(path, (None, None))
        return InputError(message, file=self.file, line=line, column=col, hint=hint)


def _collect_marks(
    node: yaml.Node, path: tuple[str, ...], out: dict[tuple[str, ...], tuple[int, int]]
) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = (*path, str(key.value))
            out[k] = (key.start_mark.line + 1, key.start_mark.column + 1)
            _collect_marks(value, k, out)


def load_yaml(path: str | Path) -> tuple[dict[str, Any], _Marks]:
    """Parse a YAML mapping and remember the line and column of every key."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise InputError("configuration file not found", file=p, hint="check the path") from err
    except UnicodeDecodeError as err:
        raise InputError("configuration is not UTF-8 text", file=p, hint="save as UTF-8") from err
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise InputError(
            f"not valid YAML ({err.problem or err.context})",
            file=p,
            line=None if mark is None else mark.line + 1,
            column=None if mark is None else mark.column + 1,
            hint="fix the YAML syntax",
        ) from err
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML ({err})", file=p, hint="fix the YAML syntax") from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(
            "the configuration must be a mapping of sections",
            file=p,
            line=1,
            hint="write keys such as `train:` and `model:` at the top level",
        )
    marks: dict[tuple[str, ...], tuple[int, int]] = {}
    if node is not None:
        _collect_marks(node, (), marks)
    return data, _Marks(p, marks)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


_YAML12_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+")
"""A YAML 1.2 number in exponent notation, which PyYAML (YAML 1.1) reads as text when it
has no dot or no exponent sign (``5e-4``, ``1.0e3``)."""


def _coerce(value: Any, tp: Any, path: tuple[str, ...], marks: _Marks) -> Any:
    """Check `value` against annotation `tp`; lists become tuples where a tuple is declared."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    key = ".".join(path)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, path, marks)
            except InputError as err:
                errors.append(err)
        raise marks.error(path, f"{key} = {value!r} is not a {_type_name(tp)}")
    if origin is typing.Literal:
        if value not in args:
            raise marks.error(path, f"{key} = {value!r} is not one of {list(args)}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise marks.error(path, f"{key} = {value!r} is not true/false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise marks.error(path, f"{key} = {value!r} is not an integer")
        return value
    if tp is float:
        if isinstance(value, str) and _YAML12_FLOAT.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise marks.error(path, f"{key} = {value!r} is not a number")
        if not math.isfinite(value):
            raise marks.error(path, f"{key} = {value!r} is not a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise marks.error(path, f"{key} = {value!r} is not text")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise marks.error(path, f"{key} = {value!r} is not a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], path, marks) for v in value)
        if len(value) != len(args):
            raise marks.error(path, f"{key} needs {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, path, marks) for v, a in zip(value, args, strict=True))
    if origin in (dict, Mapping) or tp in (dict, Mapping) or origin is typing.Mapping:
        if not isinstance(value, Mapping):
            raise marks.error(path, f"{key} is not a mapping")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(v, vt, (*path, str(k)), marks) for k, v in value.items()}
    if isinstance(tp, type):
        if not isinstance(value, tp):
            raise marks.error(path, f"{key} = {value!r} is not a {_type_name(tp)}")
        return value
    return value


def _section(
    cls: type,
    base: Any,
    data: Any,
    path: tuple[str, ...],
    marks: _Marks,
    skip: tuple[str, ...] = (),
) -> Any:
    """Build dataclass `cls` from `base` with the keys of `data` replaced (strict)."""
    if data is None:
        return base
    name = path[-1]
    if not isinstance(data, Mapping):
        raise marks.error(path, f"section {name!r} must be a mapping of settings")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls) if f.name not in skip]
    kw: dict[str, Any] = {}
    for k, v in data.items():
        if k not in known:
            raise marks.error(
                (*path, str(k)),
                f"unknown key {k!r} in section {name!r}",
                hint="known keys: " + ", ".join(known),
            )
        kw[k] = _coerce(v, hints[k], (*path, str(k)), marks)
    try:
        return replace(base, **kw)
    except InputError as err:
        raise marks.error(_named_key(path, kw, err.message), err.message, err.hint) from err
    except (TypeError, ValueError) as err:
        raise marks.error(path, f"section {name!r}: {err}") from err


def _named_key(path: tuple[str, ...], keys: Mapping[str, Any], message: str) -> tuple[str, ...]:
    """The key path of the key among `keys` that a refusal `message` names first (so the
    error points at its line), else `path`."""
    text = message.replace(".".join(path) + ".", "") if path else message
    found = []
    for k in keys:
        m = re.search(rf"(?<![\w.]){re.escape(str(k))}\b", text)
        if m is not None:
            found.append((m.start(), str(k)))
    return (*path, min(found)[1]) if found else path


SECTIONS: tuple[str, ...] = ("preset", "seed", "model", "mask", "window", "method", "train")


def _resolve(data: Mapping[str, Any], marks: _Marks, base: RunConfig | None) -> RunConfig:
    for k in data:
        if k not in SECTIONS:
            raise marks.error(
                (str(k),),
                f"unknown key {k!r}",
                hint="known top-level keys: " + ", ".join(SECTIONS),
            )
    name = data.get("preset")
    if name is not None:
        if not isinstance(name, str) or name not in PRESET_NAMES:
            raise marks.error(
                ("preset",), f"unknown preset {name!r}", "use one of " + ", ".join(PRESET_NAMES)
            )
        base = preset(name)
    elif base is None:
        base = preset("tiny")
    seed = base.seed if data.get("seed") is None else _coerce(data["seed"], int, ("seed",), marks)
    model = _section(ModelConfig, base.model, data.get("model"), ("model",), marks)
    window = _section(WindowSpec, base.window, data.get("window"), ("window",), marks)
    if data.get("window") is None or "patch" not in data["window"]:
        window = replace(window, patch=model.patch)
    mask = _section(MaskConfig, base.mask, data.get("mask"), ("mask",), marks)
    train = _section(TrainConfig, base.train, data.get("train"), ("train",), marks)
    method = dict(base.method)
    mdata = data.get("method")
    if mdata is not None:
        if not isinstance(mdata, Mapping):
            raise marks.error(("method",), "section 'method' must be a mapping of settings")
        from geojepa.jepa import JEPAConfig

        hints = typing.get_type_hints(JEPAConfig)
        known = list(_method_fields())
        for k, v in mdata.items():
            if k not in known:
                raise marks.error(
                    ("method", str(k)),
                    f"unknown key {k!r} in section 'method'",
                    hint="known keys: " + ", ".join(known),
                )
            method[k] = _coerce(v, hints[k], ("method", str(k)), marks)
        try:  # the method's own checks (loss name, SIGReg sizes), here rather than at step 0
            JEPAConfig(model=model, **method)
        except InputError as err:
            raise marks.error(("method",), err.message, err.hint) from err
    try:
        return RunConfig(
            model=model,
            mask=mask,
            window=window,
            train=train,
            method=method,
            seed=seed,
            preset=str(name or base.preset),
        )
    except InputError as err:
        raise marks.error(_named_key((), data, err.message), err.message, err.hint) from err


def load_config(
    path: str | Path | None = None,
    *,
    preset_name: str | None = None,
    steps: int | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
) -> RunConfig:
    """Preset (default tiny) -> YAML file -> explicit overrides, in that order.

    A ``preset`` key in the file wins over `preset_name` only when `preset_name` is None.
    """
    base = preset(preset_name or "tiny")
    if path is not None:
        data, marks = load_yaml(path)
        if preset_name is not None and "preset" in data and data["preset"] != preset_name:
            raise marks.error(
                ("preset",),
                f"the file asks for preset {data['preset']!r} but --preset is {preset_name!r}",
                hint="drop one of them",
            )
        cfg = _resolve(data, marks, base)
    else:
        cfg = base
    train = cfg.train
    if steps is not None:
        train = replace(train, steps=int(steps))
    if batch_size is not None:
        train = replace(train, batch_size=int(batch_size))
    return replace(cfg, train=train, seed=cfg.seed if seed is None else int(seed))


def save_config(cfg: RunConfig, path: str | Path) -> None:
    """Write the resolved configuration as YAML (atomically)."""
    from geojepa.atomic import write_text

    write_text(path, "# resolved GeoJEPA run configuration\n" + cfg.to_yaml())
