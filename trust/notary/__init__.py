"""A native client for Notary 0.7 (TUF), on ``cryptography`` alone.

Nothing here imports Django: the package could be published on its own. The protocol facts
it relies on are written down in ``docs/notary-protocol.md``; docstrings refer to its
sections by title.
"""
