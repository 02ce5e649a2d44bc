"""Signals that let ``policy``, which sits above ``trust``, take part in trust's work.

``trust`` imports nothing from ``policy``; ``policy`` connects receivers here in its
``AppConfig.ready()``.
"""

from django.dispatch import Signal

# Sent by ``trust.services.repositories`` when a repository is created or adopted without
# signer teams, with ``sender=Repository``. Each receiver returns a list of teams; their
# union, in order, signs the new repository.
default_signer_teams_wanted = Signal()

# Sent, with ``sender=`` the model that changed, in the transaction of a change to
# something evaluations read from ``trust``: a replay found, a root pin changed.
trust_inputs_changed = Signal()
