"""Read a report's HTML back: every tag's attributes, the text, the scripts and the embedded pictures; and what a
self-contained report promises (:func:`assert_self_contained`)."""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import numpy as np
from PIL import Image

URL = re.compile(r"https?://[^\s\"'`)<>\\]+")
#: Addresses inside the inlined Vega / Vega-Lite / vega-embed script that are never requested: XML namespace names,
#: the schema id Vega writes into compiled specs, the "Open in Vega Editor" action (turned off in the report) and an
#: issue link in an error message. Any other address in the script fails the offline test.
VENDOR_URLS = {"http://www.w3.org/1999/xlink", "http://www.w3.org/2000/svg", "http://www.w3.org/2000/xmlns/",
               "https://vega.github.io/schema/vega/v6.json", "https://vega.github.io/editor/",
               "https://github.com/vega/vega-lite/issues/2415"}
#: Attributes through which a page can load something.
LINKING = ("src", "href", "srcset", "action", "formaction", "poster", "data", "xlink:href", "background", "ping")


@dataclass
class Parsed:
    tags: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    scripts: list[tuple[dict[str, str], str]] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)

    @property
    def plain(self) -> str:
        return " ".join("".join(self.text).split())  # text as a browser runs it together (cells abut: "dtdd")

    def images(self) -> list[dict[str, str]]:
        return [attrs for tag, attrs in self.tags if tag == "img"]


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = Parsed()
        self._in: tuple[str, dict[str, str]] | None = None
        self._buf: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.out.tags.append((tag, a))
        if tag in ("script", "style"):
            self._in, self._buf = (tag, a), []

    def handle_endtag(self, tag):
        if self._in and tag == self._in[0]:
            body = "".join(self._buf)
            (self.out.scripts.append((self._in[1], body)) if tag == "script" else self.out.styles.append(body))
            self._in = None

    def handle_data(self, data):
        (self._buf if self._in else self.out.text).append(data)


def parse(html_text: str) -> Parsed:
    p = _Parser()
    p.feed(html_text)
    p.close()
    return p.out


def decode(src: str) -> np.ndarray:
    """The pixels of a ``data:image/...;base64`` URL."""
    head, data = src.split(",", 1)
    assert head.startswith("data:image/") and head.endswith(";base64"), head[:40]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def assert_self_contained(html_text: str) -> Parsed:
    """Nothing in the report points outside the file: no linking tag, every ``src`` / ``href`` a ``data:`` URL or an
    anchor, no script from elsewhere, no address in a chart spec or the embedding code (the inlined vega-embed
    script's own names excepted, :data:`VENDOR_URLS`), no stylesheet import. Returns the parsed report."""
    doc = parse(html_text)
    for tag, attrs in doc.tags:
        assert tag not in ("link", "iframe", "object", "embed", "base", "frame"), tag
        for name in LINKING:
            value = attrs.get(name, "")
            assert not value or value.startswith(("data:", "#")), f"<{tag} {name}={value[:60]}>"
    assert all("src" not in attrs for attrs, _ in doc.scripts)
    bundles = [body for attrs, body in doc.scripts if attrs.get("id") == "vega-bundle"]
    assert len(bundles) == 1 and "vegaEmbed" in bundles[0]
    assert set(URL.findall(bundles[0])) <= VENDOR_URLS  # names and a disabled action, never requested
    for attrs, body in doc.scripts:
        if attrs.get("id") != "vega-bundle":
            assert not URL.findall(body), URL.findall(body)[:3]  # chart specs and the embedding code
    for css in doc.styles:
        assert "@import" not in css and not re.search(r"url\((?!['\"]?data:)", css)
    return doc
