"""webhooks's URLs (admins only)."""

from django.urls import URLPattern, URLResolver, path

from webhooks import views

app_name = "webhooks"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.endpoint_list, name="list"),
    path("new/", views.endpoint_create, name="endpoint_create"),
    path("<int:pk>/", views.endpoint_detail, name="endpoint_detail"),
    path("<int:pk>/edit/", views.endpoint_edit, name="endpoint_edit"),
    path("<int:pk>/secret/", views.endpoint_rotate, name="endpoint_rotate"),
    path("<int:pk>/delete/", views.endpoint_delete, name="endpoint_delete"),
    path("<int:pk>/disable/", views.endpoint_disable_view, name="endpoint_disable"),
    path("<int:pk>/enable/", views.endpoint_enable, name="endpoint_enable"),
    path("<int:pk>/test/", views.endpoint_test, name="endpoint_test"),
    path("deliveries/<int:pk>/", views.delivery_detail, name="delivery_detail"),
]
