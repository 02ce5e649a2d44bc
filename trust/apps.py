from django.apps import AppConfig


class TrustConfig(AppConfig):
    name = "trust"

    def ready(self) -> None:
        # Imported here, once the app registry is ready: receivers and runners use models.
        from accounts.signals import identity_changed, team_delete_blockers
        from trust import receivers
        from trust.models import RootKeyPin
        from trust.services import runners  # noqa: F401 - registers the job runners
        from trust.signals import trust_inputs_changed

        team_delete_blockers.connect(
            receivers.team_delete_blockers, dispatch_uid="trust.team_delete_blockers"
        )
        identity_changed.connect(receivers.identity_changed, dispatch_uid="trust.identity_changed")
        trust_inputs_changed.connect(
            receivers.pins_changed, sender=RootKeyPin, dispatch_uid="trust.pins_changed"
        )
