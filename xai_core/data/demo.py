"""Embedded demo data sets: handwritten digits and procedural shapes, both offline and file-free.

* **digits** — scikit-learn's bundled 8×8 handwritten digits (1,797 images, values 0..16), upscaled to
  32×32 grayscale with bicubic interpolation, with one fixed stratified 80/20 train/test split.
* **shapes** — a procedural generator of 64×64 RGB images, one filled shape of one of
  :data:`SHAPE_CLASSES` per image at a random position, size, rotation and colour, on a cluttered
  background (colour gradient, thin distractor lines, arcs and dots, pixel noise). The exact pixel mask of
  every object is kept, so explanations can be scored against the truth ("does the map point at the
  object?").
* **tagged_shapes** — the shapes images with a bias to find: a small watermark-like tag in the bottom-left
  corner (:func:`paste_tag`) on most training images of one class (:data:`TAG_CLASS`, 98 %) and on almost no
  other (0.3 %); in the held-out split half the images of *every* class carry it. Which images are tagged and
  the tag's pixel mask are recorded, so a method that claims to find the shortcut can be scored (Lapuschkin et
  al. 2019).

Every set is a :class:`DemoSet` of raw ``uint8`` pixels in [0, 255]; preprocessing belongs to the model.
Images carry stable ids such as ``"digits/test/0007"`` (the number is the image's index in the full
scikit-learn data set) or ``"shapes/test/00042"``.

Ref. Alpaydin & Kaynak (1998), *Optical Recognition of Handwritten Digits*, UCI ML Repository; Lapuschkin et al.
(2019), *Unmasking Clever Hans predictors and assessing what machines really learn*, Nature Communications 10:1096.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from xai_core.errors import DatasetError

#: Digits: side of the upscaled images, split seed and test fraction (fixed: ids must stay stable).
DIGITS_SIZE = 32
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2

#: The shape classes of the procedural data set, in label order.
SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring")

#: Shapes: image side, and number of images and generator seed per split (distinct seeds: no overlap).
SHAPES_SIZE = 64
SHAPES_SPLITS: dict[str, tuple[int, int]] = {"train": (6000, 1), "test": (600, 2)}

#: Tagged shapes: the class most of whose training images carry the tag, and the share of tagged training images in
#: that class and in every other class; in the test split each class has this share tagged (seeded per split).
TAG_CLASS = "circle"
TAG_TRAIN_SHARE = {"biased": 0.98, "other": 0.003}
TAG_TEST_SHARE = 0.5
#: The tag: a ``TAG_SIZE``-pixel square mark whose top-left corner is at ``TAG_ORIGIN`` (column, row) of a 64×64 image.
TAG_SIZE = 12
TAG_ORIGIN = (3, 49)

_SPLITS = ("train", "test", "all")


@dataclass(frozen=True, eq=False)
class DemoSet:
    """A small labelled image set held in memory.

    Attributes
    ----------
    name : data set name with split, e.g. ``"digits/test"``.
    images : ``uint8 (N, H, W, C)`` raw pixels in [0, 255].
    labels : ``int64 (N,)`` class indices into ``class_names``.
    class_names : one name per class.
    masks : ``bool (N, H, W)`` pixels covered by the object, or ``None`` when unknown (digits).
    ids : ``N`` stable image ids, e.g. ``"digits/test/0007"``.
    tagged : ``bool (N,)`` images that carry the shortcut tag (tagged shapes only, else ``None``).
    tag_masks : ``bool (N, H, W)`` the tag's pixels in each image (all False where untagged), or ``None``.

    Arrays are read-only: loaders cache their sets, so a caller must copy before changing pixels.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    masks: np.ndarray | None
    ids: list[str]
    tagged: np.ndarray | None = None
    tag_masks: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise DatasetError(f"Data set '{self.name}': images must be uint8 (N, H, W, C).")
        if self.labels.shape != (n,) or len(self.ids) != n:
            raise DatasetError(f"Data set '{self.name}': need one label and one id per image.")
        if self.masks is not None and self.masks.shape != self.images.shape[:3]:
            raise DatasetError(f"Data set '{self.name}': masks must have shape (N, H, W).")
        if (self.tagged is None) != (self.tag_masks is None) or (
                self.tagged is not None and self.tag_masks is not None
                and (self.tagged.shape != (n,) or self.tag_masks.shape != self.images.shape[:3])):
            raise DatasetError(f"Data set '{self.name}': tagged (N,) and tag_masks (N, H, W) go together.")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise DatasetError(f"Unknown split '{split}'. Choose one of: {', '.join(_SPLITS)}.")


