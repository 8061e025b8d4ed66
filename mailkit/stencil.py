"""An HTML body read once and filled for each recipient: the same bytes as `merge` then
`rewrite_html` give each person, without reading each person's copy again.

`stencil_of` cuts the body into what every copy shares and the holes each fills: merge fields,
the href values of tracked links, and the place of the pixel and honeypot. That is exact only
when a filled value cannot change how the HTML is read. `merge` escapes values for HTML (no
`<`, `>` or quotes), so a field in text or inside a quoted attribute value opens and closes
nothing; a field anywhere else (a tag's name or an unquoted value, a comment, raw text such as
<title>, right after a `<`, past a cut-off tag) might, and the body then has no stencil: its
copies are rendered one by one. A field inside a link's href makes that link's destination
each person's own (found again from the filled href).
"""

from __future__ import annotations

import html as htmllib
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mailkit.merge import field_spans, merge
from mailkit.rewrite import (
    HONEYPOT_TEMPLATE,
    PIXEL_TEMPLATE,
    _escape_attr,
    _http_url,
    _tags,
)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str


@dataclass(frozen=True, slots=True)
class _Href:
    raw: str  # the value as written (merge fields unfilled when `filled`)
    quote: str
    destination: str | None  # None when `filled`: each copy finds its own
    filled: bool


_APPENDIX = object()  # where the honeypot and pixel go

Part = str | _Field | _Href | object


@dataclass(frozen=True, slots=True)
class Stencil:
    parts: tuple[Part, ...]

    def fill(
        self,
        values: Mapping[str, str],
        *,
        url_for: Callable[[str], str | None] | None = None,
        pixel_url: str | None = None,
        honeypot_url: str | None = None,
    ) -> str:
        """The copy for these merge values: `merge(body, values, as_html=True)`, and with
        `url_for` what `rewrite_html` makes of it (links, pixel, honeypot)."""
        out: list[str] = []
        replacements: dict[str, str | None] = {}
        escape = htmllib.escape
        for part in self.parts:
            if type(part) is str:
                out.append(part)
            elif type(part) is _Field:
                out.append(escape(values.get(part.name, "")))
            elif type(part) is _Href:
                raw = merge(part.raw, values, as_html=True) if part.filled else part.raw
                destination = _http_url(raw) if part.filled else part.destination
                if url_for is None or destination is None:
                    out.append(raw)
                    continue
                if destination not in replacements:
                    replacements[destination] = url_for(destination)
                new = replacements[destination]
                out.append(_escape_attr(new, part.quote) if new else raw)
            elif url_for is not None:
                if honeypot_url is not None:
                    out.append(HONEYPOT_TEMPLATE.format(escape(honeypot_url)))
                if pixel_url is not None:
                    out.append(PIXEL_TEMPLATE.format(escape(pixel_url)))
        return "".join(out)


def stencil_of(html: str) -> Stencil | None:
    """The body cut into shared text and holes, or None when a merge field sits where its
    value could change how the HTML is read (see the module's docstring)."""
    spans: list[tuple[int, int]] = []
    holes: list[tuple[int, int, Part]] = []
    body_end: int | None = None
    # Quoted attribute values by their tag's start: a field may sit in those of a tag read as
    # one (not in a conditional comment, which a "--" and a ">" could end early).
    quoted: list[tuple[int, int, int]] = []
    for tag in _tags(html, spans):
        if tag.closing:
            if tag.name == "body":
                body_end = tag.start
            continue
        quoted += [(tag.start, a.start, a.end) for a in tag.attrs if a.quote and a.start >= 0]
        if tag.name not in ("a", "area") and not tag.name.startswith("v:"):
            continue
        href = None
        for attr in tag.attrs:
            if attr.name == "data-notrack":
                href = None
                break
            if attr.name == "href" and href is None:
                href = attr
        if href is None or href.start < 0:
            continue
        raw = html[href.start : href.end]
        if field_spans(raw):
            if not href.quote:
                return None
            holes.append((href.start, href.end, _Href(raw, href.quote, None, filled=True)))
            continue
        destination = _http_url(raw)
        if destination is not None:
            holes.append((href.start, href.end, _Href(raw, href.quote, destination, False)))
    starts = [start for start, _ in spans]
    read_as_tags = set(starts)
    values = [(low, high) for tag_start, low, high in quoted if tag_start in read_as_tags]
    hrefs = [(start, end) for start, end, _ in holes]
    for start, end, name in field_spans(html):
        at = bisect_right(starts, start) - 1
        if at >= 0 and spans[at][1] > start:
            if not _within(start, end, values):
                return None
        elif start and html[start - 1] == "<":
            return None
        if not _within(start, end, hrefs):  # one in a link's href is filled with it
            holes.append((start, end, _Field(name)))
    at = len(html) if body_end is None else body_end
    holes.append((at, at, _APPENDIX))
    holes.sort(key=lambda hole: hole[0])
    parts: list[Part] = []
    pos = 0
    for start, end, part in holes:
        if start > pos:
            parts.append(html[pos:start])
        parts.append(part)
        pos = end
    if pos < len(html):
        parts.append(html[pos:])
    return Stencil(tuple(parts))


def _within(start: int, end: int, ranges: list[tuple[int, int]]) -> bool:
    return any(low <= start and end <= high for low, high in ranges)
