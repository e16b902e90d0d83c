"""The Strategies view's shortcut check (mask / paste a cluster's hot region, the class score per image and on
average) and its downloads (ViRelAy project, cluster membership CSV, the report as HTML)."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import streamlit as st

from ui.cache import dataset_stats
from ui.cache_strategies import MapsKey, membership_csv, shortcut_check, virelay_export
from ui.feedback import run_safely
from ui.report import report_button
from ui.state import init_state
from xai_core.analysis import shortcut as sc
from xai_core.analysis.strategies import Strategies
from xai_core.data.dataset import Dataset, model_labels
from xai_core.errors import InvalidParameterError
from xai_core.models.bundle import ModelBundle
from xai_core.report import Report
from xai_core.report.strategies import StrategiesRun, strategies_report
from xai_core.viz.exports import slug
from xai_core.viz.render import upscale
from xai_core.viz.strategies_charts import shortcut_chart
from xai_core.viz.strategies_pictures import region_picture

Settings = tuple[int, str, int | None]  # grid, relevance, neighbours
FILE_NAME = "xai-lens_strategies.html"


def shortcut_section(page: str, model_key: str, bundle: ModelBundle, dataset: Dataset, key: MapsKey,
                     settings: Settings, s: Strategies, k: int, cluster: int) -> sc.ShortcutCheck | None:
    """Check cluster ``cluster``'s hot region: masked, a control, pasted into other classes. Returns the check (None
    when it failed; the error is on the page)."""
    st.subheader(f"Check the shortcut: what does cluster {cluster}'s hot region do to the score?")
    left, right = st.columns([1, 3], gap="large")
    init_state(f"{page}.sp_area", 4)
    area = left.slider("Hot region (% of the image)", 1, 20, key=f"{page}.sp_area",
                       help="The hottest part of the cluster's mean map (smoothed 3×3).") / 100.0
    labels, _ = model_labels(dataset, bundle.class_names)
    predicted = dataset_stats(model_key, dataset).predicted_by_position(len(dataset))
    others = np.flatnonzero((labels >= 0) & (labels != s.maps.class_index) & (predicted != s.maps.class_index))
    check = run_safely(lambda: shortcut_check(key, *settings, k, cluster, area, dataset, s, others),
                       "Checking the hot region")
    if check is None:
        return None
    shown = region_picture(bundle, dataset, s, check, key.fit)
    if shown is not None:
        left.image(upscale(shown, 192), caption=f"The hot region ({check.region.mean():.1%} of the image) on "
                                                 "one image of the cluster")
    right.markdown(sc.verdict(check))
    right.altair_chart(shortcut_chart(check.frame, sc.GROUPS, sc.CONDITIONS), width="content")
    summary = check.summary()
    right.dataframe(summary, hide_index=True, width="stretch", column_config={
        "score": st.column_config.NumberColumn("mean class score", format="%.2f"),
        "change": st.column_config.NumberColumn("mean change", format="%+.2f"),
        "probability": st.column_config.NumberColumn(f"p({s.maps.class_name})", format="percent"),
        "is_class": st.column_config.NumberColumn(f"called {s.maps.class_name}", format="percent")})
    st.caption(sc.HOW_TO_READ)
    return check


def exports(page: str, key: MapsKey, settings: Settings, run: StrategiesRun) -> None:
    """Download the analysis as a ViRelAy project, the cluster membership as CSV and the report as HTML."""
    dataset, s = run.dataset, run.result
    name = slug(f"{dataset.name}-{s.maps.class_name}")
    c1, c2, c3 = st.columns(3)
    data = run_safely(lambda: virelay_export(key, *settings, dataset, s), "Writing the ViRelAy project")
    if data is not None:
        c1.download_button("ViRelAy project (.zip)", data, file_name=f"xai-lens_{name}_virelay.zip",
                           mime="application/zip", icon=":material/download:", width="stretch",
                           help="Input, attribution and analysis HDF5 files with project.yaml and a label map, "
                                "in the layout ViRelAy reads (open project.yaml with `virelay`), plus clusters.csv.")
    c2.download_button("Cluster membership (.csv)", membership_csv(key, *settings, dataset, s),
                       file_name=f"xai-lens_{name}_clusters.csv", mime="text/csv", icon=":material/download:",
                       width="stretch")
    report_download(page, run, c3)


def report_download(page: str, run: StrategiesRun | None, where: Any = None) -> None:
    """The strategies report (HTML) of ``run``; disabled, with the reason, while there is no analysis."""
    report_button(page, partial(strategies_report, run) if run is not None else _no_analysis, FILE_NAME, where=where,
                  disabled=run is None)
    if run is None:
        (where or st).caption("The report (HTML) is offered once the class's strategies are computed.")


def _no_analysis() -> Report:  # never called: the button is disabled without an analysis
    raise InvalidParameterError("There is no strategies analysis to report yet.")
