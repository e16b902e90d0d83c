"""The learn-from-data step of methods with a :class:`~xai_core.methods.base.Fitting` (PatternNet's patterns).

Demo models fit on their data set's training split; other models on the images chosen on the page, or on a data
set the user picks. The result is saved per model key, so the step appears once per model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import streamlit as st

from ui.feedback import progress, run_safely
from ui.state import init_state
from ui.widgets.datasets import dataset_picker
from xai_core.methods import MethodSpec
from xai_core.models.bundle import ModelBundle
from xai_core.viz.exports import slug


def fit_step(page: str, bundle: ModelBundle, model_key: str, spec: MethodSpec, variant: str,
             page_images: np.ndarray) -> bool:
    """True when ``spec`` is fitted (``variant``) for ``bundle``; otherwise draws the fit step and returns False
    until it was clicked and the fit succeeded. ``page_images``: the page's images at the model's input size."""
    fitting = spec.fitting
    if fitting is None or fitting.is_fitted(bundle, model_key, variant):
        return True
    train = fitting.training_images(bundle)
    slot = st.empty()
    box = slot.container(border=True)
    box.markdown(f"**{bundle.name}: fit {fitting.what} first.** {spec.label} learns them from data "
                 f"({variant} {fitting.param}), once per model; they are then kept on disk.")
    key = f"{page}.fit_step.{slug(model_key)}.{variant}"
    total: int
    batches: Callable[[], Iterable[np.ndarray]]
    if train is not None:
        name, images = train
        total, batches = len(images), lambda: fitting.batches(images)
        box.caption(f"They are fitted on the {total:,} training images of {name}.")
    else:
        init_state(f"{key}.on", "page")
        on = box.radio("Fit on", ["page", "dataset"], key=f"{key}.on", horizontal=True,
                       format_func={"page": f"the {len(page_images)} image(s) chosen above",
                                    "dataset": "a data set (demo, zip upload or server folder)"}.get)
        if on == "page":
            total, batches = len(page_images), lambda: fitting.batches(page_images)
            box.caption("A handful of images gives rough results (dense layers especially): choose as many typical "
                        "images as you can, or fit on a data set.")
        else:
            with box:
                dataset = dataset_picker(f"{key}.ds")
            if dataset is None:
                return False
            total = len(dataset)

            def batches() -> Iterable[np.ndarray]:
                return (b.images for b in dataset.batches(bundle.input_size, bundle.channels, batch_size=64))
    if not box.button(f"Fit {fitting.what}", key=key, type="primary", icon=":material/model_training:"):
        return False
    with progress(f"Fitting {fitting.what} for {bundle.name}, images", where=box) as update:
        fitted = run_safely(lambda: fitting.fit(bundle, model_key, batches(), total, variant, update),
                            f"Fitting {fitting.what} for {bundle.name}")
    if fitted is not None:
        slot.empty()
    return fitted is not None


def fitting_ready(page: str, needs: Sequence[tuple[str, ModelBundle, MethodSpec, dict]],
                  images: Callable[[ModelBundle], np.ndarray]) -> bool:
    """:func:`fit_step` for every distinct (model key, method fitting, variant) in ``needs`` = ``(model key, bundle,
    spec, params)``; True when all are fitted. ``images(bundle)``: the page's images at that model's input size
    (computed only where a fit step is drawn)."""
    distinct: dict[tuple[str, str, str], tuple[ModelBundle, MethodSpec]] = {}
    for key, bundle, spec, params in needs:
        if spec.fitting is not None:
            distinct.setdefault((key, spec.fitting.what, spec.fit_variant(params)), (bundle, spec))
    done = []
    for (key, _, variant), (bundle, spec) in distinct.items():
        ready = spec.ready(bundle, key, {spec.fitting.param: variant}) if spec.fitting else True
        done.append(ready or fit_step(page, bundle, key, spec, variant, images(bundle)))
    return all(done)
