"""``manage.py notary_token_key [status|stage|activate [--skip-notary-check]|retire [--force]]``:
rotate the key that signs Notary tokens without a moment in which notary-server refuses a
valid token.

Stage a key, give notary-server the bundle that trusts it too (``notary_server_config``) and
restart it, activate the key (refused until notary-server accepts a token it signed), and once
the old key's tokens have expired retire it and give notary-server the bundle without it.
"""

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from trust import selectors
from trust.models import CustodyKey
from trust.token_service import keys as token_keys

WRITE_BUNDLE = (
    "write the bundle with `manage.py notary_server_config --cert-out PATH` and restart "
    "notary-server with it"
)


def _when(moment: dt.datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "-"


def _fingerprint(key: CustodyKey) -> str:
    """As ``openssl x509 -noout -fingerprint -sha256`` prints it."""
    certificate = x509.load_pem_x509_certificate(key.certificate.encode("ascii"))
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def _notary_checked(check: token_keys.NotaryCheck, key_id: str) -> str:
    url = settings.NOTARY_URL
    if check is token_keys.NotaryCheck.TRUSTED:
        return f"Checked: notary-server at {url} accepts tokens signed by token key {key_id}."
    if check is token_keys.NotaryCheck.NO_AUTH:
        return f"Checked: notary-server at {url} does not ask for tokens, so it refuses none."
    if check is token_keys.NotaryCheck.NO_NOTARY_URL:
        return f"Not checked whether notary-server trusts token key {key_id}: no NOTARY_URL."
    return f"Not checked (--skip-notary-check) whether notary-server trusts token key {key_id}."


class Command(BaseCommand):
    help = (
        "Rotate the key that signs Notary tokens: status (the default) lists the keys; stage "
        "makes the next key; activate makes it sign; retire stops trusting the old one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="{status,stage,activate,retire}")
        actions.add_parser("status", help="List the token keys (the default).")
        actions.add_parser("stage", help="Make the next token key; it signs nothing yet.")
        activate = actions.add_parser(
            "activate",
            help="Sign new tokens with the staged key, once notary-server accepts a token it "
            "signed (checked at NOTARY_URL first).",
        )
        activate.add_argument(
            "--skip-notary-check",
            "--force",
            action="store_true",
            dest="skip_notary_check",
            help="Do not ask notary-server first (e.g. unreachable now, but restarted with the "
            "bundle that trusts the staged key): if it does not trust it, it refuses every token.",
        )
        retire = actions.add_parser(
            "retire", help="Stop trusting retiring keys and delete their private keys."
        )
        retire.add_argument(
            "--force",
            action="store_true",
            help="Retire even while tokens they signed may be unexpired (those are refused).",
        )

    def handle(self, *args: object, action: str | None = None, **options: object) -> None:
        try:
            if action == "stage":
                self._stage()
            elif action == "activate":
                self._activate(skip_notary_check=bool(options.get("skip_notary_check")))
            elif action == "retire":
                self._retire(force=bool(options.get("force")))
            else:
                self._status()
        except ValidationError as error:
            message = " ".join(error.messages)
            code = getattr(error, "code", None)
            if code == token_keys.TOKENS_UNEXPIRED:
                message += " --force retires it now, and notary-server will refuse those tokens."
            elif code == token_keys.NOTARY_DISTRUSTS:
                message += (
                    f" Nothing changed. Next: {WRITE_BUNDLE}, then run "
                    "`manage.py notary_token_key activate` again."
                )
            elif code == token_keys.NOTARY_UNCHECKED:
                message += (
                    " Nothing changed. --skip-notary-check activates without asking "
                    "notary-server: only do that once it runs with the bundle that trusts the "
                    "staged key."
                )
            raise CommandError(message) from error

    def _stage(self) -> None:
        key = token_keys.token_key_stage()
        self.stdout.write(
            f"Staged token key {key.key_id} (certificate SHA-256 {_fingerprint(key)}).\n"
            f"Next: {WRITE_BUNDLE}, then run `manage.py notary_token_key activate`."
        )

    def _activate(self, *, skip_notary_check: bool) -> None:
        activation = token_keys.token_key_activate(check_notary=not skip_notary_check)
        key = activation.key
        self.stdout.write(_notary_checked(activation.notary_check, key.key_id))
        self.stdout.write(f"Token key {key.key_id} signs new tokens from now on.")
        retiring = list(selectors.token_keys().filter(state=CustodyKey.State.RETIRING))
        for old in retiring:
            expires = selectors.token_key_tokens_expire_at(old)
            self.stdout.write(
                f"Token key {old.key_id} is retiring: notary-server may accept tokens it signed "
                f"until {_when(expires)}."
            )
        if retiring:
            self.stdout.write("Next: after that, run `manage.py notary_token_key retire`.")

    def _retire(self, *, force: bool) -> None:
        for key in token_keys.token_key_retire(force=force):
            self.stdout.write(f"Retired token key {key.key_id}; its private key is deleted.")
        self.stdout.write(f"Next: {WRITE_BUNDLE}.")

    def _status(self) -> None:
        keys = list(selectors.token_keys())
        if not keys:
            self.stdout.write("No token key yet: the first token or notary_server_config makes it.")
            return
        for key in keys:
            dates = [f"created {_when(key.created_at)}"]
            if key.activated_at is not None:
                dates.append(f"activated {_when(key.activated_at)}")
            if key.superseded_at is not None:
                dates.append(f"stopped signing {_when(key.superseded_at)}")
            if key.state == CustodyKey.State.RETIRING:
                expires = selectors.token_key_tokens_expire_at(key)
                dates.append(f"can be retired from {_when(expires)}")
            if key.retired_at is not None:
                dates.append(f"retired {_when(key.retired_at)}")
            self.stdout.write(
                f"{key.state:<9} key ID {key.key_id}\n"
                f"{'':<9} certificate SHA-256 {_fingerprint(key)}\n"
                f"{'':<9} {', '.join(dates)}"
            )
        states = {key.state for key in keys}
        if CustodyKey.State.STAGED in states:
            self.stdout.write(
                f"Next: {WRITE_BUNDLE}, then run `manage.py notary_token_key activate`."
            )
        elif CustodyKey.State.RETIRING in states:
            self.stdout.write(
                "Next: once their tokens have expired, run `manage.py notary_token_key retire`."
            )
