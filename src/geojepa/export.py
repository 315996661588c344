"""Export a trained run to ONNX for the edge scorer, with a parity check against PyTorch.

Two graphs carry everything the energy score needs (`geojepa.energy`):

- ``encoder.onnx``: the TARGET encoder over all tokens, layer-normed (the targets, and the
  embeddings): values (B,C,L), observed (B,C,L), sensor_feats (B,C,F), time_feats (B,P,Ft),
  token_valid (B,N) -> repr (B,N,D);
- ``predictor.onnx``: the context encoder on the context tokens, then the predictor:
  the same five inputs + context (B,Nc), context_pad (B,Nc), target (B,Nt), target_pad
  (B,Nt), mask_kind (B,) -> pred (B,Nt,D).

`TorchEngine` runs the very modules that are exported, so ``geojepa detect`` (torch) and
the edge scorer (onnxruntime) compute the energy with the same shared numpy code around
the same two functions. An energy bundle carries both graphs.

``export_run(..., score="density")`` (``geojepa export --score density``) makes a density
bundle: the embedding density (`geojepa.density_score`, which needs the encoder graph
only) and its thresholds are fitted on the site's training period by the very code of
``geojepa detect --score density`` (`geojepa.detect.prepare_detect`), the density is
written as ``density.npz`` and the bundle's alarms are calibrated on it. A density bundle
carries ``encoder.onnx`` alone (no predictor graph: smaller on the gateway). A density window
costs one encoder pass (batch 1); an energy window costs that plus one predictor pass
over C + 1 masks (C sensors): measured with onnxruntime on one thread, 0.14x the energy's
time at 16 sensors x 128 steps, 0.02x at 32 x 256 (README, "Model, training and the
edge"). The density scores a window every patch, the energy every `recent` patches.

Guarantees: each graph is ONE file (weights inside, no ``.onnx.data`` sidecar), opset
`OPSET`, batch, sensor, time and token axes dynamic; ``onnx.checker`` (full check) passes;
`check_parity` compares onnxruntime with PyTorch at several shapes and `export_run` refuses
to finish when fp32 max |delta| exceeds `PARITY_TOL`; torch and onnxruntime scores are
compared on real windows for the energy and, in a density bundle, the density; an int8
variant is offered (and made the gateway's default) only when it is measurably faster and
its scores agree with ``geojepa detect``'s on every grid time of the site given (the
`site`, ``--site``): the per-time score and the scored sensors' scores keep Spearman >=
`INT8_MIN_SPEARMAN` (README's target for edge = detect) and are NaN exactly where
detect's are; otherwise fp32 stays the default and the export says why (the measured
Spearman); without a site int8 is never the default; a density bundle's density and
thresholds read no row at or after the run's training end; the output folder appears
whole or not at all.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from geojepa import __version__
from geojepa.atomic import atomic_dir
from geojepa.density_score import DensityModel, frame_density, window_embeddings
from geojepa.detect import DEFAULT_SCORE, SCORES, prepare_detect
from geojepa.edge.bundle import (
    DENSITY_FILE,
    SCORE_GRAPHS,
    DataFile,
    ExportMeta,
    GraphFile,
    sha256_file,
    write_meta,
)
from geojepa.edge.score import Calibration, Scores, alarm_labels, score_with
from geojepa.energy import (
    EnergySpec,
    TokenEngine,
    TokenInputs,
    frame_energy,
    pad_index,
    scored_row_max,
    window_energy,
    with_context,
)
from geojepa.errors import GeoJEPAError, InputError
from geojepa.frame import SensorFrame, to_frame
from geojepa.site import Site
from geojepa.windows import (
    Normaliser,
    Window,
    WindowSpec,
    sensor_features,
    time_features,
    window_at,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

    from geojepa.evaluate import Protocol
    from geojepa.jepa import JEPA

log = logging.getLogger(__name__)

OPSET = 18
PARITY_TOL = 1e-4
INT8_MIN_SPEARMAN = 0.999  # README's target for edge = detect, measured on the site's rows
INT8_MIN_SPEEDUP = 1.15
INT8_TIMING_ROUNDS = 5
TIE_MARGIN = 1e-3  # relative lift of alarm thresholds above a tied training score
ENCODER_INPUTS: tuple[str, ...] = (
    "values",
    "observed",
    "sensor_feats",
    "time_feats",
    "token_valid",
)
PREDICTOR_INPUTS: tuple[str, ...] = (
    *ENCODER_INPUTS,
    "context",
    "context_pad",
    "target",
    "target_pad",
    "mask_kind",
)
GRAPH_FILES = {"encoder": "encoder.onnx", "predictor": "predictor.onnx"}


def mask_kinds() -> dict[str, int]:
    """Generator ids of the masks the energy sweep uses (their learned mask tokens)."""
    from geojepa.masking import MASK_GENERATORS

    return {"tube": MASK_GENERATORS["tube"].id, "future": MASK_GENERATORS["future"].id}


# ----------------------------------------------------------------------------- graphs
def _graph_modules(model: JEPA) -> tuple[nn.Module, nn.Module]:
    """(encoder graph, predictor graph) as tensor-only modules around `model`'s parts."""
    import torch.nn.functional as F
    from torch import nn

    class EncoderGraph(nn.Module):
        """Layer-normed target-encoder outputs over all tokens, as in JEPA.target_repr."""

        def __init__(self, jepa: JEPA) -> None:
            super().__init__()
            self.target_encoder = jepa.target_encoder

        def forward(
            self,
            values: torch.Tensor,
            observed: torch.Tensor,
            sensor_feats: torch.Tensor,
            time_feats: torch.Tensor,
            token_valid: torch.Tensor,
        ) -> torch.Tensor:
            full = self.target_encoder(values, observed, sensor_feats, time_feats, token_valid)
            return F.layer_norm(full.float(), (full.shape[-1],))  # (B, N, D)

    class PredictorGraph(nn.Module):
        """Context encoder on the context tokens, then the predictor (predict_tokens)."""

        def __init__(self, jepa: JEPA) -> None:
            super().__init__()
            self.encoder = jepa.encoder
            self.predictor = jepa.predictor

        def forward(
            self,
            values: torch.Tensor,
            observed: torch.Tensor,
            sensor_feats: torch.Tensor,
            time_feats: torch.Tensor,
            token_valid: torch.Tensor,
            context: torch.Tensor,
            context_pad: torch.Tensor,
            target: torch.Tensor,
            target_pad: torch.Tensor,
            mask_kind: torch.Tensor,
        ) -> torch.Tensor:
            ctx = self.encoder(
                values, observed, sensor_feats, time_feats, token_valid, context, context_pad
            )  # (B, Nc, D)
            return self.predictor.run(
                ctx, context, context_pad, target, target_pad, mask_kind, sensor_feats, time_feats
            )  # (B, Nt, D)

    return EncoderGraph(model).eval(), PredictorGraph(model).eval()


