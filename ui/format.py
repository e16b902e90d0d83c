"""Labels shown in the page."""

from __future__ import annotations

from xai_core.methods import get_method


def label_of(method_id: str) -> str:
    """The display label of a method id (for ``format_func``)."""
    return get_method(method_id).label
