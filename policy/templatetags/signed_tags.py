"""A repository's signed tags, each with the policy's verdict now, as a card the
repository's page (``trust``) puts on itself: ``trust`` lies below ``policy`` and cannot
evaluate, so its template loads this tag instead of its view importing ours."""

from django import template

from policy.explanations import repository_signed_tags
from policy.selectors import policy_get
from trust.models import Repository

register = template.Library()


@register.inclusion_tag("policy/includes/signed_tags.html", takes_context=True)
def signed_tags_card(context: template.Context, repository: Repository) -> dict[str, object]:
    return {
        "repository": repository,
        "signed": repository_signed_tags(viewer=context["request"].user, repository=repository),
        "policy_enabled": policy_get().enabled,
    }
