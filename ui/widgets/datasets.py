"""Picking a data set (demo, zip upload, server folder) and showing its images as cards that open in Visualize."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from ui.cache import MAX_UPLOAD_SIDE, demo_data, folder_dataset, rescan_folders, zip_dataset
from ui.feedback import run_safely
from ui.state import init_state, open_in_visualize
from ui.widgets.typed import segmented, select
from xai_core.data.dataset import Dataset
from xai_core.data.demo import DEMO_DATASETS
from xai_core.data.inputs import make_record, shrink

DATASET_SOURCES = {"demo": "Demo data set", "zip": "Upload a zip", "folder": "Folder on the server"}
DEMO_LABELS = {"digits": "digits (32×32 gray, 10 classes)", "shapes": "shapes (64×64 colour, 6 classes)",
               "tagged_shapes": "tagged shapes (a corner tag to find: the bias demo)"}


def dataset_picker(page: str, default: str = "digits") -> Dataset | None:
    """Choose a data set: a demo set, a zip upload or a server folder (class subfolders = labels).

    Shows what was skipped and every problem in the page; returns ``None`` until a usable set is chosen.
    """
    init_state(f"{page}.ds_source", "demo")
    source = segmented("Data set", list(DATASET_SOURCES), labels=DATASET_SOURCES, key=f"{page}.ds_source")
    dataset: Dataset | None = None
    if source == "demo":
        left, right = st.columns(2)
        init_state(f"{page}.ds_demo", default)
        name = select("Demo set", list(DEMO_DATASETS), key=f"{page}.ds_demo", labels=DEMO_LABELS, where=left)
        init_state(f"{page}.ds_split", "test")
        split = select("Split", ["test", "train"], key=f"{page}.ds_split", where=right,
                       labels={"test": "test (held out)", "train": "train"})
        dataset = run_safely(lambda: demo_data(name, split), "Loading the demo set")
    elif source == "zip":
        file = st.file_uploader("Zip of images", type=["zip"], key=f"{page}.ds_zip",
                                help="Either one folder per class (folder name = class name) or images directly "
                                     "in the archive (unlabelled). Up to 50,000 images, 2 GB unpacked.")
        if file is None:
            st.info("Upload a zip to continue, or pick a demo set.", icon=":material/info:")
            return None
        data = file.getvalue()
        dataset = run_safely(lambda: zip_dataset(data, file.name), f"Opening '{file.name}'")
    else:
        left, right = st.columns([5, 1], vertical_alignment="bottom")
        path = left.text_input("Folder path on the server", key=f"{page}.ds_folder",
                               placeholder="/data/my_images  (one subfolder per class, or images directly)").strip()
        if right.button("Rescan", help="Read the folder again (after files changed)."):
            rescan_folders()
        if not path:
            st.info("Enter the path of a folder on the machine running XAI Lens.", icon=":material/info:")
            return None
        dataset = run_safely(lambda: folder_dataset(path), f"Opening '{path}'")
    if dataset is None:
        return None
    labelled = int((dataset.labels >= 0).sum())
    st.caption(f"**{dataset.name}**: {len(dataset):,} images"
               + (f", {len(dataset.class_names)} classes, {labelled:,} labelled" if dataset.labeled else
                  ", unlabelled"))
    if dataset.skipped:
        with st.expander(f"{len(dataset.skipped)} file(s) skipped", icon=":material/warning:"):
            st.dataframe(pd.DataFrame(dataset.skipped, columns=["file", "reason"]), hide_index=True)
    return dataset


def open_dataset_image(dataset: Dataset, i: int, **send: Any) -> None:
    """Open data set image ``i`` in Visualize (``send``: models, layer, neuron, method)."""
    pixels = run_safely(lambda: dataset.read([i])[0], f"Reading '{dataset.ids[i]}'")
    if pixels is not None:
        pixels, _ = shrink(pixels, MAX_UPLOAD_SIDE)
        open_in_visualize([make_record(pixels, dataset.ids[i])], switch=True, **send)


def explain_button(page: str, name: str, dataset: Dataset, i: int, where: Any = st, **send: Any) -> None:
    """An "Explain" button that opens data set image ``i`` in Visualize (``send``: models, layer, neuron)."""
    if where.button("Explain", key=f"{page}.{name}.explain.{i}", type="tertiary", icon=":material/image_search:",
                    help="Open this image in Visualize"):
        open_dataset_image(dataset, i, **send)


def image_cards(page: str, name: str, dataset: Dataset, indices: Sequence[int] | np.ndarray, captions: Sequence[str],
                send: Callable[[int], dict[str, Any]] | None = None, per_row: int = 6, limit: int = 24) -> None:
    """Thumbnails of data set images with a caption each, and an "Explain" button that opens the image in
    Visualize with ``send(index)`` as :func:`ui.state.open_in_visualize` keywords (models, layer, neuron)."""
    indices = [int(i) for i in indices]
    if not indices:
        st.info("No images here.", icon=":material/info:")
        return
    if len(indices) > limit:
        st.caption(f"Showing the first {limit} of {len(indices):,} images.")
    shown, texts = indices[:limit], list(captions)[:limit]
    for start in range(0, len(shown), per_row):
        chunk = shown[start:start + per_row]
        for col, i, thumb, text in zip(st.columns(per_row, gap="small"), chunk, dataset.thumbnails(chunk, 112),
                                       texts[start:start + per_row]):
            col.image(thumb, width="stretch")
            col.caption(text)
            if send is not None:
                explain_button(page, name, dataset, i, where=col, **send(i))
