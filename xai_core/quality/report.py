"""The compact answer to "can I trust this map?" for maps already computed: faithfulness and the axiom.

Used beside the heatmaps in Visualize: deletion/insertion AUC of the map against a random pixel order, and the
method's axiom (completeness / conservation) where one applies. The sanity check is model-level and slow; it is
run separately (:mod:`xai_core.quality.sanity`).

Ref. Petsiuk et al. 2018, RISE, BMVC; Sundararajan et al. 2017, ICML; Bach et al. 2015, PLoS ONE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xai_core.models.bundle import ModelBundle
from xai_core.quality.axioms import Axiom, axiom_for, check_axiom
from xai_core.quality.faithfulness import Curves, deletion_insertion

#: How to read the checks of this module, and where the sanity check is (shown beside the results).
HOW_TO_READ = (
    "**Deletion**: remove the pixels the map ranks highest first; a faithful map destroys the class probability "
    "faster than a random order (lower area under the curve, AUC). **Insertion**: reveal them first on a blurred "
    "copy; a faithful map restores it faster (higher AUC). Methods that promise an **axiom** (Integrated Gradients, "
    "DeepLIFT: completeness; LRP-0/ε: conservation) are checked against it. The **sanity check** (does the map change "
    "when the model's weights are randomised?) runs on the Trust page.")


@dataclass
class TrustReport:
    """Faithfulness curves of N maps and, when the method promises one, its axiom check per image."""

    method: str
    curves: Curves
    axiom: Axiom | None
    axioms: pd.DataFrame

    def table(self) -> pd.DataFrame:
        """One row per image: AUCs for the map and a random order, whether the map beats random on both curves,
        and the axiom's sum / expected / relative error / pass when one applies."""
        s = self.curves.summary()
        out = pd.DataFrame({"image": s["image_id"],
                            "deletion AUC ↓": s["deletion_auc"], "deletion AUC, random": s["deletion_auc_random"],
                            "insertion AUC ↑": s["insertion_auc"], "insertion AUC, random": s["insertion_auc_random"]})
        out["beats random"] = (s["deletion_auc"] < s["deletion_auc_random"]) & (
            s["insertion_auc"] > s["insertion_auc_random"])
        if self.axiom is not None and len(self.axioms):
            a = self.axioms.reset_index(drop=True)
            out[f"Σ map ({self.axiom.name})"] = a["value"]
            out["expected"] = a["expected"]
            out["relative error"] = a["rel_error"]
            out[f"within {self.axiom.tolerance:.0%}"] = a["passed"]
        return out

    def verdict(self) -> str:
        """One sentence summarising the evidence over all images."""
        t = self.table()
        n, beats = len(t), int(t["beats random"].sum())
        text = (f"The map's pixel order beats a random order on both curves for {beats} of {n} image"
                f"{'s' if n > 1 else ''}.")
        if self.axiom is not None and len(self.axioms):
            ok = int(self.axioms["passed"].sum())
            text += (f" {self.axiom.name.capitalize()} ({self.axiom.statement}) holds within "
                     f"{self.axiom.tolerance:.0%} for {ok} of {n}.")
        return text


def trust_report(bundle: ModelBundle, method_id: str, images: np.ndarray, maps: np.ndarray,
                 targets: Sequence[int] | np.ndarray, params: dict[str, Any] | None = None,
                 image_ids: Sequence[str] | None = None, *, steps: int = 20, seed: int = 0,
                 deletion_baseline: str = "black", insertion_baseline: str = "blur") -> TrustReport:
    """Deletion/insertion (map vs random order) and the axiom check for ``maps`` ``(N, H, W)`` of ``method_id``
    explaining class ``targets[i]`` of raw ``images[i]``.

    Ref. Petsiuk et al. 2018 (BMVC); Sundararajan et al. 2017 (ICML).
    """
    curves = deletion_insertion(bundle, images, maps, targets, steps=steps, seed=seed, image_ids=image_ids,
                                deletion_baseline=deletion_baseline, insertion_baseline=insertion_baseline)
    axiom = axiom_for(method_id, params, bundle)
    axioms = check_axiom(bundle, method_id, images, maps, targets, params, image_ids)
    return TrustReport(method_id, curves, axiom, axioms)


def _cell(column: str, value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if column == "relative error":
        return f"{value:.1%}"
    return f"{value:.3f}" if "AUC" in column else f"{value:.4g}"


def measures_by_image(table: pd.DataFrame) -> pd.DataFrame:
    """A :meth:`TrustReport.table` turned on its side and formatted: one row per measure, one column per image
    (readable beside the curves when there are few images)."""
    columns = [c for c in table.columns if c != "image"]
    return pd.DataFrame({str(row["image"]): [_cell(c, row[c]) for c in columns] for _, row in table.iterrows()},
                        index=columns)
