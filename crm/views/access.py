"""Who is asking and what they may see: every crm view reaches its records through here.

A record outside the user's access answers 404, so its existence is not revealed; a missing
permission answers 403.
"""

from collections.abc import Iterable
from typing import TypeVar

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from crm.models import Account, Contact, Lead, Opportunity, OwnedRecord, User

Record = TypeVar("Record", bound=OwnedRecord)


def current_user(request: HttpRequest) -> User:
    """The logged-in user (every view here is behind LoginRequiredMiddleware)."""
    assert isinstance(request.user, User)
    return request.user


def get_record_for_user(
    model: type[Record], request: HttpRequest, pk: int, *related: str
) -> Record:
    """The record if this user may see it; 404 otherwise, so its existence is not revealed."""
    visible = model.objects.visible_to(current_user(request))  # type: ignore[attr-defined]
    return get_object_or_404(visible.select_related("owner", *related), pk=pk)


RECORD_MODELS: dict[str, type[Contact] | type[Lead] | type[Account] | type[Opportunity]] = {
    "contact": Contact,
    "lead": Lead,
    "account": Account,
    "opportunity": Opportunity,
}


def get_kind_for_user(
    request: HttpRequest, kind: str, pk: int, *, permission: str
) -> Contact | Lead | Account | Opportunity:
    """A record named by its kind in the URL ("contact", ...): 404 for an unknown kind or a
    record the user cannot see, 403 without the permission."""
    model = RECORD_MODELS.get(kind)
    if model is None:
        raise Http404
    if not request.user.has_perm(permission):
        raise PermissionDenied
    return get_record_for_user(model, request, pk)


def visible_pks(user: User, model: type[OwnedRecord], pks: Iterable[int | None]) -> set[int]:
    """Which of these records the user may see (one query): for pages that show records
    linked from something the user may see (an email's recipients, an opportunity's roles)."""
    wanted = {pk for pk in pks if pk is not None}
    if not wanted:
        return set()
    visible = model.objects.visible_to(user)  # type: ignore[attr-defined]
    return set(visible.filter(pk__in=wanted).values_list("pk", flat=True))
