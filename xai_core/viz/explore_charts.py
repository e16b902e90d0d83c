"""Altair charts of the Dataset Explorer (pure functions of long-form frames) and their selections → images.

* :func:`confusion_chart` — heatmap with counts; a click selects a cell (:data:`CONFUSION_SELECTION`).
* :func:`tsne_chart` — t-SNE scatter, colour = true class, shape = right / wrong; a click picks a point
  (:data:`TSNE_PICK`), a drag draws a brush (:data:`TSNE_BRUSH`).
* :func:`metrics_chart` — precision / recall / F1 per class.

Each selection has a pure function that turns the Streamlit selection event into dataset indices.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from xai_core.viz.selection import selected_values

CONFUSION_SELECTION = "confusion_cell"
TSNE_PICK = "tsne_pick"
TSNE_BRUSH = "tsne_brush"


# ---------------------------------------------------------------------------------------------- confusion
def confusion_chart(df: pd.DataFrame, cell: int = 44) -> alt.LayerChart:
    """Heatmap of a long-form confusion frame (``metrics.confusion_frame``): rows = true, columns = predicted.

    Colour is the row share (so rare classes are as readable as common ones); the text is the count. Clicking
    a cell selects and outlines it (:data:`CONFUSION_SELECTION` over ``true_index`` and ``predicted_index``).
    """
    order = list(dict.fromkeys(df.sort_values("true_index")["true"]))
    data = df
    sel = alt.selection_point(name=CONFUSION_SELECTION, fields=["true_index", "predicted_index"], on="click",
                              clear=False)
    base = alt.Chart(data).encode(
        x=alt.X("predicted:N", sort=order, title="predicted class", axis=alt.Axis(orient="top", labelAngle=0)),
        y=alt.Y("true:N", sort=order, title="true class"),
        tooltip=[alt.Tooltip("true:N", title="true"), alt.Tooltip("predicted:N", title="predicted"),
                 alt.Tooltip("count:Q", title="images"), alt.Tooltip("share:Q", title="share of true class",
                                                                     format=".1%")],
    )
    rects = base.mark_rect(cursor="pointer").encode(
        color=alt.Color("share:Q", title="share of row", legend=alt.Legend(format="%", values=[0, 0.05, 0.25, 0.5, 1]),
                        scale=alt.Scale(type="sqrt", domain=[0, 1], range=["#ffffff", "#08306b"], interpolate="rgb")),
        stroke=alt.when(sel, empty=False).then(alt.value("#d6336c")).otherwise(alt.value("#dde3ea")),
        strokeWidth=alt.when(sel, empty=False).then(alt.value(3)).otherwise(alt.value(0.5)),
    ).add_params(sel)
    text = base.mark_text(fontSize=12).encode(
        text=alt.Text("count:Q"),
        color=alt.condition("datum.share > 0.3", alt.value("#ffffff"), alt.value("#1f2430")),
        opacity=alt.condition("datum.count > 0", alt.value(1.0), alt.value(0.35)),
    )
    k = len(order)
    return (rects + text).properties(width=cell * k, height=cell * k, autosize=alt.AutoSizeParams(type="pad"))


def selected_cell(event: Any) -> tuple[int, int] | None:
    """``(true_index, predicted_index)`` of the cell clicked in :func:`confusion_chart`, or None."""
    true = selected_values(event, CONFUSION_SELECTION, "true_index")
    pred = selected_values(event, CONFUSION_SELECTION, "predicted_index")
    if not true or not pred:
        return None
    return int(true[-1]), int(pred[-1])


# ---------------------------------------------------------------------------------------------- t-SNE
def tsne_chart(df: pd.DataFrame, height: int = 480) -> alt.Chart:
    """Scatter of an embedding frame (``embedding.tsne(...).frame``).

    Colour = true class, shape = correct (circle) or misclassified (cross, drawn larger). A click picks a point
    (:data:`TSNE_PICK` over ``index``), a drag draws a rectangle (:data:`TSNE_BRUSH` over x and y). An optional
    ``image`` column of PNG data URLs becomes a thumbnail in the tooltip (Streamlit's Vega tooltip shows it).
    """
    pick = alt.selection_point(name=TSNE_PICK, fields=["index"], on="click", clear="dblclick")
    brush = alt.selection_interval(name=TSNE_BRUSH, encodings=["x", "y"])
    data = df.assign(result=np.where(df["correct"], "correct", "misclassified"))
    return alt.Chart(data).transform_calculate(  # what a screen reader says (not the tooltip's image data)
        description="'image ' + datum.index + ': true ' + datum.true_name + ', predicted ' + datum.predicted_name"
    ).mark_point(filled=True, cursor="pointer").encode(
        description=alt.Description("description:N"),
        x=alt.X("x:Q", title="t-SNE 1", axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("y:Q", title="t-SNE 2", axis=alt.Axis(labels=False, ticks=False)),
        color=alt.Color("true_name:N", title="true class", scale=alt.Scale(scheme="tableau10")),
        shape=alt.Shape("result:N", title="prediction", scale=alt.Scale(domain=["correct", "misclassified"],
                                                                        range=["circle", "cross"])),
        size=alt.condition("datum.correct", alt.value(40), alt.value(120)),
        opacity=alt.condition(brush, alt.value(0.9), alt.value(0.25)),
        tooltip=[*([alt.Tooltip("image:N")] if "image" in data else []),  # a data-URL thumbnail, if given
                 alt.Tooltip("index:Q", title="data set index"), alt.Tooltip("true_name:N", title="true"),
                 alt.Tooltip("predicted_name:N", title="predicted"), alt.Tooltip("confidence:Q", format=".1%")],
    ).add_params(pick, brush).properties(height=height)


def tsne_selection(event: Any, frame: pd.DataFrame) -> np.ndarray:
    """Dataset indices chosen in :func:`tsne_chart`: the clicked point, else the points inside the brush.

    Returns int64 indices in the frame's row order; empty when nothing is selected.
    """
    picked = selected_values(event, TSNE_PICK, "index")
    if picked:
        wanted = {int(v) for v in picked}
        return frame["index"][frame["index"].isin(wanted)].to_numpy(np.int64)
    xs, ys = selected_values(event, TSNE_BRUSH, "x"), selected_values(event, TSNE_BRUSH, "y")
    if len(xs) == 2 and len(ys) == 2:
        inside = frame["x"].between(min(xs), max(xs)) & frame["y"].between(min(ys), max(ys))
        return frame.loc[inside, "index"].to_numpy(np.int64)
    return np.zeros(0, np.int64)


# ---------------------------------------------------------------------------------------------- metrics
def metrics_chart(per_class: pd.DataFrame, bar: int = 8, max_classes: int = 20) -> alt.Chart:
    """Grouped horizontal bars of precision, recall and F1 for each class (``metrics.per_class_table``).

    With more than ``max_classes`` classes only the ``max_classes`` of lowest F1 (among those with images) are drawn.
    """
    if len(per_class) > max_classes:
        present = per_class[per_class["support"] > 0]
        per_class = present.sort_values(["f1", "class_index"]).head(max_classes)
    long = per_class.melt(id_vars=["class_index", "class", "support"], value_vars=["precision", "recall", "f1"],
                          var_name="metric", value_name="value")
    order = list(per_class.sort_values("class_index")["class"])
    return alt.Chart(long).mark_bar().encode(
        y=alt.Y("class:N", sort=order, title=None),
        yOffset=alt.YOffset("metric:N", sort=["precision", "recall", "f1"]),
        x=alt.X("value:Q", title=None, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("metric:N", sort=["precision", "recall", "f1"], title=None,
                        legend=alt.Legend(orient="top")),
        tooltip=["class:N", "metric:N", alt.Tooltip("value:Q", format=".1%"), "support:Q"],
    ).properties(height=alt.Step(bar))  # the step of the innermost band: one bar
