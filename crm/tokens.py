"""The tokens in each recipient's copy, by purpose, and the copy a token names.

mailkit.tokens signs and verifies; this module knows which keys serve which purpose and which
copies still answer to the one token that did everything before purposes existed: a copy whose
`tokens_by_purpose` is false was sent with its tracking token in List-Unsubscribe, the
X-Openrate-Token header and the VERP address, and those links keep working.
"""

import functools
from collections.abc import Callable

from django.db.models import QuerySet

from crm.models import EmailMessageRelation
from mailkit.tokens import Purpose, configured_keys, make_token, parse_token, purpose_keys


def _keys(purpose: Purpose) -> tuple[bytes, ...]:
    # Read from settings on each call (settings may change keys), derived once per key set: a
    # list email signs several tokens per copy.
    return _derived(configured_keys(), purpose)


@functools.lru_cache(maxsize=16)
def _derived(keys: tuple[bytes, ...], purpose: Purpose) -> tuple[bytes, ...]:
    return purpose_keys(keys, purpose)


def token_for(relation_id: int, purpose: Purpose, link_id: int = 0) -> str:
    """The token that names this copy (and link) for one purpose, signed with the newest key."""
    return make_token(relation_id, link_id, key=_keys(purpose)[0])


def token_maker(purpose: Purpose) -> Callable[[int, int], str]:
    """token_for(relation_id, purpose, link_id) with the key looked up once: for a batch."""
    return functools.partial(_made, key=_keys(purpose)[0])


def _made(relation_id: int, link_id: int, *, key: bytes) -> str:
    return make_token(relation_id, link_id, key=key)


def relation_for_token(
    token: str,
    purpose: Purpose,
    relations: QuerySet[EmailMessageRelation] | None = None,
) -> EmailMessageRelation | None:
    """The copy a message-level token of this purpose names, or None: a token of another
    purpose does not verify, except a tracking token for a copy sent before purposes."""
    if not token:
        return None
    relations = EmailMessageRelation.objects.all() if relations is None else relations
    data = parse_token(token, keys=_keys(purpose))
    legacy = data is None and purpose is not Purpose.TRACK
    if legacy:
        data = parse_token(token, keys=_keys(Purpose.TRACK))
    if data is None or data.link_id:
        return None
    if legacy:
        relations = relations.filter(tokens_by_purpose=False)
    return relations.filter(pk=data.recipient_id).first()
