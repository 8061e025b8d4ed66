"""A stored email body made safe to show in the app."""

from mailkit.display import safe_email_html


def test_scripts_handlers_and_remote_images_are_removed() -> None:
    html = (
        '<p onclick="steal()">Hi</p><script>alert(1)</script>'
        '<img src="https://t.example.com/t/o/abc.gif" width="1">'
        '<img src="data:image/png;base64,AA">'
        '<a href="javascript:alert(1)">x</a><a href="https://example.com">ok</a>'
    )

    safe = safe_email_html(html)

    assert "onclick" not in safe and "<script" not in safe and "javascript:" not in safe
    assert "t.example.com" not in safe
    assert 'src="data:image/png;base64,AA"' in safe
    assert 'href="https://example.com"' in safe and 'rel="noopener noreferrer nofollow"' in safe
    assert "default-src 'none'" in safe
