"""The checks every file of a verifying read goes through (docs/notary-protocol.md,
"Reading", "Signatures").

``FileChecks`` parses a file and checks its length and hashes against what its parent
names, a threshold of its signatures, its expiry and its version against the one the
caller remembers. Each failure is an ``InvalidMetadata`` that names the GUN and the role
(``errors.py``). Shared by the root chain (``root_chain.py``) and the rest of the read
(``verifier.py``).
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from trust.notary.errors import InvalidMetadata, NotaryError
from trust.notary.keys import TufKey
from trust.notary.metadata import FileMeta, SignedFile, file_hashes, parse_file


@dataclass(frozen=True)
class FileChecks:
    """The checks of one read of ``gun``, at ``now``; ``known_versions`` (role -> version)
    are the versions the caller saw before, which no file may roll back."""

    gun: str
    now: dt.datetime
    known_versions: Mapping[str, int]

    def invalid(self, role: str, message: str) -> InvalidMetadata:
        return InvalidMetadata(message, gun=self.gun, role=role)

    def parse(self, data: bytes, role: str) -> SignedFile:
        try:
            return parse_file(data, role=role, gun=self.gun)
        except InvalidMetadata as error:  # deep nesting included (parse_file)
            raise self.reworded(error, role) from error

    def reworded(self, error: InvalidMetadata, role: str) -> InvalidMetadata:
        """The metadata parsers know the role but not the GUN: name both (errors.py)."""
        return error if error.gun else self.invalid(role, reason(error))

    @staticmethod
    def check_threshold(
        signed: SignedFile, keys: dict[str, TufKey], keyids: tuple[str, ...], threshold: int
    ) -> frozenset[str]:
        """The distinct key IDs that validly signed, or nothing if under threshold
        (docs/notary-protocol.md, "Signatures")."""
        signers = frozenset(signed.signed_by(keys, list(keyids)))
        return signers if threshold >= 1 and len(signers) >= threshold else frozenset()

    def check_fresh(self, signed: SignedFile, role: str) -> None:
        """Not expired, and not older than the version the caller remembers
        (docs/notary-protocol.md, "Reading")."""
        try:
            expires = signed.expires
        except InvalidMetadata as error:
            raise self.reworded(error, role) from error
        if expires <= self.now:
            raise self.invalid(role, f"expired at {expires.isoformat()}")
        known = self.known_versions.get(role, 0)
        if signed.version < known:
            raise self.invalid(
                role, f"rollback: version {signed.version} is older than the known {known}"
            )

    def check_meta(self, data: bytes, meta: FileMeta, role: str, named_by: str) -> None:
        """Length and every sha256/sha512 given in the parent's ``meta``
        (docs/notary-protocol.md, "Reading")."""
        if len(data) != meta.length:
            raise self.invalid(role, f"{len(data)} bytes where the {named_by} names {meta.length}")
        actual = file_hashes(data)
        checked = [name for name in ("sha256", "sha512") if name in meta.hashes]
        if not checked:
            raise self.invalid(role, f"the {named_by} gives no sha256 or sha512 for it")
        for name in checked:
            if actual[name] != meta.hashes[name]:
                raise self.invalid(
                    role, f"{name} does not match the {named_by} (tampered or stale file)"
                )


def reason(error: NotaryError) -> str:
    """An error's message without the ``<gun> <role>: `` prefix ``NotaryError`` adds."""
    where = " ".join(part for part in (error.gun, error.role) if part)
    return str(error).removeprefix(f"{where}: ") if where else str(error)
