"""A page's report: its own sections first, then the same tail on every page (methods, models, reproduce)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xai_core.methods import MethodSpec, Target
from xai_core.models.bundle import ModelBundle
from xai_core.report.document import Report, Section
from xai_core.report.facts import methods_section, models_section, reproduce_section, seeds


def page_report(title: str, page: str, sections: Sequence[Section], summary: Sequence[str], *,
                methods: Sequence[tuple[MethodSpec, dict[str, Any]]] = (), models: Sequence[ModelBundle] = (),
                target: Target | str | None = None, settings: Sequence[tuple[str, str]] = (),
                random: Sequence[tuple[str, str]] = ()) -> Report:
    """The report of ``page``: ``sections`` and ``summary`` (the page's findings), then a card per method (with its
    parameters as used and ``target``), every model's facts, and what reproduces it: ``settings`` and the seeds in
    ``random`` besides the methods' own. A page that reports something new (Suggest's strategies) writes the
    section and calls this."""
    tail = [methods_section(methods, target)] if methods else []
    tail += [models_section(models)] if models else []
    method_seeds = [s for spec, params in methods for s in seeds(spec, params)]
    tail.append(reproduce_section([("page", page), *settings], [*method_seeds, *random]))
    return Report(title, page, tuple(summary), (*sections, *tail))