# ---------------------------------------------------------------------------------------------- digits
@lru_cache(maxsize=1)
def _digits_all() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All 1,797 digits upscaled to 32×32 uint8, their labels, and a boolean "is test" flag per image."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    raw = load_digits()
    small = np.clip(np.rint(raw.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    big = np.stack(
        [np.asarray(Image.fromarray(im).resize((DIGITS_SIZE, DIGITS_SIZE), Image.Resampling.BICUBIC))
         for im in small]
    )[..., None]
    labels = raw.target.astype(np.int64)
    index = np.arange(len(labels))
    _, test_idx = train_test_split(
        index, test_size=DIGITS_TEST_FRACTION, stratify=labels, random_state=DIGITS_SPLIT_SEED
    )
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_idx] = True
    return big, labels, is_test


@lru_cache(maxsize=3)
def load_digits_set(split: str = "test") -> DemoSet:
    """scikit-learn's handwritten digits as 32×32 grayscale images.

    Parameters
    ----------
    split : ``"train"`` (1,437 images), ``"test"`` (360) or ``"all"`` (1,797). The split is stratified
        and fixed (seed 0), so the test images are never seen by the demo models.

    Returns
    -------
    DemoSet
        ``images`` ``uint8 (N, 32, 32, 1)``, class names ``"0"``..``"9"``, ``masks`` ``None``, ids
        ``"digits/<split>/<index in the full set>"`` (an image has the same id in ``"all"``).
    """
    _check_split(split)
    images, labels, is_test = _digits_all()
    keep = {"train": ~is_test, "test": is_test, "all": np.ones_like(is_test)}[split]
    idx = np.flatnonzero(keep)
    ids = [f"digits/{'test' if is_test[i] else 'train'}/{i:04d}" for i in idx]
    return DemoSet(
        name=f"digits/{split}",
        images=_readonly(images[idx]),
        labels=_readonly(labels[idx]),
        class_names=[str(d) for d in range(10)],
        masks=None,
        ids=ids,
    )


# ---------------------------------------------------------------------------------------------- shapes
def _polygon(cx: float, cy: float, radii: list[float], angle: float) -> list[tuple[float, float]]:
    """Vertices at equal angular steps around (cx, cy), starting at ``angle``, with the given radii."""
    k = len(radii)
    return [
        (cx + r * math.cos(angle + 2 * math.pi * j / k), cy + r * math.sin(angle + 2 * math.pi * j / k))
        for j, r in enumerate(radii)
    ]


def _cross(cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """A plus sign of half-length ``r`` and arm half-width ``0.36 r``, rotated by ``angle``."""
    w = 0.36 * r
    pts = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r),
           (-w, -r), (-w, -w), (-r, -w), (-r, w), (-w, w), (-w, r)]
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]


