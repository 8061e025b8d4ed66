"""The campaign pages' URLs (the unsubscribe page is mounted in config.urls)."""

from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("campaigns/", views.CampaignListView.as_view(), name="list"),
    path("campaigns/new/", views.campaign_create, name="campaign_create"),
    path("campaigns/influence/", views.influence, name="influence"),
    path("campaigns/add-members/", views.members_add_view, name="members_add"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:pk>/edit/", views.campaign_edit, name="campaign_edit"),
    path("campaigns/<int:pk>/members/", views.members_bulk, name="members_bulk"),
    path("campaigns/<int:pk>/statuses/", views.member_statuses, name="member_statuses"),
    path("campaigns/<int:pk>/report/", views.campaign_report, name="campaign_report"),
    path("campaigns/<int:pk>/email/", views.list_email_compose, name="list_email_compose"),
    path(
        "campaigns/<int:pk>/email/<int:email_pk>/",
        views.list_email_detail,
        name="list_email_detail",
    ),
    path(
        "campaigns/<int:pk>/email/<int:email_pk>/edit/",
        views.list_email_edit,
        name="list_email_edit",
    ),
    path(
        "campaigns/<int:pk>/email/<int:email_pk>/cancel/",
        views.list_email_cancel_view,
        name="list_email_cancel",
    ),
    path(
        "campaigns/<int:pk>/email/<int:email_pk>/progress/",
        views.list_email_progress_json,
        name="list_email_progress",
    ),
]
