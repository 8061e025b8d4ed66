import re

from hypothesis import given
from hypothesis import strategies as st

from mailkit.rewrite import (
    find_links,
    find_text_links,
    html_to_text,
    rewrite_html,
    rewrite_text,
)

MARK = "https://t.invalid/\u2603"
PIXEL = "https://t.example/o/TOKEN.gif"
HONEYPOT = "https://t.example/c/TRAP"


def mark(url: str) -> str:
    return MARK


def tracked(url: str) -> str:
    return f"https://t.example/c/{len(url)}"


def rewrite(html: str, url_for=tracked) -> str:
    return rewrite_html(html, url_for=url_for, pixel_url=None, honeypot_url=None)


# Generated "HTML": real links in every quoting style mixed with comments, raw-text
# elements, stray brackets and quotes, broken tags and entity soup.
SOUP = "<>\"'=&;/!-?#[] \n\tahrefHREFbody"
VALUES = st.one_of(
    st.sampled_from(
        [
            "https://a.example/x?a=1&amp;b=2",
            "http://b.example/",
            " HTTPS://c.example/#frag ",
            "http://d.example/?q=1&copy=2",
            "mailto:x@example.com",
            "tel:+100",
            "#top",
            "/relative",
            "javascript:void(0)",
            "",
        ]
    ),
    st.text(alphabet=SOUP, max_size=10),
)


@st.composite
def attributes(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(["href", "HREF", "hReF", "class", "data-notrack", "title", "=x"]))
    value = draw(VALUES)
    quote = draw(st.sampled_from(['"', "'", ""]))
    before = draw(st.sampled_from([" ", "\n", "/", "  ", ""]))
    equals = draw(st.sampled_from(["=", " = ", "=\n", ""]))
    if not equals:
        return before + name
    return f"{before}{name}{equals}{quote}{value}{quote}"


@st.composite
def tags(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(["a", "A", "area", "img", "p", "script", "style", "body"]))
    attrs = "".join(draw(st.lists(attributes(), max_size=4)))
    end = draw(st.sampled_from([">", " />", "/>", "", " "]))
    return f"<{name}{attrs}{end}"


@st.composite
def links(draw: st.DrawFn) -> str:
    destination = draw(st.sampled_from(["https://a.example/x?a=1&amp;b=2", "http://b.example/"]))
    quote = draw(st.sampled_from(['"', "'", ""]))
    before = "".join(draw(st.lists(attributes(), max_size=2)))
    after = "".join(draw(st.lists(attributes(), max_size=2)))
    return f"<a{before} href={quote}{destination}{quote}{after}>"


FRAGMENTS = st.one_of(
    links(),
    tags(),
    st.text(alphabet=SOUP, max_size=12),
    st.sampled_from(
        [
            "</a>",
            "</script>",
            "</STYLE>",
            "</body>",
            "</BODY >",
            "<!-- ",
            " -->",
            "<!-->",
            "<![CDATA[",
            "]]>",
            "<!DOCTYPE html>",
            "<?xml ?>",
            "</ >",
            "<textarea>",
            "</textarea>",
            "&amp;",
            "&",
        ]
    ),
)
DOCUMENTS = st.lists(FRAGMENTS, max_size=25).map("".join)


def test_only_href_values_change():
    html = (
        '<p class="x">Hi</p>\n<a  title=\'t\' HREF = "https://a.example/1" id=x>one</a>'
        "<a href='https://b.example/2'>two</a><a href=https://c.example/3 class=y>three</a>"
    )

    assert rewrite(html, url_for=lambda url: url.replace("example", "tracker")) == (
        '<p class="x">Hi</p>\n<a  title=\'t\' HREF = "https://a.tracker/1" id=x>one</a>'
        "<a href='https://b.tracker/2'>two</a><a href=https://c.tracker/3 class=y>three</a>"
    )


@given(DOCUMENTS)
def test_removing_the_rewritten_values_gives_back_the_input(html):
    rewritten = rewrite(html, url_for=mark)

    pieces = rewritten.split(MARK)
    original = re.fullmatch("(.+?)".join(map(re.escape, pieces)), html, re.DOTALL)
    assert original is not None
    assert len(pieces) > 1 or not find_links(html)


