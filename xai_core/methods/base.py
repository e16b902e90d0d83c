"""The method registry: one entry per explanation method, one call shape, one parameter schema.

Every method is a :class:`MethodSpec` whose ``run`` has the signature::

    run(bundle, x, selection, **params) -> maps   # float32 (N, H, W) or (N, H, W, C)

where ``x`` is model input (preprocessed) of shape ``(N, H, W, C)`` and ``selection`` says which output
neuron to explain for every image. The UI draws its controls from ``MethodSpec.params``, the contract tests
iterate over :data:`REGISTRY`, and the README's method table is generated from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from xai_core.errors import InvalidParameterError, UnsupportedMethodError

if TYPE_CHECKING:
    from xai_core.models.bundle import LayerInfo, ModelBundle

ParamKind = Literal["int", "float", "choice", "bool", "layer"]


_KIND_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "layer": "a layer name",
               "choice": "one of the choices"}


@dataclass(frozen=True)
class Param:
    """One method parameter: its type, default, limits and help text.

    ``builds`` marks parameters that change the built analyzer/tensors (part of the cache key); others are
    applied at run time (e.g. SmoothGrad's noise level) and never trigger a rebuild.
    """

    name: str
    kind: ParamKind
    default: Any
    label: str
    help: str = ""
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()
    builds: bool = True
    log: bool = False  # show on a log scale (epsilon-like parameters)

    def validate(self, value: Any) -> Any:
        """Return ``value`` coerced to this parameter's type, or raise :class:`InvalidParameterError`."""
        if value is None:
            return self.default
        try:
            if self.kind == "int":
                if isinstance(value, bool) or float(value) != int(float(value)):
                    raise ValueError
                value = int(float(value))
            elif self.kind == "float":
                value = float(value)
                if not np.isfinite(value):
                    raise ValueError
            elif self.kind == "layer":
                if not isinstance(value, str):
                    raise ValueError
            elif self.kind == "bool":
                if not isinstance(value, (bool, np.bool_)):
                    raise ValueError
                value = bool(value)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"{self.label} must be {_KIND_WORDS[self.kind]}, got {value!r}."
            ) from None
        if self.kind == "choice" and value not in self.choices:
            raise InvalidParameterError(
                f"{self.label} must be one of {', '.join(map(str, self.choices))}; got {value!r}."
            )
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise InvalidParameterError(f"{self.label} must be between {self.min} and {self.max}; got {value}.")
        return value


@dataclass(frozen=True)
class Selection:
    """Which neuron to explain for each image: flat index ``indices[i]`` of ``layer`` (None = logits)."""

    layer: str | None
    indices: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "indices", np.asarray(self.indices, dtype=np.int64).reshape(-1))

    def __getitem__(self, sl: slice) -> Selection:
        return Selection(self.layer, self.indices[sl])


#: ``run(bundle, x, selection, **params) -> maps``
RunFn = Callable[..., np.ndarray]
#: ``support(bundle) -> None`` if the method can run on the model, else the reason it cannot.
SupportFn = Callable[["ModelBundle"], "str | None"]
#: ``build(bundle, layer, **params)``: add the method's tensors for target ``layer`` (None = logits) to the bundle's
#: graph, once (see :mod:`xai_core.methods.build`); ``run`` then only feeds them.
BuildFn = Callable[..., Any]


@dataclass(frozen=True)
class Fitting:
    """A method that learns something from data, once per model, before it can run (PatternNet's signal patterns).

    ``param`` names the method parameter choosing what is fitted (e.g. the pattern ``estimator``); the callables
    take the bundle, the model key the result is saved under, and that parameter's value.
    """

    what: str  #: what is learnt, in words ("patterns"): the button says "Fit <what>"
    param: str
    #: ``is_fitted(bundle, model_key, variant)``: True once fitted (registered, or saved on disk and loaded)
    is_fitted: Callable[[ModelBundle, str, str], bool]
    #: ``fit(bundle, model_key, batches, total, variant, progress)``: fit on batches of model-sized images
    fit: Callable[[ModelBundle, str, Iterable[np.ndarray], int | None, str, Callable[[int, int], None] | None], Any]
    #: ``training_images(bundle)``: ``(name, images)`` a demo model fits on, or None (the user brings data)
    training_images: Callable[[ModelBundle], tuple[str, np.ndarray] | None]
    #: ``batches(images)``: an array of images as the batches ``fit`` takes
    batches: Callable[[np.ndarray], Iterable[np.ndarray]]


