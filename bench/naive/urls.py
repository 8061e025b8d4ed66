from django.urls import path

from bench.naive.views import pixel

urlpatterns = [
    path("t/o/<str:token>.gif", pixel),
]
