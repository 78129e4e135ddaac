"""The report pages' template pieces: escaping, the two markdown marks, figures inlined, the page skeleton."""
from __future__ import annotations

import base64

from visionlab.evaluation.report import figures, note, page, para, pre, render, table


def test_cells_and_text_are_escaped_and_marks_become_html():
    t = table(["run", "acc"], [("<script>x</script>", 0.123456), ("big", 12345.6)])
    assert "&lt;script&gt;" in t and "<script>" not in t
    assert "<td>0.1235</td>" in t and "<td>12,346</td>" in t
    p = para("best **a<b** with `visionlab detect`", "muted")
    assert p == "<p class='muted'>best <b>a&lt;b</b> with <code>visionlab detect</code></p>"
    assert pre("lr: 0.01\nname: <x>") == "<pre>lr: 0.01\nname: &lt;x&gt;</pre>"
    assert note("n").startswith("<div class='note'>")


def test_page_holds_sections_in_order_with_figures_inline(tmp_path):
    png = tmp_path / "fig.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    html = page("T <1>", [("First", para("one")), ("Second", figures([png, tmp_path / "missing.png"], 400))],
                subtitle="sub")
    assert html.startswith("<!doctype html>") and "<title>T &lt;1&gt;</title>" in html
    assert html.index("<h2>First</h2>") < html.index("<h2>Second</h2>")
    assert html.count("<img ") == 1 and base64.b64encode(png.read_bytes()).decode() in html
    assert 'width="400"' in html and "<p class='muted'>sub</p>" in html


def test_whole_page_templates_are_packaged():
    html = render("simulate.html.j2", title="pool", blocks=[("h1", "A & B"), ("table", [["a", "b"], ["1", "<2>"]])])
    assert "<h1>A &amp; B</h1>" in html and "<td>&lt;2&gt;</td>" in html and "<table>" in html
