"""Console forms for client bundles and public keys. They parse input; the services validate it."""

from typing import Any

from django import forms

from bundles.services import LABEL_MAX
from gatehouse.forms import ServiceForm

# The API's limit on a pasted certificate: far above any real PEM, far below a nuisance upload.
CERTIFICATE_MAX = 20000


def label_field() -> forms.CharField:
    return forms.CharField(
        max_length=LABEL_MAX,
        required=False,
        help_text="Where the key lives, e.g. “laptop” or “jenkins01”. Blank: today's date.",
    )


def signing_field() -> forms.BooleanField:
    return forms.BooleanField(
        label="Use as signing key",
        required=False,
        help_text="Add it to the delegations of the repositories your teams sign.",
    )


class BundleForm(ServiceForm):
    label = label_field()
    signing = signing_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Its own ids: it shares My profile with the registration form, whose fields match.
        kwargs.setdefault("auto_id", "bundle_%s")
        super().__init__(*args, **kwargs)


class KeyRegisterForm(ServiceForm):
    certificate = forms.CharField(
        label="Certificate (PEM)",
        max_length=CERTIFICATE_MAX,
        strip=False,
        widget=forms.Textarea(
            attrs={"rows": 6, "spellcheck": "false", "placeholder": "-----BEGIN CERTIFICATE-----"}
        ),
        help_text="The certificate of a key made elsewhere, e.g. the cert.pem of a UCP bundle. "
        "Never paste a private key.",
    )
    label = label_field()
    signing = signing_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "register_%s")
        super().__init__(*args, **kwargs)


class KeyLabelForm(ServiceForm):
    label = forms.CharField(max_length=LABEL_MAX, required=False)


class KeySigningForm(ServiceForm):
    """The switch posts the state it turns the key to, so a repeated click changes nothing."""

    is_signing_key = forms.BooleanField(required=False)
