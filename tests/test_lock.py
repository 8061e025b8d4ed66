"""The lock files (`make lock`) agree with pyproject.toml, which keeps the ranges: every
dependency is pinned to one release inside its range, and every pin carries PyPI's hashes, so
`pip install --require-hashes` installs exactly what was tested."""

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ROOT / "requirements" / "production.txt"
DEV = ROOT / "requirements" / "dev.txt"
HASH = re.compile(r"\s--hash=sha256:[0-9a-f]{64}\b")


def _project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _entries(lock: Path) -> list[str]:
    """Each requirement of a lock as one line: continuations joined, comments dropped."""
    lines = (line.strip() for line in lock.read_text().replace("\\\n", " ").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _pins(lock: Path) -> dict[str, tuple[str, int]]:
    """Name -> (pinned version, number of hashes)."""
    pins = {}
    for entry in _entries(lock):
        requirement = Requirement(HASH.split(entry)[0])
        (specifier,) = requirement.specifier
        pins[canonicalize_name(requirement.name)] = (specifier.version, len(HASH.findall(entry)))
    return pins


def _assert_pinned_within_range(dependencies: list[str], lock: Path) -> None:
    pins = _pins(lock)
    for dependency in map(Requirement, dependencies):
        name = canonicalize_name(dependency.name)
        assert name in pins, f"{dependency} is not in {lock.name}: run make lock"
        version, hashes = pins[name]
        assert dependency.specifier.contains(version, prereleases=True), (
            f"{lock.name} pins {name}=={version}, outside pyproject's {dependency}: run make lock"
        )
        assert hashes, f"{name} has no hash in {lock.name}"


@pytest.mark.parametrize("lock", [PRODUCTION, DEV], ids=lambda lock: lock.name)
def test_every_entry_of_a_lock_pins_one_release_with_its_hashes(lock: Path) -> None:
    entries = _entries(lock)
    assert entries
    for entry in entries:
        requirement = Requirement(HASH.split(entry)[0])
        assert [spec.operator for spec in requirement.specifier] == ["=="], entry
        assert HASH.search(entry), f"{requirement.name} has no hash in {lock.name}"


def test_the_production_lock_pins_every_runtime_dependency_within_its_range() -> None:
    _assert_pinned_within_range(_project()["dependencies"], PRODUCTION)


def test_the_dev_lock_pins_every_runtime_and_test_dependency_within_its_range() -> None:
    project = _project()
    _assert_pinned_within_range(
        project["dependencies"] + project["optional-dependencies"]["test"], DEV
    )


def test_production_runs_the_releases_the_tests_run_on() -> None:
    production, dev = _pins(PRODUCTION), _pins(DEV)
    assert {name: production[name][0] for name in production} == {
        name: dev[name][0] for name in production if name in dev
    }
