"""The `export` verb (DESIGN §6): a trained run -> ONNX graphs + metadata for the edge.

``geojepa export RUN --out DIR [--site SITE] [--int8 auto|off|force] [--score
energy|density]`` writes DIR with ``encoder.onnx`` and, for the energy,
``predictor.onnx`` (single files),
``geojepa-export.json`` and, where it measurably helps, ``*.int8.onnx``. The thresholds
are fitted on SITE's training period (before the run's training end), as ``geojepa detect
--score S`` fits them; with ``--score density`` the embedding density is fitted there too
and written as ``density.npz``, and ``geojepa-edge`` scores the density. Parity with
PyTorch is checked before DIR appears.
"""

from __future__ import annotations

from pathlib import Path

import typer

from geojepa.cli._app import app, check_score_options
from geojepa.errors import UsageError


@app.command("export")
def export_cmd(
    run: Path = typer.Argument(..., help="Run folder written by `geojepa pretrain`."),
    out: Path = typer.Option(..., "--out", help="Folder to write the export into."),
    site: Path | None = typer.Option(
        None, "--site", help="The training site: its training period calibrates the alarms."
    ),
    int8: str = typer.Option(
        "auto", "--int8", help="auto (offer int8 where faster and faithful) | off | force."
    ),
    recent: int = typer.Option(
        1, "--recent", min=1, help="Patches scored per window (the energy only)."
    ),
    score: str = typer.Option(
        "energy",
        "--score",
        help="What the edge scorer alarms on, as `geojepa detect --score`: energy (the "
        "latent prediction error under the mask sweep) or density (the Mahalanobis distance "
        "of each sensor's newest embedding from its training embeddings; fitted on SITE's "
        "training period, written as density.npz; one encoder pass per window: measured "
        "0.14x the energy's cost at 16 sensors, 0.02x at 32).",
    ),
) -> None:
    """Export RUN to ONNX for `geojepa-edge`, with a parity check against PyTorch."""
    from geojepa.energy import EnergySpec
    from geojepa.export import PARITY_TOL, export_run
    from geojepa.site import Site

    if int8 not in ("auto", "off", "force"):
        raise UsageError(f"unknown --int8 {int8!r}", hint="use auto, off or force")
    check_score_options(score, recent)
    loaded = Site.load(site) if site is not None else None
    from geojepa.progress import shown

    with shown():  # the calibration's sweep over the training period shows its progress
        report = export_run(
            run, out, site=loaded, energy=EnergySpec(recent=recent), score=score, int8=int8
        )
    worst = max(r.max_abs_diff for r in report.parity)
    q = report.quantization
    checked = report.energy_max_abs_diff
    if checked is None:
        checked = report.density_max_abs_diff
    typer.echo(
        f"wrote {out} ({report.score} score): parity max |delta| {worst:.2g} (limit "
        f"{PARITY_TOL:g}) at {len({r.shape for r in report.parity})} shapes; {report.score} "
        f"|delta| {checked if checked is None else format(checked, '.2g')}; int8 "
        f"{'offered' if q.get('offered') else 'not offered'} ({q.get('reason', '')})"
    )
