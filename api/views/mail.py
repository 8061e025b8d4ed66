"""Emails (read, and send as the composer does), their recipients with each copy's tracking,
tracking events and activity metrics: each only as far as the user may see it on the pages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db.models import Model, Q, QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import APIException, NotFound
from rest_framework.exceptions import ValidationError as BadRequest
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.serializers import BaseSerializer

from api import filters
from api.errors import PROBLEM_CONTENT_TYPE
from api.filtering import RecordFilterBackend
from api.pagination import RecordCursorPagination
from api.schema import PROBLEM_SCHEMA
from api.serializers import mail as serializers
from crm import filters as crm_filters
from crm import hooks
from crm.models import (
    Account,
    ActivityMetric,
    Contact,
    EmailMessage,
    EmailMessageRelation,
    Lead,
    Opportunity,
    User,
)
from crm.sending import SendRefused, email_send
from tracking.models import TrackingEvent

Relation = EmailMessageRelation


class CheckedCursorPagination(RecordCursorPagination):
    """The project's cursor pages, refusing (404, as DRF does for a cursor it cannot read) a
    cursor whose position is not a value of the ordering's column, instead of failing in the
    database."""

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: Any = None
    ) -> list[Any] | None:
        self.model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Any:
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            name = self.ordering[0].lstrip("-")
            meta = self.model._meta
            field = meta.pk if name == "pk" else meta.get_field(name)
            try:
                assert field is not None
                field.to_python(cursor.position)
            except (ValidationError, ValueError, OverflowError) as error:
                raise NotFound(self.invalid_cursor_message) from error
        return cursor


class NeedsPerms(BasePermission):
    """The permissions a view names for reading (`read_perms`) and for writing (`write_perms`):
    the pages' own (the email page needs crm.view_emailmessage, not the admin's
    tracking.view_trackingevent)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        safe = request.method in ("GET", "HEAD", "OPTIONS")
        perms: Iterable[str] = view.read_perms if safe else view.write_perms
        return bool(user.has_perms(perms))


class SendRefusedError(APIException):
    """crm.sending refused the send (Setup, a daily limit, merge fields): its words, 422."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The email was not sent."
    default_code = "send_refused"


def current_user(request: Request) -> User:
    assert isinstance(request.user, User)
    return request.user


def problem_response(description: str) -> OpenApiResponse:
    """A problem-details response for operations that answer a status api.schema does not add."""
    return OpenApiResponse(response=PROBLEM_SCHEMA, description=description)


def visible_emails_q(user: User, prefix: str = "") -> Q:
    """Rows of (or under) emails the user may see, as a filter: nothing to filter for those who
    see every record, else the email page's rule (EmailMessage.objects.visible_to)."""
    if user.has_perm("crm.view_all_records"):
        return Q()
    return Q(**{f"{prefix}in": EmailMessage.objects.visible_to(user).values("pk")})


class ReadViewSet(viewsets.GenericViewSet):
    """A read-only resource with the API's cursor pages, filters and keyset ordering."""

    permission_classes = [NeedsPerms]
    read_perms: tuple[str, ...] = ()
    write_perms: tuple[str, ...] = ()
    pagination_class = CheckedCursorPagination
    filter_backends = [DjangoFilterBackend, filters.KeysetOrdering]
    ordering_fields = ["id"]
    ordering = ["-id"]


