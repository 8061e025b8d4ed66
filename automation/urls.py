"""The automation pages' URLs (mounted at /automation/)."""

from django.urls import path

from automation import views

app_name = "automation"

urlpatterns = [
    path("sequences/", views.sequence_list, name="sequence_list"),
    path("sequences/new/", views.sequence_create, name="sequence_create"),
    path("sequences/<int:pk>/", views.sequence_detail, name="sequence_detail"),
    path("sequences/<int:pk>/edit/", views.sequence_edit, name="sequence_edit"),
    path("sequences/<int:pk>/archive/", views.sequence_archive, name="sequence_archive"),
    path("sequences/<int:pk>/steps/new/", views.step_create, name="step_create"),
    path(
        "sequences/<int:pk>/steps/<int:step_pk>/delete/",
        views.step_delete,
        name="step_delete",
    ),
    path("enrol/", views.enrol, name="enrol"),
    path("enrolments/<int:pk>/", views.enrolment_detail, name="enrolment_detail"),
    path(
        "enrolments/<int:pk>/stop/",
        views.enrolment_change,
        {"action": "stop"},
        name="enrolment_stop",
    ),
    path(
        "enrolments/<int:pk>/pause/",
        views.enrolment_change,
        {"action": "pause"},
        name="enrolment_pause",
    ),
    path(
        "enrolments/<int:pk>/resume/",
        views.enrolment_change,
        {"action": "resume"},
        name="enrolment_resume",
    ),
    path("rules/", views.rule_list, name="rule_list"),
    path("rules/new/", views.rule_create, name="rule_create"),
    path("rules/<int:pk>/", views.rule_detail, name="rule_detail"),
    path("rules/<int:pk>/edit/", views.rule_edit, name="rule_edit"),
]
