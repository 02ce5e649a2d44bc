"""A native client for Notary 0.7 (TUF), on ``cryptography`` alone.

Nothing here imports Django: the package could be published on its own. The protocol facts
it relies on are written down in ``docs/notary-protocol.md``; section numbers in docstrings
(``§3.1``) are those of the notes it was first written from, and are being replaced by
references to that document.
"""