@dataclass(frozen=True)
class MethodSpec:
    """An explanation method.

    Attributes
    ----------
    id : stable dotted id (``gradient``, ``lrp.epsilon``, ``gradcam``).
    label, family : display name and family (``Gradient``, ``LRP``, ``Deep Taylor``, ``CAM``,
        ``Perturbation``, ``Reference``).
    summary, caveat : what the map shows; when it misleads. Plain language, one or two sentences each.
    reference : the paper.
    params : parameter schema.
    signed : whether the sign of the map is meaningful (diverging colour map) or maps are ≥ 0.
    targets : which target kinds the method accepts (``"class"``, ``"neuron"``).
    feature_layer : True if the method has a ``layer`` parameter choosing a spatial feature layer (CAM).
    relevance : True for relevance redistribution (LRP, Deep Taylor): the map's total should be about the
        explained score, and :func:`~xai_core.methods.explain.explain` warns when it is far from it.
    run, support : the implementation (``run(bundle, x, selection, **params)``, cheap once built) and the static
        support check (from the model's layers; it never builds anything).
    build : what the method builds before its first run (see :mod:`xai_core.methods.build`); None when it builds
        nothing (occlusion, the references).
    fitting : set for methods that must learn from data first (see :class:`Fitting`); pages then offer the fit.
    """

    id: str
    label: str
    family: str
    summary: str
    caveat: str
    reference: str
    run: RunFn
    params: tuple[Param, ...] = ()
    signed: bool = True
    targets: tuple[str, ...] = ("class", "neuron")
    feature_layer: bool = False
    relevance: bool = False
    support: SupportFn | None = None
    build: BuildFn | None = None
    innvestigate_name: str | None = None
    augment_param: str | None = None
    fitting: Fitting | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def augmentation(self, params: dict[str, Any]) -> int:
        """How many model passes one image costs (IG steps, SmoothGrad samples); 1 for most methods."""
        return max(1, int(params.get(self.augment_param) or 1)) if self.augment_param else 1

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise InvalidParameterError(f"{self.label} has no parameter '{name}'.")

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def initial_params(self) -> dict[str, Any]:
        """The values a parameter form starts with, typed (``None`` = auto, e.g. the automatic layer): a grid of
        methods at their defaults shares its cached maps with a page whose form was left untouched."""
        out: dict[str, Any] = {}
        for p in self.params:
            if p.kind == "layer" or p.default is None:
                out[p.name] = None
            elif p.kind == "choice":
                out[p.name] = p.default
            elif p.kind == "bool":
                out[p.name] = bool(p.default)
            else:
                out[p.name] = int(p.default) if p.kind == "int" else float(p.default)
        return out

    def fit_variant(self, params: dict[str, Any]) -> str:
        """What this method's :attr:`fitting` fits for ``params`` (its ``param`` value, or the default)."""
        if self.fitting is None:
            raise InvalidParameterError(f"{self.label} needs no fitting.")
        value = params.get(self.fitting.param)
        return str(self.param(self.fitting.param).default if value is None else value)

    def ready(self, bundle: ModelBundle, model_key: str, params: dict[str, Any] | None = None) -> bool:
        """True when the method can run now: it needs no fitting, or it has been fitted for ``model_key``."""
        return self.fitting is None or self.fitting.is_fitted(bundle, model_key, self.fit_variant(params or {}))

    def resolve_params(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with ``params``, each validated; unknown names are an error."""
        params = dict(params or {})
        unknown = set(params) - {p.name for p in self.params}
        if unknown:
            raise InvalidParameterError(
                f"{self.label} has no parameter(s) {', '.join(sorted(unknown))}; "
                f"it takes: {', '.join(p.name for p in self.params) or 'none'}."
            )
        return {p.name: p.validate(params.get(p.name)) for p in self.params}

    def neuron_layers(self, bundle: ModelBundle) -> list[LayerInfo]:
        """Layers whose neurons this method can explain (not the input layer)."""
        if "neuron" not in self.targets:
            return []
        return [layer for layer in bundle.layers if not layer.is_input]


REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` to :data:`REGISTRY` (ids are unique)."""
    if spec.id in REGISTRY:
        raise ValueError(f"duplicate method id {spec.id}")
    REGISTRY[spec.id] = spec
    return spec


def get_method(method_id: str) -> MethodSpec:
    """The registry entry for ``method_id``; an unknown id raises an error listing the valid ones."""
    try:
        return REGISTRY[method_id]
    except KeyError:
        raise InvalidParameterError(
            f"Unknown explanation method '{method_id}'. Valid methods: {', '.join(REGISTRY)}."
        ) from None


def unsupported_reason(bundle: ModelBundle, method_id: str) -> str | None:
    """Why ``method_id`` cannot run on ``bundle`` (None if it can). Cached per bundle."""
    spec = get_method(method_id)

    def check() -> str | None:
        if spec.support is None:
            return None
        try:
            return spec.support(bundle)
        except Exception as exc:  # a support probe must never crash a page
            return f"{spec.label} cannot analyse this model: {exc}"

    failed = bundle.peek(("failed", method_id))
    if failed:
        return failed
    return bundle.cached(("support", method_id), check)


def mark_unsupported(bundle: ModelBundle, method_id: str, reason: str) -> None:
    """Remember that building ``method_id`` failed on ``bundle`` so pages stop offering it."""
    bundle.store(("failed", method_id), reason)


def methods_for(bundle: ModelBundle) -> dict[str, MethodSpec]:
    """Registry entries that can run on ``bundle``, in registry order."""
    return {mid: spec for mid, spec in REGISTRY.items() if unsupported_reason(bundle, mid) is None}


def common_methods(bundles: Sequence[ModelBundle]) -> dict[str, MethodSpec]:
    """Methods every model in ``bundles`` can run, in registry (family) order."""
    return {mid: spec for mid, spec in REGISTRY.items() if all(unsupported_reason(b, mid) is None for b in bundles)}


def ready_methods(bundle: ModelBundle, model_key: str) -> tuple[list[str], list[str]]:
    """``(usable, waiting)``: the methods ``bundle`` supports, split into those that can run now and those that must
    be fitted first (at their default parameters; pages that offer the fit show the second list)."""
    usable: list[str] = []
    waiting: list[str] = []
    for mid, spec in methods_for(bundle).items():
        (usable if spec.ready(bundle, model_key) else waiting).append(mid)
    return usable, waiting


def require_supported(bundle: ModelBundle, spec: MethodSpec) -> None:
    reason = unsupported_reason(bundle, spec.id)
    if reason:
        raise UnsupportedMethodError(reason)
