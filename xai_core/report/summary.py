"""The report's first lines: plain-language sentences written from the numbers the page shows.

Words for a rank correlation follow the usual reading of |ρ| (≥ 0.7 strong, ≥ 0.4 moderate, ≥ 0.1 weak, below that
none), always with the number beside them, so a reader can judge for themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from xai_core.analysis import agreement as ag
from xai_core.methods import get_method
from xai_core.quality.scale import get_metric


def agreement_words(rho: float) -> str:
    """``"agree strongly"`` … ``"disagree"`` for a Spearman ρ."""
    if math.isnan(rho):
        return "cannot be compared"
    if rho >= 0.7:
        return "agree strongly"
    if rho >= 0.4:
        return "agree moderately"
    if rho >= 0.1:
        return "agree weakly"
    if rho > -0.1:
        return "hardly agree"
    return "disagree (opposite pixel rankings)"


def prediction_line(name: str, image_names: Sequence[str], probs: np.ndarray, class_names: Sequence[str]) -> str:
    """What one model predicts for the images: each one (up to three), else the classes and the least sure one."""
    probs = np.atleast_2d(probs)
    top = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    if len(top) <= 3:
        parts = [f"**{class_names[t]}** for {n} ({c:.1%})" for n, t, c in zip(image_names, top, conf)]
        return f"{name} predicts " + "; ".join(parts) + "."
    counts = pd.Series([class_names[t] for t in top]).value_counts()
    classes = ", ".join(f"**{c}** ×{n}" for c, n in counts.head(5).items()) + (" …" if len(counts) > 5 else "")
    worst = int(np.argmin(conf))
    return (f"{name} predicts {classes} for the {len(top)} images, {float(conf.mean()):.1%} sure on average; least "
            f"sure on {image_names[worst]} ({conf[worst]:.1%} {class_names[top[worst]]}).")


def agreement_lines(frame: pd.DataFrame, k: float) -> list[str]:
    """The most and least agreeing pairs of an :func:`~xai_core.analysis.agreement.agreement_frame`."""
    table = ag.mean_table(frame).dropna(subset=[ag.METRICS["spearman"]])
    if table.empty:
        return ["No pair of maps could be compared (a map is constant, e.g. all zero)."] if len(frame) else []
    table = table.sort_values(ag.METRICS["spearman"], ascending=False, kind="stable")
    n_images = int(frame.loc[frame["image"] != ag.MEAN, "image"].nunique())

    def line(row: pd.Series, lead: str) -> str:
        rho, iou = float(row[ag.METRICS["spearman"]]), float(row[ag.METRICS["iou"]])
        return (f"{lead}{row['row']} and {row['column']} {agreement_words(rho)} (ρ = {rho:.2f}, top-{k:g} % "
                f"IoU {iou:.2f}, mean over {n_images} image{'s' if n_images != 1 else ''}).")

    if len(table) == 1:
        return [line(table.iloc[0], "")]
    return [line(table.iloc[0], "Most alike: "), line(table.iloc[-1], "Least alike: ")]


def leaderboard_line(board: pd.DataFrame, metric: str, n: int) -> str:
    """Best and worst method of a :func:`~xai_core.quality.scale.leaderboard`."""
    spec = get_metric(metric)
    if board.empty:
        return f"No method has a value for {spec.label}."
    best, worst = board.iloc[0], board.iloc[-1]
    text = (f"{spec.label} on {n} images: **{best['label']}** is best ({best['mean']:.2f} ± {best['sd']:.2f})")
    if len(board) > 1:
        text += f", **{worst['label']}** worst ({worst['mean']:.2f} ± {worst['sd']:.2f})"
    if "random" in set(board["method"]) and len(board) > 2:
        rand = board.index[board["method"] == "random"][0]
        beaten = [get_method(m).label for m in board["method"].iloc[:rand]]
        text += f"; {len(beaten)} of {len(board) - 1} methods beat Random"
    return text + f" ({'higher' if spec.higher_is_better else 'lower'} is better)."
