"""Triggered emails: rules an admin sets up fire once per event, send a template (tracked,
from the owner or a fixed user) or enrol the record, and show on the timeline with the rule."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from automation.models import Enrolment, Firing, Rule
from automation.triggers import rules_fire
from campaigns.models import Campaign, CampaignMember
from crm.models import ActivityMetric, EmailMessage, Opportunity, OpportunityContactRole

pytestmark = pytest.mark.django_db


def _rule(admin_user, **fields) -> Rule:
    return Rule.objects.create(
        **{
            "name": "Welcome",
            "action": Rule.Action.SEND_TEMPLATE,
            "created_by": admin_user,
            **fields,
        }
    )


def test_an_admin_sets_up_a_rule_in_the_app(client_for, admin_user, make_template) -> None:
    template = make_template(name="Welcome")
    client = client_for(admin_user)

    missing = client.post(
        reverse("automation:rule_create"),
        {"name": "Web leads", "trigger": "lead_created", "action": "send_template"},
    )
    client.post(
        reverse("automation:rule_create"),
        {
            "name": "Web leads",
            "is_active": "on",
            "trigger": "lead_created",
            "lead_source": "Web",
            "action": "send_template",
            "template": template.pk,
        },
    )

    assert "Choose the template to send" in missing.content.decode()
    rule = Rule.objects.get()
    assert (rule.lead_source, rule.template, rule.created_by) == ("Web", template, admin_user)
    assert client.get(rule.get_absolute_url()).status_code == 200


def test_a_new_lead_of_the_source_gets_the_template_from_its_owner_once(
    admin_user, rep, make_template, make_lead, client_for
) -> None:
    rule = _rule(
        admin_user, trigger=Rule.Trigger.LEAD_CREATED, lead_source="Web", template=make_template()
    )
    web = make_lead(email="web@example.com", first_name="Wendy", lead_source="Web")
    make_lead(email="phone@example.com", lead_source="Phone Inquiry")

    assert rules_fire() == 1
    assert rules_fire() == 0

    email = EmailMessage.objects.get(source=EmailMessage.Source.AUTOMATION)
    assert email.sender == rep
    assert email.subject == "Hello Wendy"
    assert email.is_tracked
    assert email.relations.get(relation_type="to").lead == web
    firing = Firing.objects.get()
    assert (firing.rule, firing.lead, firing.email, firing.outcome) == (
        rule,
        web,
        email,
        "Email sent",
    )
    timeline = client_for(rep).get(reverse("crm:lead_detail", args=[web.pk]))
    assert "Rule “Welcome”" in timeline.content.decode()


def test_leads_made_before_the_rule_never_fire_it(admin_user, make_template, make_lead) -> None:
    make_lead()
    _rule(
        admin_user,
        trigger=Rule.Trigger.LEAD_CREATED,
        template=make_template(),
        created_at=timezone.now() + timedelta(seconds=1),
    )

    assert rules_fire() == 0


def test_an_opportunity_reaching_a_stage_mails_its_primary_contact_from_a_fixed_user(
    admin_user, manager, make_template, make_opportunity, make_contact
) -> None:
    _rule(
        admin_user,
        trigger=Rule.Trigger.OPPORTUNITY_STAGE,
        opportunity_stage=Opportunity.Stage.PROPOSAL,
        template=make_template(),
        sender=manager,
    )
    deal = make_opportunity()
    buyer = make_contact(email="buyer@example.com")
    OpportunityContactRole.objects.create(opportunity=deal, contact=buyer, is_primary=True)
    assert rules_fire() == 0  # still prospecting

    deal.stage = Opportunity.Stage.PROPOSAL
    deal.save()
    assert rules_fire() == 1
    deal.save()  # saved again at the same stage: the same event
    assert rules_fire() == 0

    email = EmailMessage.objects.get(source=EmailMessage.Source.AUTOMATION)
    assert email.sender == manager
    assert email.relations.get(relation_type="to").contact == buyer


def test_a_member_reaching_a_status_is_enrolled_in_a_sequence(
    admin_user, rep, make_sequence, make_contact
) -> None:
    campaign = Campaign.objects.create(name="Launch", owner=rep)
    responded = campaign.statuses.get(label="Responded")
    sequence = make_sequence("email")
    _rule(
        admin_user,
        trigger=Rule.Trigger.MEMBER_STATUS,
        member_status=responded,
        action=Rule.Action.ENROL,
        sequence=sequence,
    )
    ada = make_contact()
    member = CampaignMember.objects.create(
        campaign=campaign, contact=ada, status=campaign.statuses.get(is_default=True)
    )
    assert rules_fire() == 0

    member.status = responded
    member.save()
    assert rules_fire() == 1

    enrolment = Enrolment.objects.get()
    assert (enrolment.contact, enrolment.sequence, enrolment.rule) == (
        ada,
        sequence,
        Rule.objects.get(),
    )
    assert Firing.objects.get().outcome == "Enrolled"


def test_a_quiet_record_fires_once_per_quiet_spell_and_privacy_is_respected(
    admin_user, make_template, make_contact
) -> None:
    rule = _rule(
        admin_user,
        trigger=Rule.Trigger.QUIET,
        quiet_days=10,
        template=make_template(),
        created_at=timezone.now() - timedelta(days=1),
    )
    quiet_at = timezone.now() - timedelta(days=10, hours=2)
    ada = make_contact(email="ada@example.com")
    out = make_contact(email="out@example.com", has_opted_out_of_email=True)
    for person in (ada, out):
        ActivityMetric.objects.create(
            contact=person, last_activity_at=quiet_at, computed_at=timezone.now()
        )
    type(ada).objects.filter(pk__in=[ada.pk, out.pk]).update(created_at=quiet_at)

    assert rules_fire() == 2
    assert rules_fire() == 0

    outcomes = dict(rule.firings.values_list("contact__email", "outcome"))
    assert outcomes == {
        "ada@example.com": "Email sent",
        "out@example.com": "Skipped: Email Opt Out",
    }
    assert EmailMessage.objects.filter(source=EmailMessage.Source.AUTOMATION).count() == 1
