"""Two families of failure, as python-tuf keeps them apart.

*Unavailable*: the server could not be reached or failed (connection refused, timeouts,
5xx). Worth retrying later. *Rejected*: the server refused the request (4xx, with its error
code), or the data it served does not verify. Retrying the same thing cannot help.
"""


class NotaryError(Exception):
    """Anything that went wrong talking to Notary. Messages name the GUN and the role."""

    def __init__(self, message: str, *, gun: str = "", role: str = "") -> None:
        self.gun = gun
        self.role = role
        where = " ".join(part for part in (gun, role) if part)
        super().__init__(f"{where}: {message}" if where else message)


class NotaryUnavailable(NotaryError):
    """The server is down, slow or failing (5xx): retry later."""


class NotaryRejected(NotaryError):
    """The server refused the request (4xx); ``code`` is its error code, e.g. ``VERSION``."""

    def __init__(
        self, message: str, *, gun: str = "", role: str = "", code: str = "", status: int = 0
    ) -> None:
        self.code = code
        self.status = status
        super().__init__(f"{code}: {message}" if code else message, gun=gun, role=role)


class NotFound(NotaryRejected):
    """The GUN, role or file does not exist on the server (404 ``METADATA_NOT_FOUND``)."""


class VersionConflict(NotaryRejected):
    """A stored version is as new as the one sent (400 ``VERSION``): someone published first."""


class InvalidMetadata(NotaryError):
    """Data that does not verify: bad signatures, wrong hashes, expired, rolled back, too big."""


class RepositoryExists(NotaryRejected):
    """The GUN already has trust data: initialising it again would take it over."""
