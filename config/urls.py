"""The project's URLs: each app's pages, the admin, login, ESP webhooks and unsubscribe."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from campaigns import views as campaign_views
from crm.views import account
from demo.outbox import outbox_enabled
from reports import views as reports_views

urlpatterns = [
    # The home page holds the user's own dashboard: reports reads every app, crm reads none above.
    path("", reports_views.home, name="home"),
    # The password, then the six-digit code for a user who enrolled two-factor.
    path("login/", account.LoginView.as_view(), name="login"),
    path("login/code/", account.login_code, name="login_code"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"
    ),
    # The admin signs in through our login, so throttling and the second step apply there too.
    path("admin/login/", account.admin_login),
    path("admin/", admin.site.urls),
    # ESP webhooks (bounces, complaints...): authenticated by ANYMAIL_WEBHOOK_SECRET, no login.
    path("anymail/", include("inbound.urls")),
    # RFC 8058 one-click unsubscribe: authenticated by the recipient's signed token, no login.
    path("unsubscribe/<str:token>/", campaign_views.unsubscribe, name="unsubscribe"),
    path("", include("crm.urls")),
    path("", include("campaigns.urls")),
    path("", include("tracking.urls")),
    path("", include("reports.urls")),
    path("privacy/", include("dataprotection.urls")),
    path("webhooks/", include("webhooks.urls")),
    path("imports/", include("imports.urls")),
    path("automation/", include("automation.urls")),
    path("mailbox/", include("capture.urls")),
    path("api/", include("api.urls")),
]

# The local Outbox: only in embedded mode with DEBUG on, where delivered mail is kept in
# var/outbox (demo.outbox); never mounted anywhere else.
if outbox_enabled():
    urlpatterns.append(path("outbox/", include("demo.urls")))
