"""The email page's URLs."""

from django.urls import path

from tracking import views

app_name = "tracking"

urlpatterns = [
    path("emails/<int:pk>/", views.email_detail, name="email_detail"),
    path("emails/recipients/<int:pk>/activity/", views.relation_activity, name="relation_activity"),
]
