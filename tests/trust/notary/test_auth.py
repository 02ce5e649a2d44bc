"""``trust.notary.auth`` against a tiny local HTTP server: challenges, tokens and what the
server makes of them (docs/notary-protocol.md, "Token authentication")."""

import pytest

from tests.trust.notary.local_http import CHALLENGE, GUN, THIN_TOKEN, TOKEN, get
from trust.notary.auth import Challenge, TokenVerdict
from trust.notary.errors import NotaryError, NotaryRejected, NotaryUnavailable, NotFound
from trust.notary.http_transport import HttpTransport

# --- challenges (docs/notary-protocol.md, "Token authentication") ----------------------


def test_challenge_gives_realm_service_and_error():
    header = CHALLENGE + ',error="insufficient_scope"'

    assert Challenge.parse(header) == Challenge(
        "https://auth.example/token", "notary-server", "insufficient_scope"
    )
    assert Challenge.parse(header.replace("Bearer", "bearer", 1)) == Challenge.parse(header)
    assert Challenge.parse(CHALLENGE) == Challenge("https://auth.example/token", "notary-server")


@pytest.mark.parametrize(
    "header", ['Basic realm="notary"', 'Bearer service="notary-server"', "", "Bearer"]
)
def test_challenge_without_a_bearer_realm_is_none(header):
    assert Challenge.parse(header) is None


def test_a_failing_token_minter_reaches_the_caller_as_a_notary_error(server):
    def minter(challenge: Challenge, scope: str) -> str:
        raise RuntimeError("the signing key is sealed")

    transport = HttpTransport(f"http://127.0.0.1:{server.server_address[1]}", token_minter=minter)

    with pytest.raises(NotaryError, match="sealed") as caught:
        get(transport, "/auth/x")
    assert not isinstance(caught.value, NotaryUnavailable)
    assert caught.value.gun == GUN


# --- tokens (docs/notary-protocol.md, "Token authentication") --------------------------


def test_a_minted_token_is_fetched_once_per_scope_and_reused(server):
    minted: list[tuple[Challenge, str]] = []

    def minter(challenge: Challenge, scope: str) -> str:
        minted.append((challenge, scope))
        return TOKEN

    transport = HttpTransport(f"http://127.0.0.1:{server.server_address[1]}", token_minter=minter)
    push = f"repository:{GUN}:push,pull"

    for _ in range(3):
        transport.request("POST", "/auth/publish", scope=push, gun=GUN, body=b"data")
    transport.request("GET", "/auth/read", scope=f"repository:{GUN}:pull", gun=GUN)

    assert [scope for _, scope in minted] == [push, f"repository:{GUN}:pull"]
    assert minted[0][0] == Challenge("https://auth.example/token", "notary-server")
    # A 401 and a retry for each new scope; the cached token goes out with the first try.
    assert transport.requests_sent == 2 + 1 + 1 + 2
    published = [entry for entry in server.seen if entry[1] == "/auth/publish"]
    assert [auth for _, _, auth, _ in published[-4:]] == [None] + [f"Bearer {TOKEN}"] * 3
    assert all(body == b"data" for *_, body in published[-4:])


def test_a_token_from_the_realm_is_fetched_with_basic_credentials(server):
    transport = HttpTransport(
        f"http://127.0.0.1:{server.server_address[1]}", username="ci", password="pa:ss"
    )
    scope = f"repository:{GUN}:pull"

    assert transport.request("GET", "/realm/one", scope=scope, gun=GUN) == b"{}"
    assert transport.request("GET", "/realm/two", scope=scope, gun=GUN) == b"{}"

    [realm_request] = [entry for entry in server.seen if entry[1].startswith("/token?")][-1:]
    assert "account=ci" in realm_request[1]
    assert "scope=repository%3Aexample.com%2Fapp%3Apull" in realm_request[1]
    assert realm_request[2] == "Basic Y2k6cGE6c3M="
    assert transport.requests_sent == 3  # 401, retry, then the cached token; realm not counted


# --- what the server makes of a token (docs/notary-protocol.md, "Token authentication") ---


def verdict(server, token: str, prefix: str = "/auth") -> TokenVerdict:
    minted: list[str] = []

    def minter(challenge: Challenge, scope: str) -> str:
        minted.append(scope)
        return TOKEN

    url = f"http://127.0.0.1:{server.server_address[1]}{prefix}"
    answer = HttpTransport(url, token_minter=minter).token_verdict(token)
    assert minted == []  # only the token under test is shown, never one of its own
    return answer


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (TOKEN, TokenVerdict.ACCEPTED),
        (THIN_TOKEN, TokenVerdict.INSUFFICIENT_SCOPE),
        ("forged-token", TokenVerdict.INVALID),
    ],
)
def test_a_token_verdict_is_what_the_server_answers_that_token(server, token, expected):
    assert verdict(server, token) is expected

    asked = [(path, auth) for _, path, auth, _ in server.seen[-2:]]
    assert asked == [("/auth/v2/", None), ("/auth/v2/", f"Bearer {token}")]


def test_a_server_that_answers_without_a_token_is_never_shown_it(server):
    assert verdict(server, "forged-token", prefix="") is TokenVerdict.NOT_REQUIRED

    assert server.seen[-1][1:3] == ("/v2/", None)


@pytest.mark.parametrize(
    ("prefix", "error"),
    [("/basic", NotaryRejected), ("/gone", NotFound), ("/failing", NotaryUnavailable)],
)
def test_a_server_without_a_bearer_challenge_gives_no_verdict(server, prefix, error):
    with pytest.raises(error):
        verdict(server, TOKEN, prefix=prefix)

    assert server.seen[-1][1:3] == (f"{prefix}/v2/", None)  # the token was never sent


def test_a_token_verdict_from_a_closed_port_is_unavailable():
    from devtools.ports import free_port

    closed = HttpTransport(f"http://127.0.0.1:{free_port()}", timeout=2)

    with pytest.raises(NotaryUnavailable, match="cannot reach"):
        closed.token_verdict(TOKEN)
