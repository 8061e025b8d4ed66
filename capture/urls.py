from django.urls import path

from capture import views

app_name = "capture"
urlpatterns = [
    path("", views.mailbox_page, name="mailbox"),
    path("folders/", views.mailbox_folders, name="folders"),
    path("sync/", views.mailbox_sync_now, name="sync"),
    path("resume/", views.mailbox_resume_view, name="resume"),
    path("disconnect/", views.mailbox_disconnect_view, name="disconnect"),
]