@given(DOCUMENTS)
def test_after_rewriting_every_trackable_link_points_at_the_tracker(html):
    assert set(find_links(rewrite(html, url_for=mark))) <= {MARK}


@given(st.text())
def test_any_text_survives_rewriting_byte_for_byte_when_no_link_is_replaced(text):
    assert rewrite(text, url_for=lambda url: None) == text


@given(DOCUMENTS)
def test_the_pixel_is_the_only_addition(html):
    rewritten = rewrite_html(html, url_for=lambda url: None, pixel_url=PIXEL, honeypot_url=None)

    pixel = re.search(r'<img src="https://t\.example/o/TOKEN\.gif"[^>]*/>', rewritten)
    assert pixel is not None
    assert rewritten[: pixel.start()] + rewritten[pixel.end() :] == html


def test_it_leaves_mailto_tel_anchor_relative_script_and_notrack_links_alone():
    html = (
        '<a href="mailto:a@example.com">m</a><a href="tel:+1">t</a><a href="#top">#</a>'
        '<a href="/pricing">r</a><a href="javascript:alert(1)">j</a>'
        '<a data-notrack href="https://private.example/">n</a><a href>empty</a>'
    )

    assert find_links(html) == []
    assert rewrite(html) == html


def test_it_finds_area_links_and_ignores_other_tags_with_href():
    html = '<link href="https://css.example/a.css"><area href="https://map.example/">'

    assert find_links(html) == ["https://map.example/"]


def test_it_decodes_entities_in_destinations_as_a_browser_would():
    html = (
        '<a href="https://a.example/?x=1&amp;y=2&#38;z=3">a</a>'
        '<a href="https://b.example/?q=1&region=eu&copy=2">b</a>'
    )

    assert find_links(html) == [
        "https://a.example/?x=1&y=2&z=3",
        "https://b.example/?q=1&region=eu&copy=2",
    ]


def test_it_lists_each_destination_once_in_document_order():
    html = '<a href="https://b.example/">1</a><a href="https://a.example/">2</a>' * 2

    assert find_links(html) == ["https://b.example/", "https://a.example/"]


def test_it_asks_for_each_destination_once_and_leaves_links_it_gets_none_for():
    asked: list[str] = []

    def url_for(url: str) -> str | None:
        asked.append(url)
        return None if "keep" in url else "https://t.example/c/x"

    html = '<a href="https://a.example/">1</a><a href="https://keep.example/">2</a>' * 2
    rewritten = rewrite(html, url_for=url_for)

    assert asked == ["https://a.example/", "https://keep.example/"]
    assert rewritten.count("https://t.example/c/x") == 2
    assert rewritten.count("https://keep.example/") == 2


def test_it_escapes_the_new_value_for_its_quoting():
    html = "<a href=\"https://a.example/\">1</a><a href='https://a.example/'>2</a>"
    html += "<a href=https://a.example/>3</a>"

    rewritten = rewrite(html, url_for=lambda url: "https://t.example/?a=1&b='\" >")

    assert rewritten == (
        '<a href="https://t.example/?a=1&amp;b=\'&quot; >">1</a>'
        "<a href='https://t.example/?a=1&amp;b=&#39;\" >'>2</a>"
        "<a href=https://t.example/?a&#61;1&#38;b&#61;&#39;&#34;&#32;&#62;>3</a>"
    )


def test_it_does_not_rewrite_inside_comments_scripts_styles_or_textareas():
    html = (
        '<!-- <a href="https://comment.example/"> -->'
        "<script>document.write('<a href=\"https://script.example/\">')</script>"
        '<style>/* <a href="https://style.example/"> */</style>'
        '<textarea><a href="https://textarea.example/"></textarea>'
        '<a href="https://real.example/">real</a>'
    )

    assert find_links(html) == ["https://real.example/"]


def test_a_greater_than_sign_inside_a_quoted_value_does_not_end_the_tag():
    html = '<a title="a > b" href="https://a.example/">x</a>'

    assert find_links(html) == ["https://a.example/"]


