"""What a request may do: the same model permissions the pages need, by the user's role.

Record access (which rows) is the views' queryset, `visible_to(user)` as on the pages: a record
outside it answers 404, so its existence is not revealed.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import DjangoModelPermissions
from rest_framework.request import Request

_VIEW = ["%(app_label)s.view_%(model_name)s"]


class RolePermissions(DjangoModelPermissions):
    """Django's model permissions, reading included: a list or a record needs `view_<model>`
    (the list pages' permission), a create `add_`, an edit `change_`, a delete `delete_`."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": _VIEW,
        "HEAD": _VIEW,
        "OPTIONS": _VIEW,
    }

    def has_permission(self, request: Request, view: Any) -> bool:
        # An action that is not a plain create / edit (converting a lead) names the page's
        # permissions in the view's `action_permissions`.
        needed = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if needed is None:
            return bool(super().has_permission(request, view))
        user = request.user
        return bool(user and user.is_authenticated and user.has_perms(needed))