class TorchEngine:
    """`geojepa.energy.TokenEngine` on PyTorch: the exported modules, run eagerly.

    `device` (None: where the model is): the model is moved there, each call's numpy
    inputs are sent there and its outputs come back as numpy arrays on the CPU.
    """

    def __init__(self, model: JEPA, device: torch.device | None = None) -> None:
        if device is not None:
            model.to(device)
        self.device = next(model.parameters()).device
        # a GPU waits on launches with one window's sweep (C + 1 masks); the CPU gains
        # nothing from more and keeps the per-window calls its figures were measured with
        self.windows_per_call = 16 if self.device.type == "cuda" else 1
        # None, or a dict in which `frame_energy` keeps each window's energy by its inputs
        self.energy_memo: dict[bytes, np.ndarray] | None = None
        self.encoder_graph, self.predictor_graph = _graph_modules(model)
        self.kinds: Mapping[str, int] = mask_kinds()

    def target_repr(self, inputs: TokenInputs) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.encoder_graph(*_tensors(inputs, self.device))
        return out.float().cpu().numpy()

    def predict(
        self,
        inputs: TokenInputs,
        context: np.ndarray,
        context_pad: np.ndarray,
        target: np.ndarray,
        target_pad: np.ndarray,
        mask_kind: np.ndarray,
    ) -> np.ndarray:
        out = run_predictor_graph(
            self.predictor_graph,
            inputs,
            context,
            context_pad,
            target,
            target_pad,
            mask_kind,
            device=self.device,
        )
        return out.float().cpu().numpy()


