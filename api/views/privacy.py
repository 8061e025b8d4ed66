"""A Contact's or Lead's privacy flags (the Individual's Don't Track, Don't Process, ...): read
and changed by admins only, through crm.privacy_changes.privacy_update, so each change is kept
as a PrivacyChange and shown on the record's timeline as a change from the record page is."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from api.serializers import privacy as serializers
from api.views.mail import ReadViewSet, current_user
from crm.models import Contact, Lead
from crm.privacy_changes import PRIVACY_FLAGS, privacy_update

# Where the timeline says the change was made.
SOURCE = "API"


@extend_schema_view(
    list=extend_schema(summary="People's privacy flags"),
    retrieve=extend_schema(summary="One person's privacy flags"),
    partial_update=extend_schema(
        summary="Change a person's privacy flags (each change kept)",
        request=serializers.PersonPrivacySerializer,
        responses={200: serializers.PrivacyUpdatedSerializer},
    ),
)
class PersonPrivacyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ReadViewSet):
    """The privacy of one kind of person (Contact or Lead), for admins (privacy.change_individual,
    the permission the record page asks before it offers the flags); others get 403."""

    model: type[Contact] | type[Lead]
    read_perms = ("privacy.change_individual",)
    write_perms = ("privacy.change_individual",)
    serializer_class = serializers.PersonPrivacySerializer
    http_method_names = ["get", "patch", "head", "options"]
    filter_backends = ReadViewSet.filter_backends[1:]

    def get_queryset(self) -> QuerySet[Any]:
        user = current_user(self.request)
        return self.model.objects.visible_to(user).select_related("individual")

    def partial_update(self, request: Request, pk: Any = None) -> Response:
        person = self.get_object()
        form = serializers.PersonPrivacySerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        flags = {
            name: form.validated_data[name] for name in PRIVACY_FLAGS if name in form.validated_data
        }
        changes = privacy_update(
            person=person, by=current_user(request), source=SOURCE, flags=flags
        )
        body = serializers.PersonPrivacySerializer(person).data
        body["changes"] = serializers.PrivacyChangeSerializer(changes, many=True).data
        return Response(body)


class ContactPrivacyViewSet(PersonPrivacyViewSet):
    model = Contact
    queryset = Contact.objects.none()


class LeadPrivacyViewSet(PersonPrivacyViewSet):
    model = Lead
    queryset = Lead.objects.none()


def register(router: DefaultRouter) -> None:
    router.register("privacy/contacts", ContactPrivacyViewSet, basename="contact-privacy")
    router.register("privacy/leads", LeadPrivacyViewSet, basename="lead-privacy")
