"""Compute Home's first view with the engine and store it in ``xai_core/assets/first_view.npz``.

    .venv/bin/python scripts/make_first_view.py

Run it after retraining the demo models (``scripts/train_demo_models.py``) or changing a method Home shows:
``tests/test_first_view.py`` fails until the stored view equals a fresh computation, and Home ignores a stored view
whose model file has changed (see :mod:`xai_core.first_view`).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xai_core.first_view import FIRST_VIEW_FILE, compute_first_view, save_first_view


def main() -> None:
    view = compute_first_view()
    save_first_view(view)
    print(f"{FIRST_VIEW_FILE}: {view.model_key}, {view.image_id}, class {view.class_names[view.target_class]}"
          f" ({view.probs[view.target_class]:.1%}), {', '.join(m.id for m in view.methods)};"
          f" {FIRST_VIEW_FILE.stat().st_size / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
