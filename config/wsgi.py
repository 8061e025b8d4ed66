"""WSGI entry point: the tracking fast path (/t/...) in front of Django.

Serve it with granian in production: `granian --interface wsgi config.wsgi:application`;
`runserver` uses it too.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()  # sets Django up: the imports below need it

from django.conf import settings  # noqa: E402

from mailkit.tokens import configured_keys  # noqa: E402
from tracking.buffer import BatchingEventWriter, EventWriter, redis_client  # noqa: E402
from tracking.fastpath import LinkCache, TrackingApp  # noqa: E402

_writer = EventWriter(redis_client())
application = TrackingApp(
    django_application,
    keys=configured_keys(),
    writer=BatchingEventWriter(_writer),  # opens: one Redis write per ~2 ms
    click_writer=_writer,  # clicks: to Redis before their 302
    links=LinkCache(),
    trusted_proxies=settings.TRACKING_TRUSTED_PROXIES,
    stamps=settings.TRACKING_BALANCER_STAMPS,
)

# Everything loaded so far lives as long as the process: keep the cyclic garbage collector from
# walking it again and again (its pauses showed up as the tracking endpoints' p99).
gc.freeze()
