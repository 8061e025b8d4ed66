"""The project's settings, with a URLconf that serves only the naive pixel view."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.naive.urls"
