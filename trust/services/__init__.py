"""Writes of the ``trust`` app, one module per concern.

- ``jobs``: the generic job engine (queue, claim with a lease, run, retry, finish).
- ``runners``: the Notary work each job kind does (initialise, adopt, sync, delete).
- ``sync_requests``: asking for syncs, and following identity changes to them.
- ``repositories``: creating, bulk-creating, adopting, re-teaming and deleting repositories.
- ``drift``: the periodic comparison of Notary with what it should hold.
- ``root_key``: making and exporting the root key.

The Notary token service and its key rotation live in ``trust.token_service``.
"""
