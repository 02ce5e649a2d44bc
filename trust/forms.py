"""Console forms for repositories, jobs, the trust root and root key pins.

Like the identity forms, they parse input only: the services validate GUNs, team names and
passphrases, and their errors land on these forms (``ServiceForm.add_service_error``). The
filter sets narrow a list a selector has already scoped to the viewer.
"""

import re
from collections.abc import Iterable
from typing import Any, cast

import django_filters
from django import forms
from django.db.models import QuerySet

from accounts.models import Team
from gatehouse.forms import ServiceForm
from trust import pins, selectors
from trust.models import Job, Repository
from trust.services import root_key

GUN_MAX = Repository._meta.get_field("gun").max_length
BULK_MAX = 1000
TEAMS_MAX = 100


class TeamNamesField(forms.MultipleChoiceField):
    """Team names from a multi-select. Any name passes here: the service says which team is
    unknown, in the same words as the API."""

    widget = forms.SelectMultiple

    def valid_value(self, value: str) -> bool:
        return True

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        if len(value) > TEAMS_MAX:
            raise forms.ValidationError(f"Choose at most {TEAMS_MAX} teams.")


def signer_teams_field(help_text: str) -> TeamNamesField:
    return TeamNamesField(label="Signer teams", required=False, help_text=help_text)


class SignerTeamsForm(ServiceForm):
    """A form with a ``signer_teams`` multi-select offering ``teams``."""

    def __init__(self, *args: Any, teams: QuerySet[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(team.name, team.name) for team in teams]
        cast(TeamNamesField, self.fields["signer_teams"]).choices = choices
        self.fields["signer_teams"].widget.attrs["size"] = max(3, min(len(choices), 8))

    @property
    def team_names(self) -> list[str] | None:
        """The chosen names, or ``None`` for none: the service's default signer teams."""
        return self.cleaned_data["signer_teams"] or None


class RepositoryCreateForm(SignerTeamsForm):
    gun = forms.CharField(
        label="GUN",
        max_length=GUN_MAX,
        help_text="The image name as Docker sees it, such as registry.example.com/ci/app or "
        "localhost:5000/ci/app; a short name is Docker Hub's (ci/app is docker.io/ci/app).",
        widget=forms.TextInput(attrs={"placeholder": "registry.example.com/team/app"}),
    )
    signer_teams = signer_teams_field(
        "Members of these teams sign with their signing keys. Ctrl- or ⌘-click to choose "
        "several; choose none to leave the repository without signers for now."
    )


class RepositoryBulkForm(SignerTeamsForm):
    guns = forms.CharField(
        label="GUNs",
        help_text=f"One per line, at most {BULK_MAX}. GUNs Gatehouse manages already are "
        "skipped; any invalid GUN stops the whole batch.",
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
    )
    signer_teams = signer_teams_field("Every repository of the batch gets these signer teams.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_bulk_%s")  # it shares a page with the single form
        super().__init__(*args, **kwargs)

    def clean_guns(self) -> list[str]:
        guns = [line.strip() for line in self.cleaned_data["guns"].splitlines() if line.strip()]
        if not guns:
            raise forms.ValidationError("Give at least one GUN.")
        if len(guns) > BULK_MAX:
            raise forms.ValidationError(f"Give at most {BULK_MAX} GUNs at a time.")
        return guns


def id_ranges(ids: Iterable[int]) -> str:
    """``3-5,9`` for 3, 4, 5 and 9: a batch of repositories in a URL, short however large,
    since the ids one bulk creation makes are consecutive but for concurrent creations."""
    runs: list[list[int]] = []
    for pk in sorted(set(ids)):
        if runs and pk == runs[-1][1] + 1:
            runs[-1][1] = pk
        else:
            runs.append([pk, pk])
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)


class IdRangesField(forms.CharField):
    """Ids as ``id_ranges`` writes them, at most ``BULK_MAX`` of them."""

    default_error_messages = {
        "invalid": "Give ids as numbers and ranges, such as 3-5,9.",
        "too_many": f"Give at most {BULK_MAX} ids.",
    }
    RANGE = re.compile(r"(\d{1,18})(?:-(\d{1,18}))?")

    def to_python(self, value: Any) -> list[int]:  # type: ignore[override]
        ids: list[int] = []
        for part in filter(None, (super().to_python(value) or "").split(",")):
            match = self.RANGE.fullmatch(part)
            if match is None:
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
            first = int(match[1])
            last = int(match[2] or first)
            if last < first:
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
            if len(ids) + last - first + 1 > BULK_MAX:
                raise forms.ValidationError(self.error_messages["too_many"], code="too_many")
            ids.extend(range(first, last + 1))
        return ids


