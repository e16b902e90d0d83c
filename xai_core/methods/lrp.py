"""Layer-wise Relevance Propagation: every LRP analyzer of iNNvestigate 2.1.2.

Ref. Bach et al. 2015, On Pixel-Wise Explanations for Non-Linear Classifier Decisions by Layer-Wise
Relevance Propagation, PLoS ONE 10(7); Montavon et al. 2019, Layer-Wise Relevance Propagation: An Overview.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xai_core.methods import steps
from xai_core.methods._innvestigate import analyze, analyzer_build, model_checks
from xai_core.methods.base import MethodSpec, Param, RunFn, Selection, register
from xai_core.methods.lrp_reverse import reverse_graph
from xai_core.models.bundle import ModelBundle

_REF = "Bach et al. 2015, PLoS ONE 10(7):e0130140; Montavon et al. 2019, LRP: An Overview."
_CONSERVE = ("Relevance is conserved layer by layer, so the map sums to (about) the explained score. ")

#: ε = 0.1, about a tenth of a typical activation: on the demo CNNs it keeps 75–87 % of the explained score and cuts
#: the share of negative relevance from 36 % to 28 % (digits) and 42 % to 33 % (shapes); at 1e-7 (iNNvestigate's
#: default) LRP-ε is LRP-0, and at 1 only 14 % of the score is left.
EPSILON = Param("epsilon", "float", 0.1, "Epsilon",
                "Stabiliser added to denominators; larger values absorb weak, contradictory relevance and give "
                "sparser, less noisy maps. 0.1 (about a tenth of a typical activation) shows what the rule is for; "
                "1e-7 makes it LRP-0, 1 and above absorb most of the score.", min=1e-10, max=10.0, log=True)
PRESET_EPSILON = Param("epsilon", "float", 0.1, "Epsilon (dense layers)",
                       "Epsilon of the rule used for dense layers.", min=1e-10, max=10.0, log=True)
_GENERIC_RULES = ("Z", "Epsilon", "WSquare", "Flat", "Alpha2Beta1", "Alpha2Beta1IgnoreBias", "Alpha1Beta0",
                  "Alpha1Beta0IgnoreBias", "ZPlus", "ZPlusFast")


#: Rules applied to residual sums as to any kernel layer (the canonical model's ``Add`` → unit-weight layer): w²
#: and flat ignore activations, so the relevance reaching a sum is not proportional to it, and iNNvestigate's own
#: ``Add`` rule (the z-rule R_i = x_i / Σx · R, exact for LRP-0/ε) divides by a sum that can be near zero: up to
#: 1,300× the logit on an uploaded ResNet50; 0.9× with the rule's own split. Rules that look at contributions keep
#: the z-rule: as kernel layers, z⁺ drops a sum's relevance wherever both inputs are negative (MobileNetV2's
#: linear bottlenecks: 2 % of the score kept instead of 37 %) and αβ passes α× it where one side is empty.
SUM_RULES = frozenset({"WSquare", "Flat"})
_SUMS_BY_ANALYZER = {"lrp.w_square", "lrp.flat"}

#: ``to_kwargs(bundle, **params) -> analyzer kwargs``: maps a method's UI params to iNNvestigate's arguments.
ToKwargs = Callable[..., dict[str, Any]]


def _runner(method_id: str, name: str, to_kwargs: ToKwargs | None = None) -> RunFn:
    """``run(bundle, x, selection, **params)`` calling analyzer ``name`` with params mapped by ``to_kwargs``."""

    def run(bundle: ModelBundle, x: np.ndarray, selection: Selection, **params: Any) -> np.ndarray:
        kwargs = to_kwargs(bundle, **params) if to_kwargs else params
        return analyze(bundle, method_id, name, x, selection, sum_rule=_sum_rule(name, kwargs), **kwargs)

    return run


#: Methods whose map is one reverse pass over the forward tensors (:mod:`xai_core.methods.lrp_reverse`), and their
#: ε from the method's parameters (None: the z rule); iNNvestigate's analyzer where that pass does not apply.
_REVERSE = {"lrp.z": lambda params: None, "lrp.epsilon": lambda params: float(params["epsilon"])}


def _reverse_runner(method_id: str, name: str, fallback: RunFn) -> RunFn:
    def run(bundle: ModelBundle, x: np.ndarray, selection: Selection, **params: Any) -> np.ndarray:
        graph = reverse_graph(bundle, selection.layer, _REVERSE[method_id](params))
        if graph is None:
            return fallback(bundle, x, selection, **params)
        first = not bundle.is_cached(("ran", id(graph)))
        if first:
            steps.step(steps.FIRST_RUN)
        out = graph.run(bundle, x, selection.indices)
        if first:
            bundle.store(("ran", id(graph)), True, lock=False)
        return out

    return run


def _reverse_build(method_id: str, fallback: Callable[..., Any]) -> Callable[..., Any]:
    def build(bundle: ModelBundle, layer: str | None, **params: Any) -> Any:
        graph = reverse_graph(bundle, layer, _REVERSE[method_id](params))
        return graph if graph is not None else fallback(bundle, layer, **params)

    return build


def _sum_rule(name: str, kwargs: dict[str, Any]) -> bool:
    """Whether analyzer ``name`` (with ``kwargs``) applies its own rule to residual sums (see :data:`SUM_RULES`)."""
    return kwargs.get("rule") in SUM_RULES if name == "lrp" else name in _SUMS_BY_ANALYZER


def _generic_kwargs(bundle: ModelBundle, rule: str, input_rule: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"rule": rule}
    if input_rule == "Bounded":
        kwargs["input_layer_rule"] = bundle.input_low_high
    elif input_rule != "same":
        kwargs["input_layer_rule"] = input_rule
    return kwargs


def _spec(mid: str, label: str, summary: str, caveat: str, params: tuple[Param, ...] = (),
          to_kwargs: ToKwargs | None = None, name: str | None = None, signed: bool = True) -> MethodSpec:
    name = name or mid
    probe_kwargs = None
    if to_kwargs is not None:
        defaults = {p.name: p.default for p in params}

        def probe_kwargs(bundle: ModelBundle) -> dict[str, Any]:
            return to_kwargs(bundle, **defaults)
    elif params:
        defaults = {p.name: p.default for p in params}

        def probe_kwargs(bundle: ModelBundle) -> dict[str, Any]:
            return dict(defaults)

    run = _runner(mid, name, to_kwargs)
    build = analyzer_build(mid, name, to_kwargs, sum_rule=lambda kwargs: _sum_rule(name, kwargs))
    if mid in _REVERSE:
        run, build = _reverse_runner(mid, name, run), _reverse_build(mid, build)
    return MethodSpec(
        id=mid, label=label, family="LRP", summary=summary, caveat=caveat, reference=_REF, params=params,
        run=run, innvestigate_name=name, relevance=True, signed=signed, support=model_checks(name, probe_kwargs),
        build=build,
    )


_SPECS = [
    _spec("lrp", "LRP (choose rule)", "LRP with one rule of your choice for every layer.",
          "Rules differ a lot; the same rule everywhere is rarely the best choice for deep nets.",
          params=(Param("rule", "choice", "Epsilon", "Rule", "Propagation rule for all layers.",
                        choices=_GENERIC_RULES),
                  Param("input_rule", "choice", "same", "Input layer rule",
                        "Rule for the first layer: the same, Flat, WSquare, or Bounded (Z^B, uses the "
                        "model's pixel range).", choices=("same", "Flat", "WSquare", "Bounded"))),
          to_kwargs=_generic_kwargs, name="lrp"),
    _spec("lrp.z", "LRP-0 (z rule)", _CONSERVE + "Equivalent to input × gradient on ReLU nets.",
          "Noisy on deep networks: contradictory evidence is amplified."),
    _spec("lrp.epsilon", "LRP-ε", _CONSERVE + "ε absorbs weak, contradictory relevance: a cleaner LRP-0. The default "
          "ε = 0.1 (about a tenth of a typical activation) keeps most of the score and removes much of the noise.",
          "With a tiny ε it is as noisy as LRP-0; with a large ε relevance (and conservation) is lost: the map then "
          "adds up to less than the score.",
          params=(EPSILON,)),
    _spec("lrp.w_square", "LRP-w²", "Redistributes by squared weights, independent of the input.",
          "Ignores the input's actual values: meant for the first layer only. Never signed: every pixel gets a share "
          "of the score (all negative when the score is).", signed=False),
    _spec("lrp.flat", "LRP-flat", "Spreads relevance uniformly over each neuron's receptive field.",
          "Ignores weights and inputs; shows where the network can look, not what it saw. Never signed.",
          signed=False),
    _spec("lrp.alpha_beta", "LRP-αβ", "Separates positive (α) and negative (β) evidence; β = α − 1.",
          "Large α, β create strong negative relevance and checkerboard artefacts. Biases count as evidence, so "
          "relevance is not conserved: on BatchNorm networks (BN folds into biases) totals can grow far past the "
          "score.",
          params=(Param("alpha", "float", 2.0, "Alpha", "Weight of positive contributions; beta = alpha − 1.",
                        min=1.0, max=10.0, step=0.5),),
          to_kwargs=lambda bundle, alpha: {"alpha": alpha, "beta": alpha - 1.0}),
    _spec("lrp.alpha_2_beta_1", "LRP-α2β1", "Positive evidence weighted 2, negative evidence 1.",
          "Can show negative relevance that is an artefact of the rule. Biases count as evidence, so relevance is "
          "not conserved; on BatchNorm networks (BN folds into biases) prefer the ignore-bias variant."),
    _spec("lrp.alpha_2_beta_1_IB", "LRP-α2β1 (ignore bias)", "α2β1 with biases ignored.",
          "Not conservative when biases carry relevance."),
    _spec("lrp.alpha_1_beta_0", "LRP-α1β0", "Positive evidence only: where the model found support.",
          "Never shows evidence against the class.", signed=False),
    _spec("lrp.alpha_1_beta_0_IB", "LRP-α1β0 (ignore bias)", "α1β0 with biases ignored.",
          "Never shows evidence against the class; not conservative with biases.", signed=False),
    _spec("lrp.z_plus", "LRP-z⁺", "Positive weights only (same as α1β0 ignoring bias): Deep Taylor for ReLU.",
          "Never shows evidence against the class.", signed=False),
    _spec("lrp.z_plus_fast", "LRP-z⁺ (fast)", "A faster z⁺ implementation for non-negative inputs.",
          "Assumes non-negative layer inputs; never shows evidence against the class.", signed=False),
    _spec("lrp.sequential_preset_a", "LRP preset A",
          "ε for dense layers, α1β0 for convolutions: the composite recommended for CNNs.",
          "Composites are tuned for VGG-like nets; other architectures may need other rules.",
          params=(PRESET_EPSILON,)),
    _spec("lrp.sequential_preset_b", "LRP preset B", "ε for dense layers, α2β1 for convolutions.",
          "α2β1 can add negative artefacts in convolutions, and counts biases as evidence: not conservative on "
          "BatchNorm networks.", params=(PRESET_EPSILON,)),
    _spec("lrp.sequential_preset_a_flat", "LRP preset A + flat input", "Preset A with the flat rule at the input.",
          "The input layer's relevance ignores pixel values.", params=(PRESET_EPSILON,)),
    _spec("lrp.sequential_preset_b_flat", "LRP preset B + flat input", "Preset B with the flat rule at the input.",
          "The input layer's relevance ignores pixel values.", params=(PRESET_EPSILON,)),
    _spec("lrp.sequential_preset_b_flat_until_idx", "LRP preset B + flat until layer k",
          "Preset B, with the flat rule from weighted layer k down to the input: coarser, smoother maps.",
          "Lower layers' relevance ignores the input entirely.",
          params=(PRESET_EPSILON,
                  Param("until_layer_idx", "int", 1, "Flat until layer",
                        "Index among the layers with weights (0 = first conv layer).", min=0, max=500, step=1))),
]

for _s in _SPECS:
    register(_s)
