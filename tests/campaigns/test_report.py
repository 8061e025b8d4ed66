"""The campaign report: members per status, human vs machine opens, clicks per link, and the
click map (the email with each link's clicks beside it)."""

from django.db.models import F

from campaigns.members import members_add
from crm.models import EmailMessageRelation, TrackedLink

BODY = (
    '<p>Hi {{first_name}}, see <a href="https://example.com/pricing">pricing</a> '
    'and <a href="https://example.com/demo">a demo</a>.</p>'
)


def test_the_report_shows_the_funnel_engagement_and_a_click_map(
    client_for,
    rep,
    campaign,
    make_contact,
    send_list_email,
    django_assert_max_num_queries,
) -> None:
    people = [make_contact(email=f"p{i}@example.com", first_name=f"P{i}") for i in range(3)]
    members_add(campaign=campaign, contact_ids=[p.pk for p in people])
    list_email = send_list_email(campaign, BODY)
    copies = EmailMessageRelation.objects.filter(email__campaign=campaign, relation_type="to")
    # P0 opened twice and clicked pricing twice; P1's copy was only prefetched by a machine.
    copies.filter(contact=people[0]).update(human_opens=2, human_clicks=2)
    copies.filter(contact=people[1]).update(machine_opens=1)
    TrackedLink.objects.filter(
        email__relations__contact=people[0], url="https://example.com/pricing"
    ).update(human_clicks=F("human_clicks") + 2)
    TrackedLink.objects.filter(
        email__relations__contact=people[2], url="https://example.com/demo"
    ).update(machine_clicks=1)
    member = campaign.members.get(contact=people[0])
    member.status = campaign.statuses.get(label="Clicked")
    member.save()

    client = client_for(rep)

    with django_assert_max_num_queries(12):
        page = client.get(f"/campaigns/{campaign.pk}/report/").content.decode()

    assert "<span>2 (67%)</span>" in page  # Sent
    assert "<span>1 (33%)</span>" in page  # Clicked
    engagement = page[page.index("Opened by a person") :]
    assert engagement.split("</td>")[0].endswith(">1")
    assert page[page.index("Opened only by machines") :].split("</td>")[0].endswith(">1")
    links = page[page.index("Clicks per link") : page.index("Click map")]
    pricing = links[links.index("https://example.com/pricing") :].split("</tr>")[0]
    assert [c.split(">")[-1] for c in pricing.split("</td>")[1:3]] == ["2", "0"]
    demo = links[links.index("https://example.com/demo") :].split("</tr>")[0]
    assert [c.split(">")[-1] for c in demo.split("</td>")[1:3]] == ["0", "1"]
    # The click map: the sanitised HTML in a sandboxed frame, each link with its clicks.
    frame = page[page.index("srcdoc=") :]
    assert "pricing&lt;/a&gt;&lt;span" in frame and "2 clicks&lt;/span&gt;" in frame
    assert "0 clicks&lt;/span&gt;" in frame and "openrate.invalid" not in frame
    assert list_email.html_body == BODY


def test_the_report_of_a_campaign_with_no_email_says_so(client_for, rep, campaign) -> None:
    page = client_for(rep).get(f"/campaigns/{campaign.pk}/report/").content.decode()

    assert "Send a list email to see its click map" in page


def _statuses_form(campaign, *, extra: int = 0, every_one_default: bool = False) -> dict:
    """The member statuses formset as the page posts it, with the campaign's statuses."""
    statuses = list(campaign.statuses.all())
    data = {
        "statuses-TOTAL_FORMS": str(len(statuses) + extra),
        "statuses-INITIAL_FORMS": str(len(statuses)),
        "statuses-MIN_NUM_FORMS": "0",
        "statuses-MAX_NUM_FORMS": "1000",
    }
    for i, status in enumerate(statuses):
        data |= {
            f"statuses-{i}-id": status.pk,
            f"statuses-{i}-label": status.label,
            f"statuses-{i}-sort_order": status.sort_order,
            f"statuses-{i}-funnel_step": status.funnel_step,
        }
        if status.has_responded:
            data[f"statuses-{i}-has_responded"] = "on"
        if every_one_default or (status.is_default and not extra):
            data[f"statuses-{i}-is_default"] = "on"
    return data


def test_the_owner_edits_member_statuses(client_for, rep, campaign) -> None:
    data = _statuses_form(campaign, extra=1) | {
        "statuses-4-label": "Planned",
        "statuses-4-sort_order": "0",
        "statuses-4-funnel_step": "0",
        "statuses-4-is_default": "on",
    }

    response = client_for(rep).post(f"/campaigns/{campaign.pk}/statuses/", data)

    assert response.status_code == 302
    assert campaign.statuses.get(is_default=True).label == "Planned"
    assert list(campaign.statuses.values_list("label", flat=True)) == [
        "Planned",
        "Sent",
        "Opened",
        "Clicked",
        "Responded",
    ]


def test_two_defaults_are_refused(client_for, rep, campaign) -> None:
    data = _statuses_form(campaign, every_one_default=True)

    response = client_for(rep).post(f"/campaigns/{campaign.pk}/statuses/", data)

    assert "Mark exactly one status as the default" in response.content.decode()
    assert campaign.statuses.filter(is_default=True).count() == 1


def test_two_statuses_swap_their_labels_and_funnel_steps(client_for, rep, campaign) -> None:
    statuses = list(campaign.statuses.all())
    opened = next(i for i, s in enumerate(statuses) if s.label == "Opened")
    clicked = next(i for i, s in enumerate(statuses) if s.label == "Clicked")
    data = _statuses_form(campaign)
    for index, other in ((opened, statuses[clicked]), (clicked, statuses[opened])):
        data[f"statuses-{index}-label"] = other.label
        data[f"statuses-{index}-funnel_step"] = other.funnel_step

    response = client_for(rep).post(f"/campaigns/{campaign.pk}/statuses/", data)

    assert response.status_code == 302
    swapped = {s.pk: (s.label, s.funnel_step) for s in campaign.statuses.all()}
    assert swapped[statuses[opened].pk] == ("Clicked", statuses[clicked].funnel_step)
    assert swapped[statuses[clicked].pk] == ("Opened", statuses[opened].funnel_step)
