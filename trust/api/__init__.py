"""The REST API of ``trust``: ``repositories`` (repositories and their jobs) and ``root``
(the root key and the root pins)."""
