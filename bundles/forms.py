"""Console forms for client bundles and public keys. They parse input; the services validate it."""

import copy
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from bundles.certificates import PRIVATE_KEY_PASTED, SIGNATURE_MAX, holds_private_key
from bundles.services import LABEL_MAX, NONCE_MAX
from gatehouse.forms import ServiceForm

# The API's limit on a pasted certificate: far above any real PEM, far below a nuisance upload.
CERTIFICATE_MAX = 20000


def label_field(blank: str) -> forms.CharField:
    """No ``max_length`` here: a browser would cut a longer label silently (``maxlength``);
    the service refuses it with a message instead (at most ``LABEL_MAX`` characters)."""
    return forms.CharField(
        required=False,
        help_text=f"Where the key lives, e.g. “laptop” or “jenkins01”; at most {LABEL_MAX} "
        f"characters. {blank}",
    )


def signing_field(*, initial: bool = False) -> forms.BooleanField:
    return forms.BooleanField(
        label="Use as signing key",
        required=False,
        initial=initial,
        help_text="Add it to the delegations of the repositories your teams sign.",
    )


class BundleForm(ServiceForm):
    label = label_field("Blank: today's date.")
    signing = signing_field(initial=True)  # a bundle is downloaded to sign, as in UCP

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Its own ids: it shares My profile with the registration form, whose fields match.
        kwargs.setdefault("auto_id", "bundle_%s")
        super().__init__(*args, **kwargs)


class KeyRegisterForm(ServiceForm):
    """The certificate, and the proof that whoever registers it holds its key: the signature
    of the nonce the page shows (``nonce``, posted back as it was shown).

    Text holding a private key is refused and never shown again: it is taken out of the
    form's data before anything renders it.
    """

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
    nonce = forms.CharField(max_length=NONCE_MAX, widget=forms.HiddenInput)
    signature = forms.CharField(
        label="Signature of the nonce",
        max_length=2 * SIGNATURE_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}),
        help_text="Proves the key is yours: the output of the command above, run where the "
        "private key is.",
    )
    label = label_field("Blank: none; the key is shown by its ID.")
    signing = signing_field()

    SECRET_FIELDS = ("certificate", "signature", "label")

    def __init__(self, *args: Any, nonce: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "register_%s")
        super().__init__(*args, **kwargs)
        self.private_key_in: set[str] = set()
        if self.is_bound:
            pasted = [
                name
                for name in self.SECRET_FIELDS
                if holds_private_key(str(self.data.get(self.add_prefix(name), "")))
            ]
            if pasted:
                self._replace_data(dict.fromkeys(pasted, ""))
                for name in pasted:
                    self.fields[name].required = False
                self.private_key_in = set(pasted)
        if nonce is not None and not self.is_bound:
            self.show_nonce(nonce)

    def add_error(self, field: str | None, error: Any) -> None:
        """The nonce is a hidden field: what is wrong with it is said above the form."""
        super().add_error(None if field == "nonce" else field, error)

    def show_nonce(self, nonce: str) -> None:
        """The nonce to sign: the page shows it and posts it back. A new one clears the
        signature, which was made for the old one."""
        self.initial["nonce"] = nonce
        if self.is_bound and self.data.get(self.add_prefix("nonce")) != nonce:
            self._replace_data({"nonce": nonce, "signature": ""})

    def _replace_data(self, values: dict[str, str]) -> None:
        """What the form renders from now on: its data with ``values`` in their place (in a
        copy: ``request.POST`` itself cannot change)."""
        data = copy.copy(self.data)  # a QueryDict's copy is mutable
        for name, value in values.items():
            data[self.add_prefix(name)] = value  # type: ignore[index]
        self.data = data

    def _refuse_private_key(self, name: str) -> str:
        if name in self.private_key_in:
            raise ValidationError(PRIVATE_KEY_PASTED, code="private_key")
        return self.cleaned_data[name]

    def clean_certificate(self) -> str:
        return self._refuse_private_key("certificate")

    def clean_signature(self) -> str:
        return self._refuse_private_key("signature")

    def clean_label(self) -> str:
        return self._refuse_private_key("label")


class KeyLabelForm(ServiceForm):
    label = forms.CharField(required=False)  # length: the service's, never a silent cut


class KeySigningForm(ServiceForm):
    """The switch posts the state it turns the key to, so a repeated click changes nothing."""

    is_signing_key = forms.BooleanField(required=False)
