"""Where the model computes (`--device`): parsing, refusals, and the same run on a GPU.

The CPU tests run everywhere. The CUDA tests run only where torch sees a GPU (never in CI):
one training step on the GPU against the same step on the CPU, a pretraining run on the GPU
whose checkpoint is read and embedded on the CPU, an exact resume on the GPU, a GPU run
resumed on the CPU, and `detect` (energy and density) on the GPU against the CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from geojepa.checkpoint import load_run, read_checkpoint
from geojepa.devices import autocast_type, resolve_device, rng_devices
from geojepa.distributed import backend_for
from geojepa.errors import InputError
from geojepa.site import Site
from geojepa.train import pretrain
from test_cli_train import _pretrain
from test_train import small_config, toy_site

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this torch sees a GPU")


def test_cpu_is_named_and_auto_parses() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected


@pytest.mark.parametrize("spec", ["tpu", "cpu:1", "cuda:x", "", "auto:0", "gpu"])
def test_words_that_are_not_devices_are_refused(spec: str) -> None:
    with pytest.raises(InputError, match="--device") as info:
        resolve_device(spec)
    assert "cpu" in (info.value.hint or "")


@no_cuda
def test_a_gpu_torch_cannot_see_is_refused_with_the_way_out() -> None:
    with pytest.raises(InputError, match="no CUDA GPU") as info:
        resolve_device("cuda")
    assert "--device cpu" in (info.value.hint or "")
    with pytest.raises(InputError, match="no CUDA GPU"):
        resolve_device("cuda:0")


def test_backend_autocast_and_generators_follow_the_device() -> None:
    gpu = torch.device("cuda", 1)  # a device object needs no GPU
    assert backend_for(torch.device("cpu")) == "gloo" and backend_for(gpu) == "nccl"
    assert autocast_type(torch.device("cpu")) == "cpu" and autocast_type(gpu) == "cuda"
    assert rng_devices(torch.device("cpu")) == [] and rng_devices(gpu) == [1]
    assert rng_devices(torch.device("cuda")) == [0]


def test_one_named_gpu_under_torchrun_is_refused_before_any_group_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(InputError, match="local rank"):
        pretrain([toy_site()], tmp_path / "run", small_config(), device="cuda:1", progress=False)
    assert not torch.distributed.is_initialized()
    assert not (tmp_path / "run").exists()


def test_the_command_line_refuses_an_unknown_device(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, cfg = tmp_path / "site", tmp_path / "small.yaml"
    toy_site().save(site)
    from test_cli_train import SMALL_YAML

    cfg.write_text(SMALL_YAML)
    code = _pretrain(site, tmp_path / "run", cfg, "--device", "tpu")
    assert code == 2
    err = capsys.readouterr().err
    assert "--device" in err and "tpu" in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_cpu_run_reports_where_it_trained(tmp_path: Path) -> None:
    res = pretrain(
        [toy_site()],
        tmp_path / "run",
        small_config(steps=3),
        tracking_uri="none",
        progress=False,
        device="cpu",
    )
    assert res.device == "cpu" and res.step == 3


# --------------------------------------------------------------------------- on a GPU
def _step_on(device: torch.device, bf16: bool = False) -> tuple[float, float]:
    """Loss and gradient norm of one training step of the same model on the same batch."""
    from geojepa.checkpoint import build_model
    from geojepa.masking import MaskCollator
    from geojepa.train import _make_optimizer, prepare_site, train_step

    cfg = small_config()
    data = prepare_site(toy_site(), 0, cfg, None, None)
    collate = MaskCollator(cfg.mask, cfg.window.patch, cfg.seed)
    batch = collate([(0, data.train[i]) for i in range(4)]).to(device)
    model = build_model(cfg, seed=0).to(device)
    opt = _make_optimizer(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    res = train_step(
        model,
        model,
        opt,
        batch,
        params,
        lr=1e-3,
        weight_decay=0.04,
        momentum=0.99,
        grad_clip=1e9,
        bf16=bf16,
        seed=7,
    )
    return res.loss, res.grad_norm


@cuda
def test_one_step_on_the_gpu_matches_the_cpu() -> None:
    loss_cpu, grad_cpu = _step_on(torch.device("cpu"))
    loss_gpu, grad_gpu = _step_on(torch.device("cuda"))
    assert loss_gpu == pytest.approx(loss_cpu, rel=1e-4)
    assert grad_gpu == pytest.approx(grad_cpu, rel=1e-3)
    loss_bf16, _ = _step_on(torch.device("cuda"), bf16=True)
    assert np.isfinite(loss_bf16) and loss_bf16 == pytest.approx(loss_cpu, rel=0.05)


@cuda
def test_a_gpu_run_is_read_and_embedded_on_the_cpu(tmp_path: Path) -> None:
    from geojepa.embed import embed_site

    site = toy_site()
    res = pretrain(
        [site],
        tmp_path / "run",
        small_config(steps=6),
        tracking_uri="none",
        progress=False,
        device="cuda",
    )
    assert res.device.startswith("cuda") and res.step == 6
    # the file itself holds CPU tensors: read without map_location on a CPU machine
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    tensors = list(state["model"].values()) + [
        v for s in state["optimizer"]["state"].values() for v in s.values()
    ]
    assert tensors and all(t.device.type == "cpu" for t in tensors if torch.is_tensor(t))
    run = load_run(tmp_path / "run")
    on_cpu = embed_site(run, site, device="cpu")
    on_gpu = embed_site(run, site, device="cuda")
    assert next(run.model.parameters()).device.type == "cpu"  # put back where it was
    np.testing.assert_allclose(on_gpu.vectors, on_cpu.vectors, atol=1e-4, rtol=1e-4)


@cuda
def test_kill_and_resume_on_the_gpu(tmp_path: Path) -> None:
    site = toy_site()
    cfg = small_config(steps=6)
    kw = {"tracking_uri": "none", "progress": False, "device": "cuda"}
    pretrain([site], tmp_path / "full", cfg, **kw)  # type: ignore[arg-type]
    pretrain([site], tmp_path / "cut", cfg, stop_after=3, **kw)  # type: ignore[arg-type]
    pretrain([site], tmp_path / "cut", None, resume=True, **kw)  # type: ignore[arg-type]
    a = read_checkpoint(tmp_path / "full" / "checkpoint.pt")["model"]
    b = read_checkpoint(tmp_path / "cut" / "checkpoint.pt")["model"]
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst <= 1e-5


@cuda
def test_a_gpu_run_resumes_on_the_cpu(tmp_path: Path) -> None:
    site = toy_site()
    cfg = small_config(steps=6)
    kw = {"tracking_uri": "none", "progress": False}
    pretrain([site], tmp_path / "run", cfg, stop_after=3, device="cuda", **kw)  # type: ignore[arg-type]
    res = pretrain([site], tmp_path / "run", None, resume=True, device="cpu", **kw)  # type: ignore[arg-type]
    assert res.step == 6 and res.device == "cpu"


def _detect_setup(tmp_path: Path) -> tuple[Path, Site]:
    from test_export import make_site, write_run

    site = make_site(3, n_times=24 * 12, n_sensors=4)
    write_run(tmp_path / "run", site, seed=0)
    return tmp_path / "run", site


def test_detect_refuses_an_unknown_device_before_loading(tmp_path: Path) -> None:
    from geojepa.detect import detect_run

    with pytest.raises(InputError, match="--device"):
        detect_run(tmp_path / "no-run", toy_site(), device="tpu")


def test_the_torch_engine_runs_where_it_is_told(tmp_path: Path) -> None:
    from geojepa.export import TorchEngine

    run = load_run(_detect_setup(tmp_path)[0])
    engine = TorchEngine(run.model.eval(), torch.device("cpu"))
    assert engine.device == torch.device("cpu")
    assert TorchEngine(run.model.eval()).device == torch.device("cpu")  # where the model is


@cuda
@pytest.mark.parametrize("score", ["energy", "density"])
def test_detect_on_the_gpu_scores_as_on_the_cpu(tmp_path: Path, score: str) -> None:
    from geojepa.detect import detect_run

    run, site = _detect_setup(tmp_path)
    on_cpu = detect_run(run, site, score=score, device="cpu")
    on_gpu = detect_run(run, site, score=score, device="cuda")
    assert np.array_equal(np.isnan(on_gpu.score), np.isnan(on_cpu.score))
    np.testing.assert_allclose(on_gpu.score, on_cpu.score, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(on_gpu.sensor, on_cpu.sensor, rtol=1e-3, atol=1e-4)
    agree = float(np.mean(on_gpu.level == on_cpu.level))
    assert agree >= 0.99  # alarm levels: a score within 1e-3 of a threshold may flip
