"""Make notary-server take Gatehouse's tokens: write the certificate it must trust and print
the ``"auth"`` section of its configuration (notary-wire §7.1)."""

import json
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from trust import custody
from trust.tokens import token_realm


class Command(BaseCommand):
    help = (
        "Write the token-signing certificate to --cert-out and print notary-server's "
        '{"auth": …} configuration section for Gatehouse\'s token service, as JSON.'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--cert-out",
            required=True,
            type=Path,
            help="Where to write the certificate (PEM); notary-server's rootcertbundle.",
        )

    def handle(self, *args: object, cert_out: Path, **options: object) -> None:
        certificate = custody.token_key().certificate  # made on first use
        cert_out = cert_out.resolve()  # notary-server resolves relative to its config file
        cert_out.parent.mkdir(parents=True, exist_ok=True)
        temporary = cert_out.with_name(f".{cert_out.name}.{os.getpid()}")
        temporary.write_text(certificate)
        temporary.chmod(0o644)  # a certificate: public
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
