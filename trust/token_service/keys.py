"""Rotating the key that signs Notary tokens: stage, activate, retire.

A staged key signs nothing until notary-server has been given a bundle that trusts it
(``manage.py notary_server_config``); the retiring key stays trusted until every token it
signed has expired (docs/notary-protocol.md, "Token authentication").
"""

import logging
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from trust import custody, selectors
from trust.models import CustodyKey
from trust.notary.auth import TokenVerdict
from trust.notary.errors import NotaryError
from trust.notary.http_transport import HttpTransport
from trust.token_service.tokens import check_token

logger = logging.getLogger(__name__)

TOKEN_KEY = "token_key"  # noqa: S105 - the audit log's target type, not a secret
TOKENS_UNEXPIRED = "tokens_unexpired"  # a ValidationError code
NOTARY_DISTRUSTS = "notary_distrusts_key"  # a ValidationError code
NOTARY_UNCHECKED = "notary_unchecked"  # a ValidationError code


def token_key_stage() -> CustodyKey:
    """Make the next token key, which signs nothing until ``token_key_activate``: first
    notary-server must be given a bundle that trusts it (``notary_server_config``)."""
    custody.token_key()  # the current key, made on first use, stays in the bundle
    with transaction.atomic():
        staged = CustodyKey.objects.filter(
            kind=CustodyKey.Kind.TOKEN, state=CustodyKey.State.STAGED
        ).first()
        if staged is not None:
            raise ValidationError(f"Token key {staged.key_id} is staged already; activate it.")
        try:
            with transaction.atomic():
                key = custody.token_key_create_staged()
        except IntegrityError as error:  # staged at the same moment elsewhere
            raise ValidationError("Another token key was staged at the same moment.") from error
        audit_record(
            action="token_key.staged",
            actor=None,
            target_type=TOKEN_KEY,
            target_id=key.key_id,
            after={"state": key.state},
        )
    logger.info("token key %s staged", key.key_id)
    return key


class NotaryCheck(StrEnum):
    """What ``token_key_activate`` learnt from notary-server before switching keys."""

    TRUSTED = "trusted"  # it accepted a token the staged key signed
    NO_AUTH = "no_auth"  # it answers without a token: it refuses none
    NO_NOTARY_URL = "no_notary_url"  # not asked: NOTARY_URL is not set
    SKIPPED = "skipped"  # not asked: the caller said so


@dataclass(frozen=True)
class TokenKeyActivation:
    key: CustodyKey
    notary_check: NotaryCheck


@transaction.atomic
def token_key_activate(*, check_notary: bool = True) -> TokenKeyActivation:
    """Sign new tokens with the staged key; the current one retires, and stays trusted
    until the tokens it signed have expired. Every process reads which key is current at
    each token, so they all switch at their next one.

    First, unless ``check_notary`` is off, notary-server must accept a token the staged key
    signed: switching to a key it does not trust yet would get every token refused, those of
    Gatehouse's own jobs too. The keys stay locked meanwhile, so what was checked is what
    is activated.
    """
    keys = {
        key.state: key
        for key in CustodyKey.objects.select_for_update().filter(
            kind=CustodyKey.Kind.TOKEN,
            state__in=[CustodyKey.State.STAGED, CustodyKey.State.CURRENT],
        )
    }
    staged, previous = keys.get(CustodyKey.State.STAGED), keys.get(CustodyKey.State.CURRENT)
    if staged is None:
        raise ValidationError("No token key is staged; stage one first.")
    notary_check = _notary_token_check(staged) if check_notary else NotaryCheck.SKIPPED
    now = timezone.now()
    if previous is not None:  # out first: one current key at a time (a unique index)
        previous.state, previous.superseded_at = CustodyKey.State.RETIRING, now
        previous.save(update_fields=["state", "superseded_at"])
    staged.state, staged.activated_at = CustodyKey.State.CURRENT, now
    staged.save(update_fields=["state", "activated_at"])
    audit_record(
        action="token_key.activated",
        actor=None,
        target_type=TOKEN_KEY,
        target_id=staged.key_id,
        before={"state": CustodyKey.State.STAGED},
        after={
            "state": staged.state,
            "replaces": previous.key_id if previous else None,
            "notary_check": notary_check.value,
        },
    )
    logger.log(
        logging.WARNING if notary_check is NotaryCheck.SKIPPED else logging.INFO,
        "token key %s activated (notary-server check: %s); %s retiring",
        staged.key_id,
        notary_check.value,
        previous.key_id if previous else "no key",
    )
    return TokenKeyActivation(staged, notary_check)


