"""Notary tokens per second: the JWT floor, in-process issuance, and ``GET /auth/token`` over
HTTP under gunicorn (goal: 1,000 tokens/s).

Needs PostgreSQL (``BENCH_POSTGRES_URL``, default postgres://postgres@127.0.0.1:5432) and
``wrk`` (``apt-get install wrk``). Run: ``.venv/bin/python benchmarks/tokens.py``.

Every token is logged at INFO, as in production; here the log goes to /dev/null.
"""

import base64
import contextlib
import logging
import os
import sys

from common import configure_environment, gunicorn, rate, scratch_database, wrk

HTTP_SECONDS = 10
CONNECTIONS = 16
GUN = "bench.example.com/team/app"
SCOPE = f"repository:{GUN}:push,pull"


@contextlib.contextmanager
def stderr_to_devnull():
    """The server's INFO lines (one per token) go nowhere; wrk's output is captured anyway."""
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def lua(path: str, authorization: str | None) -> str:
    header = f'wrk.headers["Authorization"] = "{authorization}"\n' if authorization else ""
    return f'wrk.method = "GET"\nwrk.path = "{path}"\n{header}'


def main() -> None:
    with scratch_database("gatehouse_bench_tokens") as database_url:
        os.environ["GATEHOUSE_LOG_LEVEL"] = "INFO"
        configure_environment(database_url)
        os.environ["GATEHOUSE_LOG_LEVEL"] = "INFO"  # configure_environment quiets it
        # One address asks for every password check here: measure the hash, not the limit.
        os.environ["GATEHOUSE_PASSWORD_CHECKS_PER_MINUTE"] = "1000000"  # noqa: S105
        logging.getLogger("trust.token_service.tokens").handlers[:] = [
            logging.FileHandler(os.devnull)
        ]
        logging.getLogger("trust.token_service.tokens").propagate = False

        from accounts.services import api_token_create, team_create, team_member_add, user_create
        from trust import custody
        from trust.models import Repository
        from trust.token_service import tokens

        user = user_create(actor=None, username="bench", password="a-benchmark-passphrase")
        team = team_create(actor=user, name="ci")
        team_member_add(actor=user, team=team, user=user)
        Repository.objects.create(gun=GUN).signer_teams.set([team])
        raw_token, _ = api_token_create(user=user)
        request = tokens.TokenRequest.parse(service="notary-server", scopes=[SCOPE])
        access = tokens.granted_access(user, request.scopes)
        assert [str(a) for a in access] == [SCOPE], access

        signer = custody.token_signer()
        claims = {"iss": "gatehouse", "sub": "bench", "aud": "notary-server", "jti": "x"}
        claims.update(exp=0, nbf=0, iat=0, access=[a.claim() for a in access])
        figures = {
            "floor: signed_jwt (ES256 + JSON), key in hand": rate(
                lambda: tokens.signed_jwt(signer, claims)
            ),
            "mint (+ the token key's row)": rate(
                lambda: tokens.mint(subject="bench", service="notary-server", access=access)
            ),
            "token_issue for a signer (+ access query, log line)": rate(
                lambda: tokens.token_issue(identity=user, request=request)
            ),
            "service_token (jobs' in-process minter)": rate(
                lambda: tokens.service_token(service="notary-server", scope=SCOPE)
            ),
        }
        floor = figures["floor: signed_jwt (ES256 + JSON), key in hand"]
        print("in-process, 1 thread:")
        for name, value in figures.items():
            print(f"  {name}: {value:,.0f} tokens/s ({value / floor:.0%} of the floor)")

        path = f"/auth/token?service=notary-server&scope={SCOPE}&account=bench"
        api_token_basic = "Basic " + base64.b64encode(f"bench:{raw_token}".encode()).decode()
        password_basic = "Basic " + base64.b64encode(b"bench:a-benchmark-passphrase").decode()
        with stderr_to_devnull(), gunicorn() as url:
            runs = {
                "HTTP, Basic with an API token": wrk(
                    url, script=lua(path, api_token_basic), connections=CONNECTIONS,
                    seconds=HTTP_SECONDS,
                ),
                "HTTP, anonymous": wrk(
                    url, script=lua(path.replace("&account=bench", ""), None),
                    connections=CONNECTIONS, seconds=HTTP_SECONDS,
                ),
                "HTTP, Basic with the password (PBKDF2)": wrk(
                    url, script=lua(path, password_basic), connections=4, seconds=5,
                ),
            }  # fmt: skip
        for name, result in runs.items():
            print(
                f"{name}: {result['rps']:,.0f} tokens/s, p50 {result.get('p50_ms', 0):.1f} ms, "
                f"p99 {result.get('p99_ms', 0):.1f} ms, non-2xx {result['errors']:.0f}"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
