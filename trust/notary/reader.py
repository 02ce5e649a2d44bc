"""A verifying reader of Notary trust data, in the style of python-tuf's ngclient.

``Reader`` does the I/O of a read: it fetches the files that docs/notary-protocol.md,
"Reading", lists through a ``Transport`` and feeds them to a ``verifier.Verifier``, the pure
state machine that checks each against what it already trusts. What a read is given and
gives back (``RootPin``, ``ReaderLimits``, ``VerifiedRepository``) is in ``verified.py``.

Failures come in the package's two families (``errors.py``). Data that does not verify
raises ``InvalidMetadata`` naming the GUN and the role; transport errors pass through
(``NotaryUnavailable``: retry; ``NotFound``/``NotaryRejected``: do not). Only an invalid
delegated role is not fatal: it is skipped, and the result carries a warning ("Reading").
"""

from collections.abc import Mapping

from trust.notary.checks import reason
from trust.notary.errors import InvalidMetadata, NotaryRejected, NotFound
from trust.notary.metadata import TARGETS
from trust.notary.transport import Transport, repository_scope, trust_path
from trust.notary.verified import ReaderLimits, RootPin, VerifiedRepository
from trust.notary.verifier import Verifier


class Reader:
    """Fetches a GUN's trust data as ``notary list`` does and verifies it.

    Requests: ``root.json`` (plus ``1.root.json`` … ``N.root.json`` when a pinned key was
    rotated out), ``timestamp.json``, ``snapshot.<sha256>.json``, ``targets.<sha256>.json``
    and ``<role>.<sha256>.json`` per delegated role, all with ``pull`` scope
    (docs/notary-protocol.md, "Reading" and "Token authentication").
    """

    def __init__(self, transport: Transport, *, limits: ReaderLimits | None = None) -> None:
        self.transport = transport
        self.limits = limits or ReaderLimits()

    def read(
        self,
        gun: str,
        *,
        pinned_root: RootPin | None = None,
        known_versions: Mapping[str, int] | None = None,
    ) -> VerifiedRepository:
        """Verify the GUN's targets and delegations; see ``VerifiedRepository``.

        Raises ``InvalidMetadata`` when the data does not verify, ``NotFound`` when the GUN
        has no trust data, and ``NotaryUnavailable`` when the server cannot be reached.
        """

        def verifier() -> Verifier:
            return Verifier(gun, pin=pinned_root, known_versions=known_versions, limits=self.limits)

        try:
            current = self._get(gun, "root.json", "root", self.limits.root_length)
        except NotFound as error:
            raise NotFound(
                "the repository has no trust data on this server",
                gun=gun,
                role="root",
                code=error.code,
                status=error.status,
            ) from error
        trusted = verifier()
        trusted.update_root(current)
        if not trusted.root_anchored and trusted.root_version > 1:
            trusted = self._walk_roots(gun, verifier(), current, trusted.root_version)

        trusted.update_timestamp(
            self._get(gun, "timestamp.json", "timestamp", self.limits.timestamp_length)
        )
        trusted.update_snapshot(self._by_hash(gun, trusted, "snapshot"))
        trusted.update_targets(self._by_hash(gun, trusted, TARGETS))

        pending = list(reversed(trusted.children(TARGETS))) if self.limits.max_depth != 0 else []
        visited = 0
        while pending:
            role = pending.pop()
            if visited == self.limits.max_delegations:
                trusted.skip_delegation(
                    role, f"not read: over {self.limits.max_delegations} delegated roles"
                )
                continue
            visited += 1
            try:
                data = self._by_hash(gun, trusted, role)
            except InvalidMetadata as error:
                trusted.skip_delegation(role, reason(error))
                continue
            except NotFound:
                # The server can lose a file its snapshot names (it stores what it was
                # sent, but names the hash of its own re-encoding): that role cannot be
                # read, so it cannot count; the others still can.
                trusted.skip_delegation(
                    role, "the server does not have the file its snapshot names"
                )
                continue
            depth = role.count("/")
            below = self.limits.max_depth is None or depth < self.limits.max_depth
            if trusted.update_delegation(role, data) and below:
                pending.extend(reversed(trusted.children(role)))
        return trusted.result()

    def _walk_roots(self, gun: str, walker: Verifier, current: bytes, version: int) -> Verifier:
        """Root rotation catch-up from version 1 to the current ``version``
        (docs/notary-protocol.md, "Reading")."""
        if version > self.limits.max_root_versions:
            raise InvalidMetadata(
                f"pin mismatch, and version {version} is beyond the "
                f"{self.limits.max_root_versions} root versions a reader walks",
                gun=gun,
                role="root",
            )
        for number in range(1, version + 1):
            walker.update_root(
                self._get(gun, f"{number}.root.json", "root", self.limits.root_length)
            )
        if walker.root_bytes != current:
            raise InvalidMetadata(
                f"{version}.root.json differs from root.json", gun=gun, role="root"
            )
        return walker

    def _by_hash(self, gun: str, trusted: Verifier, role: str) -> bytes:
        name, length = trusted.location(role)
        return self._get(gun, name, role, length)

    def _get(self, gun: str, name: str, role: str, limit: int) -> bytes:
        """One GET; a body over ``limit`` is data that does not verify, not a server error."""
        try:
            return self.transport.request(
                "GET",
                trust_path(gun, "tuf", name),
                scope=repository_scope(gun, "pull"),
                gun=gun,
                role=role,
                limit=limit,
            )
        except NotaryRejected as error:
            if error.code != "TOO_LARGE":
                raise
            raise InvalidMetadata(f"larger than {limit} bytes", gun=gun, role=role) from error
