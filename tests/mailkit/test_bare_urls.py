"""A bare URL typed into the body becomes a link (so it is clicked and tracked like one);
nothing already a link, in a style or script, or in a comment is touched."""

import pytest

from mailkit.merge import written_part
from mailkit.rewrite import find_links, link_bare_urls


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (
            "<p>See https://example.com/a?x=1&amp;y=2.</p>",
            '<p>See <a href="https://example.com/a?x=1&amp;y=2">'
            "https://example.com/a?x=1&amp;y=2</a>.</p>",
        ),
        ("plain https://q.test, end", 'plain <a href="https://q.test">https://q.test</a>, end'),
        ("<p>a</p>https://tail.test", '<p>a</p><a href="https://tail.test">https://tail.test</a>'),
        (
            "<p>(see https://x.test/page)</p>",
            '<p>(see <a href="https://x.test/page">https://x.test/page</a>)</p>',
        ),
    ],
)
def test_a_bare_url_becomes_a_link_to_itself(html: str, expected: str) -> None:
    assert link_bare_urls(html) == expected


@pytest.mark.parametrize(
    "html",
    [
        '<p><a href="https://x.test">https://x.test</a></p>',
        '<p><a href="https://x.test">go to <b>https://y.test</b></a></p>',
        "<style>a{background:url(https://z.test)}</style>",
        "<script>var u = 'https://s.test';</script>",
        "<!-- https://c.test --><p>x</p>",
        "<p>mailto:ada@example.com and ftp://files.test</p>",
    ],
)
def test_links_styles_scripts_comments_and_other_schemes_are_left_alone(html: str) -> None:
    assert link_bare_urls(html) == html


def test_it_runs_once_whatever_is_linked_already() -> None:
    once = link_bare_urls("<p>https://a.test and https://b.test</p>")

    assert link_bare_urls(once) == once
    assert find_links(once) == ["https://a.test", "https://b.test"]


def test_the_written_part_leaves_out_quoted_messages() -> None:
    body = "<p>Thanks!</p><blockquote><p>Hi *|FNAME|*</p><blockquote>old</blockquote></blockquote>"

    assert written_part(body) == "<p>Thanks!</p>"
