"""An email's body in the app: sanitised, sandboxed, and never loading remote images."""


def test_the_email_page_shows_the_body_in_a_sandboxed_frame(client_for, rep, sent_email) -> None:
    page = client_for(rep).get(sent_email.email.get_absolute_url())

    content = page.content.decode()
    assert '<iframe class="email-body' in content
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in content
    assert "allow-scripts" not in content and "allow-same-origin" not in content
