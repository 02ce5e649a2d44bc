"""Serializer fields that do once per response what DRF's do once per value: reversing each
row's link and reading the current timezone for each date were more than half of the time
a list of 50 jobs took to serialize. What they answer is DRF's, to the byte."""

import datetime as dt
from typing import Any

from django.db import models
from rest_framework import serializers

# Keys of what a response's serializers share through their context (one dict per response).
_LINKS = "trust.api.fields links"
_TIMEZONE = "trust.api.fields timezone"

# Reversed in place of an object's key; digits, so any URL pattern for an id takes it.
_STAND_IN = 7_309_214_655_801_337


class IdentityLinkField(serializers.HyperlinkedIdentityField):
    """``HyperlinkedIdentityField`` reversing its view once per response, with a stand-in
    for the key that each object's integer key then replaces.

    Django's ``reverse`` writes an integer as its digits, unquoted, so the link is the one
    ``reverse`` would make; any other key, or a stand-in the URL holds other than once, is
    reversed per object as DRF does.
    """

    def get_url(self, obj: Any, view_name: str, request: Any, format: str | None) -> str | None:
        key = getattr(obj, self.lookup_field, None)
        if type(key) is not int:
            return super().get_url(obj, view_name, request, format)
        links = self.context.setdefault(_LINKS, {})
        around = links.get((view_name, self.lookup_url_kwarg, format))
        if around is None:
            stand_in = str(_STAND_IN)
            kwargs = {self.lookup_url_kwarg: stand_in}
            url = self.reverse(view_name, kwargs=kwargs, request=request, format=format)
            around = tuple(url.split(stand_in)) if url.count(stand_in) == 1 else ()
            links[(view_name, self.lookup_url_kwarg, format)] = around
        if not around:
            return super().get_url(obj, view_name, request, format)
        return f"{around[0]}{key}{around[1]}"


class DateTimeField(serializers.DateTimeField):
    """``DateTimeField`` reading the current timezone once per response: it is a
    context-local, slower to read than the date is to format."""

    # The stubs have it return a timezone's name; DRF returns the timezone.
    def default_timezone(self) -> dt.tzinfo | None:  # type: ignore[override]
        context = self.context
        if _TIMEZONE not in context:
            context[_TIMEZONE] = super().default_timezone()
        return context[_TIMEZONE]


# DRF's, with the model's date-times as the DateTimeField above. No docstring: the schema
# would describe each serializer by it.
class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: DateTimeField,
    }