class RepositoryProgressForm(ServiceForm):
    """``?batch=`` the repositories of a bulk creation, to count; ``?ids=`` more whose
    state the page shows (its rows still pending)."""

    batch = IdRangesField(required=False)
    ids = IdRangesField(required=False)


class SignerTeamsUpdateForm(SignerTeamsForm):
    signer_teams = signer_teams_field(
        "Members of these teams sign. Ctrl- or ⌘-click to choose several; a sync publishes the "
        "change to Notary."
    )


class RootKeyExportForm(ServiceForm):
    passphrase = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=f"At least {root_key.ROOT_EXPORT_MIN_PASSPHRASE} characters. It encrypts "
        "the file; without it the file is useless, so keep it apart from the file.",
    )
    passphrase_confirm = forms.CharField(
        label="Passphrase confirmation",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        first, second = cleaned_data.get("passphrase"), cleaned_data.get("passphrase_confirm")
        if first and second and first != second:
            self.add_error("passphrase_confirm", "The two passphrases do not match.")
        return cleaned_data


class RootKeyPinForm(ServiceForm):
    """A pattern and its key IDs; ``trust.pins`` says what is wrong with either."""

    pattern = forms.CharField(
        help_text="A GUN, such as registry.example.com/ci/app, or a prefix ending in *, such "
        "as registry.example.com/ci/*. The exact GUN wins, then the longest prefix. A short "
        "name is Docker Hub's: ci/* is kept as docker.io/ci/*.",
        widget=forms.TextInput(
            attrs={
                "placeholder": "registry.example.com/team/*",
                "maxlength": pins.PATTERN_MAX,
                "spellcheck": "false",
            }
        ),
    )
    key_ids = forms.CharField(
        label="Root key IDs",
        help_text=f"At most {pins.MAX_KEY_IDS}, separated by spaces, commas or new lines: the "
        "64 hexadecimal digits of each root certificate's ID, as root.json names it and "
        "`docker trust inspect` shows under Root (the ID Docker engines compare).",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_pin_%s")  # it shares a page with the export form
        super().__init__(*args, **kwargs)

    def clean_key_ids(self) -> list[str]:
        return [key_id for key_id in re.split(r"[\s,]+", self.cleaned_data["key_ids"]) if key_id]


def search_widget(placeholder: str) -> forms.TextInput:
    return forms.TextInput(attrs={"type": "search", "placeholder": placeholder})


class RepositoryFilter(django_filters.FilterSet):
    """``?q=`` part of the GUN, ``?state=``, ``?team=`` a signer team the viewer can see."""

    q = django_filters.CharFilter(
        method="filter_gun", label="GUN", widget=search_widget("Part of the GUN")
    )
    state = django_filters.ChoiceFilter(
        choices=Repository.State.choices, empty_label="Any state", label="State"
    )
    team = django_filters.ModelChoiceFilter(
        field_name="signer_teams",
        to_field_name="name",
        queryset=Team.objects.none(),
        empty_label="Any signer team",
        label="Signer team",
    )

    class Meta:
        model = Repository
        fields = ["q", "state", "team"]

    def __init__(self, *args: Any, teams: QuerySet[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters["team"].queryset = teams

    def filter_gun(
        self, queryset: QuerySet[Repository], name: str, value: str
    ) -> QuerySet[Repository]:
        return selectors.repositories_matching(queryset, value)


class JobFilter(django_filters.FilterSet):
    """``?status=``, ``?kind=`` and ``?q=`` part of the GUN (kept after a deletion)."""

    status = django_filters.ChoiceFilter(
        choices=Job.Status.choices, empty_label="Any status", label="Status"
    )
    kind = django_filters.ChoiceFilter(
        choices=Job.Kind.choices, empty_label="Any kind", label="Kind"
    )
    q = django_filters.CharFilter(
        field_name="gun",
        lookup_expr="icontains",
        label="GUN",
        widget=search_widget("Part of the GUN"),
    )

    class Meta:
        model = Job
        fields = ["status", "kind", "q"]
