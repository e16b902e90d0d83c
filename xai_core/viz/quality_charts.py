"""Charts of the quality checks: pure functions from long-form frames, with named selections.

Translating a click on a method bar back into a method id, and from there into the images it explains worst,
are pure functions here (AppTest cannot click charts).
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from xai_core.quality.scale import get_metric, worst_images
from xai_core.viz.selection import selected_values

#: Selection names: the localisation leaderboard, and the data-set-scale chart.
QUALITY_METHOD = "quality_method"
DATASET_METHOD = "quality_dataset_method"
ORDER_COLOURS = alt.Scale(domain=["map", "random"], range=["#d6336c", "#868e96"])


def curves_chart(frame: pd.DataFrame, height: int = 180, width: int = 220) -> alt.FacetChart:
    """Deletion and insertion curves (mean over images) for the map's pixel order against a random order.

    ``frame``: :meth:`~xai_core.quality.faithfulness.Curves.frame` (``image_id, curve, order, fraction, score``).
    """
    mean = frame.groupby(["curve", "order", "fraction"], as_index=False)["score"].mean()
    return alt.Chart(mean).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("fraction:Q", title="pixels changed", axis=alt.Axis(format="%")),
        y=alt.Y("score:Q", title="class score"),
        color=alt.Color("order:N", scale=ORDER_COLOURS, title="pixel order", legend=alt.Legend(orient="bottom")),
        strokeDash=alt.StrokeDash("order:N", title="pixel order", legend=alt.Legend(orient="bottom")),
        tooltip=["curve:N", "order:N", alt.Tooltip("fraction:Q", format=".0%"), alt.Tooltip("score:Q", format=".3f")],
    ).properties(width=width, height=height).facet(
        column=alt.Column("curve:N", title=None, sort=["deletion", "insertion"]))


def sanity_chart(frame: pd.DataFrame, threshold: float, height: int = 240) -> alt.LayerChart:
    """Rank correlation with the original maps as layers are randomised from the top down.

    ``frame``: :attr:`~xai_core.quality.sanity.SanityResult.frame` (``step, layer, randomised, image,
    rank_corr``); one point per image, the mean as a line, the insensitivity threshold as a dashed rule.
    """
    order = list(frame.sort_values("step")["layer"].drop_duplicates())
    x = alt.X("layer:N", sort=order, title="randomised down to layer (cascade from the top)",
              axis=alt.Axis(labelAngle=-30))
    base = alt.Chart(frame)
    points = base.mark_circle(size=28, opacity=0.35, color="#4c78a8").encode(
        x=x, y=alt.Y("rank_corr:Q", title="Spearman rank correlation", scale=alt.Scale(domain=[-1, 1])),
        tooltip=["layer:N", "image:Q", alt.Tooltip("rank_corr:Q", format=".2f")])
    line = base.mark_line(point=True, color="#d6336c").encode(x=x, y="mean(rank_corr):Q")
    rule = alt.Chart(pd.DataFrame({"threshold": [threshold]})).mark_rule(strokeDash=[6, 4], color="#868e96").encode(
        y="threshold:Q")
    return (points + line + rule).properties(height=height)


def method_bar_chart(board: pd.DataFrame, selection: str = QUALITY_METHOD, height_per_bar: int = 24) -> alt.LayerChart:
    """Mean ± sd of one metric per method (a :func:`~xai_core.quality.scale.leaderboard` frame), best on top;
    clicking a bar selects its method (point selection ``selection`` over field ``method``)."""
    metric = get_metric(str(board["metric"].iloc[0])) if len(board) else None
    sel = alt.selection_point(name=selection, fields=["method"], on="click", clear=False)
    data = board.assign(lo=board["mean"] - board["sd"], hi=board["mean"] + board["sd"])
    bounds = metric.bounds if metric else None
    if bounds:  # ± sd of a bounded metric (a hit rate) must not leave its range
        data = data.assign(lo=data["lo"].clip(*bounds), hi=data["hi"].clip(*bounds))
    y = alt.Y("label:N", sort=list(data["label"]), title=None, axis=alt.Axis(labelLimit=240))
    title = f"{metric.label} ({'higher' if metric.higher_is_better else 'lower'} is better)" if metric else "value"
    scale = alt.Scale(domain=[0.0, 1.0]) if bounds == (0.0, 1.0) else alt.Undefined  # a share or a rate: all of it
    bars = alt.Chart(data).mark_bar(cursor="pointer").encode(
        y=y, x=alt.X("mean:Q", title=title, scale=scale),
        color=alt.when(sel, empty=False).then(alt.value("#d6336c")).otherwise(alt.value("#4c78a8")),
        tooltip=["label:N", "method:N", alt.Tooltip("mean:Q", format=".3f"), alt.Tooltip("sd:Q", format=".3f"),
                 "n:Q"],
    ).add_params(sel)
    errors = alt.Chart(data).mark_rule(color="#343a40").encode(y=y, x="lo:Q", x2="hi:Q")
    return (bars + errors).properties(height=alt.Step(height_per_bar))


def leaderboard_chart(board: pd.DataFrame) -> alt.LayerChart:
    """The localisation leaderboard: :func:`method_bar_chart` with selection :data:`QUALITY_METHOD`."""
    return method_bar_chart(board, QUALITY_METHOD)


def dataset_chart(board: pd.DataFrame) -> alt.LayerChart:
    """The data-set-scale chart: :func:`method_bar_chart` with selection :data:`DATASET_METHOD`."""
    return method_bar_chart(board, DATASET_METHOD)


def selected_method(event: Any, selection: str = QUALITY_METHOD) -> str | None:
    """The method id last clicked in a :func:`method_bar_chart` with ``selection``, or None."""
    values = selected_values(event, selection, "method")
    return str(values[-1]) if values else None


def selected_worst_images(event: Any, frame: pd.DataFrame, metric: str, k: int = 8,
                          selection: str = DATASET_METHOD) -> list[str]:
    """Image ids of the ``k`` worst images (on ``metric``, in ``frame``) of the method clicked in the chart."""
    method = selected_method(event, selection)
    return [] if method is None else list(worst_images(frame, method, metric, k)["image_id"])
