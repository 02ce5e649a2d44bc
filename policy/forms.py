"""Console forms of the content-trust policy: the quick settings form, the rule editor, the
whole policy as YAML, the draft an admin confirms, the image check and the "which rule
applies" box.

They parse input only: ``policy.services`` validates, and its errors land on these forms
(``ServiceForm.add_service_error``); a draft's, named by path
(``rules[2].require.teams[0].team``), on the editor's field the path names, or as the path
and its message.
"""

import json
import re
from typing import Any, cast

import yaml
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from accounts.models import Team
from gatehouse import jsonbody
from gatehouse.forms import ServiceForm
from policy import rules, services
from policy.evaluation import InvalidReference, parse_image_reference
from trust.forms import TeamNamesField

IMAGE_MAX = 512  # as the API takes it
IMAGE_ATTRS = {
    "placeholder": "registry.example.com/team/app:1.0",
    "spellcheck": "false",
    "autocapitalize": "off",
}
MAX_DOCUMENT = 500_000  # characters of YAML or JSON: 200 rules of 200 long patterns fit
MODE_CHOICES = [
    ("enforced", "Enforced: deny what fails"),
    ("permissive", "Permissive: evaluate and report, never deny"),
    ("off", "Off: check nothing"),
]
MATCH_CHOICES = [
    (rules.ALL, "All: every team's quota"),
    (rules.ANY, "Any: one team's quota is enough"),
]
# What no database column stores and no UTF-8 page can show: a NUL, a lone surrogate.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
QUOTA = re.compile(r"\A(?:(?P<count>\d+)\s*of\s+)?(?P<team>[^\s,]+)\Z")
# A path's first field after ``rules[i].``, and the editor's field that shows its errors.
RULE_FIELDS = {
    "name": "name",
    "images": "images",
    "namespaces": "namespaces",
    "mode": "mode",
    "require": "requirement",
}


def requirement_text(requirement: dict[str, Any]) -> str:
    """A document's requirement as the editor writes it: ``2 of security, 1 of ci``."""
    return ", ".join(f"{quota['count']} of {quota['team']}" for quota in requirement["teams"])


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _refuse_unstorable(document: Any) -> None:
    """A parsed document whose keys or strings hold a NUL or a lone surrogate (YAML's
    ``"\\0"``, ``"\\ud800"``) is refused whole: its team names would reach a query, and an
    error naming its path could not be shown. Each list and mapping is looked at once, so
    aliases that would expand a billionfold cost no more than the text."""
    pending, seen = [document], set()
    while pending:
        item = pending.pop()
        if isinstance(item, dict | list):
            if id(item) not in seen:
                seen.add(id(item))
                pending.extend([*item.keys(), *item.values()] if isinstance(item, dict) else item)
        elif isinstance(item, str) and UNSTORABLE.search(item):
            raise ValidationError("The policy holds a NUL or a lone surrogate, which no text can.")


def _path_errors(error: ValidationError) -> list[str]:
    """``path: message`` for each message of a service's error."""
    if not hasattr(error, "error_dict"):
        return list(error.messages)
    return [
        f"{path}: {message}"
        for path, errors in error.error_dict.items()
        for message in ValidationError(errors).messages
    ]


class PolicyForm(ServiceForm):
    version = forms.IntegerField(
        required=False,
        min_value=0,
        widget=forms.HiddenInput,
        help_text="The version this form showed: a save over a newer one is refused.",
    )
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
        patterns = _lines(self.cleaned_data["allow_repos"])
        if len(patterns) > services.MAX_ALLOW_REPOS:
            raise forms.ValidationError(f"At most {services.MAX_ALLOW_REPOS} patterns.")
        return patterns

    @staticmethod
    def initial_from(settings: dict, version: int) -> dict:
        """The form's initial data from ``policy.selectors.policy_settings`` and the version
        it shows: the exempt namespaces are not the form's, and a save keeps them."""
        return {
            "version": version,
            "enabled": settings["enabled"],
            "mode": settings["mode"],
            "signing_teams": settings["signing_teams"],
            "allow_repos": "\n".join(settings["allow_repos"]),
        }


