"""crm's models, a module per group of tables: records (users, Accounts, Contacts, Leads,
Opportunities, Tasks, privacy changes), activity (metrics), emails (messages, recipients, tracked
links, templates, suppressions, the daily send counts), scheduled (send later), setup
(OrgSettings) and email_log (events and daily rollups).
Django and the rest of the code import them from here."""

from crm.models.activity import ActivityMetric
from crm.models.email_log import EmailDailyStat, EmailEvent, LinkDailyStat
from crm.models.emails import (
    DailySendCount,
    EmailMessage,
    EmailMessageQuerySet,
    EmailMessageRelation,
    EmailSuppression,
    EmailTemplate,
    EmailTemplateQuerySet,
    TrackedLink,
)
from crm.models.records import (
    Account,
    Contact,
    EmailableQuerySet,
    Lead,
    Opportunity,
    OpportunityContactRole,
    OpportunityQuerySet,
    OwnedQuerySet,
    OwnedRecord,
    Person,
    PrivacyChange,
    Role,
    Task,
    TaskQuerySet,
    User,
)
from crm.models.scheduled import ScheduledEmail, ScheduledEmailQuerySet
from crm.models.setup import OrgSettings

__all__ = [
    "Account",
    "ActivityMetric",
    "Contact",
    "DailySendCount",
    "EmailDailyStat",
    "EmailEvent",
    "EmailMessage",
    "EmailMessageQuerySet",
    "EmailMessageRelation",
    "EmailSuppression",
    "EmailTemplate",
    "EmailTemplateQuerySet",
    "EmailableQuerySet",
    "Lead",
    "LinkDailyStat",
    "Opportunity",
    "OpportunityContactRole",
    "OpportunityQuerySet",
    "OrgSettings",
    "OwnedQuerySet",
    "OwnedRecord",
    "Person",
    "PrivacyChange",
    "Role",
    "ScheduledEmail",
    "ScheduledEmailQuerySet",
    "Task",
    "TaskQuerySet",
    "TrackedLink",
    "User",
]
