"""Keras graph surgery: check a model is an image classifier, flatten nested models, split off the head.

All functions here must run inside the target bundle's graph/session (``ModelBundle.create`` does that).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from xai_core.compat import keras as keras_compat
from xai_core.errors import ModelLoadError

_HEADS = ("softmax", "sigmoid")

#: Keras's random augmentation layers (tf_keras and Keras 3): identity at inference (crops: a centre
#: crop), random when called in training mode, which tf_keras's do even with the learning phase fixed at inference.
AUGMENTATION = frozenset({
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness",
    "RandomCrop", "RandomHeight", "RandomWidth",
    # Keras 3 only (tf_keras has no such class): the identity at inference (each one's transform_images returns
    # its input unless training, Keras 3.15 source), so built as a linear Activation. Not here: AutoContrast
    # ("active at both training and inference time") and Pipeline (runs whatever layers it holds).
    "RandomColorJitter", "RandomColorDegeneration", "RandomGrayscale", "RandomHue", "RandomSaturation",
    "RandomSharpness", "RandomShear", "RandomPerspective", "RandomElasticTransform", "RandomErasing",
    "RandomGaussianBlur", "RandomInvert", "RandomPosterization", "Solarization", "Equalization",
    "MixUp", "CutMix", "AugMix", "RandAugment",
})


def validate_classifier(model: Any) -> None:
    """Raise :class:`ModelLoadError` unless ``model`` maps one image batch to one vector of class scores.

    Accepted: one input of rank 4 ``(N, H, W, C)`` with C in {1, 3} and known H, W; one output of rank 2
    ``(N, K)``.
    """
    if not isinstance(model, tf.keras.Model):
        raise ModelLoadError(f"The file holds a {type(model).__name__}, not a Keras model.")
    inputs, outputs = model.inputs or [], model.outputs or []
    if not inputs:
        raise ModelLoadError(
            "The model has no defined input: it was probably saved before it was built (a Sequential model "
            "without an input shape). Start it with keras.Input((height, width, channels)), e.g. "
            "keras.Input((224, 224, 3)), and save it again."
        )
    if len(inputs) != 1:
        raise ModelLoadError(
            f"The model has {len(inputs)} inputs ({_names(inputs)}); XAI Lens explains image classifiers with "
            "exactly one input, an image, so it cannot explain this model."
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 4:
        raise ModelLoadError(
            f"The model's input has shape {shape}, not an image batch (N, height, width, channels). "
            "XAI Lens needs a rank-4 image input."
        )
    if shape[3] not in (1, 3):
        raise ModelLoadError(
            f"The model's input has {shape[3]} channels; XAI Lens supports grayscale (1) or RGB (3) "
            "channels-last images."
        )
    if shape[1] is None or shape[2] is None:
        raise ModelLoadError(
            "The model's input has no fixed height and width; maps need one. Call the model on an input of the "
            "size it was trained for and save that: inputs = keras.Input((224, 224, 3)); "
            "keras.Model(inputs, model(inputs)).save('model.keras')."
        )
    if len(outputs) != 1:
        raise ModelLoadError(
            f"The model has {len(outputs)} outputs ({_names(outputs)}); XAI Lens explains one output of class "
            "scores. Save a model of the output to explain and upload that file, e.g. for the first one: "
            "keras.Model(model.inputs, model.outputs[0]).save('model.keras')."
        )
    out = tuple(outputs[0].shape)
    if len(out) != 2 or out[1] is None:
        raise ModelLoadError(
            f"The model's output has shape {out}, not one score per class (N, classes). "
            "Segmentation and detection models are not supported."
        )


def _names(tensors: list[Any]) -> str:
    """The names of the layers that made ``tensors``, quoted: "'image', 'metadata'"."""
    return ", ".join(f"'{keras_compat.keras_history(t)[0].name}'" for t in tensors)


def reserve_layer_names(model: Any) -> None:
    """Make Keras' automatic layer names in the current graph skip every name ``model`` already uses.

    Keras numbers unnamed layers per graph (``input_1``, ``conv2d_3``) and never looks at the names of layers
    loaded from a file. A model saved in another process keeps its names (``tf.keras.applications`` nets start
    with ``input_1``) while the bundle's fresh graph counts from zero, so the next unnamed layer built there gets
    a name the model already has: iNNvestigate's Integrated Gradients makes an unnamed ``Input`` for its
    reference and failed on every uploaded ``keras.applications`` network with "The name "input_1" is used
    2 times in the model". See :func:`xai_core.compat.keras.reserve_layer_names`.
    """
    keras_compat.reserve_layer_names(model, _is_nested)


def _is_nested(layer: Any) -> bool:
    return isinstance(layer, tf.keras.Model)


def is_augmentation(layer: Any) -> bool:
    """A random augmentation layer (:data:`AUGMENTATION`)."""
    return type(layer).__name__ in AUGMENTATION


def _layers_deep(model: Any) -> list[Any]:
    return [inner for layer in model.layers
            for inner in (_layers_deep(layer) if _is_nested(layer) else [layer])]


def flatten_nested(model: Any) -> Any:
    """Return a functional model equivalent to ``model`` in which no layer is itself a model.

    iNNvestigate treats a nested model (e.g. a keras.applications network used as one layer of a transfer
    learning model) as an opaque layer without propagation rules, so nested models are inlined: every inner
    layer is called again on the outer tensors, sharing its weights.

    Layers are replayed with the arguments of their original call (the learning phase is fixed at inference for
    the whole graph by :meth:`ModelBundle.create`). A static FusedBatchNormV3 breaks every iNNvestigate analyzer
    after the first on the same model (KeyError in ``reverse_model``; the first analyzer's gradients make Keras
    wrap the BN op into an op-layer, which overwrites the BN output's Keras history), so iNNvestigate only ever
    sees the BN-free canonical model (:func:`xai_core.methods._innvestigate.make_analyzer`). An inner layer whose
    name clashes with another layer of the flattened model is renamed ``<inner model>_<layer>`` (layer names
    must be unique within one model).

    Augmentation layers (:data:`AUGMENTATION`) are replayed with ``training=False``, as Keras runs them at
    inference: tf_keras's transform their input randomly in a graph whose learning phase is fixed at inference,
    which gave two different predictions for one image on a model with ``RandomFlip`` inside.
    """
    if not any(_is_nested(layer) for layer in model.layers) and not any(map(is_augmentation, _layers_deep(model))):
        return model
    new_inputs = [tf.keras.Input(tensor=None, shape=t.shape[1:], dtype=t.dtype, name=f"{t.name.split(':')[0]}_flat")
                  for t in model.inputs]
    called: list[tuple[Any, Any]] = []  # (layer, the model it came from), in call order
    outputs = _replay(model, new_inputs, called)
    _make_names_unique(called, {t.name.split(":")[0] for t in new_inputs})
    return tf.keras.Model(new_inputs, outputs, name=f"{model.name}")


def _make_names_unique(called: list[tuple[Any, Any]], taken: set[str]) -> None:
    seen: set[int] = set()
    for layer, owner in called:
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if layer.name in taken:
            base = f"{owner.name}_{layer.name}"
            name, k = base, 1
            while name in taken:
                k += 1
                name = f"{base}_{k}"
            keras_compat.rename_layer(layer, name)
        taken.add(layer.name)


def nodes_in_order(model: Any) -> list[Any]:
    """The layer calls of a Functional/Sequential ``model`` in topological order (:class:`ModelLoadError` for a
    subclassed model, whose graph cannot be walked)."""
    if not keras_compat.is_graph_network(model):
        raise ModelLoadError(
            f"The model contains a nested model '{model.name}' that is not a Functional or Sequential model "
            "(a subclassed model?). XAI Lens can only look inside Functional/Sequential models; rebuild it "
            "with the functional API and save it again."
        )
    return keras_compat.nodes_in_order(model)


def _replay(model: Any, inputs: list[Any], called: list[tuple[Any, Any]]) -> list[Any]:
    """Call the layers of functional ``model`` on ``inputs``, recursing into nested models."""
    tensor_map: dict[str, Any] = {str(id(x)): y for x, y in zip(model.inputs, inputs)}
    for node in nodes_in_order(model):
        if node.is_input:
            continue
        if any(t_id not in tensor_map for t_id in node.flat_input_ids):
            continue
        args, kwargs = node.map_arguments({k: [v] for k, v in tensor_map.items()})
        layer = node.layer
        if _is_nested(layer):
            flat_args = tf.nest.flatten(args)
            outs = _replay(layer, flat_args, called)
            outs = outs[0] if len(outs) == 1 else outs
        else:
            if is_augmentation(layer):  # as Keras at inference: tf_keras's would transform randomly otherwise
                kwargs = {**kwargs, "training": False}
            outs = layer(*args, **kwargs)
            called.append((layer, model))
        for x_id, y in zip(node.flat_output_ids, tf.nest.flatten(outs)):
            tensor_map[x_id] = y
    return [tensor_map[str(id(t))] for t in model.outputs]


def split_head(model: Any) -> tuple[Any, str]:
    """Split ``model`` into a logits model and the name of the removed output activation.

    Handles a final ``Activation``/``Softmax`` layer and a final layer with a built-in softmax or sigmoid
    (via iNNvestigate's weight-sharing copy without activation). A model without such a head is returned as
    is with head ``"none"`` (its outputs are taken as logits).
    """
    from innvestigate.backend.graph import copy_layer_wo_activation

    out = model.outputs[0]
    # The layer that produced the output, and *that call's* input: after flattening, a layer may have been
    # called more than once, and ``layer.input`` would be its first call's input.
    layer, node_index, _ = keras_compat.keras_history(out)
    layer_input = layer.inbound_nodes[node_index].input_tensors
    if isinstance(layer, tf.keras.layers.Softmax):
        return tf.keras.Model(model.inputs, layer_input, name=f"{model.name}_logits"), "softmax"
    act = getattr(layer, "activation", None)
    act_name = getattr(act, "__name__", str(act) if act is not None else "")
    if act_name not in _HEADS:
        return model, "none"
    if isinstance(layer, tf.keras.layers.Activation):
        return tf.keras.Model(model.inputs, layer_input, name=f"{model.name}_logits"), act_name
    copy = copy_layer_wo_activation(layer, name_template="%s_logits")
    return tf.keras.Model(model.inputs, copy(layer_input), name=f"{model.name}_logits"), act_name
