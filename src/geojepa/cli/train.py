"""Verbs of group train (DESIGN §6); each is a thin layer over the library.

``geojepa pretrain SITE... --run RUN [--preset tiny|small|base] [--config YAML] [--steps N]
[--until TIME] [--seed S] [--resume] [--init RUN0] [--tracking-uri URI] [--device D]`` trains
on readings before ``--until`` only and writes RUN/config.yaml, RUN/checkpoint.pt, RUN/metrics.jsonl (and
an MLflow run on SQLite beside RUN unless ``--tracking-uri none``). ``--init RUN0`` starts from
RUN0's weights (and, without --preset/--config, its configuration): continued pretraining on a
new site. ``--device`` (auto: a CUDA GPU when torch sees one, else the CPU) says where it
computes; the run folder is the same either way. Under ``torchrun`` it trains data-parallel
(nccl on GPUs, gloo on CPUs).

``geojepa embed RUN SITE --out FILE [--stride N] [--device D]`` writes per-window embeddings
from the target encoder with their window start times (.parquet, .npz or .csv by suffix).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from geojepa.cli._app import app
from geojepa.devices import DEVICE_HELP
from geojepa.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd


def _parse_time(text: str | None, option: str) -> pd.Timestamp | None:
    if text is None:
        return None
    import pandas as pd

    try:
        t = pd.Timestamp(text)
    except (ValueError, TypeError) as err:
        raise UsageError(
            f"{option} {text!r} is not a time",
            hint="write ISO 8601, e.g. 2018-01-01 or 2018-01-01T12:00:00Z (naive = UTC)",
        ) from err
    if t is pd.NaT:
        raise UsageError(f"{option} {text!r} is not a time", hint="write ISO 8601")
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


@app.command("pretrain")
def pretrain_cmd(
    sites: list[Path] = typer.Argument(..., help="Site folder(s) to pretrain on."),
    run: Path = typer.Option(..., "--run", help="Run folder to write (or resume)."),
    preset: str | None = typer.Option(
        None, "--preset", help="tiny (default, ~1 M parameters) | small | base."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="YAML with sections model/mask/window/method/train/seed."
    ),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Total training steps."),
    until: str | None = typer.Option(
        None, "--until", help="Train on readings strictly before this time (ISO 8601)."
    ),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Random seed."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run from its checkpoint."),
    init: Path | None = typer.Option(
        None,
        "--init",
        help="Start from this run's weights (and, without --preset/--config, its "
        "configuration): continued pretraining on new sites.",
    ),
    tracking_uri: str | None = typer.Option(
        None,
        "--tracking-uri",
        help="MLflow tracking URI (default: sqlite beside the run folder; 'none' = off).",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress."),
    device: str = typer.Option("auto", "--device", envvar="GEOJEPA_DEVICE", help=DEVICE_HELP),
) -> None:
    """Pretrain a JEPA on one site or a family of sites."""
    from geojepa.config import load_config
    from geojepa.site import Site
    from geojepa.train import pretrain

    t_until = _parse_time(until, "--until")
    if preset is not None and preset not in ("tiny", "small", "base"):
        raise UsageError(f"unknown --preset {preset!r}", hint="use tiny, small or base")
    cfg = None
    source = None
    if init is not None:
        from geojepa.warmstart import InitSource

        source = InitSource.load(init)  # read once: for its configuration and its weights
    if source is not None and config is None and preset is None:
        if seed is not None:  # the init run's configuration with another seed
            from dataclasses import replace

            cfg = replace(source.config, seed=seed)
    elif not resume or config is not None or preset is not None or seed is not None:
        cfg = load_config(config, preset_name=preset, seed=seed)
    loaded = [Site.load(p) for p in sites]
    result = pretrain(
        loaded,
        run,
        cfg,
        until=t_until,
        resume=resume,
        steps=steps,
        tracking_uri=tracking_uri,
        progress=progress,
        init=source,
        device=device,
    )
    q = result.quality
    quality = (
        f"; RankMe {q.rankme:.1f}/{q.dim}, LiDAR {q.lidar:.1f}, val loss {q.val_loss:.4f}"
        if q is not None
        else ""
    )
    typer.echo(
        f"trained {result.step}/{result.total_steps} steps on {result.device} in "
        f"{result.seconds:.0f} s "
        f"({result.windows_per_second:.1f} windows/s), loss {result.final_loss:.4f}{quality}; "
        f"run folder {run}"
    )


@app.command("embed")
def embed_cmd(
    run: Path = typer.Argument(..., help="Run folder written by `geojepa pretrain`."),
    site: Path = typer.Argument(..., help="Site folder to embed."),
    out: Path = typer.Option(..., "--out", help="Output file: .parquet, .npz or .csv."),
    stride: int | None = typer.Option(
        None, "--stride", min=1, help="Window stride in window steps (default: the run's)."
    ),
    device: str = typer.Option("auto", "--device", envvar="GEOJEPA_DEVICE", help=DEVICE_HELP),
) -> None:
    """Per-window embeddings of SITE from the run's target encoder."""
    from geojepa.checkpoint import load_run
    from geojepa.embed import SUFFIXES, embed_site, write_embeddings
    from geojepa.site import Site

    if out.suffix.lower() not in SUFFIXES:
        raise UsageError(
            f"unknown output type {out.suffix!r}", file=out, hint="name it .parquet, .npz or .csv"
        )
    loaded = load_run(run)
    from geojepa.progress import shown

    with shown():
        emb = embed_site(loaded, Site.load(site), stride, device=device)
    write_embeddings(emb, out)
    typer.echo(f"{len(emb)} windows x {emb.vectors.shape[1]} dimensions -> {out}")
