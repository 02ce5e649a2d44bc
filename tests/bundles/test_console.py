"""Client bundles and public keys in the console: My profile, and a user's page for admins."""

import datetime as dt
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.utils import timezone

from bundles.models import PublicKey
from bundles.services import bundle_issue, public_key_revoke
from tests.bundles.helpers import (
    certificate_pem,
    open_bundle,
    proof,
    registration,
    signed_nonce,
)
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def as_admin(client, admin):
    client.force_login(admin)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def key_rows(response) -> dict[str, str]:
    """Each listed key's table row, by key ID, as HTML."""
    rows = response.text.split("<tbody>")[1].split("</tbody>")[0].split("<tr")[1:]
    return {row.split('<code title="')[1].split('"')[0]: row for row in rows}


def snapshot() -> list[tuple]:
    return list(
        PublicKey.objects.order_by("id").values_list(
            "id", "user__username", "label", "is_signing_key", "revoked_at"
        )
    )


def test_profile_downloads_a_bundle_that_no_cache_keeps(as_alice, alice):
    response = as_alice.post("/profile/bundle/", {"label": "laptop", "signing": "on"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="gatehouse-bundle-alice.zip"'
    assert response["Cache-Control"] == "no-store"
    key = PublicKey.objects.get(user=alice)
    files = open_bundle(response.content)
    assert files["cert.pem"].decode() == key.certificate
    assert "PRIVATE KEY" in files["key.pem"].decode()
    assert (key.label, key.is_signing_key) == ("laptop", True)


def test_every_download_is_a_new_key_listed_on_the_profile(as_alice, alice):
    as_alice.post("/profile/bundle/", {"label": "laptop"})
    as_alice.post("/profile/bundle/")

    response = as_alice.get("/profile/")

    keys = list(PublicKey.objects.filter(user=alice))
    assert len(keys) == 2
    assert len(messages_of(response)) == 2
    rows = key_rows(response)
    assert set(rows) == {key.id for key in keys}
    laptop = next(key for key in keys if key.label == "laptop")
    row = rows[laptop.id]
    assert f'<code title="{laptop.id}">{laptop.id[:12]}</code>' in row
    assert 'value="laptop"' in row
    assert "ecdsa-p256" in row
    assert "Issued" in row
    assert "Not signing" in row
    assert "key.pem exists only in this download" in response.text.replace("<code>", "").replace(
        "</code>", ""
    )


def test_profile_without_keys_says_so(as_alice):
    response = as_alice.get("/profile/")

    assert "No public keys yet." in response.text
    assert "Download client bundle" in response.text


def test_label_is_edited_in_place(as_alice, alice):
    key = bundle_issue(user=alice, label="old").key

    response = as_alice.post(
        f"/keys/{key.id}/label/", {"label": "build server", "next": "/profile/"}, follow=True
    )

    assert response.redirect_chain == [("/profile/", 302)]
    assert messages_of(response) == [f"Key {key.id[:12]} is now labelled “build server”."]
    key.refresh_from_db()
    assert key.label == "build server"


def test_signing_switch_turns_a_key_on_and_off(as_alice, alice):
    key = bundle_issue(user=alice).key

    response = as_alice.post(f"/keys/{key.id}/signing/", {"is_signing_key": "true"}, follow=True)

    assert messages_of(response) == [f"Key {key.id[:12]} is now a signing key."]
    assert PublicKey.objects.get(pk=key.pk).is_signing_key
    row = key_rows(response)[key.id]
    assert 'role="switch" aria-checked="true"' in row
    assert "badge-signing" in row

    response = as_alice.post(f"/keys/{key.id}/signing/", {"is_signing_key": "false"}, follow=True)

    assert messages_of(response) == [f"Key {key.id[:12]} is no longer a signing key."]
    assert not PublicKey.objects.get(pk=key.pk).is_signing_key


def test_revoked_key_stays_listed_greyed_and_without_actions(as_alice, alice):
    key = bundle_issue(user=alice, signing=True).key

    response = as_alice.post(f"/keys/{key.id}/revoke/", follow=True)

    assert messages_of(response) == [f"Key {key.id[:12]} revoked. It can never sign again."]
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert not key.is_signing_key
    row = key_rows(response)[key.id]
    assert 'class="muted"' in row
    assert "Revoked" in row
    assert "<form" not in row


def test_revoke_asks_for_confirmation(as_alice, alice):
    key = bundle_issue(user=alice, label="laptop").key

    row = key_rows(as_alice.get("/profile/"))[key.id]

    revoke_form = row.split(f'action="/keys/{key.id}/revoke/"')[1].split(">")[0]
    assert f'data-confirm="Revoke key {key.id[:12]} “laptop”?' in revoke_form


def test_revoked_key_cannot_become_signing_again(as_alice, alice):
    key = public_key_revoke(actor=alice, key=bundle_issue(user=alice).key)
    before = snapshot()

    response = as_alice.post(f"/keys/{key.id}/signing/", {"is_signing_key": "true"}, follow=True)

    assert response.status_code == 200
    assert messages_of(response) == [
        f"Key {key.id[:12]} not changed: A revoked key can never again be a signing key."
    ]
    assert snapshot() == before


def test_expired_key_shows_expired_and_cannot_become_signing(as_alice, alice):
    key = bundle_issue(user=alice).key
    PublicKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - dt.timedelta(days=1))
    before = snapshot()

    row = key_rows(as_alice.get("/profile/"))[key.id]
    response = as_alice.post(f"/keys/{key.id}/signing/", {"is_signing_key": "true"}, follow=True)

    assert "badge-expired" in row
    assert 'role="switch"' not in row
    assert "An expired key cannot be a signing key." in messages_of(response)[0]
    assert snapshot() == before


def test_over_long_label_is_an_error_and_changes_nothing(as_alice, alice):
    key = bundle_issue(user=alice, label="laptop").key
    before = snapshot()

    edit = as_alice.post(f"/keys/{key.id}/label/", {"label": "x" * 101}, follow=True)
    download = as_alice.post("/profile/bundle/", {"label": "y" * 101}, follow=True)

    assert edit.redirect_chain == [("/profile/", 302)]
    assert "at most 100 characters" in messages_of(edit)[0]
    assert download["Content-Type"].startswith("text/html")
    assert messages_of(download)[0].startswith("No bundle was made: ")
    assert snapshot() == before


def shown_nonce(response) -> str:
    """The nonce a page shows to sign (and posts back in a hidden field)."""
    hidden = re.findall(r'<input type="hidden" name="nonce" value="([^"]+)"', response.text)
    assert len(set(hidden)) == 1, hidden
    assert f"printf %s '{hidden[0]}' | openssl dgst -sha256 -sign key.pem" in response.text
    return hidden[0]


def test_profile_registers_a_certificate(as_alice, alice):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = certificate_pem(key=key)
    nonce = shown_nonce(as_alice.get("/profile/"))

    response = as_alice.post(
        "/profile/keys/register/",
        {
            "certificate": pem,
            "nonce": nonce,
            "signature": signed_nonce(key, nonce),
            "label": "yubikey",
            "signing": "on",
        },
        follow=True,
    )

    assert response.redirect_chain == [("/profile/", 302)]
    key = PublicKey.objects.get(user=alice)
    assert (key.label, key.is_signing_key, key.source) == ("yubikey", True, "registered")
    assert messages_of(response) == [f"Certificate registered as key {key.id[:12]} “yubikey”."]
    assert "Registered" in key_rows(response)[key.id]


def test_register_page_works_on_its_own(as_alice):
    response = as_alice.get("/profile/keys/register/")

    assert response.status_code == 200
    assert 'name="certificate"' in response.text
    assert 'name="signature"' in response.text
    assert shown_nonce(response)
    assert 'href="/profile/"' in response.text


def test_registering_without_the_keys_signature_is_refused(as_alice):
    """A certificate is public; the private key is its holder's: no signature of the nonce
    by that key, no registration (a colleague's certificate, Gatehouse's token certificate)."""
    theirs = ec.generate_private_key(ec.SECP256R1())
    page = as_alice.get("/profile/keys/register/")
    nonce = shown_nonce(page)
    forged = signed_nonce(ec.generate_private_key(ec.SECP256R1()), nonce)

    response = as_alice.post(
        "/profile/keys/register/",
        {"certificate": certificate_pem(key=theirs), "nonce": nonce, "signature": forged},
    )

    assert response.status_code == 200
    assert 'id="register_signature_error"' in response.text
    assert "does not verify with the certificate&#x27;s key" in response.text
    assert shown_nonce(response) == nonce  # still usable: sign it again
    assert not PublicKey.objects.exists()


def test_a_used_nonce_is_replaced_by_a_new_one(as_alice, alice):
    key = ec.generate_private_key(ec.SECP256R1())
    used = registration(alice, key=key)
    as_alice.post("/profile/keys/register/", used)
    assert PublicKey.objects.count() == 1
    other = ec.generate_private_key(ec.SECP256R1())

    response = as_alice.post(
        "/profile/keys/register/",
        {
            "certificate": certificate_pem(key=other),
            "nonce": used["nonce"],
            "signature": signed_nonce(other, used["nonce"]),
        },
    )

    assert "This nonce has been used already" in response.text
    assert shown_nonce(response) != used["nonce"]
    assert PublicKey.objects.count() == 1


PRIVATE_KEY_MESSAGE = (
    "This is a private key; paste the certificate (e.g. cert.pem), never the private key."
)


@pytest.mark.parametrize("field", ["certificate", "signature", "label"])
def test_a_pasted_private_key_is_refused_and_never_shown_again(as_alice, alice, field):
    key = ec.generate_private_key(ec.SECP256R1())
    pasted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    body = {**registration(alice, key=key), field: pasted}

    response = as_alice.post("/profile/keys/register/", body)

    assert response.status_code == 200
    assert f'id="register_{field}_error"' in response.text
    assert PRIVATE_KEY_MESSAGE in response.text
    secret = "".join(pasted.splitlines()[1:-1])
    for piece in (secret[i : i + 16] for i in range(0, len(secret) - 16, 16)):
        assert piece not in response.text
    assert "PRIVATE KEY-----" not in response.text
    assert not PublicKey.objects.exists()


@pytest.mark.parametrize(
    ("certificate", "error"),
    [
        ("garbage", "This is not a PEM-encoded X.509 certificate."),
        (certificate_pem(days=-1, starts_days_ago=5), "The certificate expired on"),
        (certificate_pem(is_ca=True), "The certificate is a CA certificate"),
        (certificate_pem(key_usage="ca"), "does not include digitalSignature"),
    ],
)
def test_bad_certificate_is_an_error_on_its_field(as_alice, alice, certificate, error):
    response = as_alice.post(
        "/profile/keys/register/",
        {"certificate": certificate, **proof(alice, ec.generate_private_key(ec.SECP256R1()))},
    )

    assert response.status_code == 200
    assert 'id="register_certificate_error"' in response.text
    assert error in response.text
    assert certificate in response.text  # kept to be corrected, not pasted again
    assert not PublicKey.objects.exists()


def test_duplicate_certificate_says_it_is_registered_already(as_alice, admin, alice):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = certificate_pem(key=key)
    as_alice.post("/profile/keys/register/", {"certificate": pem, **proof(alice, key)})
    before = snapshot()

    again = as_alice.post("/profile/keys/register/", {"certificate": pem, **proof(alice, key)})

    assert 'id="register_certificate_error"' in again.text
    assert "is registered already." in again.text
    assert snapshot() == before


def test_over_long_label_on_registration_is_a_form_error(as_alice, alice):
    response = as_alice.post("/profile/keys/register/", {**registration(alice), "label": "z" * 101})

    assert 'id="register_label_error"' in response.text
    assert "at most 100 characters" in response.text
    assert not PublicKey.objects.exists()


def test_label_inputs_have_no_maxlength_that_would_cut_a_label(as_alice, alice):
    """A browser cuts text longer than ``maxlength`` without a word; the service says so."""
    bundle_issue(user=alice, label="laptop")

    page = as_alice.get("/profile/").text

    labels = re.findall(r'<input type="text" name="label"[^>]*>', page)
    assert len(labels) == 3  # the bundle's, the key's, the registration's
    assert not [tag for tag in labels if "maxlength" in tag]


def test_a_cleared_label_stays_empty_and_the_key_shows_by_its_id(as_alice, alice):
    key = bundle_issue(user=alice, label="laptop").key

    response = as_alice.post(
        f"/keys/{key.id}/label/", {"label": "", "next": "/profile/"}, follow=True
    )

    key.refresh_from_db()
    assert key.label == ""
    assert messages_of(response) == [f"Key {key.id[:12]} no longer has a label."]
    row = key_rows(response)[key.id]
    assert 'value=""' in row
    assert f'placeholder="{key.id[:12]}"' in row
    assert "Generated on" not in response.text


def test_non_admin_cannot_reach_another_users_keys(as_alice, alice):
    bob = make_user("bob")
    key = bundle_issue(user=bob, label="bobs").key
    before = snapshot()

    responses = [
        as_alice.post(f"/keys/{key.id}/label/", {"label": "mine now"}),
        as_alice.post(f"/keys/{key.id}/signing/", {"is_signing_key": "true"}),
        as_alice.post(f"/keys/{key.id}/revoke/"),
        as_alice.get("/users/bob/keys/register/"),
        as_alice.post("/users/bob/keys/register/", registration(alice)),
    ]

    assert [response.status_code for response in responses] == [404] * 5
    assert snapshot() == before
    assert key.id not in as_alice.get("/profile/").text


def test_unknown_key_is_404(as_admin):
    for key_id in ("0" * 64, "not-hex"):
        assert as_admin.post(f"/keys/{key_id}/revoke/").status_code == 404


def test_admin_manages_a_users_keys_from_the_user_page(as_admin, admin, alice):
    key = bundle_issue(user=alice, label="laptop").key
    page = as_admin.get("/users/alice/")
    assert key.id in key_rows(page)
    assert 'action="/users/alice/keys/register/"' in page.text
    assert "Download client bundle" not in page.text  # bundles are issued to whoever asks
    back = {"next": "/users/alice/"}

    label = as_admin.post(f"/keys/{key.id}/label/", {"label": "ci", **back}, follow=True)
    signing = as_admin.post(f"/keys/{key.id}/signing/", {"is_signing_key": "true", **back})
    register = as_admin.post("/users/alice/keys/register/", {**registration(admin), "label": "hsm"})
    revoke = as_admin.post(f"/keys/{key.id}/revoke/", back)

    assert label.redirect_chain == [("/users/alice/", 302)]
    for response in (signing, register, revoke):
        assert response["Location"] == "/users/alice/"
    key.refresh_from_db()
    assert (key.label, key.revoked_at is not None, key.is_signing_key) == ("ci", True, False)
    assert PublicKey.objects.get(user=alice, label="hsm").source == "registered"


def test_without_next_an_action_goes_back_to_the_owners_page(as_admin, admin, alice):
    theirs = bundle_issue(user=alice).key
    mine = bundle_issue(user=admin).key

    assert as_admin.post(f"/keys/{theirs.id}/revoke/")["Location"] == "/users/alice/"
    assert as_admin.post(f"/keys/{mine.id}/revoke/")["Location"] == "/profile/"


def test_next_to_another_site_is_ignored(as_alice, alice):
    key = bundle_issue(user=alice).key

    response = as_alice.post(
        f"/keys/{key.id}/label/", {"label": "x", "next": "https://evil.example/"}
    )

    assert response["Location"] == "/profile/"


def test_every_key_form_carries_a_csrf_token(as_alice, alice):
    bundle_issue(user=alice)

    forms = as_alice.get("/profile/").text.split('<form method="post"')[1:]

    # log out, bundle, password, API token, label, signing, revoke, register
    assert len(forms) == 8
    for form in forms:
        assert 'name="csrfmiddlewaretoken"' in form.split("</form>")[0]


@pytest.mark.parametrize(
    "path",
    ["/profile/bundle/", "/profile/keys/register/", "/keys/{id}/label/", "/keys/{id}/revoke/"],
)
def test_anonymous_visitor_is_sent_to_log_in(client, alice, path):
    path = path.format(id=bundle_issue(user=alice).key.id)

    response = client.post(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    assert PublicKey.objects.get(user=alice).revoked_at is None


@pytest.mark.parametrize(
    "path", ["/profile/bundle/", "/keys/{id}/label/", "/keys/{id}/signing/", "/keys/{id}/revoke/"]
)
def test_get_on_an_action_is_405(as_alice, alice, path):
    response = as_alice.get(path.format(id=bundle_issue(user=alice).key.id))

    assert response.status_code == 405
    assert PublicKey.objects.filter(user=alice).count() == 1
