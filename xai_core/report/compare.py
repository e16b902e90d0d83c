"""Compare Models' report: the grid of maps (models side by side, or one model's methods), how far each pair agrees,
the predictions, the methods' cards, the models, and what reproduces it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from xai_core.analysis import agreement as ag
from xai_core.methods import Target
from xai_core.report.document import Block, Chart, Details, Figure, Picture, Report, Section, Table, Text
from xai_core.report.facts import describe_target
from xai_core.report.maps import ExplainedColumn, MapStyle, colour_scale, display_text, prediction_blocks, warning_lines
from xai_core.report.page import page_report
from xai_core.report.summary import agreement_lines, prediction_line
from xai_core.viz.agreement_charts import agreement_chart
from xai_core.viz.render import VIEWS, map_tiles, normalization_scale


def _scales(maps: Sequence[np.ndarray | None], signed: bool, style: MapStyle) -> list[float | None]:
    """The value of 1 of each map as :func:`~xai_core.analysis.agreement.normalize_set` scales it."""
    ok = [(i, m) for i, m in enumerate(maps) if m is not None]
    out: list[float | None] = [None] * len(maps)
    if ok:
        scale = np.broadcast_to(normalization_scale(np.stack([m for _, m in ok]), signed, style.norm,
                                                    style.percentile, style.shared), (len(ok), 1, 1))
        for j, (i, _) in enumerate(ok):
            out[i] = float(scale[j, 0, 0])
    return out


def grid_figure(grid: Sequence[ExplainedColumn], names: Sequence[str], maps: Mapping[str, Sequence[np.ndarray | None]],
                pictures: Sequence[np.ndarray], style: MapStyle, mode: str) -> Figure:
    """The page's grid: a row per image (its picture at the common size), a column per model or method."""
    signed = {n: col.spec.signed for n, col in zip(names, grid)}
    any_signed = any(signed.values())
    norms = {n: ag.normalize_set(ms, signed[n], style.norm, style.percentile, style.shared) for n, ms in maps.items()}
    scales = {n: _scales(ms, signed[n], style) for n, ms in maps.items()}
    rows: list[tuple[Picture | None, ...]] = []
    for i, picture in enumerate(pictures):
        first = grid[0].cells[i]
        top = int(np.argmax(first.probs))
        note = "" if mode == "models" else \
            f" · predicted **{grid[0].bundle.class_names[top]}** ({float(first.probs[top]):.0%})"
        row: list[Picture | None] = [Picture(picture, f"{first.item.name}{note}")]
        for n, col in zip(names, grid):
            cell, shown = col.cells[i], norms[n][i]
            if cell.expl is None or shown is None:
                row.append(None)
                continue
            c = int(np.argmax(cell.probs))
            text = f"{col.bundle.class_names[c]} · {float(cell.probs[c]):.0%}" if mode == "models" else n
            for kind, tile in map_tiles(picture, shown, any_signed, style.cmap, style.alpha, style.view, 1):
                row.append(Picture(tile, f"{text} ({kind}) · 1 = {scales[n][i]:.3g}"))
        rows.append(tuple(row))
    per = 2 if style.view == VIEWS[0] else 1  # heatmap and overlay, or one of them
    header = ("image", *[h for n in names for h in [n] + [""] * (per - 1)])
    return Figure(tuple(rows), header=header, scale=colour_scale(style, any_signed),
                  caption=f"Maps resized to {pictures[0].shape[0]}×{pictures[0].shape[1]} (the largest input) to be "
                          "compared pixel by pixel." if pictures else "")