def run_predictor_graph(
    graph: nn.Module,
    inputs: TokenInputs,
    context: np.ndarray,
    context_pad: np.ndarray,
    target: np.ndarray,
    target_pad: np.ndarray,
    mask_kind: np.ndarray,
    head: nn.Module | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """The predictor graph (and an optional `head` on its output) on numpy inputs, in
    inference mode: (B, Nt, D), or the head's output shape, on `device` (default CPU)."""
    import torch

    extra = [
        torch.from_numpy(np.ascontiguousarray(a)).to(device or "cpu")
        for a in (context, context_pad, target, target_pad, mask_kind)
    ]
    with torch.inference_mode():
        out = graph(*_tensors(inputs, device), *extra)  # (B, Nt, D)
        return head(out) if head is not None else out


def _tensors(inputs: TokenInputs, device: torch.device | None = None) -> list[torch.Tensor]:
    import torch

    return [
        torch.from_numpy(np.ascontiguousarray(a)).to(device or "cpu")
        for a in (
            inputs.values,
            inputs.observed,
            inputs.sensor_feats,
            inputs.time_feats,
            inputs.token_valid,
        )
    ]


# ----------------------------------------------------------------------------- examples
@dataclass(frozen=True)
class GraphShape:
    """A test shape: batch B, sensors C, patches P; Nc / Nt context / target widths."""

    batch: int
    sensors: int
    patches: int

    def label(self) -> str:
        return f"B{self.batch}xC{self.sensors}xP{self.patches}"


PARITY_SHAPES: tuple[GraphShape, ...] = (
    GraphShape(1, 3, 4),
    GraphShape(2, 8, 8),
    GraphShape(3, 32, 16),
)
EXPORT_SHAPE = GraphShape(2, 5, 6)  # traced with odd sizes, so no size is mistaken for another


def example_inputs(
    shape: GraphShape, patch: int, n_sensor_feats: int, n_time_feats: int, seed: int
) -> dict[str, np.ndarray]:
    """Random but well-formed graph inputs of `shape` (some missing cells and padding)."""
    rng = np.random.default_rng(seed)
    b, c, p = shape.batch, shape.sensors, shape.patches
    n = c * p
    length = p * patch
    observed = rng.random((b, c, length)) > 0.15
    observed[:, 0, :] = True  # every window has valid tokens
    values = np.where(observed, rng.normal(size=(b, c, length)), 0.0).astype(np.float32)
    feats = rng.normal(size=(b, c, n_sensor_feats)).astype(np.float32)
    times = rng.normal(size=(b, p, n_time_feats)).astype(np.float32)
    valid = observed.reshape(b, c, p, patch).any(axis=3).reshape(b, n)
    contexts, targets = [], []
    for i in range(b):
        idx = np.flatnonzero(valid[i])
        rng.shuffle(idx)
        k = max(1, len(idx) // 3)
        targets.append(np.sort(idx[:k]))
        contexts.append(np.sort(idx[k:]) if len(idx) > k else np.sort(idx[:1]))
    context, context_pad = pad_index(contexts)
    target, target_pad = pad_index(targets)
    return {
        "values": values,
        "observed": observed,
        "sensor_feats": feats,
        "time_feats": times,
        "token_valid": valid,
        "context": context,
        "context_pad": context_pad,
        "target": target,
        "target_pad": target_pad,
        "mask_kind": rng.integers(0, 5, size=b).astype(np.int64),
    }


# ----------------------------------------------------------------------------- export
def _dynamic_shapes(names: Sequence[str]) -> dict[str, dict[int, Any]]:
    import torch

    dim = torch.export.Dim
    b = dim("batch", min=1, max=4096)
    c = dim("sensors", min=1, max=4096)
    p = dim("patches", min=1, max=4096)
    nc = dim("context", min=1, max=1 << 22)
    nt = dim("targets", min=1, max=1 << 22)
    spec: dict[str, dict[int, Any]] = {
        "values": {0: b, 1: c, 2: dim.AUTO},
        "observed": {0: b, 1: c, 2: dim.AUTO},
        "sensor_feats": {0: b, 1: c},
        "time_feats": {0: b, 1: p},
        "token_valid": {0: b, 1: dim.AUTO},
        "context": {0: b, 1: nc},
        "context_pad": {0: b, 1: nc},
        "target": {0: b, 1: nt},
        "target_pad": {0: b, 1: nt},
        "mask_kind": {0: b},
    }
    return {k: spec[k] for k in names}


def export_graph(
    module: nn.Module,
    inputs: Mapping[str, np.ndarray],
    names: Sequence[str],
    output: str,
    path: Path,
) -> None:
    """Export `module` to ONE .onnx file at `path` (opset OPSET, dynamic axes), then check it."""
    import onnx
    import torch

    args = tuple(torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in names)
    table: dict[Callable[..., Any], Callable[..., Any]] = {
        torch.ops.aten.remainder.Scalar: _remainder_scalar,
        torch.ops.aten.scaled_dot_product_attention.default: _attention,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on axis names and deprecations
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=list(names),
            output_names=[output],
            dynamic_shapes=_dynamic_shapes(names),
            opset_version=OPSET,
            external_data=False,
            dynamo=True,
            verbose=False,
            custom_translation_table=table,
        )
    sidecars = [p.name for p in path.parent.iterdir() if p.name.startswith(path.name + ".")]
    if sidecars:
        raise RuntimeError(f"the exporter wrote sidecar files {sidecars}: expected one file")
    onnx.checker.check_model(str(path), full_check=True)


def _remainder_scalar(self: Any, other: Any) -> Any:
    """aten.remainder.Scalar when the divisor is a symbolic size (e.g. the number of
    patches): the stock translation wants a Python int there. ONNX Mod with fmod=0 has
    Python's sign convention, like torch.remainder."""
    from onnxscript import opset18 as op

    return op.Mod(self, op.CastLike(other, self))


def _attention(
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Any:
    """aten.scaled_dot_product_attention without the stock translation's NaN guard.

    The stock graph masks with the dtype's lowest value and then replaces NaN weights by 0
    with an IsNaN + Where over the whole (B, H, N, N) weight tensor. With a finite mask
    value a softmax row cannot be NaN, and `geojepa.layers` gives every query at least one
    allowed key, so the guard only costs time; parity with PyTorch is checked on export.
    """
    from onnxscript import ir, opset18

    op: Any = opset18  # the op stubs' strict dtype unions do not follow traced tensors
    if is_causal or enable_gqa or dropout_p:
        raise NotImplementedError("causal, grouped-query or dropout attention is not exported")
    if scale is None:
        dh = op.CastLike(op.Shape(query, start=-1), query)  # (1,)
        factor = op.Div(op.CastLike(op.Constant(value_float=1.0), query), op.Sqrt(dh))
    else:
        factor = op.CastLike(op.Constant(value_float=float(scale)), query)
    scores = op.Mul(op.MatMul(query, op.Transpose(key, perm=[0, 1, 3, 2])), factor)
    if attn_mask is not None:
        if attn_mask.dtype == ir.DataType.BOOL:
            zero = op.Constant(value=ir.tensor(0.0, dtype=query.dtype))
            low = op.Constant(value=ir.tensor(query.dtype.min, dtype=query.dtype))
            attn_mask = op.Where(attn_mask, zero, low)  # on the mask's own (small) shape
        scores = op.Add(scores, attn_mask)
    return op.MatMul(op.Softmax(scores, axis=-1), value)


def session(path: str | Path, threads: int = 1) -> Any:
    """An onnxruntime CPU session with `threads` intra-op threads."""
    import onnxruntime as ort

    from geojepa.edge.score import session_options

    return ort.InferenceSession(
        str(path), session_options(threads), providers=["CPUExecutionProvider"]
    )


@dataclass(frozen=True)
class ParityResult:
    """One graph at one shape: max |onnxruntime - torch| over valid output rows."""

    graph: str
    shape: str
    max_abs_diff: float

    def to_dict(self) -> dict[str, Any]:
        return {"graph": self.graph, "shape": self.shape, "max_abs_diff": self.max_abs_diff}


def check_parity(
    graphs: Mapping[str, tuple[nn.Module, Any]],
    patch: int,
    n_sensor_feats: int,
    n_time_feats: int,
    shapes: Sequence[GraphShape] = PARITY_SHAPES,
    seed: int = 0,
) -> list[ParityResult]:
    """Compare each (torch module, onnxruntime session) pair at every shape.

    Only rows that are not padding are compared (padding outputs are unused by design).
    """
    import torch

    results = []
    for i, shape in enumerate(shapes):
        x = example_inputs(shape, patch, n_sensor_feats, n_time_feats, seed + i)
        for name, (module, sess) in graphs.items():
            names = [inp.name for inp in sess.get_inputs()]
            with torch.inference_mode():
                ref = module(*[torch.from_numpy(x[n]) for n in names]).float().numpy()
            got = sess.run(None, {n: x[n] for n in names})[0]
            keep = x["token_valid"] if name == "encoder" else ~x["target_pad"]  # (B, rows)
            diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))[keep]
            worst = float(diff.max()) if diff.size else 0.0
            if not np.isfinite(got[keep]).all():
                worst = float("inf")
            results.append(ParityResult(name, shape.label(), worst))
    return results


# ----------------------------------------------------------------------------- int8
def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantisation of the weights of MatMul/Gemm (onnxruntime.quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice on the root logger
    try:
        quantize_dynamic(
            str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"]
        )
    finally:
        root.setLevel(level)


def time_call(fn: Callable[[], object], repeats: int, warmup: int = 1) -> np.ndarray:
    """Seconds per call over `repeats` calls after `warmup` calls: (repeats,)."""
    for _ in range(warmup):
        fn()
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two 1-D arrays (finite pairs only; average ranks)."""
    import pandas as pd

    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3:
        return float("nan")
    ra = pd.Series(a[keep]).rank().to_numpy()
    rb = pd.Series(b[keep]).rank().to_numpy()
    return float(np.corrcoef(ra, rb)[0, 1])


# ----------------------------------------------------------------------------- calibration
def fit_calibration(
    engine: TokenEngine,
    frame: SensorFrame,
    normaliser: Normaliser,
    window: WindowSpec,
    spec: EnergySpec,
    train_end: int,
    protocol: Protocol | None = None,
    density: DensityModel | None = None,
    train_raw: np.ndarray | None = None,
) -> Calibration:
    """Score statistics and TARP thresholds from the training rows (< train_end) only.

    The raw score is the energy, or with `density` the embedding density
    (`geojepa.density_score.frame_density`); `train_raw` (train_end, C), when given, are
    the training rows' raw scores to calibrate on instead of scoring them here (the
    density's cross-fitted scores: `geojepa.density_score.fit_density`). The per-sensor
    centre and scale come from the
    detectors' `SensorwiseDetector` fit (the same normalisation every detector of
    ``geojepa detect`` uses); the amber / red thresholds from
    `geojepa.evaluate.calibrate_policy` on the training per-time scores.
    """
    from geojepa.detectors.base import SensorwiseDetector
    from geojepa.evaluate import Protocol as _Protocol
    from geojepa.evaluate import calibrate_policy
    from geojepa.thresholds import TrainingScores

    def raw_scores(f: SensorFrame) -> np.ndarray:
        if density is not None:
            return frame_density(engine, f, normaliser, window, density)
        return frame_energy(engine, f, normaliser, window, spec)

    class _Energy(SensorwiseDetector):
        leave_out_unseen = True  # a gauge installed after the training period: not scored

        def _fit_train(self, train: SensorFrame) -> np.ndarray:
            self.raw_train_ = raw_scores(train) if train_raw is None else train_raw
            return self.raw_train_  # (T_train, C)

        def _raw(self, frame: SensorFrame) -> np.ndarray:
            return raw_scores(frame)

    det = _Energy().fit(frame, train_end)
    centre = np.asarray(det.centre_, dtype=np.float64)
    scale = np.asarray(det.scale_, dtype=np.float64)
    normalised = (det.raw_train_ - centre[None, :]) / scale[None, :]  # (T_train, C)
    context = context_scores(normalised, frame.observed[:train_end], frame)
    scored = None if context is None else np.isnan(context)
    score = scored_row_max(with_context(normalised, context), scored)  # (T_train,)
    policy = calibrate_policy(TrainingScores.from_scores(score, train_end), protocol or _Protocol())
    # A quantile of training scores often IS a training score (several rows share one
    # window's energy; a sensor's q99 scales to exactly 1.0). Lift each threshold by
    # TIE_MARGIN (relative) so two engines whose normalised scores agree to ~1e-5 (torch
    # and onnxruntime) cannot disagree on an alarm at such a tie; export_run checks that
    # the measured disagreement stays well below the lift.
    policy = replace(policy, amber=_lift(policy.amber), red=_lift(policy.red))
    return Calibration(centre, scale, policy, context_score=context)


def context_scores(
    train: np.ndarray, observed: np.ndarray, frame: SensorFrame
) -> np.ndarray | None:
    """(C,) the score each forcing sensor's cells get (its median normalised training score
    over observed cells, as `geojepa.detectors.response.ResponseOnly` gives it), NaN for
    the sensors that are scored; None when no sensor is a forcing one, or every sensor is
    (then nothing would be scored: every sensor is, with a warning).
    train (T_train, C) normalised training scores; observed (T_train, C)."""
    from geojepa.detectors.response import FORCING_KINDS, forcing_mask, resting_scores

    forcing = forcing_mask(frame)
    if not forcing.any():
        return None
    if forcing.all():
        log.warning(
            "every sensor is a forcing sensor (%s): all are scored", ", ".join(FORCING_KINDS)
        )
        return None
    return resting_scores(train, observed, forcing)


def _lift(threshold: float) -> float:
    return float(threshold + TIE_MARGIN * max(1.0, abs(threshold)))


# ----------------------------------------------------------------------------- run export
@dataclass(frozen=True)
class ExportReport:
    """What `export_run` measured: parity per graph and shape, the parity of the bundle's
    score on real windows (the energy's in an energy bundle, the density's in a density
    bundle; the other is None), that score's parity on the alarm scale, file sizes, and
    the int8 decision with its numbers."""

    parity: tuple[ParityResult, ...]
    energy_max_abs_diff: float | None
    score_max_abs_diff: float
    bytes: Mapping[str, int]
    quantization: Mapping[str, Any]
    score: str = DEFAULT_SCORE
    density_max_abs_diff: float | None = None


def _windows_of(
    frame: SensorFrame, normaliser: Normaliser, window: WindowSpec, n: int, seed: int
) -> list[Window]:
    """Up to n windows of `frame` at random aligned ends (for the energy checks)."""
    rng = np.random.default_rng(seed)
    span = window.span(window.scales[0])
    ends = np.arange(min(span, frame.n_times), frame.n_times + 1)
    pick = np.sort(rng.choice(ends, size=min(n, len(ends)), replace=False))
    return [window_at(frame, normaliser, window, int(e), scale=window.scales[0]) for e in pick]


def _window_scores(
    engine: TokenEngine,
    window: Window,
    patch: int,
    spec: EnergySpec,
    density: DensityModel | None = None,
) -> np.ndarray:
    """Raw scores of one window's scored cells: its energy (C, recent), or with `density`
    the density of each sensor's last patch (C, 1), as the scorers compute them."""
    if density is None:
        return window_energy(engine, window, patch, spec)
    return density.score(window_embeddings(engine, [window], patch)).T  # (1, C) -> (C, 1)


