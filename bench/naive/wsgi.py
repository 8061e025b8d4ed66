"""WSGI entry point for the naive pixel: `granian --interface wsgi bench.naive.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.naive.settings")
application = get_wsgi_application()
