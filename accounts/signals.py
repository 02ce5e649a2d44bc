"""Signals that let the layers above ``accounts`` take part in its writes.

``accounts`` imports nothing from ``policy``, ``trust`` or ``bundles``; they connect receivers
here in their ``AppConfig.ready()`` instead.
"""

from django.dispatch import Signal

# Sent by ``accounts.services.team_delete`` before it changes anything, with ``sender=Team``
# and ``team=`` the team about to be deleted. Each receiver returns a list of human-readable
# strings naming what still uses the team (``"the content-trust policy (signing teams)"``,
# ``"repository registry.example.com/ci/app"``), or an empty list. Any string refuses the
# deletion (``accounts.services.TeamInUse``); a receiver that raises refuses it too.
team_delete_blockers = Signal()
