"""Picking images: the gallery, uploads, images handed over by another page, and data set images added to a grid."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import streamlit as st

from ui.cache import MAX_UPLOAD_SIDE, decoded_uploads, gallery
from ui.feedback import run_safely
from ui.state import forget_sent, init_state, sent_images
from ui.widgets.typed import radio
from xai_core.data.dataset import Dataset
from xai_core.data.images import FIT_MODES, IMAGE_TYPES, FitMode
from xai_core.data.inputs import ImageItem, content_key, from_records, make_record, shrink, unique
from xai_core.viz.render import square_thumbnail

MAX_IMAGES = 12  # images explained at once


@dataclass(frozen=True)
class PickedImages:
    """The usable images chosen on a page, and how they are fitted to a model's input."""

    items: list[ImageItem]
    fit: FitMode


def thumbnails(items: Sequence[ImageItem], width: int = 100) -> None:
    """Small previews of ``items`` with their (shortened) names."""
    if items:  # square thumbnails: any aspect ratio has a drawable size (a 4000×8 strip crashed st.image)
        st.image([square_thumbnail(i.pixels, width) for i in items], width=width,
                 caption=[i.name if len(i.name) <= 16 else i.name[:15] + "…" for i in items])


def image_picker(page: str, default: Sequence[str] = ()) -> PickedImages:
    """Gallery multiselect, drag-and-drop upload and images sent from other pages, then the fit mode; shows every
    problem with st.error and returns the usable images (at most :data:`MAX_IMAGES`)."""
    options = gallery()
    init_state(f"{page}.gallery", [k for k in default if k in options])
    chosen = st.multiselect("Gallery", list(options), format_func=lambda k: options[k].title,
                            key=f"{page}.gallery", placeholder="Photos and demo data set images")
    items = [ImageItem(k, options[k].title, options[k].pixels, "gallery") for k in chosen]
    files = st.file_uploader("Upload images", type=list(IMAGE_TYPES), accept_multiple_files=True,
                             key=f"{page}.uploads", help="PNG, JPEG, BMP, WebP, GIF or TIFF; grayscale, RGBA, "
                             "palette and 16-bit images are converted to RGB.")
    if files:
        data = tuple((f.name, f.getvalue()) for f in files)
        uploaded, errors = decoded_uploads(tuple(f"{n}:{content_key(b)}" for n, b in data), data)
        for message in errors:
            st.error(message, icon=":material/broken_image:")
        items += uploaded
    sent, errors = from_records(sent_images())
    for message in errors:
        st.error(message, icon=":material/broken_image:")
    if sent:
        init_state(f"{page}.use_sent", True)
        left, right = st.columns([3, 1], vertical_alignment="center")
        use = left.toggle(f"Use the {len(sent)} image{'s' * (len(sent) > 1)} sent from another page",
                          key=f"{page}.use_sent")
        right.button("Forget them", on_click=forget_sent, type="tertiary")
        items += sent if use else []
    items = unique(items)
    if len(items) > MAX_IMAGES:
        st.warning(f"{len(items)} images chosen; the first {MAX_IMAGES} are explained.")
        items = items[:MAX_IMAGES]
    init_state(f"{page}.fit", "center-crop")
    fit: FitMode = radio("Fit to the model's input", list(FIT_MODES), key=f"{page}.fit", horizontal=True,
                         help="\n\n".join(f"**{k}**: {v}" for k, v in FIT_MODES.items()))
    thumbnails(items)
    return PickedImages(items, fit)


# ------------------------------------------------------------------------------------------- grid picks
def _picked_key(page: str) -> str:
    return f"{page}.picked"


def pick_for_grid(page: str, dataset: Dataset, index: int) -> None:
    """Callback: add data set image ``index`` to ``page``'s grid (records kept in ``<page>.picked``)."""
    image_id = dataset.ids[index]
    pixels = run_safely(lambda: shrink(dataset.read([index])[0], MAX_UPLOAD_SIDE)[0], f"Reading '{image_id}'")
    if pixels is not None:
        key = image_id if dataset.key.startswith("demo:") else f"{dataset.key}/{image_id}"
        picked = [r for r in st.session_state.get(_picked_key(page), []) if r.get("key") != key]
        st.session_state[_picked_key(page)] = [*picked, make_record(pixels, image_id, key=key)][-MAX_IMAGES:]


def picked_images(page: str) -> list[ImageItem]:
    """The images :func:`pick_for_grid` added to ``page``, with a note and a button to remove them."""
    picked, _ = from_records(st.session_state.get(_picked_key(page)))
    if picked:
        st.caption(f"Added from the data set below: {', '.join(i.name for i in picked)}")
        st.button("Remove them", type="tertiary", on_click=lambda: st.session_state.pop(_picked_key(page), None))
    return picked


def pick_cards(page: str, dataset: Dataset, indices: Sequence[int] | np.ndarray, captions: Sequence[str],
               per_row: int = 6) -> None:
    """Thumbnails of data set images, each with its caption and an "Add to the grid" button (:func:`pick_for_grid`)."""
    indices = [int(i) for i in indices]
    for start in range(0, len(indices), per_row):
        chunk = indices[start:start + per_row]
        for col, i, thumb, text in zip(st.columns(per_row), chunk, dataset.thumbnails(chunk, 112),
                                       captions[start:start + per_row]):
            col.image(thumb, width="stretch")
            col.caption(text)
            col.button("Add to the grid", key=f"{page}.pick.{i}", on_click=pick_for_grid, args=(page, dataset, i),
                       type="tertiary", icon=":material/add:")
