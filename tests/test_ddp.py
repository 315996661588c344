"""Data parallel training: one process never opens a process group; under torchrun the
backend follows the training device (gloo on the CPU, nccl on GPUs); torchrun (gloo, CPU)
with 2 processes follows the same loss curve as one process on the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from geojepa.distributed import DistInfo, init_from_env, rank_slice
from geojepa.errors import InputError
from geojepa.train import pretrain
from test_train import small_config, toy_site

TESTS = Path(__file__).resolve().parent


class _Opened(Exception):
    """Raised by the patched init_process_group: the test stops once the group is asked for."""


@pytest.mark.parametrize(
    ("device", "backend", "gpu"), [("cpu", "gloo", None), ("auto", "nccl", 1), ("cuda", "nccl", 1)]
)
def test_torchrun_backend_follows_the_training_device(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    device: str,
    backend: str,
    gpu: int | None,
) -> None:
    # a machine with two GPUs (pretended): a CPU run keeps gloo, nccl reducing CUDA tensors
    # only; a GPU run uses nccl and each process takes the GPU of its local rank
    for key, value in (("WORLD_SIZE", "2"), ("RANK", "1"), ("LOCAL_RANK", "1")):
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    chosen: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    seen: dict[str, object] = {}

    def opened(**kw: object) -> None:
        seen.update(kw)
        raise _Opened

    monkeypatch.setattr(dist, "init_process_group", opened)
    with pytest.raises(_Opened):
        pretrain([toy_site()], tmp_path / "r", small_config(steps=2), device=device)
    assert seen == {"backend": backend}
    assert chosen == ([] if gpu is None else [torch.device("cuda", gpu)])


def test_init_from_env_opens_the_group_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in (("WORLD_SIZE", "2"), ("RANK", "1"), ("LOCAL_RANK", "1")):
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    seen: dict[str, object] = {}
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: seen.update(kw))
    info = init_from_env()
    assert seen == {"backend": "gloo"}  # the default: the CPU's
    assert (info.rank, info.world_size, info.backend, info.opened_here) == (1, 2, "gloo", True)


def test_single_process_never_opens_a_process_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("init_process_group called on the single-process path")

    monkeypatch.setattr(dist, "init_process_group", refuse)
    assert init_from_env() == DistInfo()
    pretrain(
        [toy_site()], tmp_path / "r", small_config(steps=2), tracking_uri="none", progress=False
    )
    assert not dist.is_initialized()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not init_from_env().distributed


def test_rank_slices_cover_the_global_batch() -> None:
    parts = [rank_slice(8, DistInfo(rank=r, world_size=4)) for r in range(4)]
    assert [list(range(8))[p] for p in parts] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    with pytest.raises(InputError, match="does not divide"):
        rank_slice(6, DistInfo(rank=0, world_size=4))


SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_train import small_config, toy_site
from geojepa.train import pretrain
cfg = small_config(steps=5, batch_size=4, eval_every=5, checkpoint_every=5)
pretrain([toy_site()], sys.argv[1], cfg, tracking_uri="none", progress=False)
"""


def _losses(run: Path) -> list[float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [float(r["loss"]) for r in rows if r["kind"] == "train"]


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(tmp_path: Path) -> None:
    script = tmp_path / "ddp_run.py"
    script.write_text(textwrap.dedent(SCRIPT.format(tests=str(TESTS))))
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            str(tmp_path / "ddp"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = small_config(steps=5, batch_size=4, eval_every=5, checkpoint_every=5)
    pretrain([toy_site()], tmp_path / "one", cfg, tracking_uri="none", progress=False)
    two, one = _losses(tmp_path / "ddp"), _losses(tmp_path / "one")
    assert len(one) == len(two) == 5
    assert two == pytest.approx(one, rel=1e-4, abs=1e-5)
    a = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)["model"]
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    print(
        f"DDP vs one process: max |loss diff| {max(abs(x - y) for x, y in zip(one, two, strict=True)):.2e}, max |weight diff| {worst:.2e}"
    )
    assert worst < 1e-4


@pytest.mark.parametrize("name", ["WORLD_SIZE", "LOCAL_RANK"])
def test_a_garbled_launcher_variable_is_bad_input(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    from geojepa.distributed import env_local_rank, env_world_size

    monkeypatch.setenv(name, "two")
    read = env_world_size if name == "WORLD_SIZE" else env_local_rank
    with pytest.raises(InputError, match=f"{name}='two' is not a number") as info:
        read()
    assert name in (info.value.hint or "")
