"""Client bundles per second: the crypto floor, the service, and HTTP under gunicorn.

Needs PostgreSQL (``BENCH_POSTGRES_URL``, default postgres://postgres@127.0.0.1:5432) and
``wrk`` (``apt-get install wrk``). Run: ``.venv/bin/python benchmarks/bundles.py``.
"""

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from common import configure_environment, gunicorn, rate, scratch_database, wrk

SECONDS = 3.0


def concurrent_rate(step, threads: int, seconds: float = SECONDS) -> float:
    """Calls per second of ``step`` from several threads: commits wait on the disk together."""
    from django.db import connections

    def worker() -> float:
        try:
            return rate(step, seconds)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(lambda _: worker(), range(threads)))


def main() -> None:
    with scratch_database("gatehouse_bench_bundles") as database_url:
        configure_environment(database_url)
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        from accounts.services import api_token_create, user_create
        from bundles.archive import client_bundle_zip
        from bundles.certificates import issue_client_certificate, new_certificate_authority
        from bundles.services import bundle_issue

        ca_certificate, ca_key = new_certificate_authority("floor")
        ca_pem = ca_certificate.public_bytes(serialization.Encoding.PEM).decode()

        def floor_step() -> None:
            key = ec.generate_private_key(ec.SECP256R1())
            certificate = issue_client_certificate(
                username="bench",
                public_key=key.public_key(),
                ca_certificate=ca_certificate,
                ca_key=ca_key,
                validity=dt.timedelta(days=365),
            )
            client_bundle_zip(
                username="bench",
                key_id="0" * 64,
                ca_pem=ca_pem,
                cert_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
                key_pem=key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode(),
                public_pem=key.public_key()
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                .decode(),
                docker_host="",
            )

        user = user_create(actor=None, username="bench", password="a-benchmark-passphrase")
        bundle_issue(user=user)  # the CA is created once, outside the measurement
        floor = rate(floor_step)
        service = rate(lambda: bundle_issue(user=user))
        service_concurrent = concurrent_rate(lambda: bundle_issue(user=user), threads=4)
        token, _ = api_token_create(user=user)
        script = (
            'wrk.method = "POST"\n'
            f'wrk.headers["Authorization"] = "Bearer {token}"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            'wrk.body = "{}"\n'
        )
        with gunicorn(workers=2) as url:
            wrk(f"{url}/api/v1/bundles/", script=script, connections=8, seconds=2)  # warm-up
            http = wrk(f"{url}/api/v1/bundles/", script=script, connections=16, seconds=10)
            get_script = f'wrk.headers["Authorization"] = "Bearer {token}"\n'
            baseline = wrk(
                f"{url}/api/v1/users/bench/", script=get_script, connections=16, seconds=5
            )

    print(f"crypto floor (keygen + certificate + zip): {floor:8.0f} bundles/s")
    print(
        f"service bundle_issue, 1 thread:           {service:8.0f} bundles/s "
        f"({service / floor:.0%} of the floor; goal >= 50%)"
    )
    print(
        f"service bundle_issue, 4 threads:          {service_concurrent:8.0f} bundles/s "
        f"({service_concurrent / floor:.0%} of the floor)"
    )
    print(
        f"HTTP POST /api/v1/bundles/ (gunicorn 2 workers x 4 threads, 16 connections): "
        f"{http['rps']:8.0f} bundles/s ({http['rps'] / floor:.0%} of the floor; goal >= 500/s), "
        f"p50 {http['p50_ms']:.1f} ms, p99 {http['p99_ms']:.1f} ms, "
        f"non-2xx {http['errors']:.0f}"
    )
    print(
        f"for scale, an authenticated GET /api/v1/users/bench/ on the same server: "
        f"{baseline['rps']:8.0f} requests/s, p50 {baseline['p50_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
