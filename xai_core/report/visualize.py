"""Visualize's report: the maps of one method on the chosen images and models, their predictions, the quality checks
the page showed, the method's card, the models, and what reproduces it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xai_core.methods import Target
from xai_core.quality.report import HOW_TO_READ, TrustReport, measures_by_image
from xai_core.report.document import Block, Chart, Report, Section, Table, Text
from xai_core.report.facts import describe_target
from xai_core.report.maps import (
    ExplainedColumn,
    MapStyle,
    display_text,
    prediction_blocks,
    visualize_figure,
    warning_lines,
)
from xai_core.report.page import page_report
from xai_core.report.summary import prediction_line
from xai_core.viz.quality_charts import curves_chart


@dataclass(frozen=True)
class MapChecks:
    """What Visualize's "Can I trust this map?" panel showed: sanity notes ``(model, text, insensitive)``, the
    checks of each model's maps ``(model, report)`` and their number of deletion / insertion steps."""

    notes: tuple[tuple[str, str, bool], ...] = ()
    reports: tuple[tuple[str, TrustReport], ...] = ()
    steps: int | None = None


def checks_section(checks: MapChecks | None) -> Section:
    """The quality checks as the panel showed them, with how to read them."""
    blocks: list[Block] = [Text(HOW_TO_READ)]
    for model, text, insensitive in (checks.notes if checks else ()):
        blocks.append(Text(f"**{model}** · {text}", "warning" if insensitive else "note"))
    if checks is None or not checks.reports:
        blocks.append(Text("Deletion / insertion and the axiom were not run on the page for these maps (turn on "
                           "*Check these maps* under *Can I trust this map?* before downloading).", "note"))
    for model, report in (checks.reports if checks else ()):
        blocks += [Text(f"**{model}** · {report.verdict()}"),
                   Table(measures_by_image(report.table()).reset_index(names="measure"),
                         caption=f"Per image; {checks.steps if checks else '?'} steps per curve.")]
        if report.axiom is not None:
            blocks.append(Text(f"{report.axiom.statement}, tolerance {report.axiom.tolerance:.0%}. "
                               f"{report.axiom.note}", "note"))
        blocks.append(Chart(curves_chart(report.curves.frame(), height=160, width=220),
                            f"{model}: mean class score while pixels are deleted / inserted, in the map's order and "
                            "in a random order.", "Deletion and insertion curves of the map against a random order."))
    return Section("Can I trust this map?", tuple(blocks))


def visualize_report(columns: Sequence[ExplainedColumn], target: Target, style: MapStyle, fit: str,
                     checks: MapChecks | None = None) -> Report:
    """The report of what Visualize shows for ``columns`` (one per model, one method), explained for ``target``
    and drawn with ``style``; ``checks``: what its quality panel showed."""
    if not columns:
        raise ValueError("a report needs at least one explained column")
    spec = columns[0].spec
    chosen = describe_target(target, columns[0].bundle.class_names)
    explained = [c.expl for col in columns for c in col.cells if c.expl is not None]
    params = explained[0].params if explained else spec.resolve_params(columns[0].params)
    names = [col.bundle.name for col in columns]
    images = [c.item.name for c in columns[0].cells]
    warnings = warning_lines(columns, names)
    summary = [f"{spec.label} explains {chosen} for {len(images)} image"
               f"{'s' if len(images) != 1 else ''} on {', '.join(names)}."]
    summary += [prediction_line(name, images, np.stack([c.probs for c in col.cells]), col.bundle.class_names)
                for name, col in zip(names, columns)]
    if checks is not None:
        summary += [f"{model}: {report.verdict()}" for model, report in checks.reports]
        summary += [f"{model}: {text}" for model, text, insensitive in checks.notes if insensitive]
    if warnings:
        summary.append(f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''} about the maps (see *Maps*).")
    summary.append(f"When {spec.label} misleads: {spec.caveat}")

    maps: list[Block] = [Text(f"{spec.label} for {chosen}: each model's input, then its maps.")]
    maps += [Text(w, "warning") for w in warnings]
    maps.append(visualize_figure(columns, style))
    selected = target.index if target.kind == "class" else None
    settings = [("images", ", ".join(images)), ("fit to the model's input", fit), ("target", chosen),
                ("display", display_text(style))]
    random = [(f"{model}: random pixel order of deletion / insertion", str(report.curves.settings.get("seed")))
              for model, report in (checks.reports if checks else ())]
    sections = (Section("Maps", tuple(maps)),
                Section("Predictions", tuple(prediction_blocks(columns, names, style.top_k, selected))),
                checks_section(checks))
    return page_report(f"Visualize: {spec.label} on {len(images)} image{'s' if len(images) != 1 else ''}",
                       "Visualize", sections, summary, methods=[(spec, params)], models=[c.bundle for c in columns],
                       target=chosen, settings=settings, random=random)
