"""dataprotection's pages, under /privacy/: each view module lists its own URLs."""

from dataprotection.views import audit, export, forget, retention

app_name = "dataprotection"
urlpatterns = [
    *forget.urlpatterns,
    *export.urlpatterns,
    *audit.urlpatterns,
    *retention.urlpatterns,
]
