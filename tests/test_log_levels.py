"""LOG_LEVELS: one logger's level from the environment, and a clear stop on a bad value."""

import logging
import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.log_levels import logger_levels
from tests.conftest import REPO_ROOT


def test_each_part_names_a_logger_and_its_level() -> None:
    assert logger_levels(" tracking.ingestion=debug , inbound = WARNING,") == {
        "tracking.ingestion": {"level": "DEBUG"},
        "inbound": {"level": "WARNING"},
    }
    assert logger_levels("") == {}


@pytest.mark.parametrize(
    "value", ["tracking.ingestion", "=DEBUG", "tracking=LOUD", "tracking=10", "root=DEBUG"]
)
def test_a_part_that_is_not_logger_equals_level_stops_the_start(value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="LOG_LEVELS"):
        logger_levels(value)


def test_the_settings_give_the_named_logger_its_level() -> None:
    script = (
        "import logging, django; django.setup(); "
        "print(logging.getLogger('tracking.ingestion').getEffectiveLevel())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=os.environ
        | {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "LOG_LEVEL": "WARNING",  # the root's: the logger's DEBUG must come from LOG_LEVELS
            "LOG_LEVELS": "tracking.ingestion=DEBUG",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(logging.DEBUG)
