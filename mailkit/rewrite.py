"""Instrumenting an email's HTML and text parts: link rewriting, pixel, honeypot.

The HTML side is a small tokenizer that follows the WHATWG tokenizer closely enough to find
the same `<a>`/`<area>` tags a browser would, and records where each href value sits, so that
rewriting splices new values in and leaves every other byte of the sender's markup alone.
Re-serialising through a parser would normalise quoting, entities and broken markup, which
changes how mail clients (Outlook's Word engine above all) render the message.
"""

import html as htmllib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.entities import html5
from html.parser import HTMLParser

PIXEL_TEMPLATE = (
    '<img src="{}" width="1" height="1" alt="" '
    'style="display:block;border:0;width:1px;height:1px" />'
)
# No text and hidden by every means mail clients honour (mso-hide for Outlook), so only
# software that follows every href in a message ever requests it.
HONEYPOT_TEMPLATE = (
    '<a href="{}" style="display:none!important;visibility:hidden;mso-hide:all;'
    'font-size:0;line-height:0;max-height:0;max-width:0;overflow:hidden;opacity:0" '
    'aria-hidden="true" tabindex="-1"></a>'
)

_SKIP_SPACE = re.compile(r"[\t\n\f\r ]*")
_SKIP_SPACE_SLASH = re.compile(r"[\t\n\f\r /]*")
_TAG_NAME = re.compile(r"[^\t\n\f\r />]*")
_ATTR_NAME_REST = re.compile(r"[^\t\n\f\r />=]*")
_UNQUOTED_VALUE = re.compile(r"[^\t\n\f\r >]*")
_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)")
# The WHATWG URL parser strips C0 controls and spaces around a URL, then removes every ASCII
# tab and newline inside it: "https://x.test/a\n/b" goes to https://x.test/a/b.
_URL_STRIP = "".join(map(chr, range(0x21)))
_URL_DROP = str.maketrans("", "", "\t\n\r")
# Elements whose content is text to the tokenizer: a "<a" inside them is not a tag.
_RAW_TEXT = ("iframe", "noembed", "noframes", "script", "style", "textarea", "title", "xmp")
_RAW_TEXT_END = {
    name: re.compile(rf"</{name}(?=[\t\n\f\r />])", re.IGNORECASE | re.ASCII) for name in _RAW_TEXT
}
_UNQUOTED_UNSAFE = re.compile(r"[\t\n\f\r \"'<=>`&]")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# Plain text: the URL runs to whitespace or a delimiter nobody puts in a bare URL; closing
# punctuation is then trimmed unless the URL itself opened it, as in Wikipedia links. Quotes
# may be inside a URL (the text part writes an href holding `"` as it is): a closing quote is
# trimmed only when the URL holds no quote it closes, as in `"see https://x.test/a"`.
_TEXT_URL = re.compile(r"(?<![A-Za-z0-9+.-])[Hh][Tt][Tt][Pp][Ss]?://[^\s<>`]+")
_TRAILING_PUNCTUATION = ".,;:!?*_~"
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_QUOTES = "'\""


@dataclass(frozen=True, slots=True)
class _Attr:
    name: str
    start: int  # value span in the document; -1 when the attribute has no value
    end: int
    quote: str  # '"', "'" or "" (unquoted or no value)


@dataclass(frozen=True, slots=True)
class _Tag:
    name: str
    start: int
    end: int
    closing: bool
    attrs: tuple[_Attr, ...]


@dataclass(frozen=True, slots=True)
class _Link:
    start: int
    end: int
    quote: str
    destination: str


def find_links(html: str) -> list[str]:
    """The distinct trackable http(s) destinations of `<a>`/`<area>` tags, in document order."""
    links, _ = _scan(html)
    return list(dict.fromkeys(link.destination for link in links))