def test_the_first_of_duplicated_href_attributes_wins():
    html = '<a href="https://first.example/" href="https://second.example/">x</a>'

    assert find_links(html) == ["https://first.example/"]


def test_it_puts_the_pixel_before_the_last_closing_body_tag():
    html = "<html><BODY>hi<!-- </body> --></Body >\n</html>"

    rewritten = rewrite_html(html, url_for=tracked, pixel_url=PIXEL, honeypot_url=None)

    assert rewritten.startswith("<html><BODY>hi<!-- </body> --><img src=")
    assert rewritten.endswith("/></Body >\n</html>")


def test_without_a_closing_body_tag_the_pixel_goes_at_the_end():
    rewritten = rewrite_html("<p>hi</p>", url_for=tracked, pixel_url=PIXEL, honeypot_url=None)

    assert rewritten == (
        '<p>hi</p><img src="https://t.example/o/TOKEN.gif" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px" />'
    )


def test_malformed_html_still_gets_the_pixel():
    for html in ["", "<", '<a href="https://a.example/', "<<a>>&&<!--", "<body</body"]:
        rewritten = rewrite_html(html, url_for=tracked, pixel_url=PIXEL, honeypot_url=None)

        assert PIXEL in rewritten
        assert rewritten.startswith(html)


def test_the_honeypot_link_is_hidden_empty_and_just_before_the_pixel():
    html = "<body><p>Hello</p></body>"

    rewritten = rewrite_html(html, url_for=tracked, pixel_url=PIXEL, honeypot_url=HONEYPOT)

    honeypot = re.search(r'<a href="https://t\.example/c/TRAP"([^>]*)>(.*?)</a><img ', rewritten)
    assert honeypot is not None
    assert "display:none" in honeypot.group(1)
    assert 'aria-hidden="true"' in honeypot.group(1)
    assert 'tabindex="-1"' in honeypot.group(1)
    assert honeypot.group(2) == ""
    assert HONEYPOT not in html_to_text(rewritten)


def test_text_links_leave_trailing_punctuation_outside_the_url():
    text = (
        "See https://a.example/x. Or (https://b.example/y), "
        "https://c.example/wiki/Foo_(bar)! and <https://d.example/>; also https://"
    )

    assert find_text_links(text) == [
        "https://a.example/x",
        "https://b.example/y",
        "https://c.example/wiki/Foo_(bar)",
        "https://d.example/",
    ]


def test_rewrite_text_replaces_only_the_urls():
    text = "Read https://a.example/x. Again: https://a.example/x, or mailto:me@example.com"

    assert rewrite_text(text, url_for=lambda url: "https://t.example/1") == (
        "Read https://t.example/1. Again: https://t.example/1, or mailto:me@example.com"
    )


def test_rewrite_text_leaves_urls_it_gets_none_for():
    text = "Keep https://a.example/ as is."

    assert rewrite_text(text, url_for=lambda url: None) == text


def test_the_text_part_made_from_html_carries_the_same_links():
    html = (
        '<p>Read <a href="https://a.example/wiki/Foo_(bar)">this</a>, '
        '<a href="https://b.example/?a=1&amp;b=2">that</a>.</p>'
        '<p><a href="https://c.example/"><img src="https://cdn.example/x.png" alt=""></a></p>'
    )

    assert find_text_links(html_to_text(html)) == find_links(html)


def test_html_to_text_makes_readable_text():
    html = """<html><head><title>Subject</title><style>p { color: red }</style></head>
    <body><p>Hello&nbsp;<b>Ann</b>,</p>
    <p>Line one<br>line   two</p>
    <script>alert("x")</script>
    <p>See <a href="https://a.example/?a=1&amp;b=2">our   pricing</a> or
    <a href="https://b.example/">https://b.example/</a>.</p>
    <ul><li>first</li><li>second</li></ul></body></html>"""

    assert html_to_text(html) == (
        "Hello Ann,\n\n"
        "Line one\nline two\n\n"
        "See our pricing (https://a.example/?a=1&b=2) or https://b.example/.\n\n"
        "- first\n- second"
    )


@given(st.one_of(DOCUMENTS, st.text()))
def test_html_to_text_never_raises(html):
    assert isinstance(html_to_text(html), str)