def _draw_shape(draw: ImageDraw.ImageDraw, cls: str, cx: float, cy: float, r: float, angle: float) -> None:
    """Draw shape ``cls`` filled with 255 on an ``"L"`` mask image."""
    if cls == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    elif cls == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        ri = 0.55 * r
        draw.ellipse((cx - ri, cy - ri, cx + ri, cy + ri), fill=0)
    elif cls == "square":
        draw.polygon(_polygon(cx, cy, [r] * 4, angle), fill=255)
    elif cls == "triangle":
        draw.polygon(_polygon(cx, cy, [r] * 3, angle), fill=255)
    elif cls == "star":
        draw.polygon(_polygon(cx, cy, [r, 0.45 * r] * 5, angle), fill=255)
    elif cls == "cross":
        draw.polygon(_cross(cx, cy, r, angle), fill=255)
    else:  # pragma: no cover - SHAPE_CLASSES is fixed
        raise DatasetError(f"Unknown shape class '{cls}'.")


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``(x, y)`` in [0, 1], float32 ``(size, size)`` each."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / np.float32(size - 1)
    return xx, yy


def _one_shape(rng: np.random.Generator, label: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One image ``uint8 (size, size, 3)`` with shape ``SHAPE_CLASSES[label]`` and its mask."""
    # Background: a linear gradient between two colours of similar brightness, dark or light at random;
    # the object gets a colour from the opposite brightness range, so it always stands out.
    dark_bg = rng.random() < 0.5
    bg_range, obj_range = ((20, 110), (165, 255)) if dark_bg else ((145, 235), (0, 90))
    c0, c1 = rng.uniform(*bg_range, size=(2, 3)).astype(np.float32)
    theta = rng.uniform(0, 2 * math.pi)
    xx, yy = _grid(size)
    t = (xx * np.float32(math.cos(theta)) + yy * np.float32(math.sin(theta)) + 1) / 2
    bg = c0 + (c1 - c0) * t[..., None]  # stays within [c0, c1] ⊂ [0, 255]
    canvas = Image.fromarray(bg.astype(np.uint8))

    # Distractors, drawn under the object: thin lines, thin arcs and small dots in any colour. None is a
    # filled area, so none looks like one of the shape classes.
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(3, 7))):
        colour = tuple(rng.integers(0, 256, 3).tolist())
        kind = rng.integers(3)
        x0, y0, x1, y1 = rng.uniform(-4, size + 4, 4).tolist()
        if kind == 0:
            draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(1, 3)))
        elif kind == 1:
            box = (min(x0, x1), min(y0, y1), max(x0, x1) + 4, max(y0, y1) + 4)
            start = float(rng.uniform(0, 360))
            draw.arc(box, start, start + float(rng.uniform(40, 200)), fill=colour, width=1)
        else:
            dots = rng.uniform((0, 0, 0.5), (size, size, 1.6), size=(int(rng.integers(4, 12)), 3))
            for px, py, d in dots.tolist():
                draw.ellipse((px - d, py - d, px + d, py + d), fill=colour)

    # The object: radius 12–28 % of the side, fully inside the image.
    r = float(rng.uniform(0.12, 0.28) * size)
    cx, cy = (float(v) for v in rng.uniform(r + 1, size - r - 2, 2))
    mask_img = Image.new("L", (size, size), 0)
    _draw_shape(ImageDraw.Draw(mask_img), SHAPE_CLASSES[label], cx, cy, r, float(rng.uniform(0, 2 * math.pi)))
    obj_colour = rng.uniform(*obj_range, size=3)
    canvas.paste(tuple(int(v) for v in obj_colour), mask=mask_img)

    noise = rng.standard_normal(size=(size, size, 3), dtype=np.float32) * np.float32(6.0)
    img = np.clip(np.asarray(canvas, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return img, np.asarray(mask_img) > 0


def make_shapes(n: int, seed: int, size: int = SHAPES_SIZE) -> DemoSet:
    """Generate ``n`` procedural shape images, deterministically for a given ``seed``.

    Parameters
    ----------
    n : number of images; classes are balanced (counts differ by at most one).
    seed : generator seed; image ``i`` depends only on ``(seed, i)`` and its label.
    size : image side in pixels.

    Returns
    -------
    DemoSet
        ``images`` ``uint8 (n, size, size, 3)``, ``labels`` indices into :data:`SHAPE_CLASSES`, ``masks``
        ``bool (n, size, size)`` with the exact pixels of each object, ids ``"shapes/seed<seed>/<i>"``.
    """
    if n < 0 or size < 16:
        raise DatasetError(f"make_shapes needs n >= 0 and size >= 16, got n={n}, size={size}.")
    k = len(SHAPE_CLASSES)
    labels = np.random.default_rng(seed).permutation(np.arange(n) % k).astype(np.int64)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=bool)
    for i, label in enumerate(labels):
        images[i], masks[i] = _one_shape(np.random.default_rng([seed, i]), int(label), size)
    return DemoSet(
        name=f"shapes/seed{seed}",
        images=images,
        labels=labels,
        class_names=list(SHAPE_CLASSES),
        masks=masks,
        ids=[f"shapes/seed{seed}/{i:05d}" for i in range(n)],
    )


@lru_cache(maxsize=2)
def _shapes_split(split: str) -> DemoSet:
    n, seed = SHAPES_SPLITS[split]
    s = make_shapes(n, seed)
    assert s.masks is not None  # make_shapes always draws the object masks
    return DemoSet(
        name=f"shapes/{split}",
        images=_readonly(s.images),
        labels=_readonly(s.labels),
        class_names=s.class_names,
        masks=_readonly(s.masks),
        ids=[f"shapes/{split}/{i:05d}" for i in range(n)],
    )


def load_shapes_set(split: str = "test") -> DemoSet:
    """The procedural shapes set: 64×64 RGB, :data:`SHAPE_CLASSES`, with object masks.

    Parameters
    ----------
    split : ``"train"`` (6,000 images, seed 1), ``"test"`` (600, seed 2) or ``"all"`` (both, train first).

    Returns
    -------
    DemoSet
        ids ``"shapes/<split>/<i>"``; the same image has the same id in ``"all"``.
    """
    _check_split(split)
    return _shapes_split(split) if split != "all" else _both_splits("shapes", _shapes_split)


# ---------------------------------------------------------------------------------------------- tagged shapes
@lru_cache(maxsize=1)
def tag_pattern(size: int = TAG_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The tag: uint8 RGB ``(size, size, 3)`` pixels and its bool ``(size, size)`` mask.

    A white ring with a white dot in it on a black disc, like a copyright mark: visible on dark and light
    backgrounds alike, and unlike any of the shape classes (filled, one colour).
    """
    big = 4 * size  # drawn at 4× and reduced: a clean small mark
    disc, ring = Image.new("L", (big, big), 0), Image.new("L", (big, big), 0)
    ImageDraw.Draw(disc).ellipse((0, 0, big - 1, big - 1), fill=255)
    draw = ImageDraw.Draw(ring)
    draw.ellipse((5, 5, big - 6, big - 6), outline=255, width=4)
    c = big / 2
    draw.ellipse((c - 5, c - 5, c + 5, c + 5), fill=255)
    small = (size, size)
    mask = np.asarray(disc.resize(small, Image.Resampling.BOX)) >= 96
    white = np.asarray(ring.resize(small, Image.Resampling.BOX)).astype(np.float32) / 255.0
    pixels = np.repeat((255.0 * white)[..., None], 3, axis=2).round().astype(np.uint8)
    return pixels, mask


def paste_tag(images: np.ndarray, where: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A copy of ``images`` (uint8 ``(N, H, W, 3)``) with the tag pasted at :data:`TAG_ORIGIN` where ``where`` is
    True (default: every image), and the tag's bool ``(N, H, W)`` masks (all False for untouched images)."""
    out = np.array(images, dtype=np.uint8, copy=True)
    n, h, w = out.shape[:3]
    where = np.ones(n, bool) if where is None else np.asarray(where, bool)
    pixels, mask = tag_pattern()
    x0, y0 = TAG_ORIGIN
    if y0 + TAG_SIZE > h or x0 + TAG_SIZE > w:
        raise DatasetError(f"The tag needs images of at least {y0 + TAG_SIZE}×{x0 + TAG_SIZE} pixels.")
    masks = np.zeros((n, h, w), bool)
    masks[where, y0:y0 + TAG_SIZE, x0:x0 + TAG_SIZE] = mask
    box = out[where, y0:y0 + TAG_SIZE, x0:x0 + TAG_SIZE]
    box[:, mask] = pixels[mask]
    out[where, y0:y0 + TAG_SIZE, x0:x0 + TAG_SIZE] = box
    return out, masks


def tag_flags(labels: np.ndarray, split: str) -> np.ndarray:
    """Which images of a tagged-shapes ``split`` carry the tag (seeded per split; the same every time)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([7, {"train": 1, "test": 2}[split]])
    draw = rng.random(len(labels))
    if split == "test":
        return draw < TAG_TEST_SHARE
    biased = labels == SHAPE_CLASSES.index(TAG_CLASS)
    return np.where(biased, draw < TAG_TRAIN_SHARE["biased"], draw < TAG_TRAIN_SHARE["other"])


@lru_cache(maxsize=2)
def _tagged_split(split: str) -> DemoSet:
    base = _shapes_split(split)
    flags = tag_flags(base.labels, split)
    images, tag_masks = paste_tag(base.images, flags)
    return DemoSet(
        name=f"tagged_shapes/{split}",
        images=_readonly(images),
        labels=base.labels,
        class_names=base.class_names,
        masks=base.masks,
        ids=[f"tagged_shapes/{split}/{i:05d}" for i in range(len(base))],
        tagged=_readonly(flags),
        tag_masks=_readonly(tag_masks),
    )


def load_tagged_shapes_set(split: str = "test") -> DemoSet:
    """The shapes set with a shortcut to find: :func:`load_shapes_set`'s images, the tag pasted on some.

    Parameters
    ----------
    split : ``"train"`` (the 6,000 shapes training images; :data:`TAG_CLASS` tagged with probability 0.98, every
        other class 0.003), ``"test"`` (the 600 test images, each tagged with probability 0.5) or ``"all"``.

    Returns
    -------
    DemoSet
        ids ``"tagged_shapes/<split>/<i>"``; an untagged image equals the shapes image of the same index; ``tagged``
        and ``tag_masks`` record the tag.
    """
    _check_split(split)
    return _tagged_split(split) if split != "all" else _both_splits("tagged_shapes", _tagged_split)


def _both_splits(name: str, split: Callable[[str], DemoSet]) -> DemoSet:
    """The train split, then the test split, as one set ``<name>/all`` (tags and their masks kept when recorded)."""
    parts = [split("train"), split("test")]

    def joined(field: str) -> np.ndarray | None:
        arrays = [getattr(p, field) for p in parts]
        return None if any(a is None for a in arrays) else _readonly(np.concatenate(arrays))

    return DemoSet(name=f"{name}/all", images=_readonly(np.concatenate([p.images for p in parts])),
                   labels=_readonly(np.concatenate([p.labels for p in parts])), class_names=list(SHAPE_CLASSES),
                   masks=joined("masks"), ids=[i for p in parts for i in p.ids], tagged=joined("tagged"),
                   tag_masks=joined("tag_masks"))


# ---------------------------------------------------------------------------------------------- registry
#: Demo data set name → loader ``(split) -> DemoSet``.
DEMO_DATASETS: dict[str, Callable[[str], DemoSet]] = {
    "digits": load_digits_set,
    "shapes": load_shapes_set,
    "tagged_shapes": load_tagged_shapes_set,
}


def load_demo_set(name: str, split: str = "test") -> DemoSet:
    """Load demo data set ``name`` (a key of :data:`DEMO_DATASETS`) and ``split``.

    Raises
    ------
    DatasetError
        For an unknown name or split; the message lists the valid ones.
    """
    try:
        loader = DEMO_DATASETS[name]
    except KeyError:
        raise DatasetError(
            f"Unknown demo data set '{name}'. Choose one of: {', '.join(DEMO_DATASETS)}."
        ) from None
    return loader(split)
