"""Links only Outlook renders: inside its conditional comments, and its VML buttons."""

from mailkit.rewrite import find_links, rewrite_html

PIXEL = "https://t.example/o/TOKEN.gif"

# The "bulletproof button" pattern: Outlook draws the VML shape, every other client the <a>.
BUTTON = (
    '<div><!--[if mso]>\n<v:roundrect xmlns:v="urn:schemas-microsoft-com:vml" '
    'xmlns:w="urn:schemas-microsoft-com:office:word" href="https://example.com/pricing" '
    'style="height:40px;v-text-anchor:middle;width:200px;" arcsize="10%" fill="t">\n'
    "<w:anchorlock/><center>See pricing</center>\n</v:roundrect>\n<![endif]-->"
    '<!--[if !mso]><!--><a href="https://example.com/pricing" '
    'style="display:inline-block">See pricing</a><!--<![endif]--></div>'
)


def tracked(url: str) -> str:
    return f"https://t.example/c/{len(url)}"


def test_an_outlook_vml_buttons_href_is_rewritten_with_the_other_clients_link() -> None:
    rewritten = rewrite_html(BUTTON, url_for=tracked, pixel_url=None, honeypot_url=None)

    assert find_links(BUTTON) == ["https://example.com/pricing"]
    assert rewritten.count('href="https://t.example/c/27"') == 2
    assert "example.com/pricing" not in rewritten
    assert rewritten == BUTTON.replace("https://example.com/pricing", "https://t.example/c/27")


def test_a_link_inside_an_outlook_only_block_is_rewritten() -> None:
    html = '<!--[if gte mso 9]><a href="https://outlook.example/">Outlook</a><![endif]-->'

    assert find_links(html) == ["https://outlook.example/"]


def test_links_in_an_ordinary_comment_stay_as_they_are() -> None:
    html = '<!-- [old] <a href="https://old.example/"> --><!--[endif]-->'

    assert find_links(html) == []


def test_a_closing_body_tag_inside_a_conditional_comment_does_not_move_the_pixel() -> None:
    html = "<body>hi<!--[if mso]></body><![endif]--></body>"

    rewritten = rewrite_html(html, url_for=tracked, pixel_url=PIXEL, honeypot_url=None)

    assert rewritten.startswith("<body>hi<!--[if mso]></body><![endif]--><img src=")
    assert rewritten.endswith("/></body>")


def test_a_conditional_comment_cut_off_before_its_end_is_left_alone() -> None:
    html = '<p>x</p><!--[if mso]><a href="https://cut.example/">'

    assert find_links(html) == []
