"""Links go where a browser would go: URL cleaning, bogus CDATA, quotes in the text part."""

import pytest

from mailkit.rewrite import (
    clean_url,
    find_links,
    find_text_links,
    html_to_text,
    rewrite_html,
    rewrite_text,
)


def tracked(url: str) -> str:
    return "https://t.example/c/1"


@pytest.mark.parametrize(
    ("href", "destination"),
    [
        ("https://x.test/a\n/b", "https://x.test/a/b"),
        ("https://x.test/a\t/b", "https://x.test/a/b"),
        ("https://x.test/a\r\n/b", "https://x.test/a/b"),
        ("ht\ntps://x.test/p", "https://x.test/p"),
        ("https://x.test/p&#10;q", "https://x.test/pq"),
        ("https://x.test/p&#9;q", "https://x.test/pq"),
        ("\x01 \t https://x.test/p \x1f", "https://x.test/p"),
        ("https://x.test/a b", "https://x.test/a b"),  # a space inside is the URL's own
    ],
)
def test_a_tab_or_newline_in_an_href_is_removed_as_the_url_standard_says(
    href: str, destination: str
) -> None:
    html = f'<a href="{href}">go</a>'

    assert find_links(html) == [destination]
    seen: list[str] = []
    rewrite_html(html, url_for=seen.append, pixel_url=None, honeypot_url=None)
    assert seen == [destination]


def test_the_text_part_shows_the_cleaned_url_so_its_link_is_the_same_one() -> None:
    html = '<p><a href="https://x.test/long\n/path?a=1">Read</a></p>'

    text = html_to_text(html)

    assert text == "Read (https://x.test/long/path?a=1)"
    assert find_text_links(text) == find_links(html)


def test_clean_url_strips_controls_around_and_tabs_and_newlines_inside() -> None:
    assert clean_url(" \x00https://x.test/\ta\nb\rc\x0c ") == "https://x.test/abc"


def test_an_unclosed_cdata_does_not_stop_link_scanning() -> None:
    html = '<p><![CDATA[ stray</p><a href="https://x.test/after">after</a><p>end</p></body>'

    assert find_links(html) == ["https://x.test/after"]
    rewritten = rewrite_html(
        html, url_for=tracked, pixel_url="https://t.example/o.gif", honeypot_url=None
    )
    assert 'href="https://t.example/c/1"' in rewritten
    assert rewritten.index("t.example/o.gif") < rewritten.index("</body>")


def test_a_closed_cdata_section_still_hides_what_it_holds() -> None:
    html = '<svg><![CDATA[<a href="https://x.test/in">]]></svg><a href="https://x.test/out">o</a>'

    assert find_links(html) == ["https://x.test/out"]


@pytest.mark.parametrize(
    "url",
    [
        'https://x.test/search?q="red+shoes"',
        "https://x.test/it's-here",
        "https://x.test/?a='1'&b=\"2\"",
    ],
)
def test_a_url_holding_quotes_is_tracked_in_the_text_part(url: str) -> None:
    html = f'<p><a href="{url.replace(chr(34), "&quot;")}">Shop</a></p>'
    text = html_to_text(html)

    assert find_links(html) == [url]
    assert find_text_links(text) == [url]
    assert rewrite_text(text, url_for=lambda found: "T" if found == url else None) == "Shop (T)"


def test_a_quote_around_a_url_in_text_stays_outside_it() -> None:
    text = "She wrote \"see https://x.test/a\" and 'https://x.test/b'."

    assert find_text_links(text) == ["https://x.test/a", "https://x.test/b"]