def _check_scores(
    engine: TokenEngine,
    windows: Sequence[Window],
    patch: int,
    spec: EnergySpec,
    density: DensityModel | None = None,
) -> np.ndarray:
    """`_window_scores` of every window, raveled: (W * C * recent,), or (W * C,) with
    `density`."""
    return np.concatenate(
        [_window_scores(engine, w, patch, spec, density).ravel() for w in windows]
    )


def _delta(a: np.ndarray, b: np.ndarray, what: str) -> np.ndarray:
    """|a - b| where both are finite (0 elsewhere); refuses differing NaN patterns."""
    if not np.array_equal(np.isfinite(a), np.isfinite(b)):
        raise GeoJEPAError(f"ONNX {what} is NaN where torch's is not (or the reverse)")
    return np.where(np.isfinite(a) & np.isfinite(b), np.abs(a - b), 0.0)


def _per_time(calibration: Calibration, energies: np.ndarray, n_windows: int) -> np.ndarray:
    """Per-time scores (n_windows * recent,) from `_check_scores`' cells (per window: C sensors
    x recent patches, raveled), as the scorer makes them."""
    c = calibration.centre.size
    e = energies.reshape(n_windows, c, -1).transpose(0, 2, 1).reshape(-1, c)  # (W * r, C)
    return calibration.per_time(calibration.sensor_scores(e))


