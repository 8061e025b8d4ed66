"""Load deterministic demo data: users of each role, accounts, people, deals, tasks, privacy."""

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from automation.models import Sequence, Step
from campaigns.influence import influence_recompute
from campaigns.models import Campaign, CampaignMember
from crm.models import (
    Account,
    Contact,
    EmailTemplate,
    Lead,
    Opportunity,
    OpportunityContactRole,
    OrgSettings,
    Role,
    Task,
    User,
)
from privacy.models import Individual

DEMO_USERS = [
    # username, password, role, first name, last name
    ("admin", "openrate-admin", Role.ADMIN, "Alex", "Admin"),
    ("manager", "openrate-manager", Role.MANAGER, "Morgan", "Manager"),
    ("ada", "openrate-rep", Role.REP, "Ada", "Rep"),
    ("grace", "openrate-rep", Role.REP, "Grace", "Rep"),
]
COMPANIES = [
    ("Acme Robotics", Account.Industry.MANUFACTURING, "Lyon", "France"),
    ("Globex Energy", Account.Industry.ENERGY, "Houston", "United States"),
    ("Initech Software", Account.Industry.TECHNOLOGY, "Austin", "United States"),
    ("Umbrella Health", Account.Industry.HEALTHCARE, "Basel", "Switzerland"),
    ("Stark Logistics", Account.Industry.OTHER, "Rotterdam", "Netherlands"),
    ("Wayne Media", Account.Industry.MEDIA, "Dublin", "Ireland"),
    ("Tyrell Agritech", Account.Industry.AGRICULTURE, "Ghent", "Belgium"),
    ("Cyberdyne Retail", Account.Industry.RETAIL, "Leeds", "United Kingdom"),
    ("Soylent Foods", Account.Industry.RETAIL, "Porto", "Portugal"),
    ("Hooli Bank", Account.Industry.BANKING, "Zurich", "Switzerland"),
]
FIRST_NAMES = [
    "Ada", "Alan", "Barbara", "Claude", "Donald", "Edsger", "Frances", "Grace", "Hedy", "Ivan",
    "Joan", "Katherine", "Linus", "Margaret", "Niklaus", "Ole", "Radia", "Sophie", "Tim",
    "Yukihiro",
]  # fmt: skip
LAST_NAMES = [
    "Lovelace", "Turing", "Liskov", "Shannon", "Knuth", "Dijkstra", "Allen", "Hopper", "Lamarr",
    "Sutherland", "Clarke", "Johnson", "Torvalds", "Hamilton", "Wirth", "Dahl", "Perlman",
    "Wilson", "Berners-Lee", "Matsumoto",
]  # fmt: skip
TITLES = ["CEO", "CTO", "VP Sales", "Head of Marketing", "Procurement Lead", "Engineer"]
DEMO_TEMPLATES = [
    # name, folder, subject, body (merge fields as in the composer)
    (
        "Introduction",
        "Prospecting",
        "{{company}} and Openrate",
        "<p>Hi {{first_name}},</p><p>I help teams like {{company}} see which email really "
        'works. Would a 20-minute call next week suit you? <a href="https://example.com/demo">'
        "Pick a time</a>.</p>",
    ),
    (
        "Follow-up",
        "Prospecting",
        "Re: {{company}} and Openrate",
        "<p>Hi {{first_name}}, just bringing this back to the top of your inbox. "
        '<a href="https://example.com/demo">Here is my calendar</a>.</p>',
    ),
    (
        "Pricing",
        "Deals",
        "Pricing for {{company}}",
        "<p>Hi {{first_name}},</p><p>As promised, "
        '<a href="https://example.com/pricing">our pricing</a>. Happy to walk you through it.</p>',
    ),
]
TASK_SUBJECTS = ["Call back", "Send proposal", "Book a demo", "Check in", "Send pricing"]


