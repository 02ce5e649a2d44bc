from django.apps import AppConfig


class PolicyConfig(AppConfig):
    name = "policy"

    def ready(self) -> None:
        from accounts.signals import team_delete_blockers
        from policy import receivers

        team_delete_blockers.connect(
            receivers.team_delete_blockers, dispatch_uid="policy.team_delete_blockers"
        )
