"""Picking the method, its parameters and the target (a class, a neuron, a layer's top neurons)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from ui.state import DEFAULT_METHOD, init_state, keep_valid, method_key
from ui.widgets.typed import segmented
from xai_core.methods import FAMILIES, TOP_K_CHOICES, MethodSpec, Target
from xai_core.methods.explain import neuron_position
from xai_core.models.bundle import LayerInfo, ModelBundle
from xai_core.viz.prediction_charts import selected_class

TARGET_LABELS = {"predicted": "Predicted", "class": "Class", "neuron": "Neuron", "top_neurons": "Top neurons"}


@dataclass(frozen=True)
class MethodChoice:
    """The method chosen on a page, its parameter values (``None`` = auto) and the explanation target."""

    spec: MethodSpec
    params: dict[str, Any]
    target: Target


def _decades(lo: float, hi: float, default: float) -> list[float]:
    values = {float(f"1e{e}") for e in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)}
    return sorted(v for v in values | {float(default)} if lo <= v <= hi)


def param_widgets(spec: MethodSpec, key_prefix: str, layers: Sequence[str] | None = None) -> dict[str, Any]:
    """One widget per schema parameter of ``spec``; returns ``{name: value}`` (``None`` = auto).

    ``layers``: feature layers offered for a ``layer`` parameter; ``None`` = automatic only (several models).
    """
    values: dict[str, Any] = {}
    for p in spec.params:
        key = f"{key_prefix}.{spec.id}.{p.name}"
        num = int if p.kind == "int" else float
        if p.kind == "layer":
            options = ["auto", *(layers or [])]
            keep_valid(key, options, "auto")
            help_ = p.help + ("" if layers is not None else " With several models the layer is chosen automatically.")
            value = st.selectbox(p.label, options, key=key, help=help_, disabled=layers is None,
                                 format_func=lambda o: "auto (last spatial layer)" if o == "auto" else o)
            values[p.name] = None if value == "auto" else value
        elif p.kind == "choice":
            keep_valid(key, list(p.choices), p.default)
            values[p.name] = st.selectbox(p.label, p.choices, key=key, help=p.help)
        elif p.kind == "bool":
            init_state(key, bool(p.default))
            values[p.name] = st.toggle(p.label, key=key, help=p.help)
        elif p.kind == "float" and p.log and p.min and p.max and p.default is not None:
            decades = _decades(p.min, p.max, p.default)
            keep_valid(key, decades, float(p.default))
            values[p.name] = st.select_slider(p.label, decades, key=key, help=p.help, format_func=lambda v: f"{v:g}")
        elif p.default is None or p.min is None or p.max is None or (p.max - p.min) / (p.step or 1) > 300:
            init_state(key, p.default)
            values[p.name] = st.number_input(
                p.label, min_value=None if p.min is None else num(p.min),
                max_value=None if p.max is None else num(p.max),
                step=num(p.step or (1 if p.kind == "int" else 0.1)), key=key, help=p.help,
                placeholder="auto" if p.default is None else None)
        else:
            init_state(key, num(p.default))
            values[p.name] = st.slider(p.label, num(p.min), num(p.max), step=num(p.step or 1), key=key, help=p.help)
    return values


def method_card(spec: MethodSpec) -> None:
    """What the map shows, when it misleads, the paper, and the kind of map."""
    st.markdown(spec.summary)
    st.caption(f":material/warning: {spec.caveat}  \n:material/menu_book: {spec.reference}  \n"
               f"Map: {'signed — red for, blue against' if spec.signed else 'non-negative'}")


def method_picker(page: str, allowed: dict[str, MethodSpec], default: str = DEFAULT_METHOD,
                  family_box: Any = None) -> MethodSpec:
    """Family (in :data:`FAMILIES` order, drawn in ``family_box`` if given) then method among ``allowed``; the
    chosen method's card below."""
    families = [f for f in FAMILIES if any(s.family == f for s in allowed.values())]
    counts = {f: sum(s.family == f for s in allowed.values()) for f in families}
    keep_valid(f"{page}.family", families, allowed[default].family if default in allowed else families[0])
    family = (family_box or st).segmented_control(
        "Method family", families, key=f"{page}.family", required=True, format_func=lambda f: f"{f} · {counts[f]}",
        help="Only methods that every chosen model supports are offered.")
    ids = [mid for mid, s in allowed.items() if s.family == family]
    key = method_key(page, str(family))
    keep_valid(key, ids, default if default in ids else ids[0])
    spec = allowed[str(st.selectbox("Method", ids, key=key, format_func=lambda m: allowed[m].label))]
    method_card(spec)
    return spec


