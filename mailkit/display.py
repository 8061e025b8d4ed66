"""Showing an email's HTML inside the app, safely: to read it, or to edit it in the composer.

Email bodies are untrusted HTML. They are cleaned with nh3 (no scripts, no event handlers, no
styles that could fetch anything), and remote images are dropped: loading them from the app
would fire the recipient's own tracking pixel, or a sender's, and record a false open.
"""

import nh3

# A Content-Security-Policy for the iframe's document: nothing may load but inline data images.
FRAME_CSP = "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'"
_TAGS = nh3.ALLOWED_TAGS | {"center", "font"}
# Links and images may point only here, whether the body is read or edited.
_URL_SCHEMES = {"http", "https", "mailto", "tel", "data", "cid"}
_ATTRIBUTES = {
    **nh3.ALLOWED_ATTRIBUTES,
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height", "title"},
    "td": {"align", "valign", "colspan", "rowspan", "width"},
    "th": {"align", "valign", "colspan", "rowspan", "width"},
    "table": {"align", "width", "cellpadding", "cellspacing", "border"},
    "font": {"color", "face", "size"},
}


def _no_remote_images(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not value.startswith(("data:", "cid:")):
        return None
    return value


def safe_email_html(html: str) -> str:
    """The email's HTML, cleaned, as a whole document for a sandboxed iframe's srcdoc."""
    body = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        attribute_filter=_no_remote_images,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )
    return (
        f'<!doctype html><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
        f'content="{FRAME_CSP}"><base target="_blank">'
        f'<body style="font-family:system-ui,sans-serif;margin:1rem">{body}</body>'
    )


# What the composer may put into the app's page (a template's body, the body shown again after
# a refused send): nh3 strips scripts, event handlers and javascript: URLs, as for display
# (safe_email_html), but keeps remote images and plain inline styles, part of the email written.
_EDITABLE_ATTRIBUTES = {
    **nh3.ALLOWED_ATTRIBUTES,
    "*": {"style"},
    "a": {"href", "title"},
    "table": {"align", "width", "cellpadding", "cellspacing", "border"},
    "font": {"color", "face", "size"},
}
_EDITABLE_STYLES = {
    "color",
    "background-color",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "text-align",
    "text-decoration",
    "line-height",
    "vertical-align",
    "width",
    "margin",
    "padding",
    "border",
    "border-collapse",
}


def editable_html(html: str) -> str:
    """An email body cleaned for the composer's editor, which shows it in the app's own page."""
    return nh3.clean(
        html,
        tags=nh3.ALLOWED_TAGS | {"font"},
        attributes=_EDITABLE_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        filter_style_properties=_EDITABLE_STYLES,
        link_rel=None,
    )
