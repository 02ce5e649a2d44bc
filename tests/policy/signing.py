"""A world for the signature-integrity tests: a real notary-server, people with keys from
real Gatehouse bundles signing with the real ``notary`` CLI, each in their own trust
directory, and an attacker's tools: role files fetched and uploaded over plain HTTP, as
anyone with push access could.
"""

import json
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rest_framework.test import APIClient

from accounts.models import Team, User
from accounts.services import team_member_add
from bundles.models import PublicKey
from bundles.selectors import signing_role_of
from policy.services import admission_service_account, policy_update
from tests.factories import make_team, make_user
from tests.trust.helpers import run_jobs, signing_key_of
from trust.models import Job
from trust.notary.transport import multipart
from trust.services.repositories import repository_create

RELEASES = "targets/releases"
SIZE = "1234"


@dataclass
class Person:
    user: User
    key: PublicKey
    trust_dir: Path

    @property
    def role(self) -> str:
        """Their own role, ``targets/<name>``, as Gatehouse named it."""
        return signing_role_of(self.user).role


@dataclass
class SigningWorld:
    """People and repositories on one notary-server; every call acts as the real tools do."""

    admin: User
    api: object
    cli: object  # the notary_cli_in fixture
    notary_url: str
    tmp: Path
    people: dict[str, Person] = field(default_factory=dict)

    # -- identity ---------------------------------------------------------------------

    def person(self, name: str, *teams: str) -> Person:
        """A user with a signing key, imported into their own trust directory, in ``teams``."""
        user = make_user(name)
        key, pem = signing_key_of(user)
        for team_name in teams:
            team = Team.objects.filter(name=team_name).first() or make_team(
                team_name, actor=self.admin
            )
            team_member_add(actor=self.admin, team=team, user=user)
        trust_dir = self.tmp / name
        trust_dir.mkdir()
        (trust_dir / "key.pem").write_bytes(pem)
        self.cli(trust_dir, "key", "import", str(trust_dir / "key.pem"))
        self.people[name] = Person(user, key, trust_dir)
        return self.people[name]

    def new_key(self, name: str) -> PublicKey:
        """``name`` downloads another signing bundle and imports its key (rotation, step 1)."""
        person = self.people[name]
        key, pem = signing_key_of(person.user)
        path = person.trust_dir / f"key-{key.id[:8]}.pem"
        path.write_bytes(pem)
        self.cli(person.trust_dir, "key", "import", str(path))
        return key

    # -- repositories -----------------------------------------------------------------

    def repository(self, *teams: str) -> str:
        """A new Gatehouse repository signed by ``teams``, initialised on Notary."""
        gun = f"test.gatehouse/{uuid.uuid4().hex}"
        repository_create(actor=self.admin, gun=gun, signer_team_names=list(teams))
        self.sync()
        return gun

    def sync(self) -> list[Job]:
        """Run every queued job, as the worker would; each must succeed."""
        jobs = run_jobs()
        failed = [(job.kind, job.gun, job.error) for job in jobs if job.status != "succeeded"]
        assert not failed, failed
        return jobs

    def policy(self, *teams: str, mode: str = "enforced") -> None:
        policy_update(
            actor=self.admin,
            enabled=True,
            mode=mode,
            signing_team_names=list(teams),
            allow_repos=[],
        )

    # -- signing, as Docker and the CLI do ---------------------------------------------

    def sign(self, name: str, gun: str, tag: str, digest: str, *roles: str) -> None:
        """``notary addhash`` of ``tag`` = ``digest`` into each role, published each time.
        Without roles: ``targets/releases`` and the person's own role, as a push does."""
        person = self.people[name]
        for role in roles or (RELEASES, person.role):
            self.cli(
                person.trust_dir, "addhash", gun, tag, SIZE, "--sha256", digest, "-r", role, "-p"
            )

    # -- checking -----------------------------------------------------------------------

    def evaluate(self, image: str) -> dict:
        response = self.api(self.admin).post(
            "/api/v1/policy/evaluate/", {"image": image}, format="json"
        )
        assert response.status_code == 200, response.content
        return response.json()

    def admission(self, image: str, *more: str) -> dict[str, bool]:
        """The validating and the mutating webhook's answers for a Pod running ``image``
        (and ``more``, in containers of their own, in that order)."""
        containers = [
            {"name": f"app-{number}" if number else "app", "image": each}
            for number, each in enumerate((image, *more))
        ]
        _, token, _, _ = admission_service_account(username="kube-apiserver", revoke_others=False)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        answers = {}
        for webhook in ("validate", "mutate"):
            review = {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": str(uuid.uuid4()),
                    "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "namespace": "prod",
                    "name": "app",
                    "operation": "CREATE",
                    "object": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": "app", "namespace": "prod"},
                        "spec": {"containers": containers},
                    },
                },
            }
            answer = client.post(f"/api/v1/admission/{webhook}/", review, format="json")
            assert answer.status_code == 200, answer.content
            answers[webhook] = answer.json()["response"]["allowed"]
        return answers

    def decision(self, image: str) -> str:
        """The explain API's decision, after checking both webhooks agree with it."""
        result = self.evaluate(image)
        webhooks = self.admission(image)
        assert webhooks == {"validate": result["allowed"], "mutate": result["allowed"]}, (
            result,
            webhooks,
        )
        return result["decision"]

    # -- the attacker's tools: plain HTTP -----------------------------------------------

    def fetch(self, gun: str, role: str) -> bytes:
        """The current file of ``role`` as the server serves it to anyone."""
        url = f"{self.notary_url}/v2/{gun}/_trust/tuf/{role}.json"
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - test server
            return answer.read()

    def upload(self, gun: str, files: dict[str, bytes]) -> int:
        """POST role files to the server as they are; returns the HTTP status."""
        body, content_type = multipart(files)
        request = urllib.request.Request(  # noqa: S310 - the test's own server
            f"{self.notary_url}/v2/{gun}/_trust/tuf/",
            data=body,
            method="POST",
            headers={"Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code

    def version(self, gun: str, role: str) -> int:
        return json.loads(self.fetch(gun, role))["signed"]["version"]


def team(result: dict, name: str) -> dict:
    """One team's part of an evaluation."""
    (found,) = [entry for entry in result["teams"] if entry["team"] == name]
    return found
