"""`manage.py ship_pixel_log`: follow nginx's pixel log and ship its hits to the event buffer."""

import socket
import time
from argparse import ArgumentParser
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailkit.tokens import configured_keys
from tracking.buffer import redis_client
from tracking.pixel_log import PixelLogShipper, nginx_config

# Between reads the shipper sleeps this long, doubling while the log stays idle up to
# IDLE_MAX_SECONDS: a busy log is shipped in batches of 10 ms of hits (a batch's fixed cost, a
# Redis transaction, spread over them), an idle one costs two wake-ups a second.
IDLE_MIN_SECONDS = 0.01
IDLE_MAX_SECONDS = 0.5


class Command(BaseCommand):
    help = (
        "Follow the access log nginx writes for the open pixel (see --print-nginx-config) and "
        "put each hit whose token verifies on the tracking event stream. Runs until stopped; "
        "resumes where it stopped (its place is kept in Redis)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("log", help="the pixel log's path, as in nginx's access_log")
        parser.add_argument(
            "--source",
            default=socket.gethostname(),
            help="this web host's name, unique among the shippers (default: the host name)",
        )
        parser.add_argument(
            "--print-nginx-config",
            action="store_true",
            help="print the nginx configuration that writes this log, and exit",
        )
        parser.add_argument(
            "--once", action="store_true", help="ship what the log holds now, then exit"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["print_nginx_config"]:
            self.stdout.write(nginx_config(options["log"]), ending="")
            return
        client = redis_client()
        if client is None:
            raise CommandError("REDIS_URL is not set: the shipper writes to the Redis stream.")
        shipper = PixelLogShipper(
            options["log"],
            client=client,
            keys=configured_keys(),
            source=options["source"],
            stamps=settings.TRACKING_BALANCER_STAMPS,
        )
        idle = IDLE_MIN_SECONDS
        try:
            while True:
                try:
                    shipped = shipper.ship_once()
                except redis.RedisError as error:
                    # The log keeps the hits meanwhile: nothing is lost while Redis is away.
                    self.stderr.write(f"Redis refused the batch ({error}); retrying")
                    shipper.close()
                    time.sleep(1.0)
                    continue
                if shipper.behind or (shipped and options["once"]):
                    continue
                if options["once"]:
                    return
                # Just shipped: the next batch in 10 ms; idle: wait longer each time.
                idle = IDLE_MIN_SECONDS if shipped else min(idle * 2, IDLE_MAX_SECONDS)
                time.sleep(idle)
        finally:
            shipper.close()
