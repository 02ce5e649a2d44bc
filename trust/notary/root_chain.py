"""The root a verifying read trusts (docs/notary-protocol.md, "Reading", "Trust pinning",
"Key IDs").

``RootChain`` is the first stage of ``verifier.Verifier``: it loads a root, or each version
of a rotation chain from version 1, checks each against its own root keys and the previous
version's, anchors the chain in the caller's ``RootPin`` (or trusts it on first use), checks
the root certificates, and seals the last root once the timestamp is loaded. Everything the
rest of the read verifies hangs from that root.
"""

import base64
import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from trust.notary.checks import FileChecks
from trust.notary.errors import InvalidMetadata
from trust.notary.metadata import Root, SignedFile
from trust.notary.verified import RootPin

# A root certificate's NotBefore may lie at most this far in the future
# (docs/notary-protocol.md, "Key IDs").
NOT_BEFORE_LEEWAY = dt.timedelta(days=1)


@dataclass
class _RootState:
    file: SignedFile
    root: Root
    certificates: dict[str, x509.Certificate]
    signers: set[str] = field(default_factory=set)


class RootChain:
    """The root of one read: ``update`` with each root in turn, then ``seal``.

    ``limit`` is the size a root file may have; ``checks`` name the GUN, the time and the
    versions the caller remembers.
    """

    def __init__(self, checks: FileChecks, *, pin: RootPin | None, limit: int) -> None:
        self.checks = checks
        self.pin = pin
        self.limit = limit
        self._root: _RootState | None = None
        self._anchored = pin is None
        self._sealed = False

    @property
    def version(self) -> int:
        return self._state().root.version

    @property
    def anchored(self) -> bool:
        """True once a root is trusted: without a pin always, with a pin once one matched."""
        return self._root is not None and self._anchored

    @property
    def raw(self) -> bytes:
        """The exact bytes of the last root loaded."""
        return self._state().file.raw

    @property
    def certificates(self) -> dict[str, x509.Certificate]:
        """The last root's certificates, by the TUF key ID of the root key that holds each."""
        return self._state().certificates

    def _state(self) -> _RootState:
        if self._root is None:
            raise RuntimeError("no root loaded")
        return self._root

    def _root_certificates(self, root: Root) -> dict[str, x509.Certificate]:
        """The root role's certificates; each must be x509, named for the GUN, no CA
        (docs/notary-protocol.md, "Key IDs")."""
        invalid = self.checks.invalid
        certificates = {}
        for key_id in root.roles["root"].keyids:
            key = root.keys.get(key_id)
            if key is None or key.key_id != key_id:
                raise invalid("root", f"root key {key_id} is not in keys under its ID")
            if not key.keytype.endswith("-x509"):
                raise invalid("root", f"root key {key_id} is {key.keytype}, not x509")
            try:
                certificate = x509.load_pem_x509_certificate(
                    base64.b64decode(key.public, validate=True)
                )
            except ValueError as error:
                raise invalid("root", f"root key {key_id} holds no certificate") from error
            self._check_certificate(key_id, certificate)
            certificates[key_id] = certificate
        return certificates

    def _check_certificate(self, key_id: str, certificate: x509.Certificate) -> None:
        invalid, gun = self.checks.invalid, self.checks.gun
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        common_name = str(names[0].value) if names else ""
        wildcard = common_name.endswith("*") and gun.startswith(common_name[:-1])
        if common_name != gun and not wildcard:
            raise invalid(
                "root", f"root certificate {key_id} is for CN {common_name!r}, not this GUN"
            )
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            constraints = None
        except ValueError as error:  # e.g. a duplicated extension
            raise invalid("root", f"root certificate {key_id} is malformed") from error
        if constraints is not None and constraints.value.ca:
            raise invalid("root", f"root certificate {key_id} is a CA certificate")
        public_key = certificate.public_key()
        if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < 2048:
            raise invalid("root", f"root certificate {key_id} has an RSA key under 2048 bits")
        if isinstance(certificate.signature_hash_algorithm, hashes.SHA1):
            raise invalid("root", f"root certificate {key_id} is signed with SHA-1")

    def update(self, data: bytes) -> None:
        """Load a root; called again, the next version of a rotation chain.

        Each root must be signed by a threshold of its own root keys; a next version must
        be exactly one higher and also signed by a threshold of the previous root's root
        keys (docs/notary-protocol.md, "Reading" and "Publishing"). With a pin, the chain is
        trusted from the first root that a threshold of pinned keys signed.
        """
        checks = self.checks
        if self._sealed:
            raise RuntimeError("the root is final once the timestamp is loaded")
        if len(data) > self.limit:
            raise checks.invalid("root", f"larger than {self.limit} bytes")
        signed = checks.parse(data, "root")
        try:
            root = Root.from_signed(signed.signed)
        except InvalidMetadata as error:
            raise checks.reworded(error, "root") from error
        if root.version < 1:
            raise checks.invalid("root", f"version {root.version} is below 1")
        for name, role in root.roles.items():
            if role.threshold < 1:
                raise checks.invalid("root", f"role {name} has threshold {role.threshold}")
        certificates = self._root_certificates(root)
        own = checks.check_threshold(
            signed, root.keys, root.roles["root"].keyids, root.roles["root"].threshold
        )
        if not own:
            raise checks.invalid(
                "root", f"version {root.version} is not signed by a threshold of its root keys"
            )
        previous = self._root
        if previous is not None:
            if root.version != previous.root.version + 1:
                raise checks.invalid(
                    "root", f"version {root.version} does not follow {previous.root.version}"
                )
            if not checks.check_threshold(
                signed,
                previous.root.keys,
                previous.root.roles["root"].keyids,
                previous.root.roles["root"].threshold,
            ):
                raise checks.invalid(
                    "root",
                    f"version {root.version} is not signed by a threshold of the root keys "
                    f"of version {previous.root.version}",
                )
        if not self._anchored and self.pin is not None:
            pinned = {k for k in own if self.pin.matches(k, certificates[k])}
            self._anchored = len(pinned) >= root.roles["root"].threshold
        self._root = _RootState(signed, root, certificates, set(own))

    def seal(self) -> Root:
        """The trusted root is the last one loaded: pinned, unexpired, not rolled back."""
        state = self._root
        if state is None:
            raise RuntimeError("load the root first")
        if self._sealed:
            return state.root
        if not self._anchored:
            raise self.checks.invalid(
                "root",
                f"pin mismatch: version {state.root.version} is not signed by a threshold "
                "of the pinned root keys, nor reached from such a root by rotation",
            )
        self.checks.check_fresh(state.file, "root")
        now = self.checks.now
        valid = {
            key_id
            for key_id in state.signers
            if state.certificates[key_id].not_valid_after_utc > now
            and state.certificates[key_id].not_valid_before_utc <= now + NOT_BEFORE_LEEWAY
        }
        if len(valid) < state.root.roles["root"].threshold:
            raise self.checks.invalid(
                "root", "the root certificates that signed it are not valid now"
            )
        self._sealed = True
        return state.root