def _scored_cells(windows: Sequence[Window], scored: np.ndarray | None, n: int) -> np.ndarray:
    """(n,) bool over `_check_scores`' cells (per window: C sensors x recent patches, raveled):
    True where the sensor is scored."""
    if scored is None:
        return np.ones(n, dtype=bool)
    per_window = n // max(len(windows), 1)
    recent = per_window // max(scored.size, 1)
    return np.tile(np.repeat(scored, recent), len(windows))


def export_run(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    site: Site | None = None,
    calibration: Calibration | None = None,
    energy: EnergySpec | None = None,
    score: str = DEFAULT_SCORE,
    int8: str = "auto",
    check_windows: int = 12,
    seed: int = 0,
) -> ExportReport:
    """Export RUN to DIR: graphs, metadata, parity. `int8`: "auto" | "off" | "force".

    `score`: what the bundle's alarms are calibrated on, "energy" or "density"
    (`geojepa.detect.SCORES`). The calibration comes from `calibration` (energy only),
    else is fitted on `site`'s training period (rows before the run's train_end) by
    `geojepa.detect.prepare_detect`, as ``geojepa detect --score SCORE`` fits it; for the
    density that also fits the density itself (written as ``density.npz``). One of them is
    required. `site` also gives the real windows on which torch and onnxruntime scores are
    compared (else random well-formed inputs are used).
    """
    from geojepa.checkpoint import load_run
    from geojepa.edge.score import OnnxEngine

    if int8 not in ("auto", "off", "force"):
        raise InputError(f"unknown int8 mode {int8!r}", hint="use auto, off or force")
    if score not in SCORES:
        raise InputError(f"unknown score {score!r}", hint="use " + " or ".join(SCORES))
    if score != "energy" and calibration is not None:
        raise InputError(
            f"a {score} export fits its own calibration (with the {score}); none can be given",
            file=run_dir,
            hint="pass the training site instead (--site SITE)",
        )
    run = load_run(run_dir)
    model = run.model.eval()
    mc = run.config.model
    window = run.config.window
    spec = energy or EnergySpec()
    sensor_ids = list(run.normaliser.sensor_ids)
    torch_engine = TorchEngine(model)
    # the calibration scores the training period's windows; the int8 check scores the
    # whole site again with torch (detect's scores): each window is scored once
    torch_engine.energy_memo = {}
    frame = None
    density: DensityModel | None = None
    if calibration is None:
        if site is None:
            raise InputError(
                f"export needs the {score} thresholds of the training period",
                file=run_dir,
                hint="pass --site SITE (the training site) so they can be fitted",
            )
        log.info("fitting the %s calibration on the training period", score)
        # the code of `geojepa detect`
        setup = prepare_detect(run, site, spec, score, engine=torch_engine)
        frame, calibration, density = setup.frame, setup.calibration, setup.density
    elif site is not None:
        frame = to_frame(site, interval=run.interval, sensor_ids=sensor_ids)
    encoder_graph, predictor_graph = torch_engine.encoder_graph, torch_engine.predictor_graph
    x = example_inputs(EXPORT_SHAPE, mc.patch, mc.n_sensor_feats, mc.n_time_feats, seed)
    modules = {"encoder": encoder_graph, "predictor": predictor_graph}
    io_names = {"encoder": (ENCODER_INPUTS, "repr"), "predictor": (PREDICTOR_INPUTS, "pred")}
    with atomic_dir(out_dir) as tmp:
        # the graphs this score needs: a density bundle has no predictor (SCORE_GRAPHS)
        paths = {k: tmp / GRAPH_FILES[k] for k in SCORE_GRAPHS[score]}
        for k, path in paths.items():
            log.info("exporting the %s graph", k)
            export_graph(modules[k], x, io_names[k][0], io_names[k][1], path)
        pairs = {k: (modules[k], session(path)) for k, path in paths.items()}
        parity = check_parity(pairs, mc.patch, mc.n_sensor_feats, mc.n_time_feats, seed=seed)
        worst = max(r.max_abs_diff for r in parity)
        if not worst <= PARITY_TOL:
            bad = [r for r in parity if not r.max_abs_diff <= PARITY_TOL]
            raise GeoJEPAError(
                f"ONNX parity failed: max |delta| {worst:.3g} > {PARITY_TOL:g} at "
                + ", ".join(f"{r.graph} {r.shape}" for r in bad)
            )
        graphs = {
            k: GraphFile(
                name=k,
                file=paths[k].name,
                sha256=sha256_file(paths[k]),
                bytes=paths[k].stat().st_size,
                inputs=io_names[k][0],
                outputs=(io_names[k][1],),
            )
            for k in paths
        }
        density_file = None
        if density is not None:
            density.save(tmp / DENSITY_FILE)
            density_file = DataFile.of(tmp / DENSITY_FILE)
        meta = ExportMeta(
            graphs=graphs,
            opset=OPSET,
            normaliser=run.normaliser.to_dict(),
            sensors=_sensor_records(run.sensors, sensor_ids),
            interval_seconds=float(run.interval.total_seconds()),
            window=window.to_dict(),
            model=mc.to_dict(),
            energy={"spec": spec.to_dict(), "kinds": torch_engine.kinds},
            alarms=calibration.to_dict(),
            train_end=run.train_end.isoformat(),
            geojepa_version=__version__,
            score=score,
            density=density_file,
        )
        write_meta(tmp, meta)
        # torch == onnxruntime on real (or example) windows, through the shared scoring code
        checks = _check_windows(
            frame, meta.sensors_frame(), run.normaliser, window, mc, check_windows, seed
        )
        onnx_engine = OnnxEngine(tmp, meta)
        energy_diff = density_diff = None
        checked = []
        if density is None:  # the bundle's score is the energy
            e_torch = _check_scores(torch_engine, checks, mc.patch, spec)
            e_onnx = _check_scores(onnx_engine, checks, mc.patch, spec)
            delta = _delta(e_torch, e_onnx, "energy")
            energy_diff = float(delta.max()) if delta.size else 0.0
            checked.append(
                {"graph": "energy", "shape": f"{len(checks)} windows", "max_abs_diff": energy_diff}
            )
        else:  # the bundle's score is the density
            e_torch = _check_scores(torch_engine, checks, mc.patch, spec, density)
            e_onnx = _check_scores(onnx_engine, checks, mc.patch, spec, density)
            delta = _delta(e_torch, e_onnx, "density")
            density_diff = float(delta.max()) if delta.size else 0.0
            checked.append(
                {
                    "graph": "density",
                    "shape": f"{len(checks)} windows",
                    "max_abs_diff": density_diff,
                }
            )
        # on the alarm scale: per-sensor score / its training spread; (W*C*r,) -> (W, C, r)
        n_sensors = len(sensor_ids)
        scaled = delta.reshape(len(checks), n_sensors, -1) / calibration.scale[None, :, None]
        score_diff = float(scaled.max()) if scaled.size else 0.0
        if score_diff > TIE_MARGIN / 10:
            log.warning(
                "torch and onnxruntime scores differ by up to %.2g on the alarm scale, near the "
                "threshold lift %.2g: an alarm exactly at a threshold may differ",
                score_diff,
                TIE_MARGIN,
            )
        site_check = None
        if site is not None and frame is not None and frame.n_times > 0 and int8 != "off":
            log.info("scoring site %s with torch (detect's scores) for the int8 check", site.name)
            reference = score_with(
                torch_engine, frame, run.normaliser, window, spec, calibration, density
            )
            site_check = SiteCheck(
                site.name, frame, run.normaliser, window, spec, calibration, density, reference
            )
        quant = _maybe_int8(
            tmp,
            meta,
            graphs,
            checks,
            mc.patch,
            spec,
            e_onnx,
            int8,
            calibration,
            density,
            site_check=site_check,
        )
        meta = replace(
            meta,
            graphs=quant.pop("graphs"),
            quantization=quant,
            parity=[r.to_dict() for r in parity]
            + checked
            + [{"graph": "score", "shape": f"{len(checks)} windows", "max_abs_diff": score_diff}],
        )
        write_meta(tmp, meta)
        sizes = {p.name: p.stat().st_size for p in tmp.iterdir()}
    log.info("export written to %s (parity max |delta| %.2g)", out_dir, worst)
    return ExportReport(
        tuple(parity), energy_diff, score_diff, sizes, meta.quantization, score, density_diff
    )