def namespace_field(label: str) -> forms.RegexField:
    """An optional Kubernetes namespace, where an image would run."""
    return forms.RegexField(
        regex=rules.NAMESPACE,
        label=label,
        required=False,
        max_length=63,
        help_text="Optional: where it would run. Without one, only the rules for every "
        "namespace apply.",
        error_messages={"invalid": rules.NAMESPACE_INVALID},
        widget=forms.TextInput(
            attrs={"placeholder": "prod", "spellcheck": "false", "autocapitalize": "off"}
        ),
    )


class ImageCheckForm(ServiceForm):
    image = forms.CharField(
        label="Image",
        max_length=IMAGE_MAX,
        help_text="As you would pull it, such as registry.example.com/team/app:1.0; "
        "a digest (@sha256:…) may follow the tag.",
        widget=forms.TextInput(attrs=IMAGE_ATTRS),
    )
    namespace = namespace_field("Kubernetes namespace")


class RuleForm(ServiceForm):
    name = forms.CharField(
        label="Rule name",
        max_length=63,
        help_text="Lowercase letters, digits and '-', such as prod-images; unique.",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocapitalize": "off"}),
    )
    images = forms.CharField(
        label="Image patterns",
        required=False,
        help_text="One GUN pattern a line, such as registry.example.com/prod/**. None: every "
        "image. * and ? stay within one part between slashes; ** spans parts.",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )
    namespaces = forms.CharField(
        label="Namespaces",
        required=False,
        help_text="One Kubernetes namespace or pattern (prod-*) a line. None: every namespace, "
        "and checks that give none.",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )
    mode = forms.ChoiceField(
        label="Mode", choices=MODE_CHOICES, widget=forms.RadioSelect(attrs={"class": "choice-list"})
    )
    requirement = forms.CharField(
        label="Requirement",
        required=False,
        max_length=2000,
        help_text="Who must sign, such as 2 of security, 1 of ci: that many distinct current "
        "members of each team. A team alone means 1 of it. Empty: trust data must name the "
        "digest, and no signer is needed.",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocapitalize": "off"}),
    )
    match = forms.ChoiceField(label="Teams needed", choices=MATCH_CHOICES)
    position = forms.IntegerField(
        label="Position",
        min_value=1,
        help_text="Where the rule stands in the list: only a tie between equally specific "
        "rules goes to the one listed first.",
    )

    def __init__(self, *args: Any, taken: set[str], last_position: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.taken, self.last_position = taken, last_position
        self.fields["position"].widget.attrs["max"] = last_position

    @staticmethod
    def initial_from(rule: dict[str, Any], position: int) -> dict[str, Any]:
        """The editor's fields from a document's rule."""
        return {
            "name": rule["name"],
            "images": "\n".join(rule["images"]),
            "namespaces": "\n".join(rule["namespaces"]),
            "mode": rule["mode"],
            "requirement": requirement_text(rule["require"]),
            "match": rule["require"]["match"],
            "position": position,
        }

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if name in self.taken:
            raise ValidationError(f"A rule named {name} exists already; rule names are unique.")
        return name

    def clean_images(self) -> list[str]:
        return _lines(self.cleaned_data["images"])

    def clean_namespaces(self) -> list[str]:
        return _lines(self.cleaned_data["namespaces"])

    def clean_requirement(self) -> list[dict[str, Any]]:
        quotas, errors = [], []
        for item in self.cleaned_data["requirement"].split(","):
            if not item.strip():
                continue
            found = QUOTA.match(item.strip())
            if found is None:
                errors.append(
                    f"{item.strip()!r} is not a team's quota: write it as 2 of security, "
                    "or security for 1 of it."
                )
                continue
            count = int(found["count"] or 1)
            if not 1 <= count <= rules.MAX_COUNT:
                errors.append(f"{item.strip()}: the count is 1 to {rules.MAX_COUNT}.")
                continue
            quotas.append({"team": found["team"], "count": count})
        if errors:
            raise ValidationError(errors)
        return quotas

    def clean_position(self) -> int:
        position: int = self.cleaned_data["position"]
        if position > self.last_position:
            raise ValidationError(f"The position is 1 to {self.last_position}.")
        return position

    def rule_json(self) -> dict[str, Any]:
        """The rule as the policy document holds it."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "images": data["images"],
            "namespaces": data["namespaces"],
            "mode": data["mode"],
            "require": {"match": data["match"], "teams": data["requirement"]},
        }

    def add_draft_error(self, error: ValidationError, index: int) -> None:
        """The draft's errors: those of this rule (``rules[index]``) on the field they name,
        any other with its path."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        own = f"rules[{index}]."
        for path, errors in error.error_dict.items():
            field = None
            if path.startswith(own):
                rest = path[len(own) :]
                field = RULE_FIELDS.get(re.split(r"[.\[]", rest, maxsplit=1)[0])
                if rest.startswith("require.match"):
                    field = "match"
            if field is not None:
                self.add_error(field, errors)
            else:
                self.add_error(None, _path_errors(ValidationError({path: errors})))


class PolicyYamlForm(ServiceForm):
    """The whole policy as one YAML document, as ``policy export`` writes it."""

    document = forms.CharField(
        label="Policy as YAML",
        max_length=MAX_DOCUMENT,
        strip=False,
        help_text="enabled, default (mode, require) and rules, each with name, images, "
        "namespaces, mode and require (match, teams of team and count).",
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false"}),
    )
    version = forms.IntegerField(min_value=0, widget=forms.HiddenInput)

    @staticmethod
    def text_of(document: dict[str, Any]) -> str:
        return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)

    def clean_document(self) -> dict[str, Any]:
        try:
            document = yaml.safe_load(self.cleaned_data["document"])
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(error, "problem", None) or "it does not parse"
            raise ValidationError(f"This is not YAML{where}: {problem}.") from error
        except (ValueError, RecursionError) as error:  # an integer of 5,000 digits; [[[…
            raise ValidationError("This YAML nests too deep or holds too long a number.") from error
        if not isinstance(document, dict):
            raise ValidationError("The policy is a mapping of enabled, default and rules.")
        _refuse_unstorable(document)
        return document

    def add_draft_error(self, error: ValidationError) -> None:
        """Every error of the draft on the YAML, each with its path."""
        self.add_error("document", _path_errors(error))


