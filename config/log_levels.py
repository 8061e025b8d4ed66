"""LOG_LEVELS: log levels for single loggers, read from the environment at start-up."""

from __future__ import annotations

import logging

from django.core.exceptions import ImproperlyConfigured


def logger_levels(text: str) -> dict[str, dict[str, str]]:
    """`"tracking.ingestion=DEBUG, inbound=WARNING"` as LOGGING's "loggers" entries; a part
    that is not `logger=LEVEL` with a level logging knows stops the start with its reason."""
    loggers: dict[str, dict[str, str]] = {}
    for part in filter(None, (part.strip() for part in text.split(","))):
        name, equals, level = (piece.strip() for piece in part.partition("="))
        level = level.upper()
        if not (name and equals and isinstance(logging.getLevelName(level), int)):
            raise ImproperlyConfigured(
                f"LOG_LEVELS: {part!r} is not logger=LEVEL with LEVEL one of "
                "DEBUG, INFO, WARNING, ERROR, CRITICAL"
            )
        if name == "root":
            raise ImproperlyConfigured("LOG_LEVELS: the root logger's level is LOG_LEVEL")
        loggers[name] = {"level": level}
    return loggers
