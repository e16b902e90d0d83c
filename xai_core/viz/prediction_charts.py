"""Altair charts: pure functions from long-form DataFrames, with named selections read back by pages.

Translating a selection event back into ids is a pure function next to its chart, so it can be unit-tested
(AppTest cannot click charts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from xai_core.viz.selection import selected_values

PREDICTION_SELECTION = "pred_select"
#: Bars are drawn at least this share of the axis wide, so a 0.0 % class is still a bar one can click.
MIN_BAR = 0.02


def predictions_frame(probs: np.ndarray, class_names: Sequence[str], k: int = 5,
                      image_names: Sequence[str] | None = None, model_name: str = "") -> pd.DataFrame:
    """Long form top-``k`` predictions: one row per (image, rank).

    Columns: image, model, rank (1 = top), class_index, class_name, probability.
    """
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    k = int(min(max(1, k), probs.shape[1]))
    names = list(image_names) if image_names is not None else [f"image {i}" for i in range(len(probs))]
    rows = []
    for i, p in enumerate(probs):
        for rank, c in enumerate(np.argsort(-p, kind="stable")[:k], start=1):
            rows.append({"image": names[i], "model": model_name, "rank": rank, "class_index": int(c),
                         "class_name": str(class_names[c]), "probability": float(p[c])})
    return pd.DataFrame(rows, columns=["image", "model", "rank", "class_index", "class_name", "probability"])


def predictions_chart(df: pd.DataFrame, selected: int | None = None, height_per_bar: int = 28) -> alt.Chart:
    """Horizontal bars of class probabilities for one image; clicking a bar selects its class.

    Every bar is at least :data:`MIN_BAR` of the axis wide (the label and tooltip give the true value), so every
    listed class can be clicked. The selection is named :data:`PREDICTION_SELECTION` over ``class_index``; read it
    back with :func:`selected_class`.
    """
    sel = alt.selection_point(name=PREDICTION_SELECTION, fields=["class_index"], on="click", clear=False)
    idx = df["class_index"].astype(str)
    label = df["class_name"].where(df["class_name"] == idx, df["class_name"] + "  (" + idx + ")")
    data = df.assign(label=label, is_target=df["class_index"] == selected if selected is not None else False,
                     shown=df["probability"].clip(lower=MIN_BAR))
    order = list(data.sort_values("rank")["label"])
    base = alt.Chart(data).encode(
        y=alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        x=alt.X("probability:Q", title="probability", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=[alt.Tooltip("class_name:N", title="class"), alt.Tooltip("class_index:Q", title="index"),
                 alt.Tooltip("probability:Q", format=".2%")],
    )
    bars = base.mark_bar(cursor="pointer").encode(
        x=alt.X("shown:Q", title="probability", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.condition("datum.is_target", alt.value("#d6336c"), alt.value("#4c78a8")),
        opacity=alt.condition(sel, alt.value(1.0), alt.value(0.85)),
    ).add_params(sel)
    text = base.mark_text(align="left", dx=4, fontSize=12).encode(
        x="shown:Q", text=alt.Text("probability:Q", format=".1%"))
    return (bars + text).properties(height=alt.Step(height_per_bar))


def predictions_grid_chart(df: pd.DataFrame, selected: int | None = None, columns: int = 2, width: int = 240,
                           height_per_bar: int = 22) -> alt.FacetChart:
    """The bars of :func:`predictions_chart` for many images (and models) in one chart: a panel per image (· model
    when there are several), ``columns`` panels a row, each with its own classes in rank order. For views that show
    every prediction at once (the HTML report); one chart instead of one per image."""
    several = df["model"].nunique() > 1
    panel = df["image"] + (" · " + df["model"] if several else "")
    idx = df["class_index"].astype(str)
    label = df["class_name"].where(df["class_name"] == idx, df["class_name"] + "  (" + idx + ")")
    data = df.assign(panel=panel, label=label, shown=df["probability"].clip(lower=MIN_BAR),
                     is_target=df["class_index"] == selected if selected is not None else False)
    base = alt.Chart().encode(
        y=alt.Y("label:N", sort=alt.EncodingSortField("rank", op="min", order="ascending"), title=None,
                axis=alt.Axis(labelLimit=200)),
        x=alt.X("shown:Q", title="probability", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=[alt.Tooltip("panel:N", title="image"), alt.Tooltip("class_name:N", title="class"),
                 alt.Tooltip("class_index:Q", title="index"), alt.Tooltip("probability:Q", format=".2%")],
    )
    bars = base.mark_bar().encode(color=alt.condition("datum.is_target", alt.value("#d6336c"), alt.value("#4c78a8")))
    text = base.mark_text(align="left", dx=4, fontSize=11).encode(text=alt.Text("probability:Q", format=".1%"))
    return alt.layer(bars, text, data=data).properties(width=width, height=alt.Step(height_per_bar)).facet(
        facet=alt.Facet("panel:N", title=None, sort=list(dict.fromkeys(panel))), columns=columns,
    ).resolve_scale(y="independent")


def selected_class(event: Any) -> int | None:
    """The class index clicked in :func:`predictions_chart`, or None."""
    values = selected_values(event, PREDICTION_SELECTION, "class_index")
    return int(values[-1]) if values else None
