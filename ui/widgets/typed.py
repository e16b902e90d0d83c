"""Typed wrappers of Streamlit's choice widgets.

Streamlit types ``selectbox`` / ``segmented_control`` / ``radio`` as generic overloads that return ``V | None`` and
often infer ``V`` as ``Never`` (from a ``format_func`` such as ``dict.get``). Every choice widget of XAI Lens is
keyed and has a valid value in session state before it is drawn (:func:`ui.state.keep_valid`), so it always returns
one of its options: these wrappers say so, and take the labels as a mapping or a function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

import streamlit as st

T = TypeVar("T")
Labels = Mapping[Any, str] | Callable[[Any], str] | None


def _format(labels: Labels) -> Callable[[Any], str]:
    if labels is None:
        return str
    if callable(labels):
        return labels
    return lambda option: labels.get(option, str(option))


def select(label: str, options: Sequence[T], *, key: str, labels: Labels = None, where: Any = None,
           **kwargs: Any) -> T:
    """``st.selectbox`` over ``options`` (drawn in ``where``, default the page) returning the chosen option."""
    box: Any = where or st
    return cast(T, box.selectbox(label, list(options), key=key, format_func=_format(labels), **kwargs))


def segmented(label: str, options: Sequence[T], *, key: str, labels: Labels = None, where: Any = None,
              **kwargs: Any) -> T:
    """``st.segmented_control`` (one required choice) returning the chosen option."""
    box: Any = where or st
    return cast(T, box.segmented_control(label, list(options), key=key, format_func=_format(labels), required=True,
                                         **kwargs))


def radio(label: str, options: Sequence[T], *, key: str, labels: Labels = None, where: Any = None,
          **kwargs: Any) -> T:
    """``st.radio`` returning the chosen option."""
    box: Any = where or st
    return cast(T, box.radio(label, list(options), key=key, format_func=_format(labels), **kwargs))
