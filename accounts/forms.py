"""The accounts console's forms. They parse input; the services validate it and make the change."""

from typing import Any, cast

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.password_validation import password_validators_help_text_html
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from accounts.models import User
from accounts.services import LoginLocked, LoginRefused
from gatehouse.forms import ServiceForm


def password_field(label: str, *, autocomplete: str, with_rules: bool = False) -> forms.CharField:
    return forms.CharField(
        label=label,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": autocomplete}),
        help_text=password_validators_help_text_html() if with_rules else "",
    )


class LoginForm(AuthenticationForm):
    """Django's login form, with labels styled like the rest of the console, that says so,
    and for how long, when the account or address is locked out or throttled
    (``directory.backends``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()
        except LoginLocked as error:
            raise ValidationError(str(error), code="locked_out") from error
        except LoginRefused as error:
            raise ValidationError(str(error), code="throttled") from error


class UserSearchForm(forms.Form):
    q = forms.CharField(
        label="Search users",
        required=False,
        max_length=150,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Username, name or email"}),
    )

    @property
    def term(self) -> str:
        return self.cleaned_data["q"] if self.is_valid() else ""


class UserCreateForm(ServiceForm):
    username = forms.CharField(max_length=150, help_text=User._meta.get_field("username").help_text)
    full_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(required=False)
    is_admin = forms.BooleanField(
        label="Administrator", required=False, help_text=User._meta.get_field("is_admin").help_text
    )
    password = password_field("Password", autocomplete="new-password", with_rules=True)
    password_confirm = password_field("Password confirmation", autocomplete="new-password")

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        self.require_same("password", "password_confirm")
        return cleaned_data


class UserUpdateForm(ServiceForm):
    full_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(required=False)
    is_admin = forms.BooleanField(
        label="Administrator", required=False, help_text=User._meta.get_field("is_admin").help_text
    )


class PasswordSetForm(ServiceForm):
    """An admin setting someone else's password: no old password to prove."""

    new_password = password_field("New password", autocomplete="new-password", with_rules=True)
    new_password_confirm = password_field("New password confirmation", autocomplete="new-password")

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        self.require_same("new_password", "new_password_confirm")
        return cleaned_data


class PasswordChangeForm(PasswordSetForm):
    """A user changing their own password proves they know the current one."""

    old_password = password_field("Current password", autocomplete="current-password")

    field_order = ["old_password", "new_password", "new_password_confirm"]


class TeamCreateForm(ServiceForm):
    name = forms.CharField(
        max_length=64,
        help_text="Lowercase letters, digits, '_' and '-'. It names the Notary role "
        "targets/&lt;name&gt; and cannot be changed later.",
    )
    description = forms.CharField(
        max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class TeamUpdateForm(ServiceForm):
    description = forms.CharField(
        max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class MemberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return f"{obj.username} ({obj.full_name})" if obj.full_name else obj.username


class TeamMemberAddForm(ServiceForm):
    # Named ``username`` because that is the value posted and the field services report on.
    username = MemberChoiceField(
        label="User",
        queryset=User.objects.none(),
        to_field_name="username",
        empty_label="Choose a user",
        error_messages={"invalid_choice": "%(value)s is not an active user outside this team."},
    )

    def __init__(self, *args: Any, candidates: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._username_field.queryset = candidates

    @property
    def _username_field(self) -> MemberChoiceField:
        """This form's copy of ``username`` (``fields`` is typed as holding any field)."""
        return cast(MemberChoiceField, self.fields["username"])

    @property
    def has_candidates(self) -> bool:
        queryset = self._username_field.queryset  # set in __init__, so never None
        return queryset is not None and queryset.exists()
