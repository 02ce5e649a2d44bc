from django.apps import AppConfig


class TrustConfig(AppConfig):
    name = "trust"

    def ready(self) -> None:
        from accounts.signals import team_delete_blockers
        from trust import receivers

        team_delete_blockers.connect(
            receivers.team_delete_blockers, dispatch_uid="trust.team_delete_blockers"
        )
