import os
import subprocess
import sys
import tempfile

from tests.browser.conftest import (  # noqa: F401 -- fixtures the browser test uses
    console_errors,
    live_app,
    output_dir,
)
from tests.conftest import REPO_ROOT


def fresh_setting(name: str, **environment: str) -> str:
    """A setting as config.settings computes it in a new process given only these variables
    (settings chosen at start-up cannot be tested by overriding them). The Celery app, loaded
    with the settings, makes the filesystem broker's folders: in a scratch folder."""
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            [sys.executable, "-c", f"import config.settings as s; print(s.{name})"],
            cwd=REPO_ROOT,
            env={"PATH": os.environ["PATH"], "CELERY_FILESYSTEM_DIR": scratch, **environment},
            capture_output=True,
            text=True,
            check=True,
        )
    return result.stdout.strip()
