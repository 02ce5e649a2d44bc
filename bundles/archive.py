"""The client bundle zip, laid out as UCP's was (``ca.pem``, ``cert.pem``, ``key.pem`` ...)."""

import json
import struct
import time
import zlib

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644
SCRIPT_MODE = 0o755
NOTARY_CA_NAME = "notary-ca.pem"  # the CA of Notary's certificate, for signers' tools

README = """\
Gatehouse client bundle for {username}

cert.pem is your client certificate and key.pem its private key. Gatehouse never stored
key.pem: keep it safe, it exists nowhere else.

Load the environment:   . ./env.sh   (PowerShell: .\\env.ps1, cmd.exe: env.cmd)

Its key ID, as `notary key list` shows it, is {key_id}.
{signing}"""

SIGNING = """
Sign images
-----------
Every repository your teams sign delegates two roles to your signing keys: your own role,
{role}, and targets/releases. A signature counts for your teams only in your own role:
nobody else's key is ever in it, so it says that you, and nobody else, signed.

{guide}
Rotating your key: download a new signing bundle, sign again with its key, then revoke this
key in Gatehouse. Nobody else's tags change at any step.
"""

NOT_SIGNING = """
This key is not a signing key. To sign images with it, mark it as one in Gatehouse
(My profile, or PATCH /api/v1/users/{username}/keys/<id>/ with "is_signing_key": true),
then load it into your signing tools (notary key import key.pem, or
docker trust key load key.pem). My profile shows your own signing role and the commands
that sign in it once you have a signing key.
"""

ENV_SH = """\
# Source me: . ./env.sh
if [ -n "${{BASH_SOURCE:-}}" ]; then _gatehouse_dir=$(dirname "${{BASH_SOURCE[0]}}"); \
else _gatehouse_dir=$(dirname "$0"); fi
export DOCKER_CERT_PATH="$(cd "$_gatehouse_dir" && pwd)"
export DOCKER_TLS_VERIFY=1
{host_line}{trust_line}unset _gatehouse_dir
"""

ENV_PS1 = """\
$env:DOCKER_CERT_PATH = Split-Path -Parent $MyInvocation.MyCommand.Path
$env:DOCKER_TLS_VERIFY = "1"
{host_line}{trust_line}"""

ENV_CMD = """\
@echo off
set DOCKER_CERT_PATH=%~dp0
set DOCKER_TLS_VERIFY=1
{host_line}{trust_line}"""


class StoredZip:
    """A minimal writer of uncompressed zip archives with Unix file modes.

    ``zipfile`` spends about 65 µs per entry on bookkeeping, more than the key generation
    and signing of a whole bundle; issuing bundles is a hot path (benchmarks/bundles.py),
    and nine small text files need none of its features. The format is APPNOTE 4.3: a local
    header and the data per entry, then the central directory and its end record.
    """

    VERSION = 20  # 2.0: the lowest version that knows stored entries
    UNIX = 3 << 8  # "made by" Unix, so extractors apply the file mode

    def __init__(self) -> None:
        now = time.gmtime()
        self._dos_time = (now.tm_hour << 11) | (now.tm_min << 5) | (now.tm_sec // 2)
        self._dos_date = ((now.tm_year - 1980) << 9) | (now.tm_mon << 5) | now.tm_mday
        self._body = bytearray()
        self._directory = bytearray()
        self._count = 0

    def add(self, name: str, content: str, mode: int) -> None:
        encoded_name = name.encode("ascii")
        data = content.encode("utf-8")
        crc = zlib.crc32(data)
        offset = len(self._body)
        self._body += struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            self.VERSION,
            0,
            0,
            self._dos_time,
            self._dos_date,
            crc,
            len(data),
            len(data),
            len(encoded_name),
            0,
        )
        self._body += encoded_name + data
        self._directory += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            self.UNIX | self.VERSION,
            self.VERSION,
            0,
            0,
            self._dos_time,
            self._dos_date,
            crc,
            len(data),
            len(data),
            len(encoded_name),
            0,
            0,
            0,
            0,
            (0o100000 | mode) << 16,
            offset,
        )
        self._directory += encoded_name
        self._count += 1

    def getvalue(self) -> bytes:
        end = struct.pack(
            "<IHHHHIIH",
            0x06054B50,
            0,
            0,
            self._count,
            self._count,
            len(self._directory),
            len(self._body),
            0,
        )
        return bytes(self._body + self._directory + end)


def client_bundle_zip(
    *,
    username: str,
    key_id: str,
    ca_pem: str,
    cert_pem: str,
    key_pem: str,
    public_pem: str,
    docker_host: str,
    notary_url: str = "",
    notary_ca_pem: str | None = None,
    signing_role: str | None = None,
    signing_guide: str = "",
) -> bytes:
    """The zip's bytes. ``key.pem`` is recorded with mode 0600; nothing here is kept.
    ``signing_role`` (``targets/<name>``) is the user's own role when the key signs, and
    ``signing_guide`` the commands that sign in it (``bundles.signing_guide``). The scripts
    point Docker's content trust at ``notary_url``; ``notary_ca_pem`` is the CA that signed
    its certificate, as ``notary-ca.pem``."""
    context = {
        "Name": f"gatehouse-{username}",
        "Metadata": {"Description": f"Gatehouse client bundle for {username}"},
        "Endpoints": {"docker": {"Host": docker_host, "SkipTLSVerify": False}},
    }
    archive = StoredZip()
    archive.add("ca.pem", ca_pem, PUBLIC_MODE)
    archive.add("cert.pem", cert_pem, PUBLIC_MODE)
    archive.add("key.pem", key_pem, PRIVATE_MODE)
    archive.add("cert.pub", public_pem, PUBLIC_MODE)
    if notary_ca_pem is not None:
        archive.add(NOTARY_CA_NAME, notary_ca_pem, PUBLIC_MODE)
    host, trust = docker_host, notary_url
    archive.add(
        "env.sh",
        ENV_SH.format(
            host_line=f'export DOCKER_HOST="{host}"\n' if host else "",
            trust_line=f'export DOCKER_CONTENT_TRUST_SERVER="{trust}"\n' if trust else "",
        ),
        SCRIPT_MODE,
    )
    archive.add(
        "env.ps1",
        ENV_PS1.format(
            host_line=f'$env:DOCKER_HOST = "{host}"\n' if host else "",
            trust_line=f'$env:DOCKER_CONTENT_TRUST_SERVER = "{trust}"\n' if trust else "",
        ),
        PUBLIC_MODE,
    )
    archive.add(
        "env.cmd",
        ENV_CMD.format(
            host_line=f"set DOCKER_HOST={host}\n" if host else "",
            trust_line=f"set DOCKER_CONTENT_TRUST_SERVER={trust}\n" if trust else "",
        ),
        PUBLIC_MODE,
    )
    archive.add("meta.json", json.dumps(context, indent=2) + "\n", PUBLIC_MODE)
    signing = (
        SIGNING.format(role=signing_role, guide=signing_guide)
        if signing_role
        else NOT_SIGNING.format(username=username)
    )
    archive.add(
        "README.txt", README.format(username=username, key_id=key_id, signing=signing), PUBLIC_MODE
    )
    return archive.getvalue()
