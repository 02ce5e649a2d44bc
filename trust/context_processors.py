"""What every console page needs from content trust: the root-key backup warning."""

from django.http import HttpRequest

from trust import selectors


def root_key_warning(request: HttpRequest) -> dict[str, object]:
    """``root_key_unexported`` for admins, once the root key exists and until it has been
    exported once (before it exists there is nothing to export).

    A callable, so its queries run only when a page shows the banner (the template calls
    it); others, and the API, never pay for it.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_admin:
        return {}
    return {"root_key_unexported": selectors.root_key_awaits_export}
