"""Charts of the Suggest page: the activation histogram and the multi-model confidence/consistency scatter, each
with a named selection that :func:`selected_bins` / :func:`selected_points` map back to image indices.

Ref. Alber et al. (2019), *iNNvestigate neural networks!*, JMLR 20(93) (the "suggest" view of iNNvestigate-GUI).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from xai_core.analysis.suggest import DISAGREE
from xai_core.viz.selection import selected_values

#: Named selections (read back with :func:`selected_bins` / :func:`selected_points`).
BIN_SELECTION = "hist_bin"
POINT_SELECTION = "consensus_pick"


def histogram_chart(bins_df: pd.DataFrame, x_title: str, selected: Sequence[int] = (), height: int = 260) -> alt.Chart:
    """Bars of ``count`` per bin; clicking a bar (shift-click for more) selects it as :data:`BIN_SELECTION`."""
    sel = alt.selection_point(name=BIN_SELECTION, fields=["bin"], on="click", clear="dblclick", toggle="true")
    data = bins_df.assign(picked=bins_df["bin"].isin(list(selected)))
    return alt.Chart(data).mark_bar(cursor="pointer", binSpacing=1).encode(
        x=alt.X("start:Q", bin="binned", title=x_title),
        x2="end:Q",
        y=alt.Y("count:Q", title="images"),
        color=alt.condition("datum.picked", alt.value("#d6336c"), alt.value("#4c78a8")),
        opacity=alt.condition(sel, alt.value(1.0), alt.value(0.75)),
        tooltip=[alt.Tooltip("start:Q", format=".4g", title="from"), alt.Tooltip("end:Q", format=".4g", title="to"),
                 alt.Tooltip("count:Q", title="images")],
    ).add_params(sel).properties(height=height)


def selected_bins(event: Any) -> list[int]:
    """Bins clicked in :func:`histogram_chart` (``[]`` if none)."""
    return sorted({int(b) for b in selected_values(event, BIN_SELECTION, "bin")})


def scatter_chart(df: pd.DataFrame, height: int = 380) -> alt.Chart:
    """Confidence (x) against consistency (y), one point per image, coloured by agreed class or "disagree".

    Points are jittered vertically within their consistency level so that images do not hide each other.
    Hover shows the file name (and a thumbnail when ``df`` has an ``image`` column of PNG data URLs); clicking
    selects the image as :data:`POINT_SELECTION` over ``index``.
    """
    sel = alt.selection_point(name=POINT_SELECTION, fields=["index"], on="click", clear="dblclick")
    rng = np.random.default_rng(0)
    data = df.assign(jitter=df["consistency"] + rng.uniform(-0.035, 0.035, len(df)))
    classes = sorted(c for c in data["agreed"].unique() if c != DISAGREE)
    domain = [*classes, DISAGREE]
    palette = [*alt_palette(len(classes)), "#d62728"]
    tooltip = [alt.Tooltip("id:N", title="file"), alt.Tooltip("predictions:N", title="models say"),
               alt.Tooltip("confidence:Q", format=".1%"), alt.Tooltip("consistency:Q", format=".0%")]
    if "true_class" in data:
        tooltip.append(alt.Tooltip("true_class:N", title="label"))
    if "image" in data:
        tooltip.insert(0, alt.Tooltip("image:N", title="image"))
    return alt.Chart(data).mark_circle(size=60, cursor="pointer").encode(
        x=alt.X("confidence:Q", title="confidence (mean top score)", scale=alt.Scale(zero=False),
                axis=alt.Axis(format="%")),
        y=alt.Y("jitter:Q", title="consistency (share of models agreeing)", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[-0.05, 1.05])),
        color=alt.Color("agreed:N", title="agreed class", scale=alt.Scale(domain=domain, range=palette)),
        opacity=alt.condition(sel, alt.value(0.9), alt.value(0.35)),
        size=alt.condition(sel, alt.value(140), alt.value(50)),
        tooltip=tooltip,
    ).add_params(sel).properties(height=height)


def alt_palette(n: int) -> list[str]:
    """``n`` distinct colours (Tableau 10, then Tableau 20), never the red reserved for "disagree"."""
    base = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#72b7b2", "#eeca3b", "#9d755d", "#bab0ac",
            "#ff9da6", "#79706e", "#17becf", "#bcbd22", "#8c564b", "#e377c2", "#1f77b4", "#2ca02c"]
    return [base[i % len(base)] for i in range(n)]


def selected_points(event: Any) -> list[int]:
    """Image indices clicked in :func:`scatter_chart` (``[]`` if none)."""
    return [int(v) for v in selected_values(event, POINT_SELECTION, "index")]
