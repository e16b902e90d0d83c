"""Charts of the Compare Models page: the agreement matrix (click a cell → a pair) and accuracy per model.

Pure functions from the long-form frames of :mod:`xai_core.analysis.agreement`; the selection event → pair translation
is a pure function too (AppTest cannot click charts).
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from xai_core.analysis.agreement import METRICS
from xai_core.viz.selection import selected_values

AGREEMENT_SELECTION = "agree_cell"


def agreement_chart(matrix: pd.DataFrame, cell: int = 64) -> alt.FacetChart:
    """One heatmap per metric (Spearman ρ, top-k IoU) of :func:`xai_core.analysis.agreement.matrix_frame`.

    Colour runs from −1 (red, opposite) through 0 (white, unrelated) to 1 (blue, identical); each cell shows its
    value. Clicking a cell selects its pair through the point selection :data:`AGREEMENT_SELECTION` over
    ``a`` and ``b``; read it back with :func:`selected_pair`.
    """
    names = list(dict.fromkeys(matrix["a"]))
    sel = alt.selection_point(name=AGREEMENT_SELECTION, fields=["a", "b"], on="click", clear=False)
    base = alt.Chart().encode(
        x=alt.X("b:N", sort=names, title=None,
                axis=alt.Axis(labelAngle=-45, labelLimit=140, labelOverlap=False, orient="top")),
        y=alt.Y("a:N", sort=names, title=None, axis=alt.Axis(labelLimit=160)),
        tooltip=[alt.Tooltip("a:N", title="row"), alt.Tooltip("b:N", title="column"),
                 alt.Tooltip("metric_name:N", title="metric"), alt.Tooltip("label:N", title="mean"),
                 alt.Tooltip("images:Q", title="images averaged")],
    )
    rect = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color("value:Q", title="agreement", scale=alt.Scale(scheme="redblue", domain=[-1, 1]),
                        legend=alt.Legend(orient="right", gradientLength=120)),
        opacity=alt.when(sel).then(alt.value(1.0)).otherwise(alt.value(0.55)),
    )
    text = base.mark_text(fontSize=13, fontWeight="bold").encode(
        text="label:N",
        color=alt.when("abs(datum.value) > 0.6").then(alt.value("white")).otherwise(alt.value("#1f2430")),
    )
    # an invisible cell on top takes the clicks, so a click on the value label selects the cell too
    hit = base.mark_rect(cursor="pointer", fill="white", fillOpacity=0.01).add_params(sel)
    size = cell * max(1, len(names))
    return alt.layer(rect, text, hit, data=matrix).properties(width=size, height=size).facet(
        column=alt.Column("metric_name:N", title=None, sort=list(METRICS.values()),
                          header=alt.Header(labelFontSize=14, labelFontWeight="bold")), spacing=48)


def selected_pair(event: Any) -> tuple[str, str] | None:
    """The (row, column) pair clicked in :func:`agreement_chart`, or None (nothing, or a diagonal cell)."""
    rows = selected_values(event, AGREEMENT_SELECTION, "a")
    cols = selected_values(event, AGREEMENT_SELECTION, "b")
    if not rows or not cols or rows[-1] == cols[-1]:
        return None
    return str(rows[-1]), str(cols[-1])


def accuracy_chart(acc: pd.DataFrame, height_per_bar: int = 34) -> alt.Chart:
    """Horizontal bars of accuracy per model (columns ``model, accuracy, correct, images``), value at each bar."""
    data = acc.assign(label=[f"{a:.1%} ({c}/{n})" for a, c, n in zip(acc["accuracy"], acc["correct"], acc["images"])])
    base = alt.Chart(data).encode(
        y=alt.Y("model:N", sort=list(data["model"]), title=None, axis=alt.Axis(labelLimit=260)),
        x=alt.X("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%", tickCount=5)),
        tooltip=["model:N", alt.Tooltip("accuracy:Q", format=".2%"), "correct:Q", "images:Q"],
    )
    bars = base.mark_bar(color="#4c78a8")
    text = base.mark_text(align="right", dx=-6, color="white", fontWeight="bold").encode(text="label:N")
    return (bars + text).properties(height=alt.Step(height_per_bar))
