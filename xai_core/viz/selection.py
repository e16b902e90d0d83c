"""Reading Streamlit chart selections back: every chart names its selection, and these helpers turn the event
(``on_select="rerun"``) into the values of one field."""

from __future__ import annotations

from typing import Any


def selected_values(event: Any, selection: str, field: str) -> list[Any]:
    """Values of ``field`` in a Streamlit chart selection event (``on_select="rerun"``); [] if none.

    Accepts the event object or its dict form: ``{"selection": {name: [{field: value, ...}, ...]}}``.
    """
    if event is None:
        return []
    state = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", {})
    points = state.get(selection) if isinstance(state, dict) else getattr(state, selection, None)
    if not points:
        return []
    if isinstance(points, dict):  # interval selections: {field: [lo, hi]}
        return list(points.get(field, []))
    return [p[field] for p in points if isinstance(p, dict) and field in p]
