"""The Celery app, configured from Django settings (the CELERY_ namespace)."""

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("openrate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The filesystem broker (embedded mode) needs its folders before a worker or beat connects.
for _key in ("data_folder_in", "data_folder_out", "control_folder"):
    _folder = app.conf.broker_transport_options.get(_key)
    if _folder:
        Path(_folder).mkdir(parents=True, exist_ok=True)