def _sensor_records(sensors: pd.DataFrame, ids: Sequence[str]) -> list[dict[str, Any]]:
    """The sensors table as JSON records in the model's order (positions None if unknown)."""
    rows = {str(r["id"]): r for r in sensors.to_dict("records")}
    out = []
    for sid in ids:
        row = rows.get(sid, {})
        rec: dict[str, Any] = {"id": sid}
        for k in ("kind", "unit", "group"):
            v = row.get(k, "")
            rec[k] = "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else str(v)
        for k in ("x", "y", "z"):
            try:
                x = float(row.get(k))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                x = float("nan")
            rec[k] = x if np.isfinite(x) else None
        out.append(rec)
    return out


def _check_windows(
    frame: SensorFrame | None,
    sensors: pd.DataFrame,
    normaliser: Normaliser,
    window: WindowSpec,
    mc: Any,
    n: int,
    seed: int,
) -> list[Window]:
    """Windows for the energy checks: `frame`'s when given, else random values over the
    run's sensors (their real codes) on an hourly grid."""
    if frame is not None and frame.n_times > 0:
        return _windows_of(frame, normaliser, window, n, seed)
    feats = sensor_features(sensors)  # (C, F)
    times = np.datetime64("2024-01-01T00:00", "ns") + np.arange(window.length) * np.timedelta64(
        1, "h"
    )
    tfeats = time_features(times, window.patch)  # (P, Ft)
    out = []
    for i in range(n):
        x = example_inputs(
            GraphShape(1, len(sensors), window.n_patches),
            mc.patch,
            mc.n_sensor_feats,
            mc.n_time_feats,
            seed + 100 + i,
        )
        out.append(
            Window(
                values=x["values"][0],
                observed=x["observed"][0],
                sensor_feats=feats,
                time_feats=tfeats,
                start=0,
            )
        )
    return out


