"""Which repositories a signing key joined, as a tag for the key card that ``bundles`` draws:
``bundles`` knows nothing of repositories, so its template loads this instead."""

from django import template

from bundles.models import PublicKey
from trust import selectors

register = template.Library()


@register.inclusion_tag("trust/includes/key_repositories.html", takes_context=True)
def key_repositories(context: template.Context, key: PublicKey) -> dict[str, object]:
    """``key``'s repositories: in Notary, or pending with the job that follows it live."""
    memberships = selectors.key_memberships(key)
    return {
        "request": context["request"],
        "key": key,
        "memberships": memberships,
        "waiting": [m.job for m in memberships if m.job and m.job.status not in m.job.FINISHED],
    }
