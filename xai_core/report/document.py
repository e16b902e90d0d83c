"""What a report is made of: typed blocks in titled sections, with the plain-language summary on top.

A page's report builder (``xai_core.report.visualize``, ``compare``, ``trust``) turns the results the page rendered
into a :class:`Report`; :func:`xai_core.report.html.render_html` turns any report into one self-contained HTML file.
A new kind of finding (e.g. Suggest's strategies) is one function returning a :class:`Section` and its summary
lines: added to a page's report with :meth:`Report.with_section`, or made a report of its own with
:func:`xai_core.report.page_report` (which adds the methods, models and reproduce sections). The renderer, the
limits and the offline tests need no change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

TextKind = Literal["p", "note", "warning"]


@dataclass(frozen=True)
class Text:
    """A paragraph. ``**bold**``, ``*italic*`` and ```code``` are kept (the app's own messages use them);
    ``kind`` ``note`` is set smaller, ``warning`` is boxed."""

    text: str
    kind: TextKind = "p"


@dataclass(frozen=True)
class Facts:
    """Label → value pairs (a definition list)."""

    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    """A table of ``frame`` (index left out); floats are printed with ``digits`` significant digits."""

    frame: pd.DataFrame
    caption: str = ""
    digits: int = 3


@dataclass(frozen=True)
class Picture:
    """One embedded picture: uint8 ``(H, W)`` or ``(H, W, 3)``, shown ``width`` CSS pixels wide (small inputs are
    enlarged pixel by pixel in the browser, not in the file)."""

    image: np.ndarray
    caption: str = ""
    alt: str = ""
    width: int = 160


@dataclass(frozen=True)
class ColourScale:
    """What the colours of the maps mean: colour map ``cmap`` from −1 (signed) or 0 to +1, and in words what ±1 is
    (the normalisation)."""

    cmap: str
    signed: bool
    meaning: str


@dataclass(frozen=True)
class Figure:
    """A grid of pictures: ``header`` names the columns; each row starts with its ``row_labels`` entry (if any).
    ``None`` leaves a cell empty (a failed map); ``scale`` draws the colour bar under the grid."""

    rows: tuple[tuple[Picture | None, ...], ...]
    header: tuple[str, ...] = ()
    row_labels: tuple[str, ...] = ()
    caption: str = ""
    scale: ColourScale | None = None


@dataclass(frozen=True)
class Chart:
    """An Altair chart: interactive in the report (Vega-Lite, its scripts inlined) with a PNG fallback.

    ``alt``: the chart in words, for readers without scripts or images."""

    chart: Any  # an altair TopLevelMixin (Chart, LayerChart, FacetChart, …)
    caption: str = ""
    alt: str = ""


@dataclass(frozen=True)
class Details:
    """Blocks folded under a one-line ``summary`` (long tables: a network's layers)."""

    summary: str
    blocks: tuple[Block, ...]


Block = Text | Facts | Table | Figure | Chart | Details


@dataclass(frozen=True)
class Section:
    """A titled part of the report; ``anchor`` is its id in the HTML (from the title when empty)."""

    title: str
    blocks: tuple[Block, ...]
    anchor: str = ""


@dataclass(frozen=True)
class Report:
    """A whole report.

    Attributes
    ----------
    title : heading, e.g. ``"Visualize: LRP-ε on 3 images"``.
    page : the app page it comes from (``visualize``, ``compare``, ``trust`` …).
    summary : plain-language sentences written from the numbers, shown first.
    sections : the content, in order.
    created : when it was built (UTC).
    """

    title: str
    page: str
    summary: tuple[str, ...]
    sections: tuple[Section, ...]
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    def with_section(self, section: Section, summary: tuple[str, ...] = (), before: str | None = None) -> Report:
        """A copy with ``section`` added (before the section titled ``before``, else last) and ``summary`` lines
        appended to the summary."""
        sections = list(self.sections)
        titles = [s.title for s in sections]
        sections.insert(titles.index(before) if before in titles else len(sections), section)
        return replace(self, sections=tuple(sections), summary=self.summary + tuple(summary))

    def blocks(self) -> list[Block]:
        """Every block, depth first (folded ones included), in the order they are rendered."""

        def walk(blocks: tuple[Block, ...]) -> list[Block]:
            out: list[Block] = []
            for b in blocks:
                out.append(b)
                if isinstance(b, Details):
                    out += walk(b.blocks)
            return out

        return [b for s in self.sections for b in walk(s.blocks)]

    def count(self, kind: type) -> int:
        """How many blocks of ``kind`` (e.g. :class:`Chart`) the report holds."""
        return sum(isinstance(b, kind) for b in self.blocks())