def _notary_token_check(key: CustodyKey) -> NotaryCheck:
    """Show notary-server a token ``key`` signed (``check_token``: it grants nothing)
    over Gatehouse's own transport, with its TLS settings; ``ValidationError`` unless it is
    accepted, or notary-server does not ask for tokens at all."""
    url = settings.NOTARY_URL
    if not url:
        return NotaryCheck.NO_NOTARY_URL
    # Bare: no credentials and no token minter, so notary-server judges this token alone.
    transport = HttpTransport(
        url, ca_bundle=settings.NOTARY_CA_BUNDLE or None, timeout=settings.NOTARY_TIMEOUT
    )
    try:
        verdict = transport.token_verdict(check_token(custody.token_signer_for(key)))
    except NotaryError as error:
        logger.warning("token key %s not activated: cannot check it: %s", key.key_id, error)
        raise ValidationError(
            f"Cannot check that notary-server at {url} trusts token key {key.key_id}: {error}.",
            code=NOTARY_UNCHECKED,
        ) from error
    finally:
        transport.close()
    if verdict is TokenVerdict.INVALID:
        logger.warning("token key %s not activated: notary-server refuses it", key.key_id)
        raise ValidationError(
            f"notary-server at {url} refuses tokens signed by token key {key.key_id} "
            "(invalid_token): it does not trust that key yet.",
            code=NOTARY_DISTRUSTS,
        )
    if verdict is TokenVerdict.NOT_REQUIRED:
        return NotaryCheck.NO_AUTH
    return NotaryCheck.TRUSTED


@transaction.atomic
def token_key_retire(*, force: bool = False) -> list[CustodyKey]:
    """Stop trusting the retiring keys and delete their private keys (the rows stay, with
    their certificates). Refused while tokens one signed may be unexpired, unless ``force``:
    notary-server, once given the new bundle, would refuse those tokens."""
    retiring = list(
        CustodyKey.objects.select_for_update()
        .filter(kind=CustodyKey.Kind.TOKEN, state=CustodyKey.State.RETIRING)
        .order_by("created_at", "id")
    )
    if not retiring:
        raise ValidationError("No token key is retiring.")
    now = timezone.now()
    unexpired = {
        key.key_id: expires
        for key in retiring
        if (expires := selectors.token_key_tokens_expire_at(key)) is not None and expires > now
    }
    if unexpired and not force:
        key_id, expires = max(unexpired.items(), key=lambda item: item[1])
        raise ValidationError(
            f"Tokens signed by token key {key_id} may be valid until "
            f"{expires:%Y-%m-%d %H:%M:%S} UTC; retire it after that.",
            code=TOKENS_UNEXPIRED,
        )
    for key in retiring:
        key.state, key.retired_at, key.sealed_private_key = CustodyKey.State.RETIRED, now, b""
        key.save(update_fields=["state", "retired_at", "sealed_private_key"])
        audit_record(
            action="token_key.retired",
            actor=None,
            target_type=TOKEN_KEY,
            target_id=key.key_id,
            before={"state": CustodyKey.State.RETIRING},
            after={"state": key.state, "forced": key.key_id in unexpired},
        )
        if key.key_id in unexpired:
            logger.warning("token key %s retired by force, its tokens unexpired", key.key_id)
        else:
            logger.info("token key %s retired", key.key_id)
    return retiring


# --- Running jobs -------------------------------------------------------------------------
