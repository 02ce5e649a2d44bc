"""Repository initialisation: the native Notary client against the ``notary`` CLI and the floor.

For each setup, in one run against the same server: our ``NotaryClient`` initialises N
repositories with two delegations each (root + targets + ``targets/releases`` +
``targets/ci``, snapshot managed by the server: 3 requests), and the CLI sequence (``init``,
``publish``, ``key rotate <gun> snapshot -r``, two ``delegation add -p … --all-paths``)
builds N others, interleaved repository by repository so drift hits both alike. The floor is
the server's own time for those 3 requests: the same requests, bodies built before the clock
starts, sent over a bare ``http.client`` connection. Setups:

* development: notary-server alone, ``local`` trust and ``memory`` storage (never run in
  parallel: it crashes under concurrent key creation; docs/notary-protocol.md,
  "notary-server's surprises");
* production: notary-signer + notary-server on PostgreSQL (docs/deployment.md §7); then the
  native client alone with 8 repositories in flight (threads sharing one ``HttpTransport``).

Client CPU is ``time.process_time()`` of this process only (the servers and the CLI are
other processes). Needs notary (Debian package) and PostgreSQL (the local server, else a
private cluster). Run: ``.venv/bin/python benchmarks/notary_init.py [N]`` (default 30).
"""

import http.client
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from devtools.notary import LOCAL_POSTGRES_URL, NotaryStack, postgres_answers  # noqa: E402
from trust.notary import keys  # noqa: E402
from trust.notary.client import NotaryClient  # noqa: E402
from trust.notary.http_transport import HttpTransport  # noqa: E402
from trust.notary.transport import Transport  # noqa: E402

RELEASES, BOB = "targets/releases", "targets/bob"  # bob signs in a role of his own
IN_FLIGHT = 8
CLI_ENV = {
    **os.environ,
    "NOTARY_ROOT_PASSPHRASE": "bench-root",
    "NOTARY_TARGETS_PASSPHRASE": "bench-targets",
    "NOTARY_SNAPSHOT_PASSPHRASE": "bench-snapshot",
    "NOTARY_DELEGATION_PASSPHRASE": "bench-delegation",
}


def delegate_certificate(name: str) -> x509.Certificate:
    """A delegate's self-signed ECDSA P-256 certificate, as ``notary delegation add`` takes."""
    import datetime as dt

    private_key = keys.generate_ecdsa_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(private_key, hashes.SHA256())
    )