def rewrite_html(
    html: str,
    *,
    url_for: Callable[[str], str | None],
    pixel_url: str | None,
    honeypot_url: str | None,
) -> str:
    """Replace trackable href values with `url_for(destination)` and add pixel and honeypot.

    `url_for` is called once per distinct destination, in document order; None (or "") leaves
    that destination's links as they are. Every byte outside the replaced values is kept.
    """
    links, body_end = _scan(html)
    edits: list[tuple[int, int, str]] = []
    replacements: dict[str, str | None] = {}
    for link in links:
        if link.destination not in replacements:
            replacements[link.destination] = url_for(link.destination)
        new = replacements[link.destination]
        if new:
            edits.append((link.start, link.end, _escape_attr(new, link.quote)))
    appendix = ""
    if honeypot_url is not None:
        appendix += HONEYPOT_TEMPLATE.format(htmllib.escape(honeypot_url))
    if pixel_url is not None:
        appendix += PIXEL_TEMPLATE.format(htmllib.escape(pixel_url))
    if appendix:
        at = len(html) if body_end is None else body_end
        edits.append((at, at, appendix))
        edits.sort(key=lambda edit: edit[0])
    out: list[str] = []
    pos = 0
    for start, end, text in edits:
        out.append(html[pos:start])
        out.append(text)
        pos = end
    out.append(html[pos:])
    return "".join(out)


def link_bare_urls(html: str) -> str:
    """Make each bare http(s) URL written in the text of `html` a link to itself, as mail
    programs do when they show a message: typed into the composer, it must be clicked (and
    tracked) like any link. Text inside a link, a raw-text element (script, style, title,
    textarea) or a comment is left alone; every other byte is kept."""
    texts: list[tuple[int, int]] = []  # spans of text outside any link or raw-text element
    inside = 0
    pos = 0
    for tag in _tags(html):
        if not inside:
            texts.append((pos, tag.start))
        if tag.name in ("a", "area") or tag.name in _RAW_TEXT:
            inside = max(inside + (-1 if tag.closing else 1), 0)
        pos = tag.end
    if not inside:
        texts.append((pos, len(html)))
    out: list[str] = []
    at = 0
    for text_start, text_end in texts:
        segment = html[text_start:text_end]
        if "<" in segment:
            continue  # holds a comment or a cut-off tag: not text to touch
        for start, end, url in _text_links(segment):
            href = _escape_attr(htmllib.unescape(url), '"')
            out += [html[at : text_start + start], f'<a href="{href}">{segment[start:end]}</a>']
            at = text_start + end
    out.append(html[at:])
    return "".join(out)


def find_text_links(text: str) -> list[str]:
    """The distinct bare http(s) URLs of a plain-text part, in order."""
    return list(dict.fromkeys(url for _, _, url in _text_links(text)))


def rewrite_text(text: str, *, url_for: Callable[[str], str | None]) -> str:
    """Replace bare http(s) URLs with `url_for(url)`; None (or "") leaves a URL as it is."""
    out: list[str] = []
    pos = 0
    replacements: dict[str, str | None] = {}
    for start, end, url in _text_links(text):
        if url not in replacements:
            replacements[url] = url_for(url)
        new = replacements[url]
        if new:
            out.append(text[pos:start])
            out.append(new)
            pos = end
    out.append(text[pos:])
    return "".join(out)


