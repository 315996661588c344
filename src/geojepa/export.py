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
the same two functions.

Guarantees: each graph is ONE file (weights inside, no ``.onnx.data`` sidecar), opset
`OPSET`, batch, sensor, time and token axes dynamic; ``onnx.checker`` (full check) passes;
`check_parity` compares onnxruntime with PyTorch at several shapes and `export_run` refuses
to finish when fp32 max |delta| exceeds `PARITY_TOL`; an int8 variant is offered only when
it is measurably faster and its energy scores keep Spearman >= `INT8_MIN_SPEARMAN` with
fp32; the output folder appears whole or not at all.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geojepa.energy import TokenInputs

if TYPE_CHECKING:
    import torch
    from torch import nn

    from geojepa.jepa import JEPA

log = logging.getLogger(__name__)

OPSET = 18
PARITY_TOL = 1e-4
INT8_MIN_SPEARMAN = 0.99
INT8_MIN_SPEEDUP = 1.15
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
    """`geojepa.energy.TokenEngine` on PyTorch: the exported modules, run eagerly."""

    def __init__(self, model: JEPA) -> None:
        self.encoder_graph, self.predictor_graph = _graph_modules(model)
        self.kinds = mask_kinds()

    def target_repr(self, inputs: TokenInputs) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.encoder_graph(*_tensors(inputs))
        return out.float().numpy()

    def predict(
        self,
        inputs: TokenInputs,
        context: np.ndarray,
        context_pad: np.ndarray,
        target: np.ndarray,
        target_pad: np.ndarray,
        mask_kind: np.ndarray,
    ) -> np.ndarray:
        import torch

        extra = [
            torch.from_numpy(np.ascontiguousarray(a))
            for a in (context, context_pad, target, target_pad, mask_kind)
        ]
        with torch.inference_mode():
            out = self.predictor_graph(*_tensors(inputs), *extra)
        return out.float().numpy()


def _tensors(inputs: TokenInputs) -> list[torch.Tensor]:
    import torch

    return [
        torch.from_numpy(np.ascontiguousarray(a))
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
    from geojepa.energy import pad_index

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
        torch.ops.aten.remainder.Scalar: _remainder_scalar
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


def session(path: str | Path, threads: int = 1) -> Any:
    """An onnxruntime CPU session with `threads` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


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

    quantize_dynamic(
        str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"]
    )


def time_call(fn: Callable[[], object], repeats: int) -> np.ndarray:
    """Seconds per call over `repeats` calls after 2 warm-ups: (repeats,)."""
    for _ in range(2):
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