class TimedTransport(Transport):
    """The floor: a bare keep-alive ``http.client`` connection that times only the round
    trips. ``NotaryClient`` builds each body before calling ``request``, so what is timed is
    sending, the server's work, and reading the answer."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self._connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.seconds = 0.0
        self.requests_sent = 0

    def _request(self, method, path, *, scope, gun, role, body, content_type, limit):
        headers = {"Content-Type": content_type} if content_type else {}
        started = time.perf_counter()
        self._connection.request(method, path, body=body, headers=headers)
        response = self._connection.getresponse()
        payload = response.read()
        self.seconds += time.perf_counter() - started
        self.requests_sent += 1
        if not 200 <= response.status < 300:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:200]!r}")
        return payload


@dataclass
class Figures:
    repositories: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    requests: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def ms(self) -> float:
        return 1000 * self.seconds / self.repositories

    def cpu_ms(self) -> float:
        return 1000 * self.cpu_seconds / self.repositories

    def requests_each(self) -> float:
        return self.requests / self.repositories


class Workload:
    """Keys made once: the owner's root and targets keys, two delegates' certificates."""

    def __init__(self, directory: Path) -> None:
        self.root_key = keys.generate_ecdsa_key()
        self.targets_key = keys.plain_signing_key(keys.generate_ecdsa_key())
        self.custodian = keys.plain_signing_key(keys.generate_ecdsa_key())
        self.certificates = [delegate_certificate(name) for name in ("alice", "bob", "carol")]
        self.cert_files = []
        for index, certificate in enumerate(self.certificates[:2]):
            path = directory / f"delegate-{index}.crt"
            path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
            self.cert_files.append(path)
        self.delegations = {
            RELEASES: [keys.certificate_tuf_key(self.certificates[0])],
            BOB: [keys.certificate_tuf_key(self.certificates[1])],
        }

    def initialize(self, client: NotaryClient, gun: str):
        """What a caller does per repository: a root certificate for the GUN, then init."""
        return client.initialize(
            gun,
            root_key=keys.root_signing_key(self.root_key, gun),
            targets_key=self.targets_key,
            delegations=self.delegations,
        )


def new_gun() -> str:
    return f"bench.gatehouse/{uuid.uuid4().hex}"


def run_cli(trust_dir: Path, url: str, workload: Workload, gun: str) -> None:
    steps = [
        ("init", gun),
        ("publish", gun),
        ("key", "rotate", gun, "snapshot", "-r"),
        ("delegation", "add", "-p", gun, RELEASES, str(workload.cert_files[0]), "--all-paths"),
        ("delegation", "add", "-p", gun, BOB, str(workload.cert_files[1]), "--all-paths"),
    ]
    for step in steps:
        subprocess.run(
            ["notary", "-d", str(trust_dir), "-s", url, *step],
            env=CLI_ENV,
            capture_output=True,
            check=True,
        )


def sequential(stack: NotaryStack, workload: Workload, count: int, scratch: Path) -> dict:
    """Client, floor and CLI, one repository each per round."""
    transport = HttpTransport(stack.url)
    client = NotaryClient(transport)
    timed = TimedTransport(stack.url)
    floor_client = NotaryClient(timed)
    trust_dir = scratch / f"cli-{uuid.uuid4().hex[:8]}"
    native, floor, cli = Figures(), Figures(), Figures()
    # Warm-up, not counted: connections, the CLI's root key, the server's caches.
    workload.initialize(client, new_gun())
    workload.initialize(floor_client, new_gun())
    run_cli(trust_dir, stack.url, workload, new_gun())
    changes = Figures()
    for _ in range(count):
        gun = new_gun()
        sent, cpu, started = transport.requests_sent, time.process_time(), time.perf_counter()
        state = workload.initialize(client, gun)
        native.seconds += time.perf_counter() - started
        native.cpu_seconds += time.process_time() - cpu
        native.requests += transport.requests_sent - sent
        native.repositories += 1

        # A membership change with the state known: carol joins, with a role of her own and
        # her key in targets/releases.
        sent, started = transport.requests_sent, time.perf_counter()
        client.set_delegations(
            gun,
            {
                **workload.delegations,
                RELEASES: [*workload.delegations[RELEASES], third(workload)],
                "targets/carol": [third(workload)],
            },
            targets_key=workload.targets_key,
            custodian=workload.custodian,
            state=state,
        )
        changes.seconds += time.perf_counter() - started
        changes.requests += transport.requests_sent - sent
        changes.repositories += 1

        seconds, sent = timed.seconds, timed.requests_sent
        workload.initialize(floor_client, new_gun())
        floor.seconds += timed.seconds - seconds
        floor.requests += timed.requests_sent - sent
        floor.repositories += 1

        started = time.perf_counter()
        run_cli(trust_dir, stack.url, workload, new_gun())
        cli.seconds += time.perf_counter() - started
        cli.repositories += 1
    return {"native": native, "floor": floor, "cli": cli, "change": changes}


def third(workload: Workload):
    return keys.certificate_tuf_key(workload.certificates[2])


def in_flight(stack: NotaryStack, workload: Workload, count: int) -> Figures:
    """The native client alone, ``IN_FLIGHT`` repositories at a time, one shared transport."""
    transport = HttpTransport(stack.url, pool_size=IN_FLIGHT)
    client = NotaryClient(transport)
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        list(pool.map(lambda _: workload.initialize(client, new_gun()), range(IN_FLIGHT)))
        sent, cpu, started = transport.requests_sent, time.process_time(), time.perf_counter()
        list(pool.map(lambda _: workload.initialize(client, new_gun()), range(count)))
        seconds = time.perf_counter() - started
    return Figures(count, seconds, time.process_time() - cpu, transport.requests_sent - sent)


def with_stack(stack: NotaryStack, work):
    try:
        stack.start()
        result = work(stack)
        if not stack.alive():
            raise RuntimeError(f"a notary process died:\n{stack.log_tail()}")
        return result
    finally:
        stack.discard()


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    postgres = LOCAL_POSTGRES_URL if postgres_answers(LOCAL_POSTGRES_URL) else None
    with tempfile.TemporaryDirectory(prefix="notary-bench-") as scratch_name:
        scratch = Path(scratch_name)
        workload = Workload(scratch)
        total = time.perf_counter()
        development = with_stack(
            NotaryStack.development(), lambda s: sequential(s, workload, count, scratch)
        )

        def production_work(stack):
            figures = sequential(stack, workload, count, scratch)
            figures["parallel"] = in_flight(stack, workload, 8 * count // 3)
            return figures

        production = with_stack(NotaryStack.ephemeral(postgres), production_work)
        total = time.perf_counter() - total

    print(f"\nNotary repository initialisation, N={count} per column, {os.cpu_count()} CPUs")
    header = (
        f"{'setup':<34}{'ms/repo':>9}{'CPU ms':>8}{'req/repo':>9}"
        f"{'CLI ms':>8}{'CLI/ours':>9}{'floor ms':>9}{'ours/floor':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, figures in (("development (local, memory)", development),
                          ("production (signer, PostgreSQL)", production)):  # fmt: skip
        native, cli, floor = figures["native"], figures["cli"], figures["floor"]
        print(
            f"{name:<34}{native.ms():>9.2f}{native.cpu_ms():>8.2f}{native.requests_each():>9.1f}"
            f"{cli.ms():>8.1f}{cli.ms() / native.ms():>8.1f}x{floor.ms():>9.2f}"
            f"{native.ms() / floor.ms():>11.3f}"
        )
    parallel = production["parallel"]
    print(
        f"{'production, 8 in flight':<34}{parallel.ms():>9.2f}{parallel.cpu_ms():>8.2f}"
        f"{parallel.requests_each():>9.1f}   ({parallel.repositories} repositories, "
        f"{parallel.seconds:.2f} s wall)"
    )
    for name, figures in (("development", development), ("production", production)):
        change = figures["change"]
        print(
            f"delegation change, state known, {name}: {change.requests_each():.1f} request, "
            f"{change.ms():.2f} ms"
        )
    dev, prod = development, production
    worst_cpu = max(dev["native"].cpu_ms(), prod["native"].cpu_ms(), parallel.cpu_ms())
    most_requests = max(f["native"].requests_each() for f in (dev, prod))
    print("\nGoals:")
    print(f"  <= 3 requests per repository: {most_requests:.1f} -> {verdict(most_requests <= 3)}")
    print(f"  <= 1.5 ms client CPU per repository: {worst_cpu:.2f} -> {verdict(worst_cpu <= 1.5)}")
    dev_ratio = dev["cli"].ms() / dev["native"].ms()
    print(f"  >= 25x the CLI, development: {dev_ratio:.1f}x -> {verdict(dev_ratio >= 25)}")
    prod_ratio = prod["cli"].ms() / prod["native"].ms()
    print(f"  >= 4x the CLI, production: {prod_ratio:.1f}x -> {verdict(prod_ratio >= 4)}")
    over = prod["native"].ms() / prod["floor"].ms() - 1
    print(f"  within 10% of the server's time, production: {over:+.1%} -> {verdict(over <= 0.10)}")
    change_requests = max(f["change"].requests_each() for f in (dev, prod))
    print(
        f"  1 request per delegation change, state known: {change_requests:.1f} -> "
        f"{verdict(change_requests == 1)}"
    )
    print(f"\n(whole run {total:.1f} s)")


if __name__ == "__main__":
    main()
