"""The `geojepa` Typer application that every verb module registers its command on.

Verb modules (``geojepa.cli.<group>``) do ``from geojepa.cli._app import app`` and decorate
thin functions that parse options, call the library and report. Heavy imports (torch)
happen inside command bodies, so ``geojepa info`` starts fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="geojepa",
    help="Self-supervised JEPA representations of geotechnical monitoring data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.command("version")
def version() -> None:
    """Print the GeoJEPA version."""
    from geojepa import __version__

    typer.echo(__version__)


def check_score_options(score: str, recent: int) -> None:
    """Refuse an unknown ``--score``, and ``--recent`` with the density (which scores each
    window's newest patch only), before any work is done (`detect` and `export`)."""
    from geojepa.detect import SCORES
    from geojepa.errors import UsageError

    if score not in SCORES:
        raise UsageError(f"unknown --score {score!r}", hint="use " + " or ".join(SCORES))
    if score == "density" and recent != 1:
        raise UsageError(
            f"--recent {recent} applies to the energy: the density scores each window's "
            "newest patch, a window every patch",
            hint="drop --recent, or use --score energy",
        )
