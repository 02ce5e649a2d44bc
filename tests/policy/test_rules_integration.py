"""Policy rules end to end: a real notary-server, the real ``notary`` CLI signing with keys
from real Gatehouse bundles, a policy document applied as ``policy apply`` does, and the
answers of the evaluate API and of the admission webhook.

"2 of security" counts distinct members, not keys; a rule for one namespace decides there
and nowhere else.
"""

import json
import uuid

import pytest
from rest_framework.test import APIClient

from policy.evaluation import POLICY_FAILED
from policy.services import admission_service_account, policy_apply
from tests.factories import make_team
from tests.policy.signing import SigningWorld, team

pytestmark = [pytest.mark.django_db, pytest.mark.notary]

A = "a1" * 32


def explain(world: SigningWorld, image: str, namespace: str | None = None) -> dict:
    """The evaluate API's answer, asked by GET as a browser or curl would."""
    query = {"image": image, **({"namespace": namespace} if namespace else {})}
    answer = world.api(world.admin).get("/api/v1/policy/evaluate/", query)
    assert answer.status_code == 200, answer.content
    return answer.json()


def signature_key_ids(world: SigningWorld, gun: str, role: str) -> set[str]:
    """The keys that signed ``role``'s current file, as anyone can read it."""
    return {s["keyid"] for s in json.loads(world.fetch(gun, role))["signatures"]}


@pytest.fixture
def security(world: SigningWorld) -> str:
    """ann, ben and cat in security, a repository security signs, and the policy: 2 of
    security for it, 1 of security elsewhere."""
    for name in ("ann", "ben", "cat"):
        world.person(name, "security")
    gun = world.repository("security")
    policy_apply(
        actor=world.admin,
        document={
            "enabled": True,
            "default": {"mode": "enforced", "require": {"teams": [{"team": "security"}]}},
            "rules": [
                {
                    "name": "two-of-security",
                    "images": [gun],
                    "require": {"teams": [{"team": "security", "count": 2}]},
                }
            ],
        },
    )
    return gun


def test_two_of_security_needs_two_distinct_members_not_two_keys(world, security):
    gun = security
    ann, ben = world.people["ann"], world.people["ben"]

    # ann alone: one of two.
    world.sign("ann", gun, "1.0", A)
    alone = world.evaluate(f"{gun}:1.0")
    assert alone["decision"] == "denied"
    assert alone["rule"]["name"] == "two-of-security"
    assert alone["rule"]["position"] == 1
    assert alone["rule"]["matched_image"] == gun
    assert alone["rule"]["require"] == {
        "match": "all",
        "teams": [{"team": "security", "count": 2}],
    }
    assert alone["rule"]["why"] == f"rule two-of-security matches by image pattern {gun}"
    shown = team(alone, "security")
    assert (shown["needed"], shown["signed"], shown["satisfied"]) == (2, 1, False)
    assert shown["signers"] == [{"username": "ann", "key_id": ann.key.id, "role": ann.role}]
    assert [n["reason"] for n in shown["not_counted"]] == ["too_few"]
    assert shown["not_counted"][0]["detail"] == (
        "2 distinct members of security must sign it, and only 1 did (ann)"
    )
    assert alone["reasons"][0] == POLICY_FAILED

    # ann again, with a second key of her own in her own role: still one member.
    second = world.new_key("ann")
    world.sync()
    world.cli(ann.trust_dir, "witness", gun, ann.role, "-p")
    assert signature_key_ids(world, gun, ann.role) == {ann.key.tuf_key_id, second.tuf_key_id}
    twice = world.evaluate(f"{gun}:1.0")
    assert twice["decision"] == "denied"
    shown = team(twice, "security")
    assert (shown["needed"], shown["signed"], shown["satisfied"]) == (2, 1, False)
    assert [s["username"] for s in shown["signers"]] == ["ann"]
    assert [n["reason"] for n in shown["not_counted"]] == ["too_few"]

    # ben too: two distinct members.
    world.sign("ben", gun, "1.0", A, ben.role)
    both = explain(world, f"{gun}:1.0", namespace="prod")  # a rule for every namespace
    assert both["decision"] == "allowed"
    assert both["rule"]["name"] == "two-of-security"
    shown = team(both, "security")
    assert (shown["needed"], shown["signed"], shown["satisfied"]) == (2, 2, True)
    assert {(s["username"], s["role"]) for s in shown["signers"]} == {
        ("ann", ann.role),
        ("ben", ben.role),
    }
    assert shown["not_counted"] == []

    # The default rule, 1 of security, still governs every other repository.
    other = explain(world, "registry.example.com/elsewhere/app:1.0")
    assert other["rule"]["name"] == "default"
    assert other["rule"]["position"] is None


def review(namespace: str, image: str) -> dict:
    """An AdmissionReview of a Pod running ``image`` in ``namespace``."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": namespace,
            "name": "app",
            "operation": "CREATE",
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "app", "namespace": namespace},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


@pytest.fixture
def validate(db):
    """POST a review to the validating webhook as the API server does; the ``response``."""
    _, token, _, _ = admission_service_account(username="kube-apiserver")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    def post(namespace: str, image: str) -> dict:
        document = review(namespace, image)
        answer = client.post("/api/v1/admission/validate/", document, format="json")
        assert answer.status_code == 200, answer.content
        response = answer.json()["response"]
        assert response["uid"] == document["request"]["uid"]
        return response

    return post


def test_a_rule_for_prod_decides_in_prod_and_nowhere_else(world, validate):
    """dan (dev, not security) signs the image; prod requires security."""
    make_team("security", actor=world.admin)
    world.person("dan", "dev")
    gun = world.repository("dev")
    world.sign("dan", gun, "1.0", A)
    image = f"{gun}:1.0"

    for default in ("off", "permissive"):
        policy_apply(
            actor=world.admin,
            document={
                "enabled": True,
                "default": {"mode": default, "require": {"teams": []}},
                "rules": [
                    {
                        "name": "prod",
                        "namespaces": ["prod"],
                        "require": {"teams": [{"team": "security"}]},
                    }
                ],
            },
        )

        dev = validate("dev", image)
        assert dev["allowed"] is True, (default, dev)
        assert "warnings" not in dev
        if default == "off":
            assert "namespace dev is exempt" in dev["status"]["message"]

        prod = validate("prod", image)
        assert prod["allowed"] is False, (default, prod)
        assert prod["status"]["code"] == 403
        message = prod["status"]["message"]
        assert message.startswith("Gatehouse content trust (enforced) denied 1 of 1 image: ")
        assert (
            f"[{image}] (rule prod) {POLICY_FAILED}; team security: no current member signed"
            in message
        )
        assert f"dan signed it in {world.people['dan'].role}, but is not in security" in message

        # The evaluate API agrees, and says which rule decided.
        in_prod = explain(world, image, namespace="prod")
        assert (in_prod["decision"], in_prod["namespace"]) == ("denied", "prod")
        assert in_prod["rule"]["name"] == "prod"
        assert in_prod["rule"]["matched_namespace"] == "prod"
        assert in_prod["rule"]["why"] == "rule prod matches by namespace name prod and every image"
        assert team(in_prod, "security")["not_counted"][0]["reason"] == "not_in_team"
        for namespace in ("dev", None):
            elsewhere = explain(world, image, namespace=namespace)
            assert elsewhere["allowed"] is True
            assert elsewhere["rule"]["name"] == "default"
            assert elsewhere["mode"] == default
