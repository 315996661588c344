"""Command line of the edge scorer (argparse: a gateway has no typer or click).

    geojepa-edge score DIR FILE [--out scores.csv] [--format F] [--tz TZ] [--int8|--fp32]
    geojepa-edge watch DIR FILE [--poll S] [--idle-timeout S] [--once] [--format F] [--tz TZ]
                       [--max-ahead D]
    geojepa-edge info DIR

Both score with the bundle's score: the energy, or for a bundle of ``geojepa export
--score density`` the embedding density (`geojepa-edge info DIR` says which).

Exit status: 0 success; 2 bad input or usage (one message naming the file, line and what
to do); 1 internal error (GEOJEPA_VERBOSE=1 shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING

from geojepa.edge.hints import for_edge
from geojepa.errors import GeoJEPAError, InputError
from geojepa.logs import configure

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="geojepa-edge",
        description="Score monitoring data with an exported GeoJEPA model (no PyTorch needed).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{score,watch,info}")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("dir", help="folder written by `geojepa export`")
        sp.add_argument("file", help="long table (geojepa readings), wide CSV or TOA5 file")
        sp.add_argument(
            "--format", default="auto", help="auto | long | wide | toa5 (score also: tabbed, pbo)"
        )
        sp.add_argument("--sep", default=None, help="column separator (default: detected)")
        sp.add_argument("--time-col", default=None, help="time column of a wide file")
        sp.add_argument("--tz", default="UTC", help="time zone of naive timestamps")
        q = sp.add_mutually_exclusive_group()
        q.add_argument("--int8", dest="int8", action="store_true", default=None)
        q.add_argument("--fp32", dest="int8", action="store_false")
        sp.add_argument("--threads", type=int, default=1, help="onnxruntime threads")

    s = sub.add_parser(
        "score",
        help="scores CSV for every grid time of FILE (as `geojepa detect --score S`, S the "
        "export's score: energy or density)",
    )
    common(s)
    s.add_argument("--out", help="CSV to write (default: standard output)")
    w = sub.add_parser("watch", help="follow a growing FILE; one JSON line per new grid time")
    common(w)
    w.add_argument("--poll", type=float, default=1.0, help="seconds between looks at the file")
    w.add_argument("--idle-timeout", type=float, default=None, help="stop after S idle seconds")
    w.add_argument("--once", action="store_true", help="read to the end, flush and stop")
    w.add_argument(
        "--max-ahead",
        default="1D",
        help="a reading timed further ahead of this machine's clock is a counted bad line "
        "(a logger clock error); a duration like 1D or 6h, or 'none' (default 1D)",
    )
    i = sub.add_parser("info", help="what an export folder holds (and which score it alarms on)")
    i.add_argument("dir")
    return p


def _score(args: argparse.Namespace) -> int:
    from geojepa.edge.score import score_file, scores_table
    from geojepa.progress import shown

    with shown():  # a long file: the sweep over its windows shows its progress
        scores = score_file(
            args.dir,
            args.file,
            args.out,
            fmt=args.format,
            tz=args.tz,
            int8=args.int8,
            threads=args.threads,
        )
    if args.out is None:
        scores_table(scores).to_csv(sys.stdout, index=False)
    else:
        log.info("wrote %d grid times to %s", len(scores.score), args.out)
    return 0


def _max_ahead(text: str) -> pd.Timedelta | None:
    """`--max-ahead` as a `pd.Timedelta` (None for 'none'); bad input names the option."""
    import pandas as pd

    if text.strip().lower() == "none":
        return None
    try:
        value = pd.Timedelta(text)
    except (ValueError, TypeError) as err:
        raise InputError(
            f"--max-ahead {text!r} is not a duration", hint="write e.g. 1D, 6h or none"
        ) from err
    if value is pd.NaT or value <= pd.Timedelta(0):
        raise InputError(f"--max-ahead {text!r} must be positive", hint="write e.g. 1D or none")
    return value


def _watch(args: argparse.Namespace) -> int:
    from geojepa.edge.watch import watch

    max_ahead = _max_ahead(args.max_ahead)
    try:
        watch(
            args.dir,
            args.file,
            sys.stdout,
            fmt=args.format,
            tz=args.tz,
            poll=args.poll,
            idle_timeout=args.idle_timeout,
            once=args.once,
            int8=args.int8,
            threads=args.threads,
            max_ahead=max_ahead,
        )
    except KeyboardInterrupt:
        log.info("stopped")
    return 0


def _info(args: argparse.Namespace) -> int:
    from geojepa.edge.bundle import load_meta

    meta = load_meta(args.dir)
    d = meta.to_dict()
    summary = {
        "sensors": meta.sensor_ids,
        "interval_seconds": meta.interval_seconds,
        "window": d["window"],
        "score": meta.score,
        "density": None if meta.density is None else meta.density.file,
        "energy": d["energy"].get("spec"),
        "alarms": d["alarms"].get("policy"),
        "graphs": {
            k: {"file": g.file, "bytes": g.bytes, "int8": g.int8_file}
            for k, g in meta.graphs.items()
        },
        "quantization": d["quantization"],
        "train_end": meta.train_end,
    }
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


def run(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the command; returns the exit status."""
    verbose = int(os.environ.get("GEOJEPA_VERBOSE", "0"))
    configure(verbose=verbose)
    args = _parser().parse_args(None if argv is None else list(argv))  # exits 2 on bad usage
    try:
        return {"score": _score, "watch": _watch, "info": _info}[args.command](args)
    except InputError as err:  # advice in the gateway's terms (`geojepa.edge.hints`)
        sys.stderr.write(f"error: {for_edge(err).render()}\n")
        return 2
    except GeoJEPAError as err:
        sys.stderr.write(f"error: {err}\n")
        return 1
    except Exception as err:  # an internal error: say so, keep the trace for -v
        sys.stderr.write(f"internal error: {type(err).__name__}: {err}\n")
        if verbose:
            traceback.print_exc()
        else:
            sys.stderr.write("set GEOJEPA_VERBOSE=1 for the traceback and report it\n")
        return 1
