"""Can I trust this map? Explanation-quality checks, one module per family of metrics.

* :mod:`~xai_core.quality.faithfulness` — deletion / insertion curves against a random order (Petsiuk et al. 2018);
* :mod:`~xai_core.quality.sanity` — cascading weight randomisation (Adebayo et al. 2018);
* :mod:`~xai_core.quality.axioms` — completeness (IG, DeepLIFT) and LRP conservation;
* :mod:`~xai_core.quality.localisation` — pointing game and relevance mass against object masks;
* :mod:`~xai_core.quality.scale` — any metric over N images of a data set, leaderboards, worst images;
* :mod:`~xai_core.quality.report` — the compact per-map report shown beside heatmaps;
* :mod:`~xai_core.viz.quality_charts` — Altair charts with named selections.
"""

from xai_core.quality.axioms import Axiom, axiom_for, check_axiom
from xai_core.quality.faithfulness import BASELINES, Curves, deletion_insertion
from xai_core.quality.localisation import pointing_game, relevance_mass
from xai_core.quality.report import TrustReport, trust_report
from xai_core.quality.sanity import INSENSITIVE_THRESHOLD, SanityResult, cascading_randomization
from xai_core.quality.scale import (
    METRICS,
    dataset_metrics,
    leaderboard,
    localisation_leaderboard,
    metric_frame,
    worst_images,
)

__all__ = [
    "BASELINES", "INSENSITIVE_THRESHOLD", "METRICS", "Axiom", "Curves", "SanityResult", "TrustReport", "axiom_for",
    "cascading_randomization", "check_axiom", "dataset_metrics", "deletion_insertion", "leaderboard",
    "localisation_leaderboard", "metric_frame", "pointing_game", "relevance_mass", "trust_report", "worst_images",
]