@extend_schema_view(
    list=extend_schema(summary="Emails you may see, newest first"),
    retrieve=extend_schema(summary="One email, with its bodies"),
)
class EmailViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ReadViewSet):
    """Emails: the ones the email pages show this user (sent by them, to their people, or all
    for managers and admins). POST sends one through crm.sending, as the composer does."""

    read_perms = ("crm.view_emailmessage",)
    write_perms = ("crm.add_emailmessage",)
    # The email list's own filter set (its owner filter only for those who see every email).
    filter_backends = [RecordFilterBackend, filters.KeysetOrdering]
    filterset_class = crm_filters.EmailFilter
    ordering_fields = ["id", "created_at"]
    queryset = EmailMessage.objects.none()

    def get_queryset(self) -> QuerySet[EmailMessage]:
        emails = EmailMessage.objects.visible_to(current_user(self.request))
        if self.action == "list":
            emails = emails.defer("html_body", "text_body")
        return emails

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.action == "retrieve":
            return serializers.EmailDetailSerializer
        if self.action == "create":
            return serializers.EmailSendSerializer
        return serializers.EmailSerializer

    @extend_schema(
        summary="Send an email",
        description=(
            "Records the email and queues its delivery, with the composer's checks: Setup's "
            "deliverability, the daily limit, merge fields and each recipient's privacy. A "
            "refusal answers 422 with its reason in words; recipients privacy or the "
            "suppression list leave out are listed in `not_sent`."
        ),
        request=serializers.EmailSendSerializer,
        responses={
            201: serializers.EmailSentSerializer,
            (422, PROBLEM_CONTENT_TYPE): problem_response("The send was refused (see detail)."),
        },
    )
    def create(self, request: Request) -> Response:
        user = current_user(request)
        form = serializers.EmailSendSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        records = _send_records(user, data)
        campaign = _send_campaign(user, data.get("campaign"))
        people: list[Contact | Lead] = [*records["contacts"], *records["leads"]]
        named = {p.email.lower(): p for p in people if p.email}

        def recipients(addresses: list[str]) -> list[Contact | Lead | str]:
            # As the composer: the person written to is named as that record, not matched.
            return [named.get(a.lower(), a) for a in addresses]

        related = [*records["related_account"], *records["related_opportunity"]]
        try:
            if not user.email:
                raise SendRefused("Your user has no email address to send from; ask an admin.")
            if any(not p.email for p in people):
                raise SendRefused("Each person needs an email address.")
            email = email_send(
                sender=user,
                # The same address twice is one recipient: the record named comes first.
                to=[*people, *recipients(data["to"])],
                cc=recipients(data["cc"]),
                bcc=recipients(data["bcc"]),
                subject=data["subject"],
                html_body=data["html_body"],
                related_to=related[0] if related else None,
                campaign=campaign,
            )
        except SendRefused as refused:
            raise SendRefusedError(str(refused)) from refused
        body = serializers.EmailSentSerializer(email).data
        location = self.reverse_action("detail", args=[email.pk])
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})


def _send_records(user: User, data: dict[str, Any]) -> dict[str, list[Any]]:
    """The records a send names, each among those the user may see: an id outside that is a
    field error, worded like the pages' 404 (its existence is not revealed)."""
    found: dict[str, list[Any]] = {}
    errors: dict[str, str] = {}
    for name, model in serializers.SEND_RECORDS.items():
        value = data.get(name)
        wanted = [] if value is None else value if isinstance(value, list) else [value]
        visible = model.objects.visible_to(user)
        rows = {row.pk: row for row in visible.filter(pk__in=wanted)}
        missing = [str(pk) for pk in wanted if pk not in rows]
        if missing:
            errors[name] = f"Not found, or not visible to you: {', '.join(missing)}."
        found[name] = [rows[pk] for pk in dict.fromkeys(wanted) if pk in rows]
    if errors:
        raise BadRequest(errors)
    return found


def _send_campaign(user: User, pk: int | None) -> Model | None:
    """The campaign to count the email in, among those the composer offers this user."""
    if pk is None:
        return None
    offered = hooks.email_campaigns(user=user)
    try:
        if offered is None:
            raise ObjectDoesNotExist
        campaign: Model = offered.get(pk=pk)
    except ObjectDoesNotExist as error:
        raise BadRequest(
            {"campaign": "Not an active campaign you may file an email under."}
        ) from error
    return campaign


@extend_schema_view(
    list=extend_schema(summary="Recipients of the emails you may see, with their tracking"),
    retrieve=extend_schema(summary="One recipient's copy: delivery, opens, clicks, bounce, reply"),
)
class RecipientViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ReadViewSet):
    """Each address an email went to (From is not a recipient), with its copy's tracking. A
    recipient's Contact or Lead is named only when the user may see that record."""

    read_perms = ("crm.view_emailmessage", "crm.view_emailmessagerelation")
    serializer_class = serializers.RecipientSerializer
    filterset_class = filters.RecipientFilter
    ordering = ["id"]
    queryset = Relation.objects.none()

    def get_queryset(self) -> QuerySet[Relation]:
        user = current_user(self.request)
        return (
            Relation.objects.exclude(relation_type=Relation.Type.FROM)
            .filter(visible_emails_q(user, "email__"))
            .defer("merge_values")
        )

    def get_serializer(self, *args: Any, **kwargs: Any) -> BaseSerializer:
        rows = args[0] if args else None
        if rows is not None:
            rows = rows if isinstance(rows, list) else [rows]
            kwargs["context"] = self.get_serializer_context() | {
                "visible_people": _visible_people(current_user(self.request), rows)
            }
        return super().get_serializer(*args, **kwargs)


