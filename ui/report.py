"""The **Report** download of a page: one button that builds the page's self-contained HTML report when clicked
(:mod:`xai_core.report`), or says why a report of this request is not offered."""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from xai_core.errors import XaiLensError
from xai_core.report import Report, over_limit, report_bytes
from xai_core.report.maps import ExplainedColumn, count_maps
from xai_core.report.vega import bundle_path, prepare_script

LABEL = "Report (HTML)"
HELP = ("One self-contained HTML file of what this page shows: the models, images, maps with their colour scale, "
        "predictions, checks, the method's caveats and everything needed to reproduce it. It opens offline in any "
        "browser; its charts stay interactive.")
_log = logging.getLogger(__name__)


@st.cache_resource(show_spinner=False)
def _script_started() -> dict[str, threading.Thread]:
    return {}


def prepare_charts() -> None:
    """Make the reports' chart script in the background, once per server, if it is not on disk yet (about 2 s), so
    the first report a user asks for does not wait for it."""
    if bundle_path().exists():
        return
    started = _script_started()
    if "script" not in started:
        started["script"] = threading.Thread(target=prepare_script, name="xai-lens-report-script", daemon=True)
        started["script"].start()


def _render(build: Callable[[], Report]) -> bytes:
    """The report's bytes; if building it fails, a page that says so (the download has already started)."""
    try:
        return report_bytes(build())
    except XaiLensError as exc:
        message = str(exc)
    except Exception as exc:  # the download cannot show st.error: the file says what went wrong instead
        _log.exception("building a report failed")
        message = f"{type(exc).__name__}: {exc}"
    return (f"<!DOCTYPE html><html lang='en'><meta charset='utf-8'><title>XAI Lens report</title><body><h1>The report "
            f"could not be built</h1><p>{html.escape(message)}</p><p>Reload the page and try again; if it fails again, "
            "download the pieces (grid PNG, maps, CSV) instead.</p></body></html>").encode()


def report_button(page: str, build: Callable[[], Report], file_name: str, *, columns: Sequence[ExplainedColumn] = (),
                  where: Any = None, disabled: bool = False) -> None:
    """A download button (in ``where``, default the page) that builds ``build()`` as HTML when clicked, or, when
    the maps of ``columns`` exceed the report's limit, a disabled button with the reason under it."""
    where = where or st
    reason = over_limit(count_maps(columns))
    if reason or disabled:
        where.download_button(LABEL, data=b"", file_name=file_name, disabled=True, icon=":material/description:",
                              width="stretch", key=f"{page}.report", help=reason or HELP)
        if reason:
            where.caption(reason)
        return
    prepare_charts()
    where.download_button(LABEL, data=lambda: _render(build), file_name=file_name, mime="text/html",
                          icon=":material/description:", width="stretch", key=f"{page}.report", help=HELP,
                          on_click="ignore")
