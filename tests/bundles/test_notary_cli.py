"""The real ``notary`` CLI takes a Gatehouse bundle's key and names it as the API does."""

import io
import os
import shutil
import subprocess
import zipfile

import pytest

from tests.conftest import require

pytestmark = [pytest.mark.django_db, pytest.mark.notary]


def test_notary_key_import_accepts_the_bundle_key_with_the_api_key_id(api, alice, tmp_path):
    require(shutil.which("notary") is not None, "the notary CLI (Debian package notary)")
    response = api(alice).post("/api/v1/bundles/", {"signing": True}, format="json")
    bundle = tmp_path / "bundle"
    (tmp_path / "bundle.zip").write_bytes(response.content)
    with zipfile.ZipFile(tmp_path / "bundle.zip") as archive:
        archive.extractall(bundle)
    api_key_id = api(alice).get("/api/v1/users/alice/keys/").json()["results"][0]["id"]

    env = {**os.environ, "NOTARY_DELEGATION_PASSPHRASE": "a-passphrase"}
    trust = str(tmp_path / "trust")
    subprocess.run(
        ["notary", "-d", trust, "key", "import", str(bundle / "key.pem")],
        env=env,
        check=True,
        capture_output=True,
    )
    listed = subprocess.run(
        ["notary", "-d", trust, "key", "list"], env=env, check=True, capture_output=True, text=True
    ).stdout
    assert api_key_id in listed
    assert "delegation" in listed


def test_openssl_verifies_the_client_certificate_against_the_ca(api, alice, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed; the cryptography check covers the chain")
    with zipfile.ZipFile(io.BytesIO(api(alice).post("/api/v1/bundles/").content)) as z:
        z.extractall(tmp_path)
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            tmp_path / "ca.pem",
            tmp_path / "cert.pem",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(": OK")
