"""A native client for Notary 0.7 (TUF), on ``cryptography`` alone.

Nothing here imports Django: the package could be published on its own. Section numbers in
docstrings (``§3.1``) refer to ``shared/docs/notary-wire.md``, the protocol fact sheet.
"""
