"""Repositories built in memory for the verifying reader's tests (``test_reader.py``,
``test_root_chain.py``, ``test_verifier.py``; docs/notary-protocol.md, "Reading").

``Simulator`` plays the server, like python-tuf's ``RepositorySimulator``: it signs a root,
targets and delegations with the package's own writer pieces, signs the snapshot (ecdsa)
and timestamp (ed25519) itself, and ``FakeTransport`` serves the files by path. The ``sim``
and ``teams`` fixtures (``conftest.py``) are built on it.
"""

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass, replace

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from trust.notary.errors import InvalidMetadata, NotFound
from trust.notary.keys import (
    SigningKey,
    TufKey,
    generate_ecdsa_key,
    plain_signing_key,
    public_tuf_key,
    root_signing_key,
)
from trust.notary.metadata import (
    Delegation,
    RoleKeys,
    Root,
    TargetFile,
    Targets,
    file_hashes,
    format_expires,
    sign,
)
from trust.notary.reader import Reader
from trust.notary.transport import Transport

GUN = "registry.example.com/team/app"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
FUTURE = NOW + dt.timedelta(days=30)
PAST = NOW - dt.timedelta(days=1)


@dataclass(frozen=True)
class Ed25519Signer:
    """An ed25519 key that signs like ``SigningKey`` does (method ``eddsa``;
    docs/notary-protocol.md, "Signatures")."""

    private_key: ed25519.Ed25519PrivateKey

    @property
    def public(self) -> TufKey:
        return public_tuf_key(self.private_key.public_key())

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> dict[str, str]:
        signature = base64.b64encode(self.private_key.sign(message)).decode()
        return {"keyid": self.key_id, "method": "eddsa", "sig": signature}


def _meta(raw: bytes) -> dict:
    return {"hashes": file_hashes(raw), "length": len(raw)}


class Simulator:
    """A Notary repository in memory: ``publish()`` gives the files a server would serve."""

    def __init__(self, gun: str = GUN, *, root_key: SigningKey | None = None) -> None:
        self.gun = gun
        self.root_keys = [root_key or root_signing_key(generate_ecdsa_key(), gun)]
        self.targets_key = plain_signing_key(generate_ecdsa_key())
        self.snapshot_key = plain_signing_key(generate_ecdsa_key())
        self.timestamp_key = Ed25519Signer(ed25519.Ed25519PrivateKey.generate())
        self.roots: list[bytes] = []
        self.roles: dict[str, Targets] = {"targets": Targets(expires=FUTURE, version=1)}
        self.signers: dict[str, list] = {"targets": [self.targets_key]}
        self.expires: dict[str, dt.datetime] = {}
        self.versions = {"snapshot": 1, "timestamp": 1}
        self.sign_root()

    def sign_root(self, signers: list[SigningKey] | None = None) -> None:
        """The next root version, naming ``self.root_keys``, signed by ``signers``."""
        keys = [*self.root_keys, self.targets_key, self.snapshot_key, self.timestamp_key]
        root = Root(
            keys={key.key_id: key.public for key in keys},
            roles={
                "root": RoleKeys(tuple(k.key_id for k in self.root_keys), 1),
                "targets": RoleKeys((self.targets_key.key_id,), 1),
                "snapshot": RoleKeys((self.snapshot_key.key_id,), 1),
                "timestamp": RoleKeys((self.timestamp_key.key_id,), 1),
            },
            expires=self.expires.get("root", FUTURE),
            version=len(self.roots) + 1,
        )
        self.roots.append(sign(root.to_signed(), signers or self.root_keys))

    def delegate(
        self,
        role: str,
        keys: list[SigningKey],
        *,
        paths: tuple[str, ...] = ("",),
        threshold: int = 1,
        declared_keys: list[SigningKey] | None = None,
    ) -> None:
        parent_name = role.rsplit("/", 1)[0]
        parent = self.roles[parent_name]
        named = keys if declared_keys is None else declared_keys
        self.roles[parent_name] = replace(
            parent,
            delegation_keys={**parent.delegation_keys, **{k.key_id: k.public for k in named}},
            delegations=(
                *parent.delegations,
                Delegation(role, tuple(k.key_id for k in named), threshold, paths),
            ),
        )
        self.roles[role] = Targets(expires=FUTURE, version=1)
        self.signers[role] = keys

    def add_target(self, role: str, name: str, content: bytes) -> TargetFile:
        target = TargetFile(len(content), {"sha256": base64.b64encode(sha256(content)).decode()})
        self.roles[role] = replace(
            self.roles[role], targets={**self.roles[role].targets, name: target}
        )
        return target

    def role_file(self, role: str) -> bytes:
        signed = self.roles[role].to_signed()
        if role in self.expires:
            signed["expires"] = format_expires(self.expires[role])
        return sign(signed, self.signers[role])

    def publish(self) -> dict[str, bytes]:
        files = {f"{n}.root.json": raw for n, raw in enumerate(self.roots, start=1)}
        files["root.json"] = self.roots[-1]
        meta = {"root": _meta(self.roots[-1])}
        for role in self.roles:
            raw = self.role_file(role)
            files[f"{role}.{hashlib.sha256(raw).hexdigest()}.json"] = raw
            meta[role] = _meta(raw)
        snapshot = sign(
            {
                "_type": "Snapshot",
                "expires": format_expires(self.expires.get("snapshot", FUTURE)),
                "meta": meta,
                "version": self.versions["snapshot"],
            },
            [self.snapshot_key],
        )
        files[f"snapshot.{hashlib.sha256(snapshot).hexdigest()}.json"] = snapshot
        files["timestamp.json"] = sign(
            {
                "_type": "Timestamp",
                "expires": format_expires(self.expires.get("timestamp", FUTURE)),
                "meta": {"snapshot": _meta(snapshot)},
                "version": self.versions["timestamp"],
            },
            [self.timestamp_key],  # type: ignore[list-item]
        )
        return files


def sha256(content: bytes) -> bytes:
    return hashlib.sha256(content).digest()


class FakeTransport(Transport):
    """Serves a dict of file names; 404 behaves as ``HttpTransport``'s (the size limit is
    ``Transport``'s own)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[tuple[str, str, str]] = []

    def _request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        gun: str,
        role: str,
        body: bytes | None,
        content_type: str | None,
        limit: int,
    ) -> bytes:
        self.requests.append((method, path, scope))
        data = self.files.get(path.removeprefix(f"/v2/{gun}/_trust/tuf/"))
        if data is None:
            raise NotFound("not found", gun=gun, role=role, code="METADATA_NOT_FOUND", status=404)
        return data


def read(files: dict[str, bytes], **options):
    return Reader(FakeTransport(files)).read(GUN, **options)


def refused(files: dict[str, bytes], role: str, match: str, **options) -> InvalidMetadata:
    """Reading must fail with exactly ``InvalidMetadata`` naming the GUN and ``role``."""
    with pytest.raises(InvalidMetadata, match=match) as caught:
        read(files, **options)
    assert type(caught.value) is InvalidMetadata
    assert caught.value.role == role
    assert str(caught.value).startswith(f"{GUN} {role}: ")
    return caught.value


def file_named(files: dict[str, bytes], role: str) -> str:
    (name,) = [n for n in files if n.startswith(f"{role}.") and len(n) == len(role) + 70]
    return name
