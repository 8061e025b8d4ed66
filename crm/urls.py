"""The record pages' URLs."""

from django.urls import path

from crm.views import account, compose, records, scheduled, setup, templates, timeline

app_name = "crm"

urlpatterns = [
    path("accounts/", records.AccountListView.as_view(), name="account_list"),
    path("accounts/new/", records.account_create, name="account_create"),
    path("accounts/<int:pk>/", records.account_detail, name="account_detail"),
    path("accounts/<int:pk>/edit/", records.account_edit, name="account_edit"),
    path("accounts/<int:pk>/delete/", records.account_delete, name="account_delete"),
    path("contacts/", records.ContactListView.as_view(), name="contact_list"),
    path("contacts/new/", records.contact_create, name="contact_create"),
    path("contacts/<int:pk>/", records.contact_detail, name="contact_detail"),
    path("contacts/<int:pk>/edit/", records.contact_edit, name="contact_edit"),
    path("contacts/<int:pk>/delete/", records.contact_delete, name="contact_delete"),
    path(
        "contacts/<int:pk>/email/", compose.email_compose, {"kind": "contact"}, name="contact_email"
    ),
    path("leads/", records.LeadListView.as_view(), name="lead_list"),
    path("leads/new/", records.lead_create, name="lead_create"),
    path("leads/<int:pk>/", records.lead_detail, name="lead_detail"),
    path("leads/<int:pk>/edit/", records.lead_edit, name="lead_edit"),
    path("leads/<int:pk>/delete/", records.lead_delete, name="lead_delete"),
    path("leads/<int:pk>/convert/", records.lead_convert, name="lead_convert"),
    path("leads/<int:pk>/email/", compose.email_compose, {"kind": "lead"}, name="lead_email"),
    path("opportunities/", records.OpportunityListView.as_view(), name="opportunity_list"),
    path("opportunities/new/", records.opportunity_create, name="opportunity_create"),
    path("opportunities/<int:pk>/", records.opportunity_detail, name="opportunity_detail"),
    path("opportunities/<int:pk>/edit/", records.opportunity_edit, name="opportunity_edit"),
    path("opportunities/<int:pk>/delete/", records.opportunity_delete, name="opportunity_delete"),
    path("tasks/", records.TaskListView.as_view(), name="task_list"),
    path("tasks/mine/", records.my_tasks, name="my_tasks"),
    path("tasks/new/", records.task_create, name="task_create"),
    path("tasks/<int:pk>/", records.task_detail, name="task_detail"),
    path("tasks/<int:pk>/edit/", records.task_edit, name="task_edit"),
    path("tasks/<int:pk>/complete/", records.task_complete, name="task_complete"),
    path("tasks/<int:pk>/delete/", records.task_delete, name="task_delete"),
    path("setup/", setup.setup, name="setup"),
    path("security/", account.security, name="security"),
    path("security/enrol/", account.security_enrol, name="security_enrol"),
    path("security/disable/", account.security_disable, name="security_disable"),
    path("security/time-zone/", account.security_time_zone, name="security_time_zone"),
    path("emails/", records.EmailListView.as_view(), name="email_list"),
    path("templates/", templates.template_list, name="template_list"),
    path("templates/new/", templates.template_create, name="template_create"),
    path("templates/<int:pk>/", templates.template_detail, name="template_detail"),
    path("templates/<int:pk>/edit/", templates.template_edit, name="template_edit"),
    path("templates/<int:pk>/clone/", templates.template_clone_view, name="template_clone"),
    path("templates/<int:pk>/archive/", templates.template_archive_view, name="template_archive"),
    path("templates/<int:pk>/delete/", templates.template_delete_view, name="template_delete"),
    path("scheduled/", scheduled.scheduled_list, name="scheduled_list"),
    path("scheduled/<int:pk>/", scheduled.scheduled_edit, name="scheduled_edit"),
    path("scheduled/<int:pk>/cancel/", scheduled.scheduled_cancel, name="scheduled_cancel"),
    path("<str:kind>/<int:pk>/timeline/", timeline.timeline_page, name="timeline"),
    path("<str:kind>/<int:pk>/log-call/", timeline.log_call, name="log_call"),
    path("<str:kind>/<int:pk>/privacy/", timeline.person_privacy, name="person_privacy"),
]