def _visible_people(user: User, rows: list[Relation]) -> dict[str, set[int]]:
    """Which of these recipients' Contacts and Leads the user may see (two queries at most)."""
    wanted: dict[str, tuple[type[Contact] | type[Lead], set[int]]] = {
        "contact": (Contact, {r.contact_id for r in rows if r.contact_id}),
        "lead": (Lead, {r.lead_id for r in rows if r.lead_id}),
    }
    visible: dict[str, set[int]] = {}
    for kind, (model, pks) in wanted.items():
        visible[kind] = (
            set(model.objects.visible_to(user).filter(pk__in=pks).values_list("pk", flat=True))
            if pks
            else set()
        )
    return visible


@extend_schema_view(
    list=extend_schema(
        summary="Opens and clicks on the emails you may see",
        description=(
            "Newest first (`ordering=occurred_at` for oldest first), by cursor: each page "
            "costs the same however deep, read along the occurred_at index."
        ),
    ),
    retrieve=extend_schema(summary="One open or click"),
)
class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ReadViewSet):
    """Tracking events (every open and click, human or machine, internal ones marked) of the
    emails the user may see: the email page's permission and rule."""

    read_perms = ("crm.view_emailmessage",)
    serializer_class = serializers.EventSerializer
    filterset_class = filters.EventFilter
    # Keyset on the event_time_id index, (occurred_at, id) (tracking.models.TrackingEvent).
    ordering_fields = ["occurred_at", "id"]
    ordering = ["-occurred_at"]
    queryset = TrackingEvent.objects.none()

    def get_queryset(self) -> QuerySet[TrackingEvent]:
        user = current_user(self.request)
        return (
            TrackingEvent.objects.filter(visible_emails_q(user, "relation__email__"))
            .select_related("relation")
            .only(*EVENT_FIELDS)
        )


EVENT_FIELDS = (
    "id",
    "kind",
    "occurred_at",
    "label",
    "reason",
    "internal",
    "relation__id",
    "relation__email_id",
    "link_id",
    "ip",
    "user_agent",
    "device",
    "client",
    "os",
)

# Each kind of record its metrics are read with, and the permission its pages need.
_METRIC_RECORDS: dict[str, tuple[type[Model], str]] = {
    "contact": (Contact, "crm.view_contact"),
    "lead": (Lead, "crm.view_lead"),
    "account": (Account, "crm.view_account"),
    "opportunity": (Opportunity, "crm.view_opportunity"),
}


@extend_schema_view(
    list=extend_schema(summary="Activity metrics of the records you may see"),
    retrieve=extend_schema(summary="One record's activity metrics"),
)
class MetricViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ReadViewSet):
    """Activity metrics (crm.activity), as the record pages show them: of the Contacts, Leads,
    Accounts and Opportunities the user may see."""

    permission_classes = [IsAuthenticated]
    serializer_class = serializers.MetricSerializer
    filterset_class = filters.MetricFilter
    ordering_fields = ["id", "inactive_days"]
    queryset = ActivityMetric.objects.none()

    def get_queryset(self) -> QuerySet[ActivityMetric]:
        user = current_user(self.request)
        seen = Q(pk__in=[])
        for kind, (model, permission) in _METRIC_RECORDS.items():
            if not user.has_perm(permission):
                continue
            if user.has_perm("crm.view_all_records"):
                seen |= Q(**{f"{kind}__isnull": False})
            else:
                visible = model.objects.visible_to(user)  # type: ignore[attr-defined]
                seen |= Q(**{f"{kind}__in": visible.values("pk")})
        return ActivityMetric.objects.filter(seen)


def register(router: DefaultRouter) -> None:
    router.register("emails", EmailViewSet, basename="email")
    router.register("recipients", RecipientViewSet, basename="recipient")
    router.register("events", EventViewSet, basename="event")
    router.register("metrics", MetricViewSet, basename="metric")