@dataclass(frozen=True)
class SiteCheck:
    """A site on the run's grid with what scoring it needs, and ``geojepa detect``'s scores
    of it (`reference`: torch, the same `score_with`): what an int8 bundle must agree
    with to become the gateway's default."""

    name: str
    frame: SensorFrame
    normaliser: Normaliser
    window: WindowSpec
    spec: EnergySpec
    calibration: Calibration
    density: DensityModel | None
    reference: Scores

    def scores(self, engine: TokenEngine) -> Scores:
        """Every grid time of the site scored with `engine`, as detect scores it."""
        return score_with(
            engine,
            self.frame,
            self.normaliser,
            self.window,
            self.spec,
            self.calibration,
            self.density,
        )


@dataclass(frozen=True)
class Agreement:
    """How int8 scores agree with the reference: the smaller Spearman of the per-time
    scores and of the scored sensors' scores (NaN when `lost`), the scores NaN in one
    only (`lost`), grid times compared and alarm levels that differ."""

    spearman: float
    lost: int
    rows: int
    alarms_differing: int = 0


def site_agreement(reference: Scores, got: Scores, calibration: Calibration) -> Agreement:
    """`got`'s agreement with `reference` over every grid time of a site: the per-time
    score and the scored sensors' scores (a forcing sensor read as context gets one
    constant score: it would vouch for nothing), NaN patterns and alarm labels."""
    scored = (
        np.ones(reference.sensor.shape[1], dtype=bool)
        if calibration.context_score is None
        else np.isnan(calibration.context_score)
    )
    ref_cells = reference.sensor[:, scored].ravel()  # (T * C_scored,)
    got_cells = got.sensor[:, scored].ravel()
    lost = int(np.sum(np.isfinite(ref_cells) != np.isfinite(got_cells)))
    lost += int(np.sum(np.isfinite(reference.score) != np.isfinite(got.score)))
    # NaN (too few scores to rank) in either fails the check: np.min keeps a NaN
    rho = float(np.min([spearman(ref_cells, got_cells), spearman(reference.score, got.score)]))
    differing = int(np.sum(alarm_labels(reference) != alarm_labels(got)))
    return Agreement(float("nan") if lost else rho, lost, len(reference.score), differing)


def _window_agreement(
    e_fp32: np.ndarray,
    e_int8: np.ndarray,
    windows: Sequence[Window],
    calibration: Calibration | None,
) -> Agreement:
    """Agreement of int8 with fp32 scores on `_check_scores`' cells (no site given): the
    scored sensors' cells and, with a `calibration`, the per-time scores."""
    scored = (
        None
        if calibration is None or calibration.context_score is None
        else np.isnan(calibration.context_score)
    )
    keep_cells = _scored_cells(windows, scored, e_fp32.size)
    rho = spearman(e_fp32[keep_cells], e_int8[keep_cells])
    # the rank correlation reads only cells both score: a score int8 loses (NaN where fp32
    # has one) or makes up must fail the check on its own
    lost = int(np.sum(np.isfinite(e_fp32[keep_cells]) != np.isfinite(e_int8[keep_cells])))
    if calibration is not None:
        per_time = spearman(
            _per_time(calibration, e_fp32, len(windows)),
            _per_time(calibration, e_int8, len(windows)),
        )
        rho = float(np.min([rho, per_time]))  # a NaN in either fails the check
    return Agreement(float("nan") if lost else rho, lost, len(windows))


