"""``manage.py admission_service_account <username> [--days N]``: the Kubernetes API
server's account for the admission webhook, and a long-lived API token for it.

Only the token goes to standard output, so ``TOKEN=$(manage.py admission_service_account
k8s-apiserver)`` keeps it; what happened is said on standard error.
"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from policy.services import SERVICE_ACCOUNT_TOKEN_DAYS, admission_service_account


class Command(BaseCommand):
    help = (
        "Create (or reuse) a service account that may ask for Kubernetes admission reviews "
        "(permission policy.review_admission, no password) and print one new API token."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--days",
            type=int,
            default=SERVICE_ACCOUNT_TOKEN_DAYS,
            help=f"Lifetime of the token in days (default {SERVICE_ACCOUNT_TOKEN_DAYS}).",
        )
        parser.add_argument(
            "--revoke-others",
            action="store_true",
            help="Revoke the account's earlier tokens (after the API server has the new one).",
        )

    def handle(self, *args: object, **options) -> None:
        try:
            user, raw_token, token, created = admission_service_account(
                username=options["username"],
                days=options["days"],
                revoke_others=options["revoke_others"],
            )
        except ValidationError as error:
            problems = "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()
            )
            raise CommandError(problems) from error
        self.stderr.write(
            f"{'Created' if created else 'Reused'} service account '{user.username}' with "
            f"permission policy.review_admission; its token expires at "
            f"{token.expires_at:%Y-%m-%d %H:%M} UTC and is shown only now."
        )
        self.stdout.write(raw_token)
