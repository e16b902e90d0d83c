"""The facts a report records: each model (where it came from, its file's hash, input, preprocessing, architecture),
each method (parameters, target, map type, when it misleads) and what reproduces the run (XAI Lens commit and
version, library versions, random seeds, settings)."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import tomllib
from collections.abc import Sequence
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from xai_core.methods import MethodSpec, Target
from xai_core.models.bundle import ModelBundle
from xai_core.report.document import Block, Details, Facts, Section, Table, Text

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Distributions whose versions decide the maps and the report (``importlib.metadata`` names).
LIBRARIES = ("tensorflow", "tf-keras", "innvestigate", "numpy", "scipy", "scikit-learn", "pandas", "pillow",
             "matplotlib", "altair", "vl-convert-python", "streamlit")
SOURCES = {"demo": "embedded demo model", "keras.applications": "tf.keras.applications (ImageNet weights)",
           "upload": "uploaded file"}


# ---------------------------------------------------------------------------------------------- models
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_file(bundle: ModelBundle) -> Path | None:
    """The file the model's weights were read from, when it is on disk (demo models, cached ImageNet weights)."""
    if bundle.source == "demo" and bundle.info.get("demo_id"):
        from xai_core.models.demo import DEMO_MODELS

        entry = DEMO_MODELS.get(str(bundle.info["demo_id"]))
        return entry.path if entry is not None else None
    if bundle.source == "keras.applications" and bundle.info.get("weights") == "imagenet":
        from xai_core.models.applications import weights_path

        return weights_path(str(bundle.info["application"]))
    return None


def file_sha256(bundle: ModelBundle) -> str:
    """SHA-256 of the model's file (an upload's is taken when it loads), kept in ``bundle.info``; or why there is
    none."""
    known = bundle.info.get("sha256")
    if known:
        return str(known)
    if bundle.source == "keras.applications" and bundle.info.get("weights") is None:
        return "none: random weights (weights=None)"
    path = model_file(bundle)
    if path is None or not path.exists():
        return "not recorded"
    digest = _sha256(path)
    bundle.info["sha256"] = digest
    return digest


def architecture(bundle: ModelBundle) -> str:
    """The architecture in one line: the demo model's description, the recognised ``keras.applications`` network,
    or the layer kinds and their counts."""
    if bundle.source == "demo" and bundle.description:
        return bundle.description
    family = bundle.info.get("architecture") or bundle.info.get("family")
    kinds = pd.Series([layer.kind for layer in bundle.layers if not layer.is_input]).value_counts()
    counts = ", ".join(f"{n} {kind}" for kind, n in kinds.head(6).items())
    return f"{family} · {counts}" if family else counts


def model_blocks(bundle: ModelBundle) -> list[Block]:
    """A model's facts and, folded, its layers."""
    info = bundle.info
    source = SOURCES.get(bundle.source, bundle.source or "unknown")
    if bundle.source == "upload":
        source += f" `{info.get('filename', '?')}` ({info.get('format', '?')})"
    if bundle.source == "keras.applications":
        source = f"`tf.keras.applications.{info.get('application', bundle.name)}`" + (
            " with ImageNet weights" if info.get("weights") == "imagenet" else " with random weights")
    pre = f"*{bundle.preprocessing.name}*: {bundle.preprocessing.description or 'custom'}"
    if info.get("preprocessing_reason"):
        pre += f" ({info['preprocessing_reason']}{'' if info.get('preprocessing_certain', True) else ', a guess'})"
    names = bundle.class_names
    classes = f"{len(names)}: {', '.join(names[:10])}{' …' if len(names) > 10 else ''}"
    rows = [("source", source), ("file SHA-256", f"`{file_sha256(bundle)}`"),
            ("input", "×".join(map(str, bundle.input_shape)) + " (height × width × channels)"),
            ("preprocessing", pre), ("architecture", architecture(bundle)),
            ("size", f"{len(bundle.layers)} layers, {bundle.num_params:,} parameters"),
            ("output", f"{bundle.head} over {classes}")]
    if bundle.source == "demo":
        rows += [("trained on", f"demo set *{info.get('dataset')}*, seed {info.get('seed', '?')}, "
                                f"{info.get('epochs', '?')} epochs"),
                 ("held-out accuracy", f"{float(info.get('test_accuracy', float('nan'))):.1%} on "
                                       f"{info.get('test_images', '?')} test images")]
    if info.get("load_report"):
        rows.append(("file", str(info["load_report"])))
    layers = pd.DataFrame([{"#": layer.index, "layer": layer.name, "kind": layer.kind,
                            "output": "×".join(map(str, layer.output_shape))} for layer in bundle.layers])
    return [Facts(tuple(rows)), Details(f"All {len(layers)} layers", (Table(layers),))]