def _maybe_int8(
    folder: Path,
    meta: ExportMeta,
    graphs: Mapping[str, GraphFile],
    windows: Sequence[Window],
    patch: int,
    spec: EnergySpec,
    e_fp32: np.ndarray,
    mode: str,
    calibration: Calibration | None = None,
    density: DensityModel | None = None,
    *,
    site_check: SiteCheck | None = None,
) -> dict[str, Any]:
    """Quantise, measure speed and score agreement; keep int8 files only where they help.

    The scores are the bundle's: the energy, or with `density` the embedding density;
    speed is one window's score. Agreement, with a `site_check`: int8's scores of every
    grid time of the site against ``geojepa detect``'s (`site_agreement`); without one,
    on `windows` against fp32's (`e_fp32`: fp32 onnxruntime scores of `windows`,
    `_check_scores`), and int8 is then never the default. Both the scored sensors' scores
    (a forcing sensor read as context never reaches a score, so its scores, often the
    largest, must not vouch for the others') and the per-time scores the alarms read must
    reach `INT8_MIN_SPEARMAN`, and int8 must score exactly the cells the reference scores
    (a NaN in one only fails). int8 is the default ("recommended") only when it is also
    faster by `INT8_MIN_SPEEDUP`; "force" keeps the files of an int8 that agrees but is
    not faster (the gateway then runs it with ``--int8`` only)."""
    from geojepa.edge.score import OnnxEngine

    if mode == "off":
        return {
            "graphs": dict(graphs),
            "offered": False,
            "recommended": False,
            "reason": "not requested",
        }
    if site_check is None and mode == "auto":
        return {
            "graphs": dict(graphs),
            "offered": False,
            "recommended": False,
            "reason": "no site to check int8's scores against detect's on: fp32 stays the "
            "default (export with --site SITE)",
        }
    new = {}
    for k, g in graphs.items():
        dst = folder / g.file.replace(".onnx", ".int8.onnx")
        quantize_int8(folder / g.file, dst)
        new[k] = replace(g, int8_file=dst.name, int8_sha256=sha256_file(dst))
    q_meta = replace(meta, graphs=new)
    fp32 = OnnxEngine(folder, meta)
    q8 = OnnxEngine(folder, q_meta, int8=True)
    if site_check is not None:
        log.info("scoring site %s with the int8 graphs", site_check.name)
        agreement = site_agreement(
            site_check.reference, site_check.scores(q8), site_check.calibration
        )
        where = f"the {agreement.rows} grid times of site {site_check.name!r}"
        against = "detect's scores"
    else:
        e_int8 = _check_scores(q8, windows, patch, spec, density)
        agreement = _window_agreement(e_fp32, e_int8, windows, calibration)
        where = f"{agreement.rows} example windows (no site given)"
        against = "fp32's scores"
    rho = agreement.spearman
    w = windows[0]
    runs: dict[str, list[float]] = {"fp32": [], "int8": []}
    for _ in range(INT8_TIMING_ROUNDS):  # interleaved, so drift on a busy machine hits both
        for name, eng in (("fp32", fp32), ("int8", q8)):

            def one(e: TokenEngine = eng) -> object:
                return _window_scores(e, w, patch, spec, density)

            runs[name].extend(time_call(one, 1).tolist())
    t_fp32 = float(np.median(runs["fp32"]))
    t_int8 = float(np.median(runs["int8"]))
    speedup = t_fp32 / t_int8 if t_int8 > 0 else float("nan")
    fp32_bytes = sum(g.bytes for g in graphs.values())
    int8_bytes = sum((folder / str(g.int8_file)).stat().st_size for g in new.values())
    agrees = rho >= INT8_MIN_SPEARMAN
    helps = site_check is not None and agrees and speedup >= INT8_MIN_SPEEDUP
    keep = helps or (mode == "force" and agrees)
    if helps:
        reason = (
            f"faster ({speedup:.2f}x) and its scores agree with {against} on {where}: "
            f"Spearman {rho:.4f} >= {INT8_MIN_SPEARMAN}"
        )
        if agreement.alarms_differing:
            reason += f"; {agreement.alarms_differing} of {agreement.rows} alarm levels differ"
    elif agreement.lost:
        reason = (
            f"{agreement.lost} score(s) NaN in one of int8 and {against} only, on {where}: "
            "fp32 stays the default"
        )
    elif not agrees:
        reason = (
            f"Spearman {rho:.4f} < {INT8_MIN_SPEARMAN} with {against} on {where}: fp32 "
            "stays the default"
        )
    elif site_check is None:
        reason = (
            f"Spearman {rho:.4f} with {against} on {where}; not measured on a site: fp32 "
            "stays the default"
        )
    else:
        reason = (
            f"speed-up {speedup:.2f}x < {INT8_MIN_SPEEDUP}x (Spearman {rho:.4f} with "
            f"{against} on {where}): fp32 stays the default"
        )
    if not keep:
        for g in new.values():
            (folder / str(g.int8_file)).unlink()
        new = dict(graphs)
    (log.info if agrees else log.warning)(
        "int8 (speed-up %.2fx) %s: %s",
        speedup,
        "offered" if keep else "not offered",
        reason,
    )
    return {
        "graphs": new,
        "offered": keep,
        "recommended": helps,
        "reason": reason,
        "speedup": speedup,
        "spearman": rho,
        "min_spearman": INT8_MIN_SPEARMAN,
        "checked_on": where,
        "rows": agreement.rows,
        "alarms_differing": agreement.alarms_differing,
        "fp32_seconds_per_window": t_fp32,
        "int8_seconds_per_window": t_int8,
        "fp32_bytes": fp32_bytes,
        "int8_bytes": int8_bytes,
    }