def agreement_blocks(frame: pd.DataFrame, names: Sequence[str], k: float, by: ag.RankBy) -> list[Block]:
    """The agreement matrix as the page draws it, the mean of every pair, and how to read them."""
    n_images = int(frame.loc[frame["image"] != ag.MEAN, "image"].nunique())
    blocks: list[Block] = [
        Chart(agreement_chart(ag.matrix_frame(frame, names), cell=64 if len(names) <= 4 else 48),
              f"Mean over {n_images} image(s); pixels ranked by {ag.RANK_BY[by]}.",
              "Matrices of Spearman ρ and top-k IoU for every pair; the numbers are in the table below."),
        Table(ag.mean_table(frame), caption="Mean over the images of every pair."),
        Text(f"Spearman ρ: rank correlation (1 = same order, −1 = reversed). {ag.SPEARMAN_MEANING} Top-{k:g} % IoU: "
             f"overlap of the {k:g} % most relevant pixels (1 = the same pixels, 0 = disjoint). {ag.NAN_MEANING}",
             "note")]
    if n_images > 1:
        per_image = frame[frame["image"] != ag.MEAN].drop(columns="images").rename(columns={"value": "agreement"})
        blocks.append(Details("Every image, every pair", (Table(per_image),)))
    return blocks


def compare_report(grid: Sequence[ExplainedColumn], names: Sequence[str],
                   maps: Mapping[str, Sequence[np.ndarray | None]], pictures: Sequence[np.ndarray], frame: pd.DataFrame,
                   style: MapStyle, *, mode: str, target: Target, fit: str, k: float, by: ag.RankBy) -> Report:
    """The report of what Compare Models shows: ``grid`` (its explained columns, named ``names``), ``maps`` resized
    to the common size of ``pictures``, the agreement ``frame`` (:func:`~xai_core.analysis.agreement.agreement_frame`
    with ``k`` and ``by``), drawn with ``style``."""
    images = [c.item.name for c in grid[0].cells]
    chosen = describe_target(target, grid[0].bundle.class_names)
    what = "models" if mode == "models" else "methods"
    summary = [f"{len(names)} {what} ({', '.join(names)}) explain {chosen} of {len(images)} image"
               f"{'s' if len(images) != 1 else ''}" + (f" with {grid[0].spec.label}." if mode == "models" else
                                                       f" on {grid[0].bundle.name}.")]
    summary += agreement_lines(frame, k)
    shown = grid if mode == "models" else grid[:1]  # one model's methods share its predictions
    shown_names = names if mode == "models" else [grid[0].bundle.name]
    summary += [prediction_line(n, images, np.stack([c.probs for c in col.cells]), col.bundle.class_names)
                for n, col in zip(shown_names, shown)]
    if mode == "models" and len(images) > 1:
        tops = np.stack([[col.bundle.class_names[int(np.argmax(c.probs))] for c in col.cells] for col in grid])
        same = int((tops == tops[:1]).all(axis=0).sum())
        summary.append(f"The models predict the same class for {same} of {len(images)} images.")
    warnings = warning_lines(grid, names)
    if warnings:
        summary.append(f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''} about the maps (see *Maps*).")

    methods = [(col.spec, next((c.expl.params for c in col.cells if c.expl is not None), col.params))
               for col in {col.spec.id: col for col in grid}.values()]
    settings = [("mode", "models side by side" if mode == "models" else "method grid"), ("images", ", ".join(images)),
                ("fit to the model's input", fit), ("target", chosen),
                ("agreement", f"top-{k:g} %, pixels ranked by {ag.RANK_BY[by]}"), ("display", display_text(style))]
    sections = (Section("Maps", (*[Text(w, "warning") for w in warnings],
                                 grid_figure(grid, names, maps, pictures, style, mode))),
                Section("Agreement", tuple(agreement_blocks(frame, names, k, by))),
                Section("Predictions", tuple(prediction_blocks(shown, shown_names, style.top_k))))
    title = f"Compare Models: {', '.join(names)}"
    return page_report(title if len(title) <= 90 else f"Compare Models: {len(names)} {what}", "Compare Models",
                       sections, summary, methods=methods, models=[c.bundle for c in grid], target=chosen,
                       settings=settings)
