"""A batch's copies rendered from the batch as written (a list email's) are the copies that
rendering from the rows read back makes: same subject, parts, headers and envelope."""

import pytest

from crm.delivery import _render_copy, _render_prepared, _Signing
from crm.models import EmailMessage, EmailMessageRelation, OrgSettings, TrackedLink
from crm.sending import emails_prepare_each

Relation = EmailMessageRelation

STENCILED = (
    "<p>Hi {{first_name}} &amp; welcome,</p>"
    '<p><a href="https://example.com/a">Read</a> <a href="https://example.com/a">again</a> '
    '<a href="https://example.com/p?e={{email}}&amp;c={{company}}">yours</a> '
    '<a href="https://example.com/skip" data-notrack>not tracked</a></p>'
    '<p title="{{name}}">{{sender_name}} https://example.com/bare</p></body><p>after</p>'
)
# A field in an unquoted attribute: no stencil, every copy is rendered the long way.
LONG_WAY = '<p class={{first_name}}>Hi</p><a href="https://example.com/b">b</a>'


def _as_read_back(copy) -> object:
    email = EmailMessage.objects.select_related("sender").get(pk=copy.email_id)
    relation = Relation.objects.select_related("contact__account", "lead").get(pk=copy.relation_id)
    links = dict(
        TrackedLink.objects.filter(email=email, is_honeypot=False).values_list("url", "pk")
    )
    honeypot = (
        TrackedLink.objects.filter(email=email, is_honeypot=True)
        .values_list("pk", flat=True)
        .first()
    )
    return _render_copy(email, relation, links=links, honeypot=honeypot)


def _parts(message) -> tuple:
    return (
        message.subject,
        message.body,
        message.alternatives,
        message.from_email,
        message.to,
        message.extra_headers,
        message.metadata,
    )


@pytest.mark.parametrize("body", [STENCILED, LONG_WAY])
def test_a_prepared_copy_is_the_copy_rendered_from_its_rows(
    body, rep, make_contact, make_individual, make_lead, settings
) -> None:
    settings.INBOUND_VERP_DOMAIN = "bounces.example.com"
    OrgSettings.objects.update(email_tracking_enabled=True)
    people = [
        make_contact(first_name="Zoë <Zed>", last_name="O'Brien & Co", email="z@example.com"),
        make_contact(first_name="{{email}}", last_name="Braces", email="b@example.com"),
        make_contact(
            first_name="Una",
            email="u@example.com",
            individual=make_individual(has_opted_out_tracking=True),
        ),
        make_lead(first_name="Lee", email="lee@example.com", company="Acme"),
    ]

    batch = emails_prepare_each(
        sender=rep,
        people=people,
        subject="Spring for {{first_name}}",
        html_body=body,
        source=EmailMessage.Source.LIST,
    )

    assert len(batch.pending) == 4
    assert [copy.is_tracked for copy in batch.pending] == [True, True, False, True]
    signing = _Signing.now()
    for copy in batch.pending:
        assert _parts(_render_prepared(batch, copy, signing)) == _parts(_as_read_back(copy))
