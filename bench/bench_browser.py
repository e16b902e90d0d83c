"""The first-map clicks timed in a real browser (headless Debian Chromium, Playwright), to check bench_first_map.py.

    .venv/bin/python bench/bench_browser.py                     # ResNet50 at 224 (the zoo file of bench_first_map)
    .venv/bin/python bench/bench_browser.py --runs 3 --switch lrp.alpha_2_beta_1,deep_taylor,gradient

Each run starts a fresh ``streamlit run`` server and measures, from the browser's side:

- **cold start**: from starting the server (the browser is already open, as a visitor's is) to Home's title on
  screen, to Home's three heatmaps on screen (its first view, computed ahead: xai_core/first_view.py), and to the
  page settled once it has started the engine and computed the same view live (``--cold-only`` stops there);
- **upload → first map**: on Visualize, from handing the model file to the uploader ("Use your own model") to the
  page settled with the LRP-ε maps of the uploaded model (its default method; the demo model stays chosen beside
  it, as the page does);
- **switch**: from choosing another method of the uploaded model to the page settled with its maps.

"Settled" is Streamlit's own state: the script not running, no status widget, for 0.5 s (tests/browser/
browser_helpers.py ``wait_for_app``). Needs /usr/bin/chromium and the ``playwright`` package (dev tools).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser.browser_helpers import wait_for_app
from browser.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, _free_port, _healthy

METHOD_LABELS = {"lrp.alpha_2_beta_1": ("LRP", "LRP-α2β1"), "deep_taylor": ("Deep Taylor", "Deep Taylor"),
                 "gradient": ("Gradient", "Gradient (saliency)"), "gradcam": ("CAM", "Grad-CAM"),
                 "lrp.z": ("LRP", "LRP-0 (z rule)"), "guided_backprop": ("Gradient", "Guided Backprop")}


def _server(log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc, f"http://127.0.0.1:{port}"


def _settled(page, timeout_s: float = 600) -> None:
    wait_for_app(page, timeout_s=timeout_s, quiet_ms=500)


def one_run(model: Path | None, switches: list[str]) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="xai-lens-bench-browser-") as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)  # a visitor's browser is open
        page = browser.new_page(viewport=VIEWPORT)
        start = time.perf_counter()
        proc, url = _server(Path(tmp) / "server.log")
        try:
            while not _healthy(url):
                time.sleep(0.05)
            page.goto(url)
            page.get_by_role("heading", name="XAI Lens").first.wait_for(timeout=600_000)
            out["cold start → Home title"] = time.perf_counter() - start
            page.locator('[data-testid="stImage"] img').nth(3).wait_for(timeout=600_000)  # input + 3 maps
            out["cold start → Home's three heatmaps"] = time.perf_counter() - start
            _settled(page)
            out["cold start → Home settled (engine started)"] = time.perf_counter() - start - 0.5
            if model is None:  # --cold-only
                browser.close()
                return out

            page.goto(f"{url}/visualize")
            _settled(page)
            page.get_by_text("Use your own model").first.click()
            uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="Model file")
            mark = time.perf_counter()
            uploader.locator('input[type="file"]').set_input_files(str(model))
            name = model.stem
            page.get_by_text(f"{name} (input").first.wait_for(timeout=600_000)  # its row, under LRP-ε
            _settled(page)
            out["upload → first LRP-ε map"] = time.perf_counter() - mark - 0.5
            print({k: round(v, 2) for k, v in out.items()}, flush=True)
            family_now = "LRP"
            for method in switches:
                family, label = METHOD_LABELS[method]
                mark = time.perf_counter()
                if family != family_now:  # the family's first method is shown at once: pick ones that are
                    page.get_by_role("radiogroup", name="Method family").get_by_role(
                        "radio", name=re.compile(rf"^{re.escape(family)} ·")).click()
                    family_now = family
                    _settled(page)
                box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Method").first
                if label not in box.inner_text():
                    box.click()
                    page.keyboard.type(label)  # the list is long and virtualised: filter it first
                    page.get_by_role("option", name=label, exact=True).click()
                page.get_by_text(re.compile(rf"Why\? {re.escape(label)} for")).first.wait_for(timeout=600_000)
                _settled(page)
                out[f"switch → {method}"] = time.perf_counter() - mark - 0.5
            browser.close()
        finally:
            proc.terminate()
            proc.wait(30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("/tmp/xai_lens_bench_first_map/ResNet50.keras"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--switch", default="lrp.alpha_2_beta_1,deep_taylor,gradient")
    parser.add_argument("--cold-only", action="store_true", help="time the cold start only (no model file needed)")
    args = parser.parse_args()
    if args.cold_only:
        args.model, args.switch = None, ""
    elif not args.model.exists():
        sys.exit(f"{args.model} not found: run bench/bench_first_map.py first (it saves the zoo file)")
    runs = [one_run(args.model, [m for m in args.switch.split(",") if m]) for _ in range(args.runs)]
    print(f"\n| clicks (Chromium, {args.model.name if args.model else 'cold start'}) | median | runs |\n|---|---:|---|")
    for key in runs[0]:
        values = [r[key] for r in runs if key in r]
        print(f"| {key} | {statistics.median(values):.2f} s | {', '.join(f'{v:.2f}' for v in values)} |")


if __name__ == "__main__":
    main()