# ---------------------------------------------------------------------------------------------- methods
def describe_target(target: Target, class_names: Sequence[str] | None = None) -> str:
    """What the maps explain, in words (a chosen class by its index and name when ``class_names`` are given)."""
    chosen = "the chosen class"
    if class_names is not None and target.index is not None and 0 <= target.index < len(class_names):
        chosen = f"class {target.index} ({class_names[target.index]})"
    return {"predicted": "each image's predicted class", "class": chosen,
            "neuron": f"neuron {target.index} of layer {target.layer}",
            "top_neurons": f"the {target.k} most activated neurons of layer {target.layer}"}[target.kind]


def map_type(spec: MethodSpec) -> str:
    return ("signed: positive values (evidence for the target) and negative ones (against it)" if spec.signed
            else "non-negative: how much each pixel contributes, without a sign")


def params_text(spec: MethodSpec, params: dict[str, Any]) -> str:
    """Every parameter with its value (``auto`` where the method chooses), or "none"."""
    if not spec.params:
        return "none"
    return ", ".join(f"{p.label} (`{p.name}`) = {'auto' if params.get(p.name) is None else params[p.name]}"
                     for p in spec.params)


def method_blocks(spec: MethodSpec, params: dict[str, Any], target: Target | str | None = None) -> list[Block]:
    """A method's card: what it shows, its parameters, target and map type, and when it misleads."""
    rows = [("method", f"{spec.label} (`{spec.id}`, {spec.family})"), ("parameters", params_text(spec, params))]
    if target is not None:
        rows.append(("target", describe_target(target) if isinstance(target, Target) else target))
    rows += [("map", map_type(spec)), ("what it shows", spec.summary), ("paper", spec.reference)]
    return [Facts(tuple(rows)), Text(f"**When it misleads.** {spec.caveat}", "warning")]


def seeds(spec: MethodSpec, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The method's random seeds (parameters named ``seed``) as ``(what, value)``."""
    return [(f"{spec.label}: {p.label}", str(params.get(p.name, p.default))) for p in spec.params
            if p.name == "seed"]


# ---------------------------------------------------------------------------------------------- reproduce
def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@lru_cache(maxsize=1)
def xai_lens_version() -> tuple[str, str]:
    """``(version, commit)``: ``pyproject.toml``'s version and the git commit (``+ local changes`` when the work
    tree differs from it; "unknown" without git)."""
    try:
        project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        number = str(project["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        number = "unknown"
    commit = _git("rev-parse", "HEAD") or "unknown"
    if commit != "unknown" and _git("status", "--porcelain", "--untracked-files=no"):
        commit += " + local changes"
    return number, commit


def library_versions() -> list[tuple[str, str]]:
    out = [("python", platform.python_version())]
    for name in LIBRARIES:
        try:
            out.append((name, version(name)))
        except PackageNotFoundError:
            out.append((name, "not installed"))
    return out


def reproduce_section(settings: Sequence[tuple[str, str]], random: Sequence[tuple[str, str]]) -> Section:
    """What reproduces the report: XAI Lens version and commit, the page's settings, random seeds, libraries."""
    number, commit = xai_lens_version()
    libs = pd.DataFrame(library_versions(), columns=["library", "version"])
    blocks: list[Block] = [
        Facts((("XAI Lens", f"{number}, commit `{commit}`"),
               ("platform", f"{platform.system()} {platform.machine()}"), *settings)),
        Facts(tuple(random) if random else (("random seeds", "none used"),)),
        Table(libs, caption="Library versions of the server that built the report."),
        Text("Open the same page at this commit with the same models, images and settings: every map is "
             "deterministic given these (methods with randomness take the seeds listed).", "note")]
    return Section("Reproduce", tuple(blocks))


def methods_section(methods: Sequence[tuple[MethodSpec, dict[str, Any]]],
                    target: Target | str | None = None) -> Section:
    """One card per method (its parameters as used), under a heading each when there are several."""
    blocks: list[Block] = []
    for spec, params in methods:
        blocks += [*([Text(f"**{spec.label}**")] if len(methods) > 1 else []), *method_blocks(spec, params, target)]
    return Section("Methods" if len(methods) > 1 else "Method", tuple(blocks))


def models_section(bundles: Sequence[ModelBundle]) -> Section:
    """Every model's facts, each under its name (a model given twice is listed once)."""
    blocks: list[Block] = []
    for bundle in {id(b): b for b in bundles}.values():
        blocks += [Text(f"**{bundle.name}**"), *model_blocks(bundle)]
    return Section("Models", tuple(blocks))
