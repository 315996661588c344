"""The `export` verb (DESIGN §6): a trained run -> ONNX graphs + metadata for the edge.

``geojepa export RUN --out DIR [--site SITE] [--int8 auto|off|force]`` writes DIR with
``encoder.onnx``, ``predictor.onnx`` (single files), ``geojepa-export.json`` and, where it
measurably helps, ``*.int8.onnx``. The energy thresholds are fitted on SITE's training
period (before the run's training end); parity with PyTorch is checked before DIR appears.
"""

from __future__ import annotations

from pathlib import Path

import typer

from geojepa.cli._app import app
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
    recent: int = typer.Option(1, "--recent", min=1, help="Patches scored per window."),
) -> None:
    """Export RUN to ONNX for `geojepa-edge`, with a parity check against PyTorch."""
    from geojepa.energy import EnergySpec
    from geojepa.export import PARITY_TOL, export_run
    from geojepa.site import Site

    if int8 not in ("auto", "off", "force"):
        raise UsageError(f"unknown --int8 {int8!r}", hint="use auto, off or force")
    loaded = Site.load(site) if site is not None else None
    report = export_run(run, out, site=loaded, energy=EnergySpec(recent=recent), int8=int8)
    worst = max(r.max_abs_diff for r in report.parity)
    q = report.quantization
    typer.echo(
        f"wrote {out}: parity max |delta| {worst:.2g} (limit {PARITY_TOL:g}) at "
        f"{len({r.shape for r in report.parity})} shapes; energy |delta| "
        f"{report.energy_max_abs_diff:.2g}; int8 {'offered' if q.get('offered') else 'not offered'}"
        f" ({q.get('reason', '')})"
    )
