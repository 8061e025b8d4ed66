"""Production settings: with the documented variables set, `check --deploy` has nothing to say."""

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-real-secret-key-of-more-than-fifty-characters-0123456789-abcdefghijkl",
    "ALLOWED_HOSTS": "crm.example.com",
    "HTTPS_ONLY": "true",
    "DATABASE_URL": "sqlite:////tmp/openrate-deploy-check.sqlite3",
    "MAILBOX_ENCRYPTION_KEY": "NLdBQBTA2qH_MuxmRIakfxlSdqvjrthbffn99ox4vzk=",
}


def _check_deploy(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION} | extra
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_deploy_is_clean_with_the_documented_production_variables() -> None:
    result = _check_deploy(PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_the_local_defaults() -> None:
    result = _check_deploy({"DEBUG": "true"})

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
