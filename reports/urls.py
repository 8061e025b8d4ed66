"""The dashboard's and the email log's URLs."""

from django.urls import path

from reports import views

app_name = "reports"

urlpatterns = [
    path("reports/dashboard/", views.dashboard_page, name="dashboard"),
    path("reports/charts/<slug:key>.csv", views.chart_csv, name="chart_csv"),
    path("reports/email-log/", views.email_log, name="email_log"),
    path("reports/email-log.csv", views.email_log_csv, name="email_log_csv"),
]
