"""The maps a page drew, as report figures: what the page holds (its explained columns), read through protocols so
the report takes the very objects the page rendered (``ui.explanations.Column`` and ``Cell`` satisfy them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from xai_core.data.images import to_display
from xai_core.methods import Explanation, MethodSpec
from xai_core.models.bundle import ModelBundle
from xai_core.report.document import Block, Chart, ColourScale, Details, Figure, Picture, Table
from xai_core.viz.prediction_charts import predictions_frame, predictions_grid_chart
from xai_core.viz.render import NormMode, map_tiles, normalization_scale, normalize

#: Most pictures in one row of a report figure (longer rows wrap).
ROW_CELLS = 9


class Named(Protocol):
    @property
    def name(self) -> str: ...


class ExplainedCell(Protocol):
    """One model × method × image as a page holds it: raw pixels at the model's input size ``x`` ``(1, H, W, C)``,
    the class probabilities, and the maps or why there are none."""

    @property
    def item(self) -> Named: ...
    @property
    def x(self) -> np.ndarray: ...
    @property
    def probs(self) -> np.ndarray: ...
    @property
    def expl(self) -> Explanation | None: ...
    @property
    def error(self) -> str | None: ...


class ExplainedColumn(Protocol):
    """One (model, method, parameters) over every image."""

    @property
    def model_key(self) -> str: ...
    @property
    def bundle(self) -> ModelBundle: ...
    @property
    def spec(self) -> MethodSpec: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def cells(self) -> Sequence[ExplainedCell]: ...


class MapStyle(Protocol):
    """How the page drew the maps (``ui.widgets.display.Display`` satisfies it)."""

    @property
    def view(self) -> str: ...
    @property
    def cmap(self) -> str: ...
    @property
    def alpha(self) -> float: ...
    @property
    def norm(self) -> NormMode: ...
    @property
    def percentile(self) -> float: ...
    @property
    def shared(self) -> bool: ...
    @property
    def top_k(self) -> int: ...


def scale_meaning(style: MapStyle, signed: bool) -> str:
    """What ±1 of the colour scale is, for the captions' ``1 = value``."""
    what = "largest |value|" if style.norm == "max-abs" else f"{style.percentile:g}th percentile of |value| (clipped)"
    per = "one scale for all maps of a model" if style.shared else "each map on its own scale"
    return f"1 = the map's {what}, {per}; the value of 1 is under each map" + ("" if signed else
                                                                               " (negative values not drawn)")


def display_text(style: MapStyle) -> str:
    """The display settings in words (for the reproduce section)."""
    norm = style.norm + (f" {style.percentile:g}" if style.norm == "percentile" else "")
    return (f"{style.view}, colour map {style.cmap}, opacity {style.alpha:g}, normalised by {norm}"
            f"{', one scale per model' if style.shared else ''}")


def colour_scale(style: MapStyle, signed: bool) -> ColourScale:
    return ColourScale(style.cmap, signed, scale_meaning(style, signed))


def column_tiles(column: ExplainedColumn, style: MapStyle) -> list[list[tuple[str, np.ndarray, str]] | None]:
    """Per cell, its pictures as ``(kind, uint8 RGB, map label)`` at the model's input size (the page's
    :func:`~xai_core.viz.render.map_tiles` with its settings), labels carrying the value of 1; None where the
    cell has no maps."""
    ok = [(i, c.expl) for i, c in enumerate(column.cells) if c.expl is not None]
    out: list[list[tuple[str, np.ndarray, str]] | None] = [None] * len(column.cells)
    if not ok:
        return out
    signed = column.spec.signed
    stacked = np.concatenate([e.maps for _, e in ok])
    norms = normalize(stacked, signed, style.norm, style.percentile, shared=style.shared)
    scales = np.broadcast_to(normalization_scale(stacked, signed, style.norm, style.percentile, style.shared),
                             (*stacked.shape[:2], 1, 1))
    for row, (i, expl) in enumerate(ok):
        image = to_display(column.cells[i].x[0])
        tiles = []
        for k in range(expl.maps.shape[1]):
            label = f"{expl.labels[0][k]} · 1 = {float(scales[row, k, 0, 0]):.3g}"
            for kind, picture in map_tiles(image, norms[row, k], signed, style.cmap, style.alpha, style.view, 1):
                tiles.append((kind, picture, label))
        out[i] = tiles
    return out


def visualize_figure(columns: Sequence[ExplainedColumn], style: MapStyle) -> Figure:
    """One row per image and model: the model's input, then every map's tiles (wrapping after
    :data:`ROW_CELLS` pictures), as on Visualize."""
    rows: list[tuple[Picture | None, ...]] = []
    labels: list[str] = []
    tiles = [column_tiles(c, style) for c in columns]
    n_images = len(columns[0].cells) if columns else 0
    for i in range(n_images):
        for m, column in enumerate(columns):
            cell = column.cells[i]
            top = int(np.argmax(cell.probs))
            names = column.bundle.class_names
            first = Picture(to_display(cell.x[0]), f"input {cell.x.shape[1]}×{cell.x.shape[2]} · predicted "
                                                   f"**{names[top]}** ({float(cell.probs[top]):.1%})")
            pictures: list[Picture | None] = [first]
            cell_tiles = tiles[m][i]
            if cell_tiles is None:
                pictures.append(None)
            else:
                pictures += [Picture(p, f"{kind} · {label}") for kind, p, label in cell_tiles]
            for start in range(0, len(pictures), ROW_CELLS):
                rows.append(tuple(pictures[start:start + ROW_CELLS]))
                labels.append(f"{cell.item.name}  \n{column.bundle.name}" if start == 0 else "")
    signed = bool(columns and columns[0].spec.signed)
    return Figure(tuple(rows), row_labels=tuple(labels), scale=colour_scale(style, signed))


def prediction_blocks(columns: Sequence[ExplainedColumn], names: Sequence[str], top_k: int,
                      selected: int | None = None) -> list[Block]:
    """The predictions of every image and column as the page's bars, in one chart (a panel per image · column), and
    the numbers folded below it. ``names``: each column's name as the page shows it."""
    frames = [predictions_frame(np.stack([c.probs for c in col.cells]), col.bundle.class_names, top_k,
                                [c.item.name for c in col.cells], name) for col, name in zip(columns, names)]
    frame = pd.concat(frames, ignore_index=True)
    table = frame.assign(probability=[f"{p:.2%}" for p in frame["probability"]])
    return [Chart(predictions_grid_chart(frame, selected), f"Top-{top_k} class probabilities (the model's own output "
                  "activation).", "Bars of the top class probabilities of every image; the numbers are in the table "
                  "below."),
            Details("The predictions as numbers", (Table(table),))]


def warning_lines(columns: Sequence[ExplainedColumn], names: Sequence[str]) -> list[str]:
    """Every distinct warning and error of the maps, prefixed with the column's name."""
    out = []
    for column, name in zip(columns, names):
        texts = [m for c in column.cells for m in ([c.error] if c.error else c.expl.warnings if c.expl else [])]
        out += [f"**{name}:** {t}" for t in dict.fromkeys(texts)]
    return out


def count_maps(columns: Sequence[ExplainedColumn]) -> int:
    """How many maps the columns hold (cells × targets per cell)."""
    return sum(c.expl.maps.shape[1] for col in columns for c in col.cells if c.expl is not None)