def html_to_text(html: str) -> str:
    """A readable plain-text alternative of an HTML body."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return extractor.text()


def _scan(html: str) -> tuple[list[_Link], int | None]:
    """Trackable links and the offset of the last real `</body>` tag, if any."""
    links: list[_Link] = []
    body_end: int | None = None
    for tag in _tags(html):
        if tag.closing:
            if tag.name == "body":
                body_end = tag.start
            continue
        # VML shapes (v:roundrect, v:rect, ...) carry the href of Outlook's "bulletproof"
        # buttons, inside conditional comments that only Outlook renders.
        if tag.name not in ("a", "area") and not tag.name.startswith("v:"):
            continue
        link = _link(html, tag.attrs)
        if link is not None:
            links.append(link)
    return links, body_end


def _link(html: str, attrs: tuple[_Attr, ...]) -> _Link | None:
    href: _Attr | None = None
    for attr in attrs:
        if attr.name == "data-notrack":
            return None
        # Browsers keep the first of duplicated attributes and drop the rest.
        if attr.name == "href" and href is None:
            href = attr
    if href is None or href.start < 0:
        return None
    destination = _http_url(html[href.start : href.end])
    if destination is None:
        return None
    return _Link(href.start, href.end, href.quote, destination)


def clean_url(value: str) -> str:
    """The URL a browser would follow for an href value (already entity-decoded)."""
    return value.strip(_URL_STRIP).translate(_URL_DROP)


def _http_url(raw_value: str) -> str | None:
    url = clean_url(_unescape_attr(raw_value))
    scheme = url[:8].translate(_ASCII_LOWER)
    if scheme.startswith("http://") or scheme.startswith("https://"):
        return url
    return None


def _tags(html: str, spans: list[tuple[int, int]] | None = None) -> Iterator[_Tag]:
    """Start and end tags as a browser's tokenizer sees them; stops at the first one cut off.

    Also the start tags inside Outlook's conditional comments (`<!--[if mso]>...<![endif]-->`):
    every other client skips them as comments, but Outlook renders what they hold, so their
    links are clicked too. End tags there are left out: a `</body>` in one is no body's end.

    `spans`, when given, receives the (start, end) of everything read as markup rather than
    text: tags, comments, raw-text content, a lone "<", and from a cut-off tag to the end.
    """
    n = len(html)
    pos = 0
    while True:
        lt = html.find("<", pos)
        if lt == -1:
            return
        if lt + 1 >= n:
            if spans is not None:
                spans.append((lt, n))
            return
        char = html[lt + 1]
        if char == "!":
            if html.startswith("<!--", lt):
                # "<!-->" and "<!--->" are whole (empty) comments.
                if html.startswith(">", lt + 4):
                    pos = lt + 5
                    if spans is not None:
                        spans.append((lt, pos))
                    continue
                if html.startswith("->", lt + 4):
                    pos = lt + 6
                    if spans is not None:
                        spans.append((lt, pos))
                    continue
                close = _comment_end(html, lt + 4)
                if html.startswith("[if", lt + 4) and close != -1:
                    yield from _conditional_tags(html, lt + 4, close)
            elif html.startswith("<![CDATA[", lt):
                # A real CDATA section (in SVG or MathML) ends at "]]>"; in HTML, or with no
                # "]]>" at all, it is a bogus comment a browser ends at the next ">".
                close = _find_after(html, "]]>", lt + 9)
                if close == -1:
                    close = _find_after(html, ">", lt + 9)
            else:
                close = _find_after(html, ">", lt + 2)
        elif char == "?":
            close = _find_after(html, ">", lt + 2)
        elif char == "/":
            after = html[lt + 2 : lt + 3]
            if after.isascii() and after.isalpha():
                tag = _scan_tag(html, lt, lt + 2, closing=True)
                if tag is None:
                    if spans is not None:
                        spans.append((lt, n))
                    return
                yield tag
                close = tag.end
            elif after == ">":
                close = lt + 3
            else:
                close = _find_after(html, ">", lt + 2)
        elif char.isascii() and char.isalpha():
            tag = _scan_tag(html, lt, lt + 1, closing=False)
            if tag is None:
                if spans is not None:
                    spans.append((lt, n))
                return
            yield tag
            close = tag.end
            if tag.name in _RAW_TEXT_END:
                match = _RAW_TEXT_END[tag.name].search(html, close)
                close = -1 if match is None else match.start()
            elif tag.name == "plaintext":
                close = -1
        else:
            close = lt + 1
        if spans is not None:
            spans.append((lt, n if close == -1 else close))
        if close == -1:
            return
        pos = close


def _conditional_tags(html: str, start: int, end: int) -> Iterator[_Tag]:
    """The start tags between `start` and `end` (a conditional comment's inside), with their
    offsets in `html`."""
    for tag in _tags(html[start:end]):
        if not tag.closing:
            yield _Tag(
                tag.name,
                tag.start + start,
                tag.end + start,
                False,
                tuple(
                    _Attr(a.name, a.start + start, a.end + start, a.quote) if a.start >= 0 else a
                    for a in tag.attrs
                ),
            )


def _scan_tag(html: str, start: int, name_at: int, *, closing: bool) -> _Tag | None:
    n = len(html)
    name_end = _end_of(_TAG_NAME, html, name_at)
    name = html[name_at:name_end].translate(_ASCII_LOWER)
    attrs: list[_Attr] = []
    i = name_end
    while True:
        i = _end_of(_SKIP_SPACE_SLASH, html, i)
        if i >= n:
            return None
        if html[i] == ">":
            return _Tag(name, start, i + 1, closing, tuple(attrs))
        # An attribute name may begin with "=", hence the first character is taken as is.
        name_start = i
        i = _end_of(_ATTR_NAME_REST, html, i + 1)
        attr_name = html[name_start:i].translate(_ASCII_LOWER)
        j = _end_of(_SKIP_SPACE, html, i)
        if j < n and html[j] == "=":
            j = _end_of(_SKIP_SPACE, html, j + 1)
            if j >= n:
                return None
            quote = html[j]
            if quote in "\"'":
                close = html.find(quote, j + 1)
                if close == -1:
                    return None
                attrs.append(_Attr(attr_name, j + 1, close, quote))
                i = close + 1
            else:
                close = _end_of(_UNQUOTED_VALUE, html, j)
                attrs.append(_Attr(attr_name, j, close, ""))
                i = close
        else:
            attrs.append(_Attr(attr_name, -1, -1, ""))
            i = j


def _end_of(pattern: re.Pattern[str], html: str, pos: int) -> int:
    match = pattern.match(html, pos)
    return pos if match is None else match.end()


def _comment_end(html: str, pos: int) -> int:
    ends = [end for end in (html.find("-->", pos), html.find("--!>", pos)) if end != -1]
    if not ends:
        return -1
    end = min(ends)
    return end + (3 if html.startswith("-->", end) else 4)


def _find_after(html: str, needle: str, pos: int) -> int:
    found = html.find(needle, pos)
    return -1 if found == -1 else found + len(needle)


def _unescape_attr(value: str) -> str:
    """Decode character references the way browsers do inside attribute values."""
    if "&" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref[0] == "#":
            return htmllib.unescape(match.group(0))
        if ref[-1] == ";":
            return html5.get(ref, match.group(0))
        # Legacy references without ";" (&amp, &copy) are not decoded in attributes when
        # followed by "=" or an alphanumeric, so "?a=1&region=eu" keeps its "&region".
        following = value[match.end() : match.end() + 1]
        if ref in html5 and following != "=":
            return html5[ref]
        return match.group(0)

    return _CHARREF.sub(replace, value)


def _escape_attr(value: str, quote: str) -> str:
    if quote == '"':
        return value.replace("&", "&amp;").replace('"', "&quot;")
    if quote == "'":
        return value.replace("&", "&amp;").replace("'", "&#39;")
    # An unquoted value cannot gain quotes without touching bytes outside it, so anything
    # that would end or confuse it becomes a character reference instead.
    return _UNQUOTED_UNSAFE.sub(lambda match: f"&#{ord(match.group(0))};", value)


def _text_links(text: str) -> Iterator[tuple[int, int, str]]:
    for match in _TEXT_URL.finditer(text):
        url = _trim_url(match.group(0))
        if not url.endswith("://"):
            yield match.start(), match.start() + len(url), url


def _trim_url(url: str) -> str:
    while url:
        last = url[-1]
        if (
            last in _TRAILING_PUNCTUATION
            or (last in _CLOSERS and url.count(last) > url.count(_CLOSERS[last]))
            or (last in _QUOTES and url.count(last) % 2 == 1)
        ):
            url = url[:-1]
        else:
            break
    return url


# Private-use markers for breaks, resolved once whitespace is collapsed: block boundaries
# merge into one line break, paragraphs into one blank line, while <br>s add up.
_LINE = "\ue000"
_PARAGRAPH = "\ue001"
_BR = "\ue002"
_PARAGRAPH_TAGS = frozenset(
    {"blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "ol", "p", "pre", "table", "ul"}
)
_LINE_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "center",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "li",
        "main",
        "nav",
        "section",
        "summary",
        "tr",
    }
)
_HIDDEN_TAGS = frozenset({"script", "style", "template", "title"})
_SPACE_RUN = re.compile(r"[\t\n\f\r \xa0]+")
# Preheader padding and soft hyphens: invisible in a mail client, noise in text.
_INVISIBLE = re.compile("[\u00ad\u034f\u200b\u200c\u200d\u2060\ufeff]")
_BREAKS = f"{_LINE}{_PARAGRAPH}{_BR}"
_BREAK_RUN = re.compile(f"[ {_BREAKS}]*[{_BREAKS}][ {_BREAKS}]*")
_DISPLAY_NONE = re.compile(r"display\s*:\s*none", re.IGNORECASE | re.ASCII)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0
        self.pre = 0
        # (href or None, index in parts where the link's text starts, hidden from readers)
        self.link: tuple[str | None, int, bool] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden += 1
        elif tag == "br":
            self.parts.append(_BR)
        elif tag in _PARAGRAPH_TAGS:
            self.parts.append(_PARAGRAPH)
        elif tag in _LINE_TAGS:
            self.parts.append(_LINE)
        elif tag in ("td", "th"):
            self.parts.append(" ")
        if tag == "li":
            self.parts.append("- ")
        elif tag == "pre":
            self.pre += 1
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(alt)
        elif tag == "a":
            self.close_link()
            style = dict(attrs).get("style") or ""
            hidden = _DISPLAY_NONE.search(style) is not None
            self.link = (self.raw_href(), len(self.parts), hidden)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # Browsers ignore "/>" on HTML elements: "<a/>" opens a link like "<a>" does.
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden = max(0, self.hidden - 1)
        elif tag == "a":
            self.close_link()
        elif tag in _PARAGRAPH_TAGS:
            self.parts.append(_PARAGRAPH)
        elif tag in _LINE_TAGS:
            self.parts.append(_LINE)
        if tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        self.parts.append(data.replace("\n", _BR) if self.pre else data)

    def close(self) -> None:
        super().close()
        self.close_link()

    def raw_href(self) -> str | None:
        # HTMLParser decodes attributes with html.unescape, which turns "&region=" into
        # "®ion="; re-reading the raw tag gives the URL a browser would follow.
        raw = self.get_starttag_text() or ""
        tag = _scan_tag(raw, 0, 1, closing=False)
        if tag is None:
            return None
        for attr in tag.attrs:
            if attr.name == "href":
                if attr.start < 0:
                    return None
                return clean_url(_unescape_attr(raw[attr.start : attr.end])) or None
        return None

    def close_link(self) -> None:
        if self.link is None:
            return
        href, start, hidden = self.link
        self.link = None
        if hidden:
            del self.parts[start:]
            return
        if href is None or href.startswith("#") or href.lower().startswith("javascript:"):
            return
        label = _SPACE_RUN.sub(" ", _INVISIBLE.sub("", "".join(self.parts[start:])))
        label = _BREAK_RUN.sub(" ", label).strip()
        bare = href.split(":", 1)[1] if href.lower().startswith(("mailto:", "tel:")) else href
        if not label:
            self.parts.append(href)
        elif label not in (href, bare):
            self.parts.append(f" ({href})")

    def text(self) -> str:
        text = _SPACE_RUN.sub(" ", _INVISIBLE.sub("", "".join(self.parts)))

        def breaks(match: re.Match[str]) -> str:
            run = match.group(0)
            return "\n" * min(2, max(run.count(_BR), 2 if _PARAGRAPH in run else 1))

        return _BREAK_RUN.sub(breaks, text).strip()
