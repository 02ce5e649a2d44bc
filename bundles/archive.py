"""The client bundle zip, laid out as UCP's was (``ca.pem``, ``cert.pem``, ``key.pem`` ...)."""

import io
import json
import time
import zipfile

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644
SCRIPT_MODE = 0o755

README = """\
Gatehouse client bundle for {username}

cert.pem is your client certificate and key.pem its private key. Gatehouse never stored
key.pem: keep it safe, it exists nowhere else.

Load the environment:   . ./env.sh   (PowerShell: .\\env.ps1, cmd.exe: env.cmd)

To sign images with this key, load it into your signing tools:
    notary key import key.pem
    docker trust key load key.pem --name {username}

Then mark this key as a signing key in Gatehouse (My profile, or the API) so it is added to
the delegations of the repositories your teams sign. Its key ID is {key_id}.
"""

ENV_SH = """\
# Source me: . ./env.sh
if [ -n "${{BASH_SOURCE:-}}" ]; then _gatehouse_dir=$(dirname "${{BASH_SOURCE[0]}}"); \
else _gatehouse_dir=$(dirname "$0"); fi
export DOCKER_CERT_PATH="$(cd "$_gatehouse_dir" && pwd)"
export DOCKER_TLS_VERIFY=1
{host_line}unset _gatehouse_dir
"""

ENV_PS1 = """\
$env:DOCKER_CERT_PATH = Split-Path -Parent $MyInvocation.MyCommand.Path
$env:DOCKER_TLS_VERIFY = "1"
{host_line}"""

ENV_CMD = """\
@echo off
set DOCKER_CERT_PATH=%~dp0
set DOCKER_TLS_VERIFY=1
{host_line}"""


def _add(archive: zipfile.ZipFile, name: str, content: str, mode: int) -> None:
    info = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
    info.external_attr = (0o100000 | mode) << 16
    info.create_system = 3  # Unix, so unzip honours the file mode
    info.compress_type = zipfile.ZIP_STORED  # tiny files: deflate costs more than it saves
    archive.writestr(info, content)


def client_bundle_zip(
    *,
    username: str,
    key_id: str,
    ca_pem: str,
    cert_pem: str,
    key_pem: str,
    public_pem: str,
    docker_host: str,
) -> bytes:
    """The zip's bytes. ``key.pem`` is recorded with mode 0600; nothing here is kept."""
    context = {
        "Name": f"gatehouse-{username}",
        "Metadata": {"Description": f"Gatehouse client bundle for {username}"},
        "Endpoints": {"docker": {"Host": docker_host, "SkipTLSVerify": False}},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _add(archive, "ca.pem", ca_pem, PUBLIC_MODE)
        _add(archive, "cert.pem", cert_pem, PUBLIC_MODE)
        _add(archive, "key.pem", key_pem, PRIVATE_MODE)
        _add(archive, "cert.pub", public_pem, PUBLIC_MODE)
        _add(
            archive,
            "env.sh",
            ENV_SH.format(host_line=f'export DOCKER_HOST="{docker_host}"\n' if docker_host else ""),
            SCRIPT_MODE,
        )
        _add(
            archive,
            "env.ps1",
            ENV_PS1.format(
                host_line=f'$env:DOCKER_HOST = "{docker_host}"\n' if docker_host else ""
            ),
            PUBLIC_MODE,
        )
        _add(
            archive,
            "env.cmd",
            ENV_CMD.format(host_line=f"set DOCKER_HOST={docker_host}\n" if docker_host else ""),
            PUBLIC_MODE,
        )
        _add(archive, "meta.json", json.dumps(context, indent=2) + "\n", PUBLIC_MODE)
        _add(archive, "README.txt", README.format(username=username, key_id=key_id), PUBLIC_MODE)
    return buffer.getvalue()
