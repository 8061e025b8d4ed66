"""/api/v1/ accounts, contacts, leads (and convert), opportunities, tasks.

Each resource reads `visible_to(user)`, as its list page does (another rep's record is a 404),
needs the permission the page needs (api.permissions), filters with the page's filter set
(crm.filters) and writes through the page's form (api.serializers.records).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, ProtectedError, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api.errors import Conflict
from api.serializers import records as serializers
from crm import conversion, filters
from crm.conversion import LeadAlreadyConverted
from crm.models import Account, Contact, Lead, Opportunity, OpportunityContactRole, Task


class RecordViewSet(viewsets.ModelViewSet):
    """List, read, create, edit and delete one kind of record, within the user's access."""

    model: type[Any]
    select_related: tuple[str, ...] = ()
    lookup_value_regex = "[0-9]+"
    # Ordering: the primary key, and a column an index leads with for the rep's own list.
    ordering_fields: tuple[str, ...] = ("id",)

    def get_queryset(self) -> QuerySet[Any]:
        visible: QuerySet[Any] = self.model.objects.visible_to(self.request.user)
        return visible.select_related(*self.select_related)

    def perform_destroy(self, instance: Any) -> None:
        try:
            instance.delete()
        except ProtectedError as error:
            raise Conflict(
                f"{instance._meta.verbose_name} is still in use and cannot be deleted."
            ) from error


class AccountViewSet(RecordViewSet):
    model = Account
    serializer_class = serializers.AccountSerializer
    filterset_class = filters.AccountFilter
    ordering_fields = ("id", "name")


class ContactViewSet(RecordViewSet):
    model = Contact
    serializer_class = serializers.ContactSerializer
    filterset_class = filters.ContactFilter
    ordering_fields = ("id", "last_name")


class LeadViewSet(RecordViewSet):
    model = Lead
    serializer_class = serializers.LeadSerializer
    filterset_class = filters.LeadFilter

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if self.get_object().is_converted:
            raise Conflict("A converted lead is kept as it was; edit its contact instead.")
        return super().update(request, *args, **kwargs)

    # The Convert page's permissions: it changes the lead and makes an account and a contact.
    action_permissions = {"convert": ["crm.change_lead", "crm.add_contact", "crm.add_account"]}

    @extend_schema(
        request=serializers.LeadConvertSerializer,
        responses={201: serializers.ConversionSerializer},
        summary="Convert a lead",
        description="Into an account (new, or one you may see), a contact and optionally an "
        "opportunity; the lead's emails, tasks, privacy changes and campaign memberships move "
        "to the contact (crm.conversion). 409 if the lead was converted already.",
    )
    @action(detail=True, methods=["post"])
    def convert(self, request: Request, pk: str | None = None) -> Response:
        lead = self.get_object()
        if lead.is_converted:
            raise Conflict(str(LeadAlreadyConverted(lead)))
        form = serializers.LeadConvertSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        try:
            done = conversion.lead_convert(
                lead_id=lead.pk,
                account=form.validated_data.get("account"),
                opportunity_name=form.validated_data["opportunity_name"].strip(),
            )
        except LeadAlreadyConverted as refused:
            raise Conflict(str(refused)) from refused
        body = serializers.ConversionSerializer(done).data
        return Response(body, status=status.HTTP_201_CREATED)


class OpportunityViewSet(RecordViewSet):
    model = Opportunity
    serializer_class = serializers.OpportunitySerializer
    filterset_class = filters.OpportunityFilter
    select_related = ("owner",)
    ordering_fields = ("id", "close_date")

    def get_queryset(self) -> QuerySet[Any]:
        # Its contact roles, those whose contact the user may see (as the page shows them).
        roles = OpportunityContactRole.objects.filter(
            contact__in=Contact.objects.visible_to(self.request.user)
        )
        return (
            super()
            .get_queryset()
            .prefetch_related(Prefetch("roles", queryset=roles, to_attr="visible_roles"))
        )


class TaskViewSet(RecordViewSet):
    model = Task
    serializer_class = serializers.TaskSerializer
    filterset_class = filters.TaskFilter
    action_permissions = {"complete": ["crm.change_task"]}

    @extend_schema(
        request=None, responses={200: serializers.TaskSerializer}, summary="Mark a task done"
    )
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        task = self.get_object()
        if not task.is_completed:
            task.complete()
        return Response(self.get_serializer(task).data)


def register(router: Any) -> None:
    """The record resources on the API's router (api.urls)."""
    router.register("accounts", AccountViewSet, basename="account")
    router.register("contacts", ContactViewSet, basename="contact")
    router.register("leads", LeadViewSet, basename="lead")
    router.register("opportunities", OpportunityViewSet, basename="opportunity")
    router.register("tasks", TaskViewSet, basename="task")
