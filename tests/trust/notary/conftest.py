"""Fixtures of the Notary library's tests: a local HTTP server for the transports
(``local_http.py``) and in-memory repositories for the reader (``simulator.py``)."""

import pytest

from tests.trust.notary.local_http import serving
from tests.trust.notary.simulator import Simulator
from trust.notary.http_transport import HttpTransport
from trust.notary.keys import generate_ecdsa_key, plain_signing_key


@pytest.fixture(scope="module")
def server():
    with serving() as httpd:
        yield httpd


@pytest.fixture
def transport(server):
    return HttpTransport(f"http://127.0.0.1:{server.server_address[1]}", timeout=5)


@pytest.fixture
def sim() -> Simulator:
    return Simulator()


@pytest.fixture
def teams(sim):
    """``targets/releases`` (two keys) and ``targets/ci`` (one key, ``ci/`` only)."""
    releases = [plain_signing_key(generate_ecdsa_key()) for _ in range(2)]
    ci = plain_signing_key(generate_ecdsa_key())
    sim.delegate("targets/releases", releases)
    sim.delegate("targets/ci", [ci], paths=("ci/",))
    sim.add_target("targets/releases", "v1.0", b"release one")
    sim.add_target("targets/ci", "ci/build-7", b"build seven")
    sim.add_target("targets", "v1.0", b"old top-level")
    return {"releases": releases, "ci": ci}
