"""Self-contained HTML reports: tables plus PNGs inlined as base64, readable offline and attachable."""
from __future__ import annotations

import base64
import html
from functools import cache
from pathlib import Path
from typing import Iterable, Sequence

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em} th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f3f5f7} td:first-child,th:first-child{text-align:left}
.figs{display:flex;flex-wrap:wrap;gap:1em} .figs img{max-width:100%;border:1px solid #eee}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em 1em;margin:1em 0}
.muted{color:#666;font-size:.9em} code{background:#f4f4f4;padding:0 .2em}
"""


def render(template: str, **context) -> str:
    """A page from ``visionlab/templates`` (Jinja2, HTML autoescaped); ``css`` is the shared style."""
    return _env().get_template(template).render(css=CSS, **context)


@cache
def _env():
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("visionlab", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                              trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def img_tag(path: Path, width: int | None = None, alt: str = "") -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    w = f' width="{width}"' if width else ""
    return f'<img src="data:image/png;base64,{data}"{w} alt="{html.escape(alt or Path(path).stem)}">'


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    return html.escape(str(v))


def table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def page(title: str, sections: list[tuple[str, str]], subtitle: str = "") -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    if subtitle:
        parts.append(f"<p class='muted'>{html.escape(subtitle)}</p>")
    for head, body in sections:
        parts.append(f"<h2>{html.escape(head)}</h2>{body}")
    parts.append("</body></html>")
    return "\n".join(parts)


def figures(paths: Iterable[Path], width: int | None = None) -> str:
    return "<div class='figs'>" + "".join(img_tag(p, width) for p in paths if p and Path(p).exists()) + "</div>"
