"""Take it with you: one self-contained HTML file of what a page found.

A page's builder turns the typed results the page rendered into a :class:`~xai_core.report.document.Report`
(:func:`~xai_core.report.visualize.visualize_report`, :func:`~xai_core.report.compare.compare_report`,
:func:`~xai_core.report.trust.trust_report`, Suggest's :func:`~xai_core.report.strategies.strategies_report`);
:func:`~xai_core.report.html.render_html` writes any report as HTML that opens offline: pictures embedded, charts
interactive (Vega-Lite, scripts inlined) with PNG fallbacks. To report a new kind of finding, write a function
returning a :class:`~xai_core.report.document.Section` and add it with :meth:`Report.with_section
<xai_core.report.document.Report.with_section>`, or make it a report of its own with :func:`page_report` (as the
strategies report does); on the page, ``ui.report.report_button(PAGE, build, file_name)`` offers it.

Bounded: :data:`MAX_MAPS` maps per report (8 images × 3 methods at 224 pixels: 2.6 MB, 1.2–1.9 s to build on a busy
2-core machine; docs/benchmarks.md, "HTML report"); :func:`over_limit` says so before a page offers a larger one.
"""

from __future__ import annotations

from xai_core.report.document import Chart, Details, Facts, Figure, Picture, Report, Section, Table, Text
from xai_core.report.html import render_html
from xai_core.report.page import page_report

#: Most maps one report holds (images × columns × targets per image).
MAX_MAPS = 48


def over_limit(n_maps: int) -> str | None:
    """Why a report of ``n_maps`` maps is not offered (None when it is within :data:`MAX_MAPS`)."""
    if n_maps <= MAX_MAPS:
        return None
    return (f"A report holds at most {MAX_MAPS} maps (so that it stays under about 5 MB and builds in seconds); "
            f"this page shows {n_maps}. Choose fewer images, models, methods or neurons for a report.")


def report_bytes(report: Report) -> bytes:
    """The report's HTML as UTF-8 bytes (what a download button hands over)."""
    return render_html(report).encode("utf-8")


__all__ = ["MAX_MAPS", "Chart", "Details", "Facts", "Figure", "Picture", "Report", "Section", "Table", "Text",
           "over_limit", "page_report", "render_html", "report_bytes"]
