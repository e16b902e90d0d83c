"""Run by :mod:`xai_core.report.vega` as ``python -I _vega_worker.py``: Vega-Lite specs in, PNGs (and the vega-embed
script) out, through vl-convert, Altair's official converter.

A separate, short-lived process: vl-convert starts a JavaScript runtime that keeps 70–130 MB resident for the
rest of the process (measured, docs/benchmarks.md "HTML report"); the app's server should not carry that for a
button clicked now and then. It imports nothing of XAI Lens (and so not TensorFlow).

stdin: JSON ``{"vl_version": "v6_4", "bundle": bool, "specs": [spec, …], "scale": float}``.
stdout: JSON ``{"bundle": str | null, "png": [base64 | null, …], "errors": [str | null, …], "versions": {…},
"peak_rss_mb": float}``.
"""

from __future__ import annotations

import base64
import json
import sys


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started (``VmHWM``; 0 where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM"))
    except (OSError, StopIteration):
        return 0.0


def main() -> None:
    request = json.load(sys.stdin)
    import vl_convert as vlc

    vl = request["vl_version"]
    out: dict = {"bundle": None, "png": [], "errors": [],
                 "versions": {"vega": vlc.get_vega_version(), "vega-embed": vlc.get_vega_embed_version()}}
    if request.get("bundle"):
        # The stub marks ``snippet`` required; it defaults to assigning vegaEmbed, vega and vegaLite to ``window``
        # (Altair's inline HTML calls it the same way).
        out["bundle"] = vlc.javascript_bundle(vl_version=vl)  # type: ignore[call-arg]
    for spec in request.get("specs", []):
        try:
            png = vlc.vegalite_to_png(spec, vl_version=vl, scale=float(request.get("scale", 1.0)))
            out["png"].append(base64.b64encode(png).decode("ascii"))
            out["errors"].append(None)
        except Exception as exc:  # one bad chart must not cost the others their fallback
            out["png"].append(None)
            out["errors"].append(f"{type(exc).__name__}: {str(exc)[:300]}")
    out["peak_rss_mb"] = peak_rss_mb()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
