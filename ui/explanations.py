"""Maps for a grid of (model, method, parameters) columns × images, as typed cells the pages render.

Each image is explained on its own with the cache keys every page shares (:func:`ui.cache.explanation`), so a map
seen on Visualize is reused by Compare Models. A method new for a model is built first (:mod:`xai_core.methods.build`,
once per model, method and layer) with a message that says which step the build is on; its first map is then
computed once, under the same message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import streamlit as st

from ui.cache import charge_build, explanation, get_model, model_input, predictions, reserve_build
from ui.feedback import attempt, build_steps, prebuild_notice, wait_for_build
from ui.prebuild import prebuild
from ui.state import visualize_method
from xai_core.data.images import FitMode
from xai_core.data.inputs import ImageItem
from xai_core.methods import Explanation, MethodSpec, Target, steps
from xai_core.methods.build import Build, ensure_built, is_built, record
from xai_core.models.bundle import ModelBundle
from xai_core.viz.render import NormMode, normalize


@dataclass
class Cell:
    """One model × method × image: the model input, its probabilities, and the maps or why there are none."""

    item: ImageItem
    image_key: str
    x: np.ndarray  # float32 (1, H, W, C) model input
    probs: np.ndarray  # (classes,)
    expl: Explanation | None
    error: str | None


@dataclass
class Column:
    """One (model, method, parameters) over every image."""

    model_key: str
    bundle: ModelBundle
    spec: MethodSpec
    params: dict[str, Any]
    cells: list[Cell] = field(default_factory=list)

    @property
    def explained(self) -> list[Cell]:
        """The cells that have maps."""
        return [c for c in self.cells if c.expl is not None]

    def first_maps(self) -> list[np.ndarray | None]:
        """Per cell, its first map ``(H, W)`` (the one a class target gives), or None."""
        return [None if c.expl is None else c.expl.maps[0, 0] for c in self.cells]

    def warnings(self) -> list[str]:
        """Every distinct warning of the maps, in order."""
        return list(dict.fromkeys(w for c in self.cells if c.expl is not None for w in c.expl.warnings))

    def messages(self) -> list[str]:
        """Every distinct warning of the maps and every error, in order."""
        texts = [m for c in self.cells for m in ([c.error] if c.error else c.expl.warnings if c.expl else [])]
        return list(dict.fromkeys(texts))

    def normalized(self, mode: NormMode, percentile: float, shared: bool) -> list[np.ndarray | None]:
        """Per cell, its maps ``(K, H, W)`` normalised for drawing (one scale for the column when ``shared``);
        None where there are no maps."""
        ok = [(i, c.expl) for i, c in enumerate(self.cells) if c.expl is not None]
        out: list[np.ndarray | None] = [None] * len(self.cells)
        if not ok:
            return out
        stacked = normalize(np.concatenate([e.maps for _, e in ok]), self.spec.signed, mode, percentile,
                            shared=shared)
        for j, (i, _) in enumerate(ok):
            out[i] = stacked[j]
        return out


def _title(bundle: ModelBundle, spec: MethodSpec, target: Target) -> str:
    where = f" (layer {target.layer})" if target.layer else ""
    return f"Building {spec.label} for {bundle.name}{where} (first use only)"


def await_build(bundle: ModelBundle, spec: MethodSpec, params: dict[str, Any], target: Target) -> None:
    """If this method is being built for this model elsewhere (in the background, or by another session), wait for
    it with its step in the page (anything else this model runs meanwhile would wait for its lock without a word)."""
    pending = record(bundle, spec.id, params, target.layer)
    if pending is not None and not pending.done:
        wait_for_build(pending, _title(bundle, spec, target))


def explanation_shown(model_key: str, bundle: ModelBundle, spec: MethodSpec, image_key: str, target: Target,
                      params: dict[str, Any], x: np.ndarray) -> Explanation:
    """:func:`ui.cache.explanation`; when the method is new for the model, built first (:func:`ensure_built`) and
    its first map computed once, under a message that says which step it is on (building takes seconds, running
    milliseconds).

    The build runs outside the cached call: ``st.cache_data`` records the page elements a cached function
    updates and replays them on a hit, which cannot work for a message slot that lives outside it; the first run
    inside it is announced before the call. A build started elsewhere is waited for, not repeated."""
    await_build(bundle, spec, params, target)
    if is_built(bundle, spec.id, params, target.layer):
        return explanation(model_key, spec.id, image_key, target, params, x)
    reserve_build(model_key, bundle)  # within the memory budget: may unload other models first
    with build_steps(_title(bundle, spec, target)) as show:
        with steps.reporting(show):
            built = ensure_built(bundle, spec.id, params, target.layer)
        charge_build(model_key, built.take_rss_growth() if built is not None else 0)
        show(steps.FIRST_RUN)
        return explanation(model_key, spec.id, image_key, target, params, x)


def prepare_visualize(where: Any, model_keys: Sequence[str], layer: str | None = None) -> list[Build]:
    """Start building, in the background, the method Visualize will show for each model (its choice there in this
    session, else its default) for the classes, or for neurons of ``layer``; say so in ``where`` (a slot). For
    pages whose **Explain** opens Visualize, called once the page has done its own work. A failure shows nothing:
    this is a guess, and Visualize builds (and explains any error) itself. Returns the builds started or running."""

    def start() -> list[Build]:
        records = []
        for key in model_keys:
            bundle = get_model(key)
            choice = visualize_method(bundle)
            target_layer = None if layer is None or bundle.is_output_layer(layer) else layer
            record = prebuild(key, *choice, target_layer) if choice else None
            if record is not None:
                records.append(record)
        return records

    records = attempt(start, "Preparing Visualize")[0] or []
    with where:
        prebuild_notice(records)
    return records


def explain_grid(columns: Sequence[tuple[str, MethodSpec, dict[str, Any]]], items: Sequence[ImageItem],
                 target: Target, fit: FitMode) -> list[Column]:
    """Maps of every (model key, method, params) column × image, with a progress bar over the cells."""
    bar = st.progress(0.0, text="Explaining …")
    out: list[Column] = []
    total, done = max(1, len(columns) * len(items)), 0
    for model_key, spec, params in columns:
        bundle = get_model(model_key)
        column = Column(model_key, bundle, spec, params)
        await_build(bundle, spec, params, target)  # before the predictions, which need the model's lock
        for item in items:
            bar.progress(done / total, text=f"{spec.label} on {bundle.name}: '{item.name}' ({done + 1}/{total})")
            image_key, x = model_input(item, bundle, fit)
            probs = predictions(model_key, image_key, x)[0]
            expl, error = attempt(partial(explanation_shown, model_key, bundle, spec, image_key, target, params, x),
                                  f"{spec.label} on {bundle.name}, '{item.name}'")
            column.cells.append(Cell(item, image_key, x, probs, expl, error))
            done += 1
        out.append(column)
    bar.empty()
    return out
