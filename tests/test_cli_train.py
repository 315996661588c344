"""`geojepa pretrain` and `geojepa embed` through the command line (exit codes, files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geojepa.cli import main
from test_train import toy_site

SMALL_YAML = """\
preset: tiny
model: {dim: 32, depth: 1, heads: 2, predictor_dim: 16, predictor_depth: 1, patch: 8}
window: {length: 32, stride: 16}
train:
  steps: 3
  batch_size: 4
  eval_every: 3
  checkpoint_every: 3
  val_windows: 6
  lidar_views: 2
  threads: 1
"""


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    return int(info.value.code or 0)


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    toy_site().save(path)
    return path


@pytest.fixture
def cfg_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_YAML)
    return path


def _pretrain(site: Path, run: Path, cfg: Path, *extra: str) -> int:
    return _run(
        [
            "pretrain",
            str(site),
            "--run",
            str(run),
            "--config",
            str(cfg),
            "--tracking-uri",
            "none",
            "--no-progress",
            *extra,
        ]
    )


def test_pretrain_resume_and_embed(
    tmp_path: Path, site_dir: Path, cfg_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert _pretrain(site_dir, run, cfg_file, "--until", "2024-01-15", "--seed", "4") == 0
    assert {"config.yaml", "checkpoint.pt", "metrics.jsonl"} <= {p.name for p in run.iterdir()}
    assert "seed: 4" in (run / "config.yaml").read_text()
    assert "trained 3/3 steps" in capsys.readouterr().out
    # a second pretrain into the same folder is refused; --resume with more steps continues
    assert _pretrain(site_dir, run, cfg_file) == 2
    assert "--resume" in capsys.readouterr().err
    args = ["pretrain", str(site_dir), "--run", str(run), "--resume", "--steps", "5"]
    assert _run([*args, "--tracking-uri", "none", "--no-progress"]) == 0
    assert "trained 5/5 steps" in capsys.readouterr().out

    for suffix in (".npz", ".csv", ".parquet"):
        out = tmp_path / f"emb{suffix}"
        assert _run(["embed", str(run), str(site_dir), "--out", str(out)]) == 0
        assert out.is_file()
    npz = np.load(tmp_path / "emb.npz", allow_pickle=False)
    n, d = npz["vectors"].shape
    assert d == 32 and n > 10
    assert npz["per_sensor"].shape == (n, 6, 32)
    assert np.all(np.diff(npz["starts"].astype(np.int64)) > 0)
    table = pd.read_parquet(tmp_path / "emb.parquet")
    assert list(table.columns[:3]) == ["start", "scale", "e0"] and len(table) == n
    assert str(table["start"].dt.tz) == "UTC"
    csv = pd.read_csv(tmp_path / "emb.csv")
    assert np.allclose(csv[[f"e{i}" for i in range(d)]].to_numpy(), npz["vectors"], atol=1e-6)
    # windows start where the grid says: the first starts at the first reading's hour
    assert pd.Timestamp(csv["start"].iloc[0]) == pd.Timestamp("2024-01-01", tz="UTC")


def test_unknown_yaml_key_exits_2_naming_the_key(
    tmp_path: Path, site_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  steps: 3\n  learning_rate: 0.1\n")
    assert _pretrain(site_dir, tmp_path / "run", bad) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3:3" in err and "'learning_rate'" in err and "known keys" in err
    assert not (tmp_path / "run").exists()


def test_bad_arguments_exit_2(
    tmp_path: Path, site_dir: Path, cfg_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _pretrain(site_dir, tmp_path / "r", cfg_file, "--until", "not a time") == 2
    assert "--until" in capsys.readouterr().err
    assert _pretrain(site_dir, tmp_path / "r", cfg_file, "--preset", "huge") == 2
    assert _pretrain(tmp_path / "nosite", tmp_path / "r", cfg_file) == 2
    assert "site.json" in capsys.readouterr().err
    assert _run(["embed", str(tmp_path / "r"), str(site_dir), "--out", "x.txt"]) == 2
    assert _run(["embed", str(tmp_path / "r"), str(site_dir), "--out", "x.npz"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_pretrain_init_continues_from_another_run(
    tmp_path: Path, site_dir: Path, cfg_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--init RUN0: the init run's configuration (here with another seed), recorded source;
    a different model section exits 2 naming the init run."""
    first = tmp_path / "first"
    assert _pretrain(site_dir, first, cfg_file, "--seed", "4") == 0
    other = tmp_path / "other-site"
    toy_site(seed=5, name="other").save(other)
    cont = tmp_path / "cont"
    args = ["pretrain", str(other), "--run", str(cont), "--init", str(first), "--seed", "9"]
    assert _run([*args, "--tracking-uri", "none", "--no-progress"]) == 0
    assert "trained 3/3 steps" in capsys.readouterr().out
    text = (cont / "config.yaml").read_text()
    assert "seed: 9" in text and "dim: 32" in text  # the init run's model, the given seed
    assert (cont / "init.json").is_file()
    bad = ["pretrain", str(other), "--run", str(tmp_path / "bad"), "--init", str(first)]
    assert _run([*bad, "--preset", "tiny", "--tracking-uri", "none", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "model section differs" in err and str(first) in err


def test_tracking_uri_sends_the_run_to_that_server(
    tmp_path: Path, site_dir: Path, cfg_file: Path
) -> None:
    from mlflow.tracking import MlflowClient

    shared = f"sqlite:///{tmp_path / 'shared' / 'team.db'}"
    (tmp_path / "shared").mkdir()
    run = tmp_path / "runs" / "r"
    args = ["pretrain", str(site_dir), "--run", str(run), "--config", str(cfg_file)]
    assert _run([*args, "--tracking-uri", shared, "--no-progress"]) == 0
    assert not (tmp_path / "runs" / "mlflow.db").exists()  # not the default beside the runs
    run_id = json.loads((run / "mlflow_run.json").read_text())["run_id"]
    got = MlflowClient(tracking_uri=shared).get_run(run_id)
    assert got.info.status == "FINISHED" and got.data.params["train.steps"] == "3"
