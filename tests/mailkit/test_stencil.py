"""A body read once and filled per person gives each person the bytes that merging their
values and rewriting their copy give, or declines (None) where a value could change the HTML."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailkit.merge import FIELDS, merge
from mailkit.rewrite import rewrite_html
from mailkit.stencil import stencil_of

PIXEL = "https://t.example/o/TOKEN.gif"
HONEYPOT = "https://t.example/c/TRAP"


def tracked(url: str) -> str | None:
    # Some destinations stay as written, as a copy's links without a TrackedLink would.
    return None if "skip" in url else f"https://t.example/c/{len(url)}?u=1&v=\"'"


def per_person(html: str, values: dict[str, str], *, tracking: bool = True) -> str:
    filled = merge(html, values, as_html=True)
    if not tracking:
        return filled
    return rewrite_html(filled, url_for=tracked, pixel_url=PIXEL, honeypot_url=HONEYPOT)


def stenciled(html: str, values: dict[str, str], *, tracking: bool = True) -> str:
    stencil = stencil_of(html)
    assert stencil is not None
    if not tracking:
        return stencil.fill(values)
    return stencil.fill(values, url_for=tracked, pixel_url=PIXEL, honeypot_url=HONEYPOT)


TRICKY_VALUES = {
    "first_name": "Zoë <Zed> & \"Co\" 'x'",
    "last_name": "-- ! ]] > a b",
    "name": "http://evil.example/x y",
    "company": "&copy; &amp &region=eu",
    "title": "",
    "email": "ann+tag@example.com",
    "sender_name": "Rep",
    "sender_email": "rep@example.com",
}

BODIES = [
    "<p>No links and no fields.</p>",
    "<p>Hi {{first_name}},</p><p>{{ company }} and {{unknown}}</p>",
    '<p>Hi {{first_name}}</p><a href="https://example.com/a">a</a>'
    '<a href="https://example.com/a">again</a><a href="https://example.com/b?x=1&amp;y=2">b</a>',
    '<a href="https://example.com/?e={{email}}&amp;n={{name}}">mine</a>'
    "<a href=\"https://example.com/skip\">kept</a><a href='{{name}}'>maybe a link</a>",
    '<html><body><p title="{{last_name}}">{{name}}</p>'
    '<a href="https://example.com/x" data-notrack>no</a></body></html>',
    "<area href='https://example.com/map' alt=\"{{company}}\"><p>&amp; {{title}} &copy;</p>",
    '<!--[if mso]><v:roundrect href="https://example.com/btn"></v:roundrect><![endif]-->'
    "<p>{{first_name}}</p></BODY >",
    "<p>5 < 6 and {{first_name}} > 2</p><a href=https://example.com/unquoted>u</a>",
]


@pytest.mark.parametrize("html", BODIES)
@pytest.mark.parametrize("tracking", [True, False])
def test_a_filled_stencil_reads_as_the_persons_own_copy(html, tracking) -> None:
    for values in (TRICKY_VALUES, dict.fromkeys(FIELDS, "Ann"), {}):
        assert stenciled(html, values, tracking=tracking) == per_person(
            html, values, tracking=tracking
        )


@pytest.mark.parametrize(
    "html",
    [
        "<a href=https://example.com/{{first_name}}>unquoted</a>",
        "<p {{first_name}}>in a tag</p>",
        "<!-- {{last_name}}> -->",
        "<title>{{first_name}}</title>",
        "<p><{{first_name}}</p>",
        '<a href="https://example.com/cut {{first_name}}',
        '<!--[if mso]><a href="https://example.com/{{email}}">x</a><![endif]-->',
    ],
)
def test_it_declines_a_body_whose_fields_a_value_could_turn_into_markup(html) -> None:
    assert stencil_of(html) is None


def test_the_pixel_and_honeypot_go_before_the_last_body_end() -> None:
    html = "<body><p>{{first_name}}</p></body><!-- </body> --></body>"

    assert stenciled(html, {"first_name": "Ann"}) == per_person(html, {"first_name": "Ann"})


SOUP = "<>\"'=&;/!-?#[] \n\tahrefHREFbody{}"
FRAGMENTS = st.one_of(
    st.sampled_from(
        [
            '<a href="https://a.example/x?a=1&amp;b=2">',
            "<a href='https://b.example/{{email}}'>",
            "<a href=https://c.example/>",
            '<a data-notrack href="https://d.example/">',
            '<a href="{{name}}">',
            '<p title="{{first_name}}">',
            "</a>",
            "</p>",
            "</body>",
            "<!-- ",
            " -->",
            "<script>",
            "</script>",
            "<![CDATA[",
            "]]>",
            "&amp;",
            "&",
            "{{first_name}}",
            "{{ name }}",
            "{{email}}",
            "{{unknown}}",
        ]
    ),
    st.text(alphabet=SOUP, max_size=8),
)
VALUES = st.sampled_from(["Ann", "-- !", "a b=c", "http://v.example/p", "&copy", "]]", "<x>", ""])


@settings(max_examples=400)
@given(
    st.lists(FRAGMENTS, max_size=20).map("".join),
    st.fixed_dictionaries({name: VALUES for name in FIELDS}),
)
def test_any_body_it_accepts_fills_exactly_as_merging_and_rewriting_do(html, values) -> None:
    stencil = stencil_of(html)
    if stencil is None:
        return
    tracked_copy = stencil.fill(values, url_for=tracked, pixel_url=PIXEL, honeypot_url=HONEYPOT)
    assert tracked_copy == per_person(html, values)
    assert stencil.fill(values) == per_person(html, values, tracking=False)
