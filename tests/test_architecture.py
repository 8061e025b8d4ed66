"""The import contract of docs/architecture.md: apps depend one way, modules form no cycle,
services never import tasks, and every task queued by name exists.

The checker reads the source (ast), so it sees imports inside functions too; an import under
`if TYPE_CHECKING:` still counts against the layers (it names a higher app), but not as a cycle
(it never runs).
"""

import ast
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top: each may import only those before it (and the libraries it depends on).
LAYERS = (
    "mailkit",  # pure mail toolkit: tokens, link rewriting, merge fields, sanitising
    "privacy",  # the Individual and the email privacy policy
    "crm",  # records, emails and recipients, Setup, sending, delivery, activity, hooks
    "tracking",  # the /t/ fast path, the event buffer, ingestion, classification
    "inbound",  # bounces, complaints, replies: parsing, sources, effects
    "capture",  # reps' own mailboxes (IMAP) and Bcc address: captured email on the timeline
    "campaigns",  # campaigns, members and their funnel, list email, influence
    "reports",  # dashboards, rollup reading, the email log
    "automation",  # sequences and triggered emails, through crm.sending
    "webhooks",  # signed outgoing webhooks
    "imports",  # CSV / XLSX import of contacts, leads and accounts
    "api",  # the REST API (/api/v1/)
    "dataprotection",  # forget, export, retention, the audit trail's pages (reads every app)
    "demo",  # demo data for `make run`
    "config",  # the project: settings, urls, wsgi, celery
)
# Modules that may import a tasks module: the apps that register them, the admin's actions.
TASK_IMPORTERS = re.compile(r"(^|\.)(apps|admin|tasks)$")
TASK_NAME = re.compile(r"^[a-z_]+\.tasks\.[a-z_]+$")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (a project module, or a package)
    line: int
    type_only: bool


def project_modules() -> dict[str, str]:
    """Every module of the apps (no migrations, tests or bench), by dotted name: its source."""
    modules = {}
    for app in LAYERS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            if "migrations" in relative.parts:
                continue
            parts = list(relative.parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path.read_text()
    return modules


def imports_of(modules: Mapping[str, str]) -> Iterator[Import]:
    for name, source in modules.items():
        package = name if _is_package(name, modules) else name.rpartition(".")[0]
        tree = ast.parse(source)
        type_only_lines = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}" if base else parent
                # `from crm import hooks` imports the module crm.hooks where there is one.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            else:
                continue
            for target in dict.fromkeys(targets):
                if target.split(".")[0] in LAYERS:
                    yield Import(name, target, node.lineno, node.lineno in type_only_lines)


def upward_imports(modules: Mapping[str, str]) -> list[str]:
    rank = {app: index for index, app in enumerate(LAYERS)}
    return [
        f"{i.source}:{i.line} imports {i.target} ({i.target.split('.')[0]} is above "
        f"{i.source.split('.')[0]})"
        for i in imports_of(modules)
        if rank[i.target.split(".")[0]] > rank[i.source.split(".")[0]]
    ]


def import_cycles(modules: Mapping[str, str]) -> list[list[str]]:
    """Each cycle among the project's modules (by their imports that run), once."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for i in imports_of(modules):
        if not i.type_only and i.target in graph and i.target != i.source:
            graph[i.source].add(i.target)
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for component in _strongly_connected(graph):
        if len(component) > 1 and frozenset(component) not in seen:
            seen.add(frozenset(component))
            cycles.append(sorted(component))
    return cycles


def task_imports(modules: Mapping[str, str]) -> list[str]:
    return [
        f"{i.source}:{i.line} imports {i.target}"
        for i in imports_of(modules)
        if i.target.endswith(".tasks") and not TASK_IMPORTERS.search(i.source)
    ]


def test_no_app_imports_an_app_above_it() -> None:
    assert upward_imports(project_modules()) == []


def test_no_modules_import_each_other() -> None:
    assert import_cycles(project_modules()) == []


def test_services_never_import_tasks() -> None:
    assert task_imports(project_modules()) == []


def test_every_task_queued_or_scheduled_by_name_exists() -> None:
    names = {
        node.value
        for source in project_modules().values()
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and TASK_NAME.match(node.value)
    }
    assert len(names) >= 10  # deliver_email, ingestion, the beat schedule, ...
    assert sorted(names - set(celery_app.tasks)) == []


def test_the_checker_sees_an_upward_import_a_cycle_and_a_service_importing_tasks() -> None:
    modules = {
        "crm": "",
        "crm.sending": "def f():\n    from campaigns.models import Campaign\n",
        "crm.activity": "from crm import sending\nfrom crm.tasks import x\n",
        "crm.tasks": "",
        "campaigns": "",
        "campaigns.models": "",
        "tracking": "",
        "tracking.a": "from tracking import b\n",
        "tracking.b": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from campaigns.models import Campaign\nfrom . import a\n",
    }
    modules["crm.sending"] += "from crm.activity import g\n"

    assert upward_imports(modules) == [
        "crm.sending:2 imports campaigns.models (campaigns is above crm)",
        "tracking.b:3 imports campaigns.models (campaigns is above tracking)",
    ]
    assert import_cycles(modules) == [["crm.activity", "crm.sending"], ["tracking.a", "tracking.b"]]
    assert task_imports(modules) == ["crm.activity:2 imports crm.tasks"]


def _is_package(name: str, modules: Mapping[str, str]) -> bool:
    return any(other.startswith(f"{name}.") for other in modules)


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components
