"""How well the user-agent rule tells machines from people, in figures (`pytest -s` prints them).

Crawlers: the `instances` the crawler-user-agents package gives for its patterns. The full
figure is not held out, since the classifier uses those very patterns, so two held-out ones
go with it: the generic rules alone (no package patterns), and two folds that keep half the
patterns and measure on the other half's instances.

People: tests/tracking/data/person_user_agents.txt, browsers, web views and mail clients
written down by hand from the formats those clients send (see the file's comments).
"""

from pathlib import Path

import pytest
from crawleruseragents import CRAWLER_USER_AGENTS_DATA

from tracking.classify import EventFacts, Label, classify
from tracking.user_agents import UserAgentJudge

PERSONS_FILE = Path(__file__).parent / "data" / "person_user_agents.txt"
CRAWLERS_CAUGHT = 0.95
PERSONS_KEPT = 0.995


def person_user_agents() -> list[str]:
    lines = (line.strip() for line in PERSONS_FILE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def crawler_instances(entries: list[dict]) -> list[str]:
    return [instance for entry in entries for instance in entry.get("instances", [])]


def verdict_label(user_agent: str, kind: str) -> str:
    # An hour after delivery, from a residential address: only the user agent can speak.
    facts = EventFacts(kind, user_agent, "198.51.100.23", "GET", 3600.0)
    return classify(facts).label


def share(hits: int, total: int) -> float:
    return hits / total if total else 0.0


def report(name: str, hits: int, total: int) -> float:
    figure = share(hits, total)
    print(f"\n{name}: {hits}/{total} = {figure:.2%}")
    return figure


def test_the_data_files_are_usable():
    persons = person_user_agents()

    assert len(persons) >= 100
    assert len(set(persons)) == len(persons)
    assert len(crawler_instances(CRAWLER_USER_AGENTS_DATA)) >= 1000


def test_crawlers_are_labelled_machines():
    instances = crawler_instances(CRAWLER_USER_AGENTS_DATA)
    caught = sum(verdict_label(ua, "click") != Label.HUMAN for ua in instances)

    figure = report(
        "crawler instances labelled machine (package patterns in use)", caught, len(instances)
    )

    assert figure >= CRAWLERS_CAUGHT


def test_crawlers_are_caught_by_the_generic_rules_without_the_package_patterns():
    judge = UserAgentJudge(())
    instances = crawler_instances(CRAWLER_USER_AGENTS_DATA)
    caught = sum(judge.machine_reason(ua) is not None for ua in instances)

    figure = report(
        "held out: crawler instances labelled machine by generic rules alone",
        caught,
        len(instances),
    )

    assert figure >= CRAWLERS_CAUGHT


@pytest.mark.parametrize("fold", [0, 1])
def test_crawlers_are_caught_when_their_own_pattern_is_left_out(fold):
    kept = CRAWLER_USER_AGENTS_DATA[fold::2]
    left_out = CRAWLER_USER_AGENTS_DATA[1 - fold :: 2]
    judge = UserAgentJudge(entry["pattern"] for entry in kept)
    instances = crawler_instances(left_out)
    caught = sum(judge.machine_reason(ua) is not None for ua in instances)

    figure = report(
        f"held out, fold {fold}: instances of the left-out half of the patterns labelled machine",
        caught,
        len(instances),
    )

    assert figure >= CRAWLERS_CAUGHT


@pytest.mark.parametrize("kind", ["open", "click"])
def test_browsers_and_mail_clients_are_labelled_human(kind):
    persons = person_user_agents()
    missed = [ua for ua in persons if verdict_label(ua, kind) != Label.HUMAN]

    figure = report(
        f"browsers and mail clients labelled human ({kind}s)",
        len(persons) - len(missed),
        len(persons),
    )

    assert figure >= PERSONS_KEPT, missed


def test_no_package_pattern_matches_a_persons_client():
    judge = UserAgentJudge(entry["pattern"] for entry in CRAWLER_USER_AGENTS_DATA)

    assert [ua for ua in person_user_agents() if judge.machine_reason(ua) is not None] == []
