"""Command line: ``geojepa VERB ...`` (DESIGN §6).

Exit status: 0 success; 2 bad input or usage (one message naming file, line and what to
do, no traceback); 1 internal error (with ``-v`` the traceback is shown).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from geojepa.cli._app import app
from geojepa.errors import GeoJEPAError, InputError
from geojepa.logs import configure
from geojepa.threads import apply_threads, cli_threads

# Each verb group lives in its own module; importing it registers its commands.
VERB_MODULES: tuple[str, ...] = (
    "data",
    "simulate",
    "train",
    "detect",
    "forecast",
    "export",
    "report",
    "demo",
)

for _name in VERB_MODULES:
    importlib.import_module(f"geojepa.cli.{_name}")

log = logging.getLogger("geojepa.cli")

# Newer typer releases carry their own copy of click and raise its exceptions, not click's:
# catch the class of either that exists, so usage errors exit 2 whatever typer is installed.
_EXCEPTION_MODULES = ("click.exceptions", "typer._click.exceptions", "typer")


def _exceptions(name: str) -> tuple[type[BaseException], ...]:
    """Every installed exception class called `name` among click's and typer's."""
    found: list[type[BaseException]] = []
    for module in _EXCEPTION_MODULES:
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
            found.append(cls)
    return tuple(found)


USAGE_ERRORS = _exceptions("UsageError")
ABORTS = _exceptions("Abort")
EXITS = _exceptions("Exit")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``geojepa`` command."""
    verbose = int(os.environ.get("GEOJEPA_VERBOSE", "0"))
    configure(verbose=verbose)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        apply_threads(cli_threads())
        rv = app(args=args, prog_name="geojepa", standalone_mode=False)
    except USAGE_ERRORS as err:
        err.show()  # type: ignore[attr-defined]  # every UsageError has show()
        sys.exit(2)
    except ABORTS:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except EXITS as err:
        sys.exit(err.exit_code)  # type: ignore[attr-defined]  # every Exit has exit_code
    except InputError as err:
        sys.stderr.write(f"error: {err.render()}\n")
        sys.exit(2)
    except GeoJEPAError as err:
        sys.stderr.write(f"error: {err}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as err:  # an internal error: say so, keep the trace for -v
        sys.stderr.write(f"internal error: {type(err).__name__}: {err}\n")
        if verbose:
            traceback.print_exc()
        else:
            sys.stderr.write("set GEOJEPA_VERBOSE=1 for the traceback and report it\n")
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
