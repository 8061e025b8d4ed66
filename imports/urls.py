"""imports's URLs."""

from django.urls import URLPattern, URLResolver, path

from imports import views

app_name = "imports"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.import_list, name="list"),
    path("new/", views.import_new, name="new"),
    path("<int:pk>/", views.import_detail, name="detail"),
    path("<int:pk>/map/", views.import_map, name="map"),
    path("<int:pk>/preview/", views.import_preview, name="preview"),
    path("<int:pk>/start/", views.import_start, name="start"),
    path("<int:pk>/progress/", views.import_progress, name="progress"),
    path("<int:pk>/failed-rows.csv", views.import_errors_csv, name="errors_csv"),
    path("<int:pk>/delete/", views.import_delete, name="delete"),
]