class Command(BaseCommand):
    help = "Load deterministic demo data (users and records of every kind). Safe to run twice."

    def handle(self, *args: Any, **options: Any) -> None:
        users = self._users()
        OrgSettings.load()
        if Account.objects.filter(name=COMPANIES[0][0]).exists():
            self.stdout.write("Demo records are already loaded; nothing changed.")
        else:
            self._records(users)
            self.stdout.write(self.style.SUCCESS("Demo records loaded."))
        if not EmailTemplate.objects.exists():
            self._library(users)
            self.stdout.write(self.style.SUCCESS("Demo templates and a sequence loaded."))
        self.stdout.write("Log in as:")
        for username, password, role, *_ in DEMO_USERS:
            self.stdout.write(f"  {username:<8} password {password:<17} ({role.value})")

    def _users(self) -> dict[str, User]:
        users = {}
        for username, password, role, first_name, last_name in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first_name,
                    "last_name": last_name,
                    "email": f"{username}@openrate.example",
                    "is_staff": role == Role.ADMIN,
                },
            )
            if created:
                # A demo user keeps a password someone changed: only a new user gets the default.
                user.set_password(password)
                user.save(update_fields=["password"])
                user.groups.set([Group.objects.get(name=role.value)])
            users[username] = user
        return users

    @transaction.atomic
    def _library(self, users: dict[str, User]) -> None:
        """A few shared templates, a rep's private one and a sequence built from them."""
        shared = {
            name: EmailTemplate.objects.create(
                name=name, folder=folder, subject=subject, html_body=body, owner=users["manager"]
            )
            for name, folder, subject, body in DEMO_TEMPLATES
        }
        EmailTemplate.objects.create(
            name="My quick check-in",
            subject="Quick check-in",
            html_body="<p>Hi {{first_name}},</p><p>Any questions since we last spoke?</p>",
            is_private=True,
            owner=users["ada"],
        )
        sequence = Sequence.objects.create(name="New lead outreach", owner=users["manager"])
        steps = [
            Step(kind=Step.Kind.EMAIL, template=shared["Introduction"]),
            Step(kind=Step.Kind.WAIT, wait_kind=Step.WaitKind.BUSINESS_DAYS, wait_days=3),
            Step(kind=Step.Kind.EMAIL, template=shared["Follow-up"], thread=Step.Thread.REPLY),
            Step(kind=Step.Kind.WAIT, wait_kind=Step.WaitKind.BUSINESS_DAYS, wait_days=2),
            Step(kind=Step.Kind.TASK, task_kind=Step.TaskKind.CALL, task_subject="Call them"),
        ]
        for position, step in enumerate(steps, start=1):
            step.sequence, step.position = sequence, position
        Step.objects.bulk_create(steps)

    @transaction.atomic
    def _records(self, users: dict[str, User]) -> None:
        rng = random.Random(2026)  # noqa: S311 -- a fixed seed: the same demo every time
        today = timezone.localdate()
        reps = [users["ada"], users["grace"]]
        names = [(first, last) for last in LAST_NAMES for first in FIRST_NAMES]
        rng.shuffle(names)

        individuals = Individual.objects.bulk_create(
            [
                Individual(first_name="Linus", last_name="Torvalds", has_opted_out_tracking=True),
                Individual(first_name="Radia", last_name="Perlman", has_opted_out_processing=True),
                Individual(first_name="Tim", last_name="Berners-Lee", has_opted_out_solicit=True),
            ]
        )

        campaigns = [
            Campaign.objects.create(
                name="Spring product launch",
                type=Campaign.Type.EMAIL,
                status=Campaign.Status.IN_PROGRESS,
                start_date=today - timedelta(days=30),
                end_date=today + timedelta(days=30),
                budgeted_cost=Decimal("5000"),
                actual_cost=Decimal("3200"),
                owner=users["manager"],
            ),
            Campaign.objects.create(
                name="Robotics trade show",
                type=Campaign.Type.CONFERENCE,
                status=Campaign.Status.COMPLETED,
                start_date=today - timedelta(days=120),
                end_date=today - timedelta(days=118),
                budgeted_cost=Decimal("20000"),
                actual_cost=Decimal("18500"),
                owner=users["manager"],
            ),
        ]

        for index, (company, industry, city, country) in enumerate(COMPANIES):
            owner = reps[index % 2]
            account = Account.objects.create(
                name=company,
                industry=industry,
                billing_city=city,
                billing_country=country,
                website=f"https://{company.split()[0].lower()}.example",
                phone=f"+1 555 01{index:02d}",
                owner=owner,
            )
            contacts = []
            for _ in range(4):
                first, last = names.pop()
                contacts.append(
                    Contact(
                        account=account,
                        owner=owner,
                        first_name=first,
                        last_name=last,
                        title=rng.choice(TITLES),
                        email=f"{first}.{last}@{company.split()[0]}.example".lower(),
                        phone=f"+1 555 2{rng.randrange(1000):03d}",
                        mailing_city=city,
                        mailing_country=country,
                    )
                )
            contacts = Contact.objects.bulk_create(contacts)
            # bulk_create sends no post_save: campaigns' receivers would queue one influence
            # recompute per row for the worker to run at start-up; one runs below instead.
            opportunities = Opportunity.objects.bulk_create(
                Opportunity(
                    name=f"{company} - {rng.choice(['Pilot', 'Expansion', 'Renewal', 'Platform'])}",
                    account=account,
                    owner=owner,
                    stage=rng.choice(list(Opportunity.Stage)),
                    amount=Decimal(rng.randrange(5, 250) * 1000),
                    close_date=today + timedelta(days=rng.randrange(-60, 120)),
                    campaign=rng.choice([None, *campaigns]),
                )
                for _ in range(rng.randrange(1, 3))
            )
            OpportunityContactRole.objects.bulk_create(
                OpportunityContactRole(
                    opportunity=opportunity,
                    contact=contacts[0],
                    role=OpportunityContactRole.RoleName.DECISION_MAKER,
                    is_primary=True,
                )
                for opportunity in opportunities
            )
            Task.objects.bulk_create(
                Task(
                    subject=f"{rng.choice(TASK_SUBJECTS)}: {contact.name}",
                    who_contact=contact,
                    what_account=account,
                    owner=owner,
                    due_date=today + timedelta(days=rng.randrange(-10, 20)),
                    priority=rng.choice(list(Task.Priority)),
                )
                for contact in contacts[:2]
            )

        # People whose privacy choices the demo shows: Don't Track, Don't Process, Don't Market.
        for individual in individuals:
            Contact.objects.create(
                owner=reps[0],
                account=Account.objects.get(name=COMPANIES[2][0]),
                first_name=individual.first_name,
                last_name=individual.last_name,
                email=f"{individual.first_name}.{individual.last_name}@initech.example".lower(),
                individual=individual,
            )

        leads = []
        for index in range(20):
            first, last = names.pop()
            company = f"{last} {rng.choice(['Labs', 'Systems', 'Partners', 'Group'])}"
            leads.append(
                Lead(
                    owner=reps[index % 2],
                    first_name=first,
                    last_name=last,
                    company=company,
                    email=f"{first}@{last.replace('-', '')}.example".lower(),
                    title=rng.choice(TITLES),
                    status=rng.choice([Lead.Status.OPEN, Lead.Status.WORKING]),
                    lead_source=rng.choice(list(Lead.Source)),
                    has_opted_out_of_email=index % 7 == 3,
                )
            )
        Lead.objects.bulk_create(leads)

        _backdate(rng, now=timezone.now())

        # Campaign members: everyone in the launch 20 days ago, some contacts at the trade show
        # months ago; then, once, the influence those memberships earned. Rows are written
        # directly, as they joined back then: members_add() would date them today and queue
        # an influence recompute per call for the worker to repeat at start-up.
        launch, trade_show = campaigns
        contact_ids = sorted(Contact.objects.values_list("pk", flat=True))
        lead_ids = sorted(Lead.objects.values_list("pk", flat=True))
        joined = [
            (launch, timedelta(days=20), [("contact_id", pk) for pk in contact_ids]),
            (launch, timedelta(days=20), [("lead_id", pk) for pk in lead_ids]),
            (
                trade_show,
                timedelta(days=119),
                [("contact_id", pk) for pk in rng.sample(contact_ids, 25)],
            ),
        ]
        default_status = {c.pk: c.statuses.get(is_default=True) for c in campaigns}
        CampaignMember.objects.bulk_create(
            CampaignMember(
                campaign=campaign,
                status=default_status[campaign.pk],
                created_at=timezone.now() - ago,
                **{field: pk},
            )
            for campaign, ago, people in joined
            for field, pk in people
        )
        influence_recompute()


def _backdate(rng: random.Random, *, now: datetime) -> None:
    """Spread the records' creation over the last months, as in a CRM in use for a while.

    Accounts, contacts and leads predate the 30 days of email history and the launch campaign
    (its members joined 20 days ago), so quiet ones are due a follow-up; opportunities were
    opened within the last weeks, after the launch's members joined, so the launch earns
    influence.
    """
    spans = (
        (Account, 60, 90),
        (Contact, 40, 60),
        (Lead, 21, 50),
        (Opportunity, 2, 18),
    )
    for model, newest, oldest in spans:
        rows = list(model.objects.only("pk"))
        for row in rows:
            row.created_at = now - timedelta(
                days=rng.randrange(newest, oldest), hours=rng.randrange(24)
            )
        model.objects.bulk_update(rows, ["created_at"], batch_size=500)