def method_section(page: str, allowed: dict[str, MethodSpec], models: Sequence[ModelBundle]) -> MethodChoice:
    """The "Method and target" block: family + method, the method's parameters (a layer list when one model is
    chosen) and the target, side by side."""
    st.subheader("Method and target")
    family_box = st.container()
    c_method, c_params, c_target = st.columns([4, 3, 5], gap="large")
    with c_method:
        spec = method_picker(page, allowed, family_box=family_box)
    with c_params:
        st.markdown("**Parameters**")
        spatial = [layer.name for layer in models[0].spatial_layers()] if len(models) == 1 else None
        params = param_widgets(spec, f"{page}.param", spatial)
        if not spec.params:
            st.caption("This method has no parameters.")
    with c_target:
        target = target_picker(page, spec, models)
    return MethodChoice(spec, params, target)


def _default_layer(layers: Sequence[LayerInfo]) -> str:
    convs = [layer for layer in layers if "Conv" in layer.kind and layer.spatial]
    return (convs or list(layers))[-1].name


def target_picker(page: str, spec: MethodSpec, bundles: Sequence[ModelBundle]) -> Target:
    """Predicted class, a class, a neuron of a layer or its top-k neurons (the latter two for one model only)."""
    first = bundles[0]
    same_classes = all(b.class_names == first.class_names for b in bundles)
    layers = spec.neuron_layers(first) if len(bundles) == 1 else []
    modes = ["predicted", *(["class"] if same_classes else []), *(["neuron", "top_neurons"] if layers else [])]
    keep_valid(f"{page}.target", modes, "predicted")
    mode = segmented("Explain", modes, labels=TARGET_LABELS, key=f"{page}.target")
    if not same_classes:
        st.caption("Choosing a class is off: the chosen models have different class lists.")
    if len(bundles) > 1:
        st.caption("With several models, each is explained for its own top class (its most activated output "
                   "neuron); choose a single model to explain neurons of a layer.")
    elif not layers:
        st.caption(f"{spec.label} explains classes only, not neurons of inner layers.")
    if mode == "predicted":
        return Target.predicted()
    if mode == "class":
        keep_valid(f"{page}.class", range(first.num_classes), 0)
        return Target.of_class(int(st.selectbox(
            "Class", range(first.num_classes), key=f"{page}.class",
            format_func=lambda i: f"{first.class_names[i]} ({i})",
            help="Type to search. Clicking a bar of a prediction chart picks it too.")))
    names = [layer.name for layer in layers]
    keep_valid(f"{page}.layer", names, _default_layer(layers))
    name = str(st.selectbox("Layer", names, key=f"{page}.layer", format_func=lambda n: first.layer(n).label()))
    info = first.layer(name)
    if mode == "neuron":
        key = f"{page}.neuron"
        if not isinstance(st.session_state.get(key), int) or not 0 <= st.session_state[key] < info.units:
            st.session_state[key] = 0
        index = int(st.number_input(f"Neuron (0–{info.units - 1})", 0, info.units - 1, step=1, key=key))
        st.caption(f"Position {neuron_position(info.output_shape, index)} in the layer's "
                   f"{' × '.join(map(str, info.output_shape))} output (row, column, channel).")
        return Target.neuron(name, index)
    ks = [k for k in TOP_K_CHOICES if k <= info.units]
    keep_valid(f"{page}.k", ks, 4 if 4 in ks else ks[-1])
    k = st.segmented_control("Most activated neurons per image", ks, key=f"{page}.k", required=True,
                             format_func=lambda k: f"top {k}")
    return Target.top_neurons(name, int(k or ks[-1]))


def on_prediction_click(page: str, chart_key: str) -> None:
    """Chart callback: a clicked bar makes its class the explanation target."""
    clicked = selected_class(st.session_state.get(chart_key))
    if clicked is not None:
        st.session_state[f"{page}.target"] = "class"
        st.session_state[f"{page}.class"] = clicked
