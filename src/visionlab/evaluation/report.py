"""Self-contained HTML reports: tables plus PNGs inlined as base64, readable offline and attachable.

Every page is a Jinja2 template under ``visionlab/templates`` (autoescaped): ``page.html.j2`` (the run report,
``compare``, a study's report) is sections of pieces from ``macros.html.j2``, which the functions below
(``table``, ``figures``, ``para``, ``note``, ``bullets``, ``pre``) render; ``detection.html.j2``,
``simulate.html.j2`` and ``issues.html.j2`` are whole pages.
"""
from __future__ import annotations

import base64
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    from markupsafe import Markup

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


def _md(text) -> "Markup":
    """The few markdown marks report sentences use (**bold**, `code`), on escaped text."""
    import re

    from markupsafe import Markup, escape

    t = str(escape(text))
    t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
    return Markup(re.sub(r"`(.+?)`", r"<code>\1</code>", t))


@cache
def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("visionlab", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["fmt"] = fmt
    env.filters["md"] = _md
    return env


def _macro(name: str):
    return getattr(_env().get_template("macros.html.j2").module, name)


def image_data(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


def fmt(v) -> str:
    """A table cell: floats to 4 decimals (thousands grouped from 1000); escaping is the template's."""
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    return _macro("table")(list(header), [list(r) for r in rows])


def figures(paths: Iterable[Path], width: int | None = None) -> str:
    images = [{"data": image_data(p), "alt": Path(p).stem} for p in paths if p and Path(p).exists()]
    return _macro("figures")(images, width)


def para(text: str, cls: str = "") -> str:
    """A paragraph; **bold** and `code` marks become HTML, everything else is escaped."""
    return _macro("para")(text, cls)


def note(text: str) -> str:
    return _macro("note")(text)


def bullets(items: Sequence[str]) -> str:
    return _macro("bullets")(list(items))


def pre(text: str) -> str:
    return _macro("pre")(text)


def page(title: str, sections: list[tuple[str, str]], subtitle: str = "") -> str:
    """A report page (template page.html.j2): ``sections`` are (heading, body built from the functions above)."""
    from markupsafe import Markup

    return render("page.html.j2", title=title, subtitle=subtitle,
                  sections=[(h, b if isinstance(b, Markup) else Markup(b)) for h, b in sections])
