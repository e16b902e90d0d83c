"""Charts in a report: the Vega-Lite spec Altair writes, the vega-embed script that draws it offline, and a PNG of it.

Both come from vl-convert, Altair's official converter (Altair's own ``chart.save(..., inline=True)`` and
``chart.save("x.png")`` use the same two calls: ``javascript_bundle`` and ``vegalite_to_png``). A report holds many
charts, so the script (Vega, Vega-Lite and vega-embed in one, about 0.9 MB) is inlined once and every chart is one
``vegaEmbed`` call on its spec.

Costs, measured (docs/benchmarks.md, "HTML report"): making the script takes about 2 s once and is the same for every
report, so it is kept on disk (``$XAI_LENS_CACHE/vega/``, keyed by the Vega-Lite and vl-convert versions); a PNG
takes 30–90 ms, after a first one that starts vl-convert's JavaScript runtime (about 0.8 s). That runtime stays
resident (70–130 MB) for the life of the process that started it, so the conversion runs in a short-lived
subprocess (``_vega_worker.py``), never in the app's server.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("_vega_worker.py")
#: A report's conversion is abandoned (charts then stay interactive only, or are described in words) after this.
TIMEOUT_S = 60.0
#: PNG fallbacks are drawn at this scale (1 = the chart's own pixel size; 2 doubles the file size of each).
PNG_SCALE = 1.0

_lock = threading.Lock()
_bundle: dict[str, str] = {}  # file name → script, once read or made in this process


def vl_version() -> str:
    """The Vega-Lite version Altair writes specs for, as vl-convert names it (``"v6_4"``)."""
    import altair as alt

    return "_".join(alt.SCHEMA_VERSION.split(".")[:2])


def converter_version() -> str:
    try:
        return version("vl-convert-python")
    except PackageNotFoundError:
        return "not installed"


def cache_dir() -> Path:
    """Where the vega-embed script is kept: ``$XAI_LENS_CACHE/vega`` (default ``~/.cache/xai_lens/vega``)."""
    return Path(os.environ.get("XAI_LENS_CACHE") or Path.home() / ".cache" / "xai_lens") / "vega"


def bundle_path() -> Path:
    return cache_dir() / f"vega-embed_{vl_version()}_vl-convert-{converter_version()}.js"


def spec_of(chart: Any) -> dict[str, Any]:
    """The chart's Vega-Lite spec with its data inlined, without the ``$schema`` URL (never fetched, but a report
    holds no external address)."""
    spec = chart.to_dict()
    spec.pop("$schema", None)
    return spec


@dataclass
class Converted:
    """What :func:`convert` made: the vega-embed script ("" if it could not be made), one PNG per spec (None where
    it failed), and what went wrong, in words."""

    script: str
    png: list[bytes | None]
    problems: list[str] = field(default_factory=list)
    peak_rss_mb: float = 0.0  # of the converter subprocess (0 when none ran)
    seconds: float = 0.0  # wall time of the converter subprocess


def _cached_script() -> str | None:
    path = bundle_path()
    with _lock:
        if path.name in _bundle:
            return _bundle[path.name]
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    if "vegaEmbed" not in text:  # a truncated or foreign file: make it again
        return None
    with _lock:
        _bundle[path.name] = text
    return text


def _store_script(text: str) -> None:
    path = bundle_path()
    with _lock:
        _bundle[path.name] = text
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # atomic: another process never reads half a file
    except OSError:
        pass  # a read-only disk: made again by the next process


def convert(specs: list[dict[str, Any]], scale: float = PNG_SCALE, timeout: float = TIMEOUT_S) -> Converted:
    """The vega-embed script and a PNG of every spec, from one run of the converter subprocess (none when the
    script is cached and there are no specs). Never raises: a failure leaves the charts without what failed and
    says so in ``problems``."""
    script = _cached_script()
    if script is not None and not specs:
        return Converted(script, [])
    request = {"vl_version": vl_version(), "bundle": script is None, "specs": specs, "scale": scale}
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-I", str(WORKER)], input=json.dumps(request), capture_output=True,
                              text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Converted(script or "", [None] * len(specs), [f"the chart converter did not finish ({exc})"])
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1][:300]
        return Converted(script or "", [None] * len(specs), [f"the chart converter failed: {last}"])
    answer = json.loads(proc.stdout)
    if script is None and answer.get("bundle"):
        script = str(answer["bundle"])
        _store_script(script)
    png = [None if b is None else base64.b64decode(b) for b in answer.get("png", [])]
    problems = sorted({e for e in answer.get("errors", []) if e})
    return Converted(script or "", png + [None] * (len(specs) - len(png)),
                     [f"a chart's PNG could not be drawn ({p})" for p in problems], float(answer.get("peak_rss_mb", 0)),
                     time.perf_counter() - start)


def prepare_script(timeout: float = TIMEOUT_S) -> bool:
    """Make (and keep on disk) the vega-embed script now, so the first report does not wait for it; True when it
    is ready. For a background thread at start-up."""
    return bool(convert([], timeout=timeout).script)
