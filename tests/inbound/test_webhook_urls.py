"""Only the ESPs the settings configure have webhook URLs; every other anymail URL answers 404
(anymail's views answer 500 to anyone when their ESP has no key to verify with)."""

import logging

import pytest
from anymail import urls as anymail_urls
from django.urls import NoReverseMatch, reverse

from tests.inbound.conftest import POSTMARK, WEBHOOK_SECRET, post_webhook

# A path of each anymail webhook URL ("mailgun/inbound(_mime)?/" as its plain form).
ANYMAIL_PATHS = sorted(
    "/anymail/" + str(p.pattern).strip("^$").replace("(_mime)?", "")
    for p in anymail_urls.urlpatterns
)


@pytest.mark.parametrize("path", ANYMAIL_PATHS)
def test_with_no_esp_configured_every_webhook_url_answers_404(path, client, mount_esps) -> None:
    mount_esps(ANYMAIL={"WEBHOOK_SECRET": WEBHOOK_SECRET})

    assert post_webhook(client, path, {"anything": 1}).status_code == 404


def test_an_esp_with_its_own_settings_is_mounted_with_anymails_paths_and_names(
    db, client, mount_esps
) -> None:
    mount_esps(ANYMAIL=POSTMARK)

    assert reverse("anymail:postmark_tracking_webhook") == "/anymail/postmark/tracking/"
    assert reverse("anymail:postmark_inbound_webhook") == "/anymail/postmark/inbound/"
    with pytest.raises(NoReverseMatch):
        reverse("anymail:sendgrid_tracking_webhook")
    assert post_webhook(client, "/anymail/sendgrid/tracking/", []).status_code == 404


def test_the_esp_email_backend_sends_through_is_mounted(db, client, mount_esps) -> None:
    mount_esps(
        ANYMAIL={"WEBHOOK_SECRET": WEBHOOK_SECRET},
        EMAIL_BACKEND="anymail.backends.mailjet.EmailBackend",
    )

    assert reverse("anymail:mailjet_tracking_webhook") == "/anymail/mailjet/tracking/"
    assert post_webhook(client, "/anymail/mailjet/tracking/", []).status_code == 200


def test_an_esp_without_the_key_its_webhook_verifies_with_is_not_mounted_and_says_why(
    client, mount_esps, caplog
) -> None:
    with caplog.at_level(logging.WARNING, logger="inbound.sources.webhooks"):
        mount_esps(
            ANYMAIL={
                "WEBHOOK_SECRET": WEBHOOK_SECRET,
                "POSTAL_API_KEY": "key",  # Postal's webhook needs POSTAL_WEBHOOK_KEY
                "MANDRILL_API_KEY": "key",  # Mandrill's needs MANDRILL_WEBHOOK_KEY
            }
        )

    for path in ("/anymail/postal/tracking/", "/anymail/mandrill/"):
        assert post_webhook(client, path, {}).status_code == 404, path
    assert "POSTAL_WEBHOOK_KEY" in caplog.text and "MANDRILL_WEBHOOK_KEY" in caplog.text


def test_with_its_key_set_that_esp_is_mounted(mount_esps) -> None:
    mount_esps(
        ANYMAIL={
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "MAILGUN_WEBHOOK_SIGNING_KEY": "signing-key",
        }
    )

    assert reverse("anymail:mailgun_tracking_webhook") == "/anymail/mailgun/tracking/"
