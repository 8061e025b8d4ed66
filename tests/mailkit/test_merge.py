"""Merge fields: ours are filled, other tools' are named before they reach anyone unfilled."""

from email.headerregistry import Address

import pytest

from mailkit.merge import (
    FIELDS,
    field_problems,
    foreign_fields,
    has_fields,
    header_address,
    merge,
    one_line,
)


@pytest.mark.parametrize(
    ("written", "suggestion"),
    [
        ("*|FNAME|*", "{{first_name}}"),
        ("*|UNSUB|*", None),
        ("%%FirstName%%", "{{first_name}}"),
        ("%%=v(@Company)=%%", None),
        ("{!Contact.FirstName}", "{{first_name}}"),
        ("{$name}", "{{name}}"),
        ("${email}", "{{email}}"),
        ("{{ contact.firstname }}", "{{first_name}}"),
        ("{{lead.Company}}", "{{company}}"),
        ("{{ first_name | upcase }}", None),
        ("[FirstName]", "{{first_name}}"),
        ("[First Name]", "{{first_name}}"),
        ("[[Company]]", "{{company}}"),
        ("{LAST_NAME}", "{{last_name}}"),
    ],
)
def test_it_names_another_tools_merge_field_and_what_to_write_instead(
    written: str, suggestion: str | None
) -> None:
    text = f"<p>Hello {written}, how are you?</p>"

    assert foreign_fields(text) == [written]
    problems = field_problems(text)
    assert written in problems
    if suggestion:
        assert f"{written} (use {suggestion})" in problems
    assert problems.endswith("Use one of: " + ", ".join(f"{{{{{n}}}}}" for n in FIELDS) + ".")


@pytest.mark.parametrize(
    "text",
    [
        "<p>Hello {{first_name}}, see {{ company }}.</p>",
        "<p>As shown in [1] and [sic], {braces} stay text.</p>",
        '<a href="https://x.test/?user[email]=a@x.test">a Rails parameter</a>',
        "<style>p{color:red} .a{margin:0}</style><p>100% sure, 50%% off</p>",
        "<p>[Appendix] {note} [Draft]</p>",
    ],
)
def test_plain_text_and_our_own_fields_are_not_flagged(text: str) -> None:
    assert foreign_fields(text) == []
    assert field_problems(text) == ""


def test_unknown_and_foreign_fields_are_named_together_in_document_order_once() -> None:
    text = "Hi {{nickname}} *|FNAME|* %%LastName%% *|FNAME|*"

    assert foreign_fields(text) == ["*|FNAME|*", "%%LastName%%"]
    assert field_problems(text).startswith(
        "Unknown merge field {{nickname}}. Merge fields from another tool would be sent as "
        "written, unfilled: *|FNAME|* (use {{first_name}}), %%LastName%% (use {{last_name}})."
    )


def test_it_tells_whether_a_text_holds_a_field_it_fills() -> None:
    assert has_fields('<a href="https://x.test/?e={{ email }}">')
    assert not has_fields("<p>{{nickname}} *|FNAME|*</p>")


def test_merge_escapes_values_for_html_and_leaves_unknown_fields() -> None:
    values = {"first_name": "Ada & <Co>"}

    assert merge("{{first_name}} {{nickname}}", values, as_html=True) == (
        "Ada &amp; &lt;Co&gt; {{nickname}}"
    )
    assert merge("{{first_name}}", values, as_html=False) == "Ada & <Co>"


@pytest.mark.parametrize(
    ("name", "address", "header"),
    [
        ("Ada Lovelace", "ada@example.com", "Ada Lovelace <ada@example.com>"),
        ("", "ada@example.com", "ada@example.com"),
        ("Lovelace, Ada", "ada@example.com", '"Lovelace, Ada" <ada@example.com>'),
        ("Zoë Ng", "zoe@example.com", "Zoë Ng <zoe@example.com>"),  # encoded by MIME later
        ("Bo\r\n b", "bo@example.com", "Bo b <bo@example.com>"),
    ],
)
def test_a_header_address_is_written_as_the_email_package_writes_it(name, address, header):
    assert header_address(name, address) == header
    if name:  # the shortcut for plain names agrees with the email package
        assert header == str(Address(display_name=one_line(name), addr_spec=address))
