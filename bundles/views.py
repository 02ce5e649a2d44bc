"""Console pages for client bundles and the public keys on users' accounts.

The keys are listed on My profile and, for admins, on each user's page, through the tags in
``bundles/templatetags/bundle_keys.py``. Each action posts here and goes back
to the page it came from; a failed action changes nothing and says why in a message, except
a failed registration, which shows its form again so the pasted certificate is not lost
(unless it holds a private key: that is never shown again).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.models import User
from accounts.selectors import user_list
from accounts.typing import AuthenticatedHttpRequest
from bundles import selectors, services
from bundles.api import zip_response
from bundles.forms import BundleForm, KeyLabelForm, KeyRegisterForm, KeySigningForm
from bundles.models import PublicKey
from gatehouse.forms import ServiceForm


def _visible_key(request: AuthenticatedHttpRequest, key_id: str) -> PublicKey:
    """A key the viewer may see; any other key is a 404, as if it did not exist."""
    owner = get_object_or_404(user_list(viewer=request.user), public_keys__id=key_id)
    return get_object_or_404(selectors.public_key_list(viewer=request.user, owner=owner), pk=key_id)


def _owner_page(request: HttpRequest, owner: User) -> str:
    if owner.pk == request.user.pk:
        return reverse("profile")
    return reverse("users:detail", args=[owner.username])


def _back(request: HttpRequest, key: PublicKey) -> HttpResponse:
    """Back to the page the action came from, if ``next`` names one of ours; else the owner's."""
    target = request.POST.get("next", "")
    if not target.startswith("/") or not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        # Only a path: redirect() would take any other text for a view's name to reverse.
        target = _owner_page(request, key.user)
    return redirect(target)


# The key last marked signing in this session: the page it lands on says where it joined.
MARKED_SIGNING_KEY = "bundles.marked_signing_key"


def _remember_marked(request: HttpRequest, key: PublicKey) -> None:
    if key.is_signing_key:
        request.session[MARKED_SIGNING_KEY] = key.id


def _short(key: PublicKey) -> str:
    return key.id[:12]


def _named(key: PublicKey) -> str:
    """``1a2b3c4d5e6f “laptop”``, or the key ID alone when it has no label."""
    return f"{_short(key)} “{key.label}”" if key.label else _short(key)


def _report(request: HttpRequest, form: ServiceForm, failed: str) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, f"{failed}: {error}")


@require_POST
@login_required
def bundle_download(request: AuthenticatedHttpRequest) -> HttpResponse:
    """A fresh keypair on every download: Gatehouse keeps the public key, the zip has key.pem."""
    form = BundleForm(request.POST)
    if form.is_valid():
        try:
            bundle = services.bundle_issue(
                user=request.user,
                label=form.cleaned_data["label"],
                signing=form.cleaned_data["signing"],
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            # Shown on the next page the user loads, which then lists the new key.
            _remember_marked(request, bundle.key)
            messages.success(
                request,
                f"Client bundle downloaded with the new key {_short(bundle.key)} "
                f"“{bundle.key.label}”. Its key.pem exists only in that download.",
            )
            return zip_response(bundle, username=request.user.username)
    _report(request, form, "No bundle was made")
    return redirect("profile")


@login_required
def key_register(request: AuthenticatedHttpRequest, username: str | None = None) -> HttpResponse:
    """Register a certificate on your own account (``/profile/``) or, for admins, on a user's."""
    if username is None:
        owner, back_url = request.user, reverse("profile")
    else:
        owner = get_object_or_404(user_list(viewer=request.user), username=username)
        back_url = reverse("users:detail", args=[owner.username])
    if request.method != "POST":
        form = KeyRegisterForm(nonce=_new_nonce(request))
    else:
        form = KeyRegisterForm(request.POST)
        if form.is_valid():
            try:
                key = services.public_key_register(
                    actor=request.user, user=owner, **form.cleaned_data
                )
            except ValidationError as error:
                form.add_service_error(error)
            except services.KeyAlreadyRegistered as error:
                form.add_error("certificate", str(error))
            else:
                _remember_marked(request, key)
                messages.success(request, f"Certificate registered as key {_named(key)}.")
                return redirect(back_url)
        # The nonce shown stays while it can still be used, so a signature made for it holds.
        posted = str(request.POST.get("nonce", ""))
        if services.registration_challenge_valid(user=request.user, nonce=posted):
            form.show_nonce(posted)
        else:
            form.show_nonce(_new_nonce(request))
    return render(
        request,
        "bundles/register.html",
        {"owner": owner, "form": form, "back_url": back_url, "from_profile": username is None},
    )


def _new_nonce(request: AuthenticatedHttpRequest) -> str:
    return services.registration_challenge_issue(user=request.user).nonce


@require_POST
@login_required
def key_label(request: AuthenticatedHttpRequest, key_id: str) -> HttpResponse:
    key = _visible_key(request, key_id)
    form = KeyLabelForm(request.POST)
    if form.is_valid():
        try:
            key = services.public_key_update(
                actor=request.user, key=key, label=form.cleaned_data["label"]
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            if key.label:
                messages.success(request, f"Key {_short(key)} is now labelled “{key.label}”.")
            else:
                messages.success(request, f"Key {_short(key)} no longer has a label.")
            return _back(request, key)
    _report(request, form, f"Label of key {_short(key)} not changed")
    return _back(request, key)


@require_POST
@login_required
def key_signing(request: AuthenticatedHttpRequest, key_id: str) -> HttpResponse:
    key = _visible_key(request, key_id)
    form = KeySigningForm(request.POST)
    if form.is_valid():
        try:
            key = services.public_key_update(
                actor=request.user, key=key, is_signing_key=form.cleaned_data["is_signing_key"]
            )
        except ValidationError as error:
            form.add_service_error(error)
        else:
            state = "now a signing key" if key.is_signing_key else "no longer a signing key"
            _remember_marked(request, key)
            messages.success(request, f"Key {_short(key)} is {state}.")
            return _back(request, key)
    _report(request, form, f"Key {_short(key)} not changed")
    return _back(request, key)


@require_POST
@login_required
def key_revoke(request: AuthenticatedHttpRequest, key_id: str) -> HttpResponse:
    key = services.public_key_revoke(actor=request.user, key=_visible_key(request, key_id))
    messages.success(request, f"Key {_short(key)} revoked. It can never sign again.")
    return _back(request, key)
