"""The campaign report and the dashboard agree on the funnel: both count, per step, the members
who reached it or went further; the report shows the members by current status apart and says
so. The list email page's report link scopes the opens and clicks to that email."""

from datetime import date, timedelta

from campaigns.figures import funnel_reached
from campaigns.members import members_add
from crm.models import EmailMessageRelation
from reports.selectors import Scope, dashboard


def _members_at(campaign, people, labels) -> None:
    members_add(campaign=campaign, contact_ids=[p.pk for p in people])
    for person, label in zip(people, labels, strict=True):
        member = campaign.members.get(contact=person)
        member.status = campaign.statuses.get(label=label)
        member.save()


def test_each_step_counts_those_who_reached_it_or_went_further(campaign, make_contact) -> None:
    people = [make_contact(email=f"p{i}@example.com", last_name=f"P{i}") for i in range(4)]
    _members_at(campaign, people, ["Sent", "Opened", "Clicked", "Clicked"])

    reached = funnel_reached(campaign.members.all())

    assert reached == [
        ("Members", 4),
        ("Sent", 4),
        ("Opened", 3),  # the two who clicked opened too
        ("Clicked", 2),
        ("Responded", 0),
    ]


def test_the_report_and_the_dashboard_show_the_same_funnel(
    client_for, rep, manager, campaign, make_contact
) -> None:
    people = [make_contact(email=f"p{i}@example.com", last_name=f"P{i}") for i in range(3)]
    _members_at(campaign, people, ["Opened", "Clicked", "Clicked"])
    today = date.today()

    board = dashboard(Scope(start=today - timedelta(days=1), end=today, campaign_id=campaign.pk))
    chart = next(c for c in board.charts if c.key == "funnel")
    page = client_for(rep).get(f"/campaigns/{campaign.pk}/report/").content.decode()

    assert list(zip(chart.labels, chart.series[0].values, strict=True)) == funnel_reached(
        campaign.members.all()
    )
    funnel = page[page.index("Funnel: how far members came") : page.index("by current status")]
    assert "<span>Opened</span><span>3 (100%)</span>" in funnel
    assert "<span>Clicked</span><span>2 (67%)</span>" in funnel
    assert "a member who clicked is no longer counted under Opened" in page


def test_the_list_email_link_shows_that_emails_figures(
    client_for, rep, campaign, make_contact, send_list_email
) -> None:
    people = [make_contact(email=f"p{i}@example.com", last_name=f"P{i}") for i in range(2)]
    members_add(campaign=campaign, contact_ids=[p.pk for p in people])
    first = send_list_email(campaign)
    second = send_list_email(campaign)
    EmailMessageRelation.objects.filter(
        email__in=first.recipients.values("email_id"), relation_type="to"
    ).update(human_opens=1)
    client = client_for(rep)

    whole = client.get(f"/campaigns/{campaign.pk}/report/").content.decode()
    of_second = client.get(f"/campaigns/{campaign.pk}/report/?email={second.pk}").content.decode()

    def opened(page: str) -> str:
        return page[page.index("Opened by a person") :].split("</td>")[0].split(">")[-1]

    def recipients(page: str) -> str:
        return page[page.index(">Recipients<") :].split("</td>")[0].split(">")[-1]

    assert (recipients(whole), opened(whole)) == ("4", "2")
    assert (recipients(of_second), opened(of_second)) == ("2", "0")
    assert "for the list email <strong>News</strong> only" in of_second
    assert "only" not in whole[whole.index("Campaign report") : whole.index("Funnel")]
