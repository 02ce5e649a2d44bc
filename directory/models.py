"""What Gatehouse keeps of the directory: which groups make which teams, which users came
from it, and how each sync went."""

from django.db import models

from accounts.models import Team, User


class Source(models.TextChoices):
    LDAP = "ldap", "LDAP"
    OIDC = "oidc", "OpenID Connect"


class GroupMapping(models.Model):
    """Members of ``group`` in ``source`` are members of ``team``. A team with a mapping has
    its membership owned by the directory: nobody edits it by hand."""

    source = models.CharField(max_length=8, choices=Source.choices)
    # An LDAP group's DN or name, or a value of the OpenID groups claim, as the admin typed
    # it; ``key`` is how it is compared (``directory.ldap.group_key``).
    group = models.CharField(max_length=500)
    key = models.CharField(max_length=500, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="directory_groups")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "source", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "key", "team"],
                name="group_mapping_unique",
                violation_error_message="That group is already mapped to that team.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} group {self.group} → {self.team}"


class DirectoryAccount(models.Model):
    """A user whose identity the directory holds: created at their first login through it.
    ``groups`` are the group keys the directory last gave for them, which decide their
    membership of mapped teams."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="directory_account")
    source = models.CharField(max_length=8, choices=Source.choices)
    issuer = models.CharField(max_length=500, blank=True)  # OpenID Connect's iss
    # LDAP: the username, lowercased (logins ignore case); OpenID Connect: the provider's
    # sub, exactly (it is case-sensitive).
    subject = models.CharField(max_length=500)
    dn = models.CharField(max_length=1000, blank=True)
    groups = models.JSONField(default=list)
    # Set when a sync deactivated the user because the directory disabled or removed them,
    # so the sync that finds them back reactivates them; an admin's own deactivation stays.
    deactivated_by_directory = models.BooleanField(default=False)
    seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "issuer", "subject"], name="directory_account_unique_subject"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} from {self.get_source_display()}"


class SyncRun(models.Model):
    """One sync with the directory: when, why, what it changed or would have changed, or
    why it changed nothing."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"
        MAPPING = "mapping"

    class Outcome(models.TextChoices):
        APPLIED = "applied"
        DRY_RUN = "dry_run", "dry run"
        UNREACHABLE = "unreachable"
        REFUSED = "refused"

    source = models.CharField(max_length=8, choices=Source.choices)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error = models.TextField(blank=True)
    people = models.PositiveIntegerField(default=0)  # how many the directory listed
    changes = models.JSONField(default=list)  # directory.plan.Change.as_dict()s

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.source} sync {self.started_at:%Y-%m-%d %H:%M:%S}: {self.outcome}"
