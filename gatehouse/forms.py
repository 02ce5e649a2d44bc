"""Console form bases every app's forms share."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator


class ServiceForm(forms.Form):
    """A form whose input a service validates, so the service's errors show on this form."""

    error_css_class = "has-error"
    required_css_class = "required"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def full_clean(self) -> None:
        """Django's cleaning, then a NUL refused in any text a field let through (the items of
        a list too, such as team names a service looks up): PostgreSQL stores no NUL, and a
        query holding one is a 500, not a message on the field."""
        super().full_clean()
        for name, value in list(getattr(self, "cleaned_data", {}).items()):
            values = value if isinstance(value, list | tuple) else [value]
            if any(isinstance(item, str) and "\x00" in item for item in values):
                field = name if name in self.fields else None
                self.add_error(field, ProhibitNullCharactersValidator.message)

    def clean(self) -> dict[str, Any]:
        """Django's own: the cleaned data. Typed as never ``None``, which the stubs allow
        for a form whose ``clean`` returns nothing, so subclasses can use what it returns."""
        return self.cleaned_data

    def add_service_error(self, error: ValidationError) -> None:
        """Put each error on the field it names, or on the whole form if there is no such field.

        ``add_error`` alone raises ``ValueError`` for a field the form lacks, e.g. the
        ``is_active`` of a deactivation, which the user sees as a button, not a field.
        """
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for field, errors in error.error_dict.items():
            self.add_error(field if field in self.fields else None, errors)

    def require_same(self, field: str, confirmation: str) -> None:
        """Reject a password whose confirmation differs, before any service sees it."""
        first, second = self.cleaned_data.get(field), self.cleaned_data.get(confirmation)
        if first and second and first != second:
            self.add_error(confirmation, "The two passwords do not match.")


class ActionForm(ServiceForm):
    """A button that POSTs; its only content is the CSRF token and any error the service gives."""
