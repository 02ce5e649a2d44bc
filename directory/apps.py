from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    name = "directory"

    def ready(self) -> None:
        # Imported here, once the app registry is ready: receivers use models.
        from accounts.signals import (
            membership_owners,
            team_delete_blockers,
            user_activity_changed,
        )
        from directory import receivers

        membership_owners.connect(
            receivers.membership_owners, dispatch_uid="directory.membership_owners"
        )
        team_delete_blockers.connect(
            receivers.team_delete_blockers, dispatch_uid="directory.team_delete_blockers"
        )
        user_activity_changed.connect(
            receivers.user_activity_changed, dispatch_uid="directory.user_activity_changed"
        )
