"""Gatehouse as notary-server's token service: the ``/auth/token`` endpoint (``views``),
the tokens it issues (``tokens``) and the rotation of the key that signs them (``keys``)."""
