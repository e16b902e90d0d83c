"""The "Can I trust this map?" panel under Visualize's maps, and the insensitivity notes of the Methods page.

Thin: widgets → :mod:`xai_core.quality` (through the caches in pages/common.py) → render. Nothing is computed until
the user turns the checks on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from pages.common import attempt, init_state, model_input, params_key, quality_report, sanity_flags
from xai_core.data.inputs import ImageItem
from xai_core.methods import MethodSpec, Target, get_method
from xai_core.models.bundle import ModelBundle
from xai_core.quality.sanity import demo_sanity
from xai_core.viz.quality_charts import curves_chart

STEPS = (10, 20, 50)
INTRO = ("**Deletion**: remove the pixels the map ranks highest first; a faithful map destroys the class probability "
         "faster than a random order (lower area under the curve, AUC). **Insertion**: reveal them first on a "
         "blurred copy; a faithful map restores it faster (higher AUC). Methods that promise an **axiom** "
         "(Integrated Gradients, DeepLIFT: completeness; LRP-0/ε: conservation) are checked against it. The "
         "**sanity check** (does the map change when the model's weights are randomised?) runs on the Trust page.")


def _cell(column: str, value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if column == "relative error":
        return f"{value:.1%}"
    return f"{value:.3f}" if "AUC" in column else f"{value:.4g}"


def measures_by_image(table: pd.DataFrame) -> pd.DataFrame:
    """A :meth:`~xai_core.quality.report.TrustReport.table` turned on its side: one row per measure, one column per
    image (readable beside the curves when there are few images)."""
    columns = [c for c in table.columns if c != "image"]
    return pd.DataFrame({str(row["image"]): [_cell(c, row[c]) for c in columns] for _, row in table.iterrows()},
                        index=columns)


def sanity_note(model_key: str, method_id: str) -> tuple[str, bool] | None:
    """``(text, insensitive)`` of a sanity check of ``method_id`` on ``model_key`` run in this server, or measured
    for the demo model by scripts/sanity_demo.py; None if neither exists."""
    result = sanity_flags().get((model_key, method_id))
    if result is not None:
        return f"Sanity check (run in this session): {result.verdict}", result.insensitive
    known = demo_sanity().get((model_key.removeprefix("demo:"), method_id)) if model_key.startswith("demo:") else None
    if known is None:
        return None
    word = "insensitive to the model" if known["insensitive"] else "changes with the model"
    return (f"Sanity check (precomputed, {known['images']} test images): {get_method(method_id).label} {word} — "
            f"mean rank correlation {known['cascade_mean']:.2f} over the cascade (flag above "
            f"{known['threshold']:.2f}).", bool(known["insensitive"]))


def insensitivity_notes(method_id: str) -> list[str]:
    """Every check (run in this server, or precomputed on a demo model) that flagged ``method_id`` insensitive."""
    flags = sanity_flags()
    notes = [f"**{key}**: {r.verdict}" for (key, mid), r in flags.items() if mid == method_id and r.insensitive]
    notes += [f"**demo:{model}** (precomputed, {r['images']} images): mean rank correlation {r['cascade_mean']:.2f} "
              f"with the original maps while the layers are randomised (flag above {r['threshold']:.2f})."
              for (model, mid), r in demo_sanity().items() if mid == method_id and r["insensitive"]]
    return notes


def trust_panel(page: str, bundles: dict[str, ModelBundle], items: Sequence[ImageItem], results: dict[str, list],
                spec: MethodSpec, target: Target, params: dict[str, Any]) -> None:
    """Visualize's compact quality section; ``results[model key][i] = (input, probs, explanation | None, error)``."""
    with st.expander("Can I trust this map?"):
        st.caption(INTRO)
        for key, bundle in bundles.items():
            note = sanity_note(key, spec.id)
            if note is not None:
                (st.warning if note[1] else st.caption)(f"**{bundle.name}** · {note[0]}")
        if target.kind not in ("predicted", "class"):
            st.info("The checks score class explanations: choose the predicted class or a class as the target.",
                    icon=":material/info:")
            return
        left, right = st.columns([3, 2], vertical_alignment="bottom")
        init_state(f"{page}.trust.on", False)
        on = left.toggle("Check these maps", key=f"{page}.trust.on",
                         help="Runs (steps + 1) × 4 forward passes per image; results are cached.")
        init_state(f"{page}.trust.steps", 20)
        steps = right.select_slider("Deletion / insertion steps", STEPS, key=f"{page}.trust.steps")
        if not on:
            return
        fit = st.session_state.get(f"{page}.fit", "center-crop")
        for m, (key, bundle) in enumerate(bundles.items()):
            ok = [(i, row) for i, row in enumerate(results[key]) if row[2] is not None]
            if not ok:
                continue
            images = np.concatenate([row[0] for _, row in ok])
            maps = np.stack([row[2].maps[0, 0] for _, row in ok])
            targets = np.array([row[2].indices[0, 0] for _, row in ok])
            image_key = "|".join(model_input(items[i], bundle, fit)[0] for i, _ in ok)
            names = tuple(items[i].name for i, _ in ok)
            report, error = attempt(lambda k=key, ik=image_key, t=targets, n=names, x=images, mp=maps: quality_report(
                k, spec.id, ik, repr(t.tolist()), params_key(params), steps, n, x, mp, t, params),
                f"Checking {spec.label} on {bundle.name}")
            if error:
                st.error(error, icon=":material/error:")
                continue
            st.markdown(f"**{bundle.name}** · {report.verdict()}")
            table, chart = st.columns([1, 1], gap="medium")
            table.dataframe(measures_by_image(report.table()), width="stretch")
            if report.axiom is not None:
                table.caption(f"{report.axiom.statement}, tolerance {report.axiom.tolerance:.0%}. {report.axiom.note}")
            chart.altair_chart(curves_chart(report.curves.frame(), height=130, width=165),
                               key=f"{page}.trust.curves.{m}")
