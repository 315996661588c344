"""HTML building blocks for a self-contained page: escaping, tables, figures, Markdown tables.

Guarantees: every text that came from a file is escaped; figures are inlined as base64 PNG
``data:`` URIs and closed after rendering; the page references nothing outside itself (no
external stylesheet, script, font or image), so it opens the same offline and in a mail.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

DPI = 100

CSS = """
:root { --ink:#1c2833; --muted:#5d6d7e; --line:#d5dbdf; --accent:#1e5f8a; --bg:#f6f8f9;
        --green:#2e7d32; --amber:#f0a30a; --red:#c62828; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
       sans-serif; color:var(--ink); background:var(--bg); }
header { background:#17324d; color:#fff; padding:22px 32px 18px; }
header h1 { margin:0 0 4px; font-size:24px; font-weight:600; }
header .sub { color:#c9d6e2; font-size:13px; }
.cards { display:flex; flex-wrap:wrap; gap:10px; margin-top:14px; }
.card { background:rgba(255,255,255,.1); border-radius:6px; padding:8px 12px; min-width:120px; }
.card .v { font-size:19px; font-weight:600; }
.card .k { font-size:11px; color:#c9d6e2; text-transform:uppercase; letter-spacing:.04em; }
.layout { display:flex; gap:24px; max-width:1280px; margin:0 auto; padding:20px 24px; }
nav.toc { flex:0 0 210px; position:sticky; top:12px; align-self:flex-start; font-size:13px; }
nav.toc ol { padding-left:18px; margin:6px 0; }
nav.toc a { color:var(--accent); text-decoration:none; }
nav.toc .skipped a { color:var(--muted); }
main { flex:1 1 auto; min-width:0; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:16px 20px;
          margin-bottom:18px; }
section h2 { margin:0 0 4px; font-size:18px; color:#17324d; }
section h3 { margin:16px 0 6px; font-size:15px; }
p.lede { margin:0 0 12px; color:var(--muted); }
p.note { margin:6px 0; color:var(--muted); font-style:italic; }
figure { margin:8px 0 14px; }
figure img { max-width:100%; height:auto; display:block; }
figcaption { font-size:12px; color:var(--muted); margin-top:2px; }
table { border-collapse:collapse; font-size:12.5px; margin:6px 0 12px; }
th, td { border-bottom:1px solid var(--line); padding:4px 9px; text-align:left; vertical-align:top; }
td.num, td.time { white-space:nowrap; }
th { background:#eef2f5; font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
.scroll { overflow-x:auto; max-width:100%; }
.pill { display:inline-block; padding:0 7px; border-radius:9px; color:#fff; font-size:11.5px; }
.pill.green { background:var(--green); } .pill.amber { background:var(--amber); color:#222; }
.pill.red { background:var(--red); }
details summary { cursor:pointer; color:var(--accent); }
code { font-size:12px; background:#eef2f5; padding:0 3px; border-radius:3px; }
footer { max-width:1280px; margin:0 auto; padding:4px 24px 24px; color:var(--muted); font-size:12px; }
@media (max-width: 900px) { .layout { display:block; } nav.toc { position:static; } }
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def figure_html(fig: Figure, caption: str, alt: str) -> str:
    """The figure as an inline PNG with a caption."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (
        f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def fmt(value: Any, digits: int = 3) -> str:
    """A cell's text: numbers to `digits` significant digits, times as ISO minutes UTC."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return ""
        t = value.tz_convert("UTC") if value.tzinfo else value
        return t.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}".replace(",", " ")
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isnan(v):
            return ""
        if math.isinf(v) or v == 0:
            return str(v) if math.isinf(v) else "0"
        if abs(v) >= 1e5 or abs(v) < 1e-3:
            return f"{v:.{digits}g}"
        decimals = max(digits - 1 - math.floor(math.log10(abs(v))), 0)
        return f"{v:.{decimals}f}"
    if isinstance(value, Mapping | list):
        return json.dumps(value, default=str)
    return str(value)


def _is_num(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def table_html(df: pd.DataFrame, *, raw_columns: Iterable[str] = (), max_rows: int = 500) -> str:
    """An HTML table of `df`; numeric cells right-aligned; `raw_columns` hold trusted HTML."""
    raw = set(raw_columns)
    head = "".join(
        f'<th class="num">{esc(c)}</th>'
        if pd.api.types.is_numeric_dtype(df[c])
        else f"<th>{esc(c)}</th>"
        for c in df.columns
    )
    body = []
    for row in df.head(max_rows).itertuples(index=False):
        cells = []
        for col, value in zip(df.columns, row, strict=True):
            if col in raw:
                cells.append(f"<td>{value}</td>")
            elif _is_num(value):
                cells.append(f'<td class="num">{esc(fmt(value))}</td>')
            elif isinstance(value, pd.Timestamp):
                cells.append(f'<td class="time">{esc(fmt(value))}</td>')
            else:
                cells.append(f"<td>{esc(fmt(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if len(df) > max_rows:
        more = f'<p class="note">first {max_rows} of {len(df)} rows shown</p>'
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{more}"
    )


def pill(level: str) -> str:
    return f'<span class="pill {esc(level)}">{esc(level)}</span>'


# ----------------------------------------------------------------------------- markdown
_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
]


def _inline(text: str) -> str:
    out = esc(text)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def markdown_html(text: str) -> str:
    """A small Markdown subset: headings, pipe tables, lists and paragraphs (escaped)."""
    blocks: list[str] = []
    para: list[str] = []
    lines = text.splitlines()
    i = 0

    def flush() -> None:
        if para:
            blocks.append("<p>" + _inline(" ".join(para)) + "</p>")
            para.clear()

    while i < len(lines):
        line = lines[i].strip()
        if not line:
            flush()
            i += 1
        elif line.startswith("#"):
            flush()
            level = min(len(line) - len(line.lstrip("#")) + 2, 5)
            blocks.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
            i += 1
        elif line.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(lines[i].strip())
                i += 1
            blocks.append(_pipe_table(rows))
        elif line[:2] in ("- ", "* "):
            flush()
            items = []
            while i < len(lines) and lines[i].strip()[:2] in ("- ", "* "):
                items.append("<li>" + _inline(lines[i].strip()[2:]) + "</li>")
                i += 1
            blocks.append("<ul>" + "".join(items) + "</ul>")
        else:
            para.append(line)
            i += 1
    flush()
    return "\n".join(blocks)


def _split_row(row: str) -> list[str]:
    inner = row.strip().strip("|")
    return [c.strip() for c in re.split(r"(?<!\\)\|", inner)]


def _pipe_table(rows: Sequence[str]) -> str:
    cells = [_split_row(r) for r in rows]
    sep = 1 if len(cells) > 1 and all(re.fullmatch(r":?-{2,}:?", c) for c in cells[1] if c) else -1
    header = cells[0] if sep == 1 else None
    align = (
        ["num" if c.endswith(":") and not c.startswith(":") else "" for c in cells[1]]
        if sep == 1
        else []
    )
    body = cells[2:] if sep == 1 else cells
    out = ['<div class="scroll"><table>']
    if header is not None:
        out.append(
            "<thead><tr>"
            + "".join(
                f'<th class="{align[k] if k < len(align) else ""}">{_inline(c)}</th>'
                for k, c in enumerate(header)
            )
            + "</tr></thead>"
        )
    out.append("<tbody>")
    for row in body:
        out.append(
            "<tr>"
            + "".join(
                f'<td class="{align[k] if k < len(align) else ""}">{_inline(c)}</td>'
                for k, c in enumerate(row)
            )
            + "</tr>"
        )
    out.append("</tbody></table></div>")
    return "".join(out)


def json_tables(data: Any) -> str:
    """Render benchmark JSON as tables: a list of records, or a mapping holding such lists."""
    if isinstance(data, list) and data and all(isinstance(r, Mapping) for r in data):
        flat = [_flatten(r) for r in data]
        return table_html(pd.DataFrame(flat))
    if isinstance(data, Mapping):
        parts = []
        scalars = {k: v for k, v in data.items() if not isinstance(v, Mapping | list)}
        if scalars:
            parts.append(
                table_html(
                    pd.DataFrame(
                        {"field": list(scalars), "value": [fmt(v) for v in scalars.values()]}
                    )
                )
            )
        for key, value in data.items():
            if isinstance(value, list) and value and all(isinstance(r, Mapping) for r in value):
                parts.append(f"<h3>{esc(key)}</h3>" + json_tables(value))
            elif (
                isinstance(value, Mapping)
                and value
                and all(isinstance(v, Mapping) for v in value.values())
            ):
                rows = [{"name": k, **_flatten(v)} for k, v in value.items()]
                parts.append(f"<h3>{esc(key)}</h3>" + table_html(pd.DataFrame(rows)))
            elif isinstance(value, Mapping | list):
                parts.append(f"<h3>{esc(key)}</h3>" + json_tables(value))
        return "".join(parts)
    return f"<pre>{esc(json.dumps(data, indent=1, default=str)[:20000])}</pre>"


def _flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in record.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            if set(v) >= {"mean", "std"} and all(_is_num(v[x]) for x in ("mean", "std")):
                out[name] = f"{fmt(float(v['mean']))} ± {fmt(float(v['std']))}"
            else:
                out.update(_flatten(v, prefix=f"{name}."))
        else:
            out[name] = v
    return out


# ----------------------------------------------------------------------------- page
@dataclass
class Section:
    """One section of the page: an anchor, a title, a one-line lede and its body HTML."""

    anchor: str
    title: str
    lede: str
    body: list[str] = field(default_factory=list)
    skipped: str | None = None  # one-line reason when the section could not be drawn

    def html(self) -> str:
        inner = (
            f'<p class="note">Skipped: {esc(self.skipped)}</p>'
            if self.skipped
            else "".join(self.body)
        )
        return (
            f'<section id="{esc(self.anchor)}"><h2>{esc(self.title)}</h2>'
            f'<p class="lede">{esc(self.lede)}</p>{inner}</section>'
        )


def page(
    *,
    title: str,
    subtitle: str,
    cards: Sequence[tuple[str, str]],
    sections: Sequence[Section],
    footer: str,
) -> str:
    toc = "".join(
        f'<li class="{"skipped" if s.skipped else ""}"><a href="#{esc(s.anchor)}">{esc(s.title)}</a></li>'
        for s in sections
    )
    card_html = "".join(
        f'<div class="card"><div class="v">{esc(v)}</div><div class="k">{esc(k)}</div></div>'
        for k, v in cards
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{esc(title)}</h1><div class="sub">{esc(subtitle)}</div>'
        f'<div class="cards">{card_html}</div></header>'
        f'<div class="layout"><nav class="toc"><strong>Contents</strong><ol>{toc}</ol></nav>'
        f"<main>{''.join(s.html() for s in sections)}</main></div>"
        f"<footer>{esc(footer)}</footer></body></html>\n"
    )
