"""A :class:`~xai_core.report.document.Report` as one self-contained HTML file.

Everything is inside the file: pictures as ``data:`` URLs (PNG for small pictures, where it is exact and small;
JPEG at quality 90 above :data:`PNG_MAX_SIDE` pixels, where PNG of a photo's overlay is five times larger), the
vega-embed script inlined once (:mod:`xai_core.report.vega`), each chart's spec as inline JSON, and each chart's
PNG under its interactive version (what a reader without scripts, or a printer, sees). No ``src`` or ``href`` points
outside the file and nothing is fetched when it opens (tests/report, tests/browser/test_report_browser.py).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image

from xai_core.report.document import Chart, ColourScale, Details, Facts, Figure, Picture, Report, Table, Text
from xai_core.report.vega import Converted, convert, spec_of
from xai_core.viz.render import colorize

#: Pictures up to this many pixels on their longer side are PNG (exact); larger ones JPEG (quality 90).
PNG_MAX_SIDE = 96
JPEG_QUALITY = 90
#: Larger pictures are reduced to this many pixels on their longer side (the exact maps: the .npz download).
MAX_PICTURE_SIDE = 256
EMBED_OPTIONS = {"mode": "vega-lite", "renderer": "svg",
                 "actions": {"export": True, "source": False, "compiled": False, "editor": False}}

CSS = """
:root { --ink:#1f2430; --muted:#5c6370; --line:#dfe3e8; --accent:#d6336c; --soft:#f6f7f9; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0;
       background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 36px 0 10px; padding-top: 8px;
     border-top: 1px solid var(--line); } h3 { font-size: 16px; margin: 18px 0 6px; }
.meta, .note, figcaption, caption { color: var(--muted); font-size: 13px; }
.summary { background: var(--soft); border-left: 4px solid var(--accent); padding: 10px 16px; margin: 16px 0; }
.summary li { margin: 3px 0; }
.warning { background: #fff4e5; border-left: 4px solid #f08c00; padding: 6px 12px; }
nav { font-size: 13px; margin: 8px 0 0; } nav a { color: var(--muted); margin-right: 14px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 18px; margin: 8px 0; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 8px 0 4px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 10px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; text-align: left; padding-top: 4px; }
.grid { overflow-x: auto; } .grid table td, .grid table th { border: 0; padding: 4px; text-align: center; }
.grid figure { margin: 0; } .grid figcaption { max-width: 180px; margin: 2px auto 0; overflow-wrap: anywhere; }
img.px { image-rendering: pixelated; } img { max-width: 100%; height: auto; }
.scale { display: flex; align-items: center; gap: 10px; font-size: 13px; color: var(--muted); margin: 6px 0; }
.scale img { width: 240px; height: 12px; border: 1px solid var(--line); }
figure.chart { margin: 10px 0; } .vega .live { display: none; } .vega.live .live { display: block; }
.vega.live img.fallback { display: none; }
details { margin: 8px 0; } summary { cursor: pointer; color: var(--muted); }
code { background: var(--soft); padding: 0 3px; border-radius: 3px; font-size: 90%; }
footer { margin-top: 48px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
@media print { .vega.live img.fallback { display: block; } .vega.live .live { display: none; } nav { display: none; } }
"""

EMBED_SCRIPT = """
(function () {
  var options = %s;
  document.querySelectorAll("div.vega[data-spec]").forEach(function (el) {
    var spec = JSON.parse(document.getElementById(el.getAttribute("data-spec")).textContent);
    if (typeof vegaEmbed !== "function") { return; }
    vegaEmbed(el.querySelector(".live"), spec, options).then(function () { el.classList.add("live"); })
      .catch(function (err) { el.setAttribute("data-error", String(err)); });
  });
})();
"""


# ---------------------------------------------------------------------------------------------- text
def inline(text: str) -> str:
    """Escaped ``text`` with the app's bits of Markdown: ``**bold**``, ``*italic*``, ```code``` and a line break
    for ``"  \\n"``."""
    s = html.escape(str(text), quote=False)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    s = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", s)
    return s.replace("  \n", "<br>").replace("\n", " ")


def anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def cell(value: Any, digits: int) -> tuple[str, bool]:
    """A table cell's text and whether it is a number (right-aligned)."""
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), False
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}", True
    if isinstance(value, (float, np.floating)):
        return ("n/a" if math.isnan(value) else f"{float(value):.{digits}g}"), True
    return inline(str(value)), False


