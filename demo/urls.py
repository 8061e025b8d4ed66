"""The local Outbox (config.urls mounts it only in embedded mode with DEBUG on)."""

from django.urls import path

from demo import views

app_name = "demo"

urlpatterns = [
    path("", views.outbox, name="outbox"),
    path("<str:key>/", views.outbox_message, name="outbox_message"),
]
