"""Console forms for the content-trust policy and the image check.

They parse input only: ``policy.services`` validates teams, mode, patterns and references,
and its errors land on these forms (``ServiceForm.add_service_error``).
"""

from typing import Any, cast

from django import forms
from django.db.models import QuerySet

from accounts.models import Team
from gatehouse.forms import ServiceForm
from policy import services
from trust.forms import TeamNamesField

IMAGE_MAX = 512  # as the API takes it
MODE_CHOICES = [
    ("enforced", "Enforced: deny what fails"),
    ("permissive", "Permissive: evaluate and report, never deny"),
    ("off", "Off: check nothing"),
]


class PolicyForm(ServiceForm):
    enabled = forms.BooleanField(
        label="Run only signed images",
        required=False,
        help_text="When on, an image passes only if members of the signing teams signed it.",
        widget=forms.CheckboxInput(attrs={"role": "switch"}),
    )
    signing_teams = TeamNamesField(
        label="Signing teams",
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "choice-list"}),
        help_text="A member of each chosen team must sign the digest the tag names, in a role "
        "other than targets/releases. With none chosen, any signed image passes.",
    )
    mode = forms.ChoiceField(
        label="Default rule's mode",
        choices=MODE_CHOICES,
        widget=forms.RadioSelect(attrs={"class": "choice-list"}),
    )
    allow_repos = forms.CharField(
        label="Exemptions",
        required=False,
        help_text="Repositories the policy does not apply to: one GUN pattern a line, such as "
        "registry.example.com/sandbox/**. * and ? stay within one part between slashes; ** "
        "spans any number of parts. Short names are Docker Hub's (nginx is "
        "docker.io/library/nginx). A pattern that would exempt every registry is refused.",
        widget=forms.Textarea(
            attrs={
                "rows": 4,
                "spellcheck": "false",
                "placeholder": "registry.example.com/sandbox/**",
            }
        ),
    )

    def __init__(self, *args: Any, teams: QuerySet[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(TeamNamesField, self.fields["signing_teams"]).choices = [
            (team.name, team.name) for team in teams
        ]

    def clean_allow_repos(self) -> list[str]:
        patterns = [line.strip() for line in self.cleaned_data["allow_repos"].splitlines()]
        patterns = [pattern for pattern in patterns if pattern]
        if len(patterns) > services.MAX_ALLOW_REPOS:
            raise forms.ValidationError(f"At most {services.MAX_ALLOW_REPOS} patterns.")
        return patterns

    @staticmethod
    def initial_from(settings: dict) -> dict:
        """The form's initial data from ``policy.selectors.policy_settings``."""
        return {**settings, "allow_repos": "\n".join(settings["allow_repos"])}


class ImageCheckForm(ServiceForm):
    image = forms.CharField(
        label="Image",
        max_length=IMAGE_MAX,
        help_text="As you would pull it, such as registry.example.com/team/app:1.0; "
        "a digest (@sha256:…) may follow the tag.",
        widget=forms.TextInput(
            attrs={
                "placeholder": "registry.example.com/team/app:1.0",
                "spellcheck": "false",
                "autocapitalize": "off",
            }
        ),
    )
