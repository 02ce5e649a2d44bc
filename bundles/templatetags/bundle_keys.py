"""The key card and the bundle form, as tags that other apps' pages put on themselves.

My profile and each user's page (``accounts``) show a person's keys; ``accounts`` knows
nothing of bundles, so its templates load these tags instead of its views importing ours.
"""

from django import template
from django.utils import timezone

from accounts.models import User
from bundles import selectors, services, signing_guide
from bundles.forms import BundleForm, KeyRegisterForm
from bundles.views import MARKED_SIGNING_KEY

register = template.Library()


def _page(context: template.Context) -> dict[str, object]:
    """What every included form needs from the page: the request and its CSRF token."""
    return {"request": context["request"], "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("bundles/keys.html", takes_context=True)
def key_card(context: template.Context, owner: User, register_url: str) -> dict[str, object]:
    """``owner``'s keys as the viewer may see them, with the forms that act on them."""
    keys = selectors.public_key_list(viewer=context["request"].user, owner=owner)
    marked = context["request"].session.get(MARKED_SIGNING_KEY)
    return {
        **_page(context),
        "keys": keys,
        # The key just marked signing, while it still signs: the card says where it joined.
        "marked_key": keys.filter(pk=marked, is_signing_key=True, revoked_at__isnull=True).first()
        if marked
        else None,
        # The nonce is the viewer's: whoever registers proves they hold the key.
        "key_register_form": KeyRegisterForm(
            nonce=services.registration_challenge_issue(user=context["request"].user).nonce
        ),
        "key_register_url": register_url,
        "signing_role": selectors.signing_role_of(owner),
        # Expiry is judged against one instant, so every row of the page agrees.
        "now": timezone.now(),
    }


@register.inclusion_tag("bundles/bundle.html", takes_context=True)
def bundle_card(context: template.Context) -> dict[str, object]:
    """The download form: only owners download bundles, so it goes on My profile alone."""
    return {**_page(context), "bundle_form": BundleForm()}


@register.inclusion_tag("bundles/sign_guide.html")
def sign_guide(user: User) -> dict[str, object]:
    """The "Sign images" guide: ``user``'s commands on this installation, once they have a
    signing role (their first signing key gives them one)."""
    role = selectors.signing_role_of(user)
    if role is None:
        return {"steps": ()}
    steps = signing_guide.guide_steps(
        username=user.username, role=role.role, site=signing_guide.installation()
    )
    return {"steps": steps, "role": role.role}
