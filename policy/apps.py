from django.apps import AppConfig


class PolicyConfig(AppConfig):
    name = "policy"

    def ready(self) -> None:
        # Imported here, once the app registry is ready: the receivers use models.
        from accounts.signals import identity_changed, team_delete_blockers
        from policy import receivers
        from trust.signals import default_signer_teams_wanted, trust_inputs_changed

        team_delete_blockers.connect(
            receivers.team_delete_blockers, dispatch_uid="policy.team_delete_blockers"
        )
        identity_changed.connect(receivers.inputs_changed, dispatch_uid="policy.identity_changed")
        trust_inputs_changed.connect(
            receivers.inputs_changed, dispatch_uid="policy.trust_inputs_changed"
        )
        default_signer_teams_wanted.connect(
            receivers.default_signer_teams, dispatch_uid="policy.default_signer_teams"
        )
