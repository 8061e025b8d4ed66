"""The ESP webhook URLs (under /anymail/): anymail's own paths and names, for the ESPs the
settings configure only (inbound.sources.webhooks); any other answers 404."""

from inbound.sources.webhooks import configured_esps, webhook_urlpatterns

app_name = "anymail"
urlpatterns = webhook_urlpatterns(configured_esps())