# ---------------------------------------------------------------------------------------------- pictures
def picture_bytes(image: np.ndarray) -> tuple[str, bytes]:
    """``(mime, bytes)`` of a uint8 picture: PNG up to :data:`PNG_MAX_SIDE` pixels, JPEG above; reduced to
    :data:`MAX_PICTURE_SIDE` pixels first when larger."""
    img = Image.fromarray(np.asarray(image, dtype=np.uint8).squeeze())
    if max(img.size) > MAX_PICTURE_SIDE:
        img.thumbnail((MAX_PICTURE_SIDE, MAX_PICTURE_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    if max(img.size) <= PNG_MAX_SIDE:
        img.save(buf, format="PNG")
        return "image/png", buf.getvalue()
    img.convert("RGB").save(buf, format="JPEG", quality=JPEG_QUALITY)
    return "image/jpeg", buf.getvalue()


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def picture_html(p: Picture) -> str:
    mime, data = picture_bytes(p.image)
    pixelated = ' class="px"' if max(p.image.shape[:2]) < p.width else ""  # small inputs: sharp pixels
    img = f'<img src="{data_url(mime, data)}" width="{p.width}" alt="{html.escape(p.alt or p.caption)}"{pixelated}>'
    caption = f"<figcaption>{inline(p.caption)}</figcaption>" if p.caption else ""
    return f"<figure>{img}{caption}</figure>"


def scale_html(scale: ColourScale) -> str:
    ramp = np.linspace(-1.0 if scale.signed else 0.0, 1.0, 256, dtype=np.float32)
    bar = np.repeat(colorize(ramp[None, :], scale.signed, scale.cmap), 12, axis=0)
    buf = io.BytesIO()
    Image.fromarray(bar).save(buf, format="PNG")
    low = "−1" if scale.signed else "0"
    mid = " · 0 in the middle" if scale.signed else ""
    return (f'<div class="scale"><span>{low}</span><img src="{data_url("image/png", buf.getvalue())}" '
            f'alt="colour scale {html.escape(scale.cmap)}"><span>+1</span><span>colour map '
            f"<code>{html.escape(scale.cmap)}</code>{mid}: {inline(scale.meaning)}</span></div>")


# ---------------------------------------------------------------------------------------------- blocks
class _Renderer:
    def __init__(self, report: Report) -> None:
        charts = [b for b in report.blocks() if isinstance(b, Chart)]
        self.specs = [spec_of(c.chart) for c in charts]
        # the converter subprocess runs while the pictures are encoded; the first chart waits for it
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="xai-lens-report")
        self._pending: Future[Converted] | None = self._pool.submit(convert, self.specs)
        self._converted: Converted | None = None
        self.chart_index = 0

    @property
    def converted(self) -> Converted:
        if self._converted is None:
            assert self._pending is not None
            self._converted = self._pending.result()
            self._pending = None
            self._pool.shutdown(wait=False)
        return self._converted

    def block(self, b: object) -> Iterator[str]:
        if isinstance(b, Text):
            cls = {"p": "", "note": ' class="note"', "warning": ' class="warning"'}[b.kind]
            yield f"<p{cls}>{inline(b.text)}</p>"
        elif isinstance(b, Facts):
            yield "<dl>" + "".join(f"<dt>{inline(k)}</dt><dd>{inline(v)}</dd>" for k, v in b.rows) + "</dl>"
        elif isinstance(b, Table):
            yield from self.table(b)
        elif isinstance(b, Figure):
            yield from self.figure(b)
        elif isinstance(b, Chart):
            yield self.chart(b)
        elif isinstance(b, Details):
            yield f"<details><summary>{inline(b.summary)}</summary>"
            for inner in b.blocks:
                yield from self.block(inner)
            yield "</details>"
        else:  # pragma: no cover - Block is a closed union
            raise TypeError(f"unknown report block {type(b).__name__}")

    def table(self, t: Table) -> Iterator[str]:
        frame = t.frame
        yield "<table>"
        if t.caption:
            yield f"<caption>{inline(t.caption)}</caption>"
        yield "<thead><tr>" + "".join(f"<th>{inline(str(c))}</th>" for c in frame.columns) + "</tr></thead><tbody>"
        for row in frame.itertuples(index=False):
            cells = [cell(v, t.digits) for v in row]
            yield "<tr>" + "".join(f'<td class="num">{c}</td>' if num else f"<td>{c}</td>" for c, num in cells) + \
                "</tr>"
        yield "</tbody></table>"

    def figure(self, f: Figure) -> Iterator[str]:
        yield '<div class="grid"><table>'
        if f.header:
            lead = "<th></th>" if f.row_labels else ""
            yield "<tr>" + lead + "".join(f"<th>{inline(h)}</th>" for h in f.header) + "</tr>"
        for i, row in enumerate(f.rows):
            label = f"<th>{inline(f.row_labels[i])}</th>" if i < len(f.row_labels) else ""
            cells = "".join(f"<td>{picture_html(p)}</td>" if p is not None else '<td class="note">no map</td>'
                            for p in row)
            yield f"<tr>{label}{cells}</tr>"
        yield "</table></div>"
        if f.scale is not None:
            yield scale_html(f.scale)
        if f.caption:
            yield f'<p class="note">{inline(f.caption)}</p>'

    def chart(self, c: Chart) -> str:
        i = self.chart_index
        self.chart_index += 1
        png = self.converted.png[i] if i < len(self.converted.png) else None
        alt = html.escape(c.alt or c.caption or "chart")
        fallback = (f'<img class="fallback" src="{data_url("image/png", png)}" alt="{alt}">' if png is not None
                    else f'<p class="note fallback">{inline(c.alt or "This chart needs scripts to show.")}</p>')
        spec = json.dumps(self.specs[i], separators=(",", ":"), allow_nan=False, default=str).replace("<", "\\u003c")
        caption = f"<figcaption>{inline(c.caption)}</figcaption>" if c.caption else ""
        return (f'<figure class="chart"><div class="vega" data-spec="spec-{i}"><div class="live"></div>{fallback}'
                f'</div>{caption}</figure><script type="application/json" id="spec-{i}">{spec}</script>')


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document (UTF-8 text)."""
    r = _Renderer(report)
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{html.escape(report.title)} · XAI Lens report</title>", f"<style>{CSS}</style></head><body><main>",
           f"<header><h1>{inline(report.title)}</h1>",
           f'<p class="meta">XAI Lens report · page <strong>{html.escape(report.page)}</strong> · built '
           f'{report.created.strftime("%Y-%m-%d %H:%M UTC")}</p>']
    anchors = [s.anchor or anchor(s.title) for s in report.sections]
    out.append("<nav>" + "".join(f'<a href="#{a}">{inline(s.title)}</a>' for a, s in zip(anchors, report.sections))
               + "</nav></header>")
    if report.summary:
        out.append('<section class="summary"><strong>In short</strong><ul>'
                   + "".join(f"<li>{inline(line)}</li>" for line in report.summary) + "</ul></section>")
    for a, section in zip(anchors, report.sections):
        out.append(f'<section id="{a}"><h2>{inline(section.title)}</h2>')
        for b in section.blocks:
            out.extend(r.block(b))
        out.append("</section>")
    problems = list(r.converted.problems)
    if r.specs and not r.converted.script:
        problems.append("the charts' script could not be made: each chart is shown as a picture (or described)")
    if problems:
        out.append(f'<p class="warning">Charts: {inline("; ".join(problems))}.</p>')
    out.append('<footer>One self-contained file: it opens offline and fetches nothing. Charts are drawn with Vega, '
               "Vega-Lite and vega-embed (© University of Washington Interactive Data Lab, BSD-3-Clause), inlined "
               "below; each has a PNG version for reading without scripts and for print.</footer></main>")
    if r.specs and r.converted.script:
        script = re.sub(r"</(script)", r"<\\/\\1", r.converted.script, flags=re.IGNORECASE)  # cannot end the tag
        out.append(f'<script id="vega-bundle">{script}</script>')
        out.append(f"<script>{EMBED_SCRIPT % json.dumps(EMBED_OPTIONS)}</script>")
    out.append("</body></html>")
    return "\n".join(out)
