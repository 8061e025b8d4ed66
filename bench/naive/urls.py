from django.contrib import admin
from django.urls import path

from bench.naive.views import pixel

urlpatterns = [
    path("t/o/<str:token>.gif", pixel),
    # The project's middleware asks where the admin is mounted on every request.
    path("admin/", admin.site.urls),
]
