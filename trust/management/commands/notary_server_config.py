"""Make notary-server take Gatehouse's tokens: write the certificates it must trust and print
the ``"auth"`` section of its configuration (docs/notary-protocol.md, "Token authentication")."""

import json
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from trust import custody, selectors
from trust.token_service.tokens import token_realm


class Command(BaseCommand):
    help = (
        "Write the token-signing certificates to --cert-out and print notary-server's "
        '{"auth": …} configuration section for Gatehouse\'s token service, as JSON.'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--cert-out",
            required=True,
            type=Path,
            help=(
                "Where to write the certificates (PEM) of the current token key and of any "
                "staged or retiring one; notary-server's rootcertbundle."
            ),
        )

    def handle(self, *args: object, cert_out: Path, **options: object) -> None:
        custody.token_key()  # made on first use
        keys = list(selectors.token_keys_trusted())
        cert_out = cert_out.resolve()  # notary-server resolves relative to its config file
        cert_out.parent.mkdir(parents=True, exist_ok=True)
        temporary = cert_out.with_name(f".{cert_out.name}.{os.getpid()}")
        temporary.write_text("".join(key.certificate for key in keys))
        temporary.chmod(0o644)  # certificates: public
        temporary.replace(cert_out)
        section = {
            "auth": {
                "type": "token",
                "options": {
                    "realm": token_realm(),
                    "service": settings.GATEHOUSE_NOTARY_SERVICE,
                    "issuer": settings.GATEHOUSE_TOKEN_ISSUER,
                    "rootcertbundle": str(cert_out),
                },
            }
        }
        self.stdout.write(json.dumps(section, indent=2))
        described = ", ".join(f"{key.state} {key.key_id}" for key in keys)
        self.stderr.write(f"Wrote {cert_out} with the token keys: {described}.")