class DraftForm(ServiceForm):
    """A previewed draft on its way to being saved, and the version it was made from."""

    draft = forms.CharField(max_length=MAX_DOCUMENT, widget=forms.HiddenInput)
    version = forms.IntegerField(min_value=0, widget=forms.HiddenInput)

    @staticmethod
    def text_of(document: dict[str, Any]) -> str:
        return json.dumps(document, separators=(",", ":"))

    def clean_draft(self) -> Any:
        """The draft, refused (as the API's bodies are) when deep, or holding a NUL or a lone
        surrogate: the page wrote neither, so it was tampered with or garbled."""
        try:
            return jsonbody.loads(self.cleaned_data["draft"], allow_nul=False)
        except jsonbody.JSONBodyError as error:
            raise ValidationError("The draft is not a policy document.") from error


class RevertForm(ServiceForm):
    """The version the admin saw as the policy's when they chose to revert."""

    version = forms.IntegerField(min_value=0, widget=forms.HiddenInput)


class MoveForm(ServiceForm):
    direction = forms.ChoiceField(choices=[("up", "Up"), ("down", "Down")])


class WhichRuleForm(ServiceForm):
    """Which rule applies to an image, in a namespace or none."""

    image = forms.CharField(
        label="Image",
        max_length=IMAGE_MAX,
        help_text="As you would pull it, such as registry.example.com/team/app:1.0.",
        widget=forms.TextInput(attrs=IMAGE_ATTRS),
    )
    namespace = namespace_field("Namespace")

    def clean_image(self) -> str:
        """The image's GUN, which rules match."""
        try:
            return parse_image_reference(self.cleaned_data["image"]).gun
        except InvalidReference as error:
            raise ValidationError(str(error)) from error

    def clean_namespace(self) -> str | None:
        return self.cleaned_data["namespace"] or None
