"""The directory page's form: a group mapped to a team."""

from django import forms

from accounts.models import Team
from directory.models import Source
from gatehouse.forms import ServiceForm


class GroupMappingForm(ServiceForm):
    source = forms.ChoiceField(choices=Source.choices, initial=Source.LDAP)
    # No maxlength: a browser would cut a longer group silently; the service refuses it.
    group = forms.CharField(
        help_text="LDAP: the group's DN or name (cn). OpenID Connect: a value of the groups "
        "claim, as the provider sends it.",
    )
    team = forms.ModelChoiceField(
        queryset=Team.objects.order_by("name"),
        to_field_name="name",
        empty_label="Choose a team",
        error_messages={"invalid_choice": "%(value)s is not a team."},
    )
