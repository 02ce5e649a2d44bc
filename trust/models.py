"""Repositories Gatehouse manages on Notary, the keys it holds for them, and the jobs that
bring Notary in step with identity."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Team
from trust.notary import references


def gun_syntax(value: str) -> None:
    """A GUN as Docker normalises it (``trust.notary.references``): a full name such as
    registry.example.com/ci/app, never a short one (the services normalise those)."""
    try:
        gun = references.parse_name(value)
    except references.InvalidName as error:
        raise ValidationError(
            "%(gun)s is not a repository name Docker accepts: %(why)s.",
            code="invalid",
            params={"gun": references.shown(value), "why": error},
        ) from error
    if gun != value:
        raise ValidationError(
            "Docker reads this name as %(gun)s: give it in full.",
            code="not_normalised",
            params={"gun": gun},
        )


class CustodyKey(models.Model):
    """A private key Gatehouse holds, sealed under the KEK (``gatehouse.keywrap``).

    One root key signs the root of every repository Gatehouse creates (each GUN gets its own
    certificate of it), so one pinned ID covers them all. Each repository has its own
    targets key. The custodian key is put into a delegation only to keep its remaining
    signers from being locked out (docs/notary-protocol.md, "The lock-out hazard"); it never
    counts as a signature. The token key signs the bearer tokens Gatehouse issues to
    notary-server's clients ("Token authentication" there); its self-signed ``certificate``
    is what notary-server trusts.

    Only token keys leave ``current``, so notary-server can trust the next one before it
    signs and the last one until its tokens expire: ``staged`` → ``current`` → ``retiring``
    → ``retired`` (private key deleted, row kept for the record).
    """

    class Kind(models.TextChoices):
        ROOT = "root"
        TARGETS = "targets"
        CUSTODIAN = "custodian"
        TOKEN = "token"  # noqa: S105 - a kind of key, not a secret

    class State(models.TextChoices):
        STAGED = "staged"
        CURRENT = "current"
        RETIRING = "retiring"
        RETIRED = "retired"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.CURRENT)
    key_id = models.CharField(
        max_length=64, unique=True, help_text="Canonical key ID (the one the notary CLI shows)."
    )
    sealed_private_key = models.BinaryField(help_text="Empty once the key is retired.")
    certificate = models.TextField(
        blank=True, help_text="PEM, public: the token key's certificate (empty for the others)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(
        null=True, blank=True, help_text="When a token key began to sign."
    )
    superseded_at = models.DateTimeField(
        null=True, blank=True, help_text="When a token key stopped signing (began retiring)."
    )
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(kind__in=["root", "custodian"]),
                name="custody_key_one_root_one_custodian",
            ),
            # Also the index of token_signer's "which key is current?" on every token.
            models.UniqueConstraint(
                fields=["kind", "state"],
                condition=Q(kind="token", state__in=["staged", "current"]),
                name="custody_key_one_current_one_staged_token",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} key {self.key_id[:12]}"


# The root key Gatehouse signs with: at most one (``custody_key_one_root_one_custodian``).
CURRENT_ROOT = Q(kind=CustodyKey.Kind.ROOT, state=CustodyKey.State.CURRENT)


class RootKeyExport(models.Model):
    """Each offline backup of the root key: who took it and when."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"root key exported by {self.actor_id} at {self.created_at:%Y-%m-%d %H:%M}"


class RoleFileSighting(models.Model):
    """Signed bytes Gatehouse has read, and where: the GUN and the role they were under.

    The same ``fingerprint`` under another GUN or role is a copy of a signature made for
    somewhere else: a replay, which never counts (docs/threat-model.md, "Replays").
    """

    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the signed bytes.")
    gun = models.CharField(max_length=255)
    role = models.CharField(max_length=255)
    replayed = models.BooleanField(
        default=False, help_text="The same bytes were seen under another GUN or role too."
    )
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint", "gun", "role"], name="role_file_sighting_once"
            )
        ]
        indexes = [
            models.Index(
                fields=["fingerprint"],
                condition=Q(replayed=True),
                name="role_file_sighting_replayed",
            )
        ]

    def __str__(self) -> str:
        return f"{self.fingerprint[:12]} in {self.gun} {self.role}"


class HistoryCursor(models.Model):
    """How far Gatehouse has walked a GUN's publications (the server's changefeed), and the
    role files of the newest snapshot walked, so each walk fetches only what is new."""

    gun = models.CharField(max_length=255, unique=True)
    change_id = models.BigIntegerField(default=0)
    role_hashes = models.JSONField(default=dict, blank=True)
    walked_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.gun} walked to change {self.change_id}"


class SignedTag(models.Model):
    """A tag a signer signed in their own role of a GUN whose root is pinned, as Gatehouse
    saw it in verified trust data or in a published version signed by the role owner's key
    (``trust.signed_tags``): the memory that explains a tag once its role is gone (a signer
    who left their team loses their role, and ``targets/releases`` is rebuilt without
    their tags). ``fingerprint`` is the role file it was last seen in; once that file is a
    replay (``RoleFileSighting.replayed``) the row explains nothing."""

    gun = models.CharField(max_length=255)
    role = models.CharField(max_length=255)
    tag = models.CharField(max_length=255)
    digest = models.CharField(max_length=80, help_text="sha256:<hex> the role named for the tag.")
    signer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The owner of the role, whose key signed the file.",
    )
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the role file's bytes.")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["gun", "tag", "role"]
        constraints = [
            models.UniqueConstraint(fields=["gun", "role", "tag"], name="signed_tag_once")
        ]

    def __str__(self) -> str:
        return f"{self.gun}:{self.tag} in {self.role}"


class RootKeyPin(models.Model):
    """An admin's pin of the root keys of repositories Gatehouse neither made nor adopted.

    ``pattern`` is a GUN, or a GUN prefix ending in ``*``, as Docker's trust pinning reads
    them: an exact GUN wins, then the longest prefix.
    """

    pattern = models.CharField(max_length=255, unique=True)
    key_ids = models.JSONField(help_text="Canonical IDs of the root keys, as `notary` shows.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pattern"]

    def __str__(self) -> str:
        return self.pattern


class Repository(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        READY = "ready"
        FAILED = "failed"

    gun = models.CharField(
        max_length=255,
        unique=True,
        validators=[gun_syntax],
        error_messages={"unique": "Gatehouse manages this GUN already."},
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    signer_teams = models.ManyToManyField(Team, related_name="repositories", blank=True)
    targets_key = models.OneToOneField(
        CustodyKey, on_delete=models.PROTECT, null=True, blank=True, related_name="repository"
    )
    adopted = models.BooleanField(
        default=False, help_text="Initialised elsewhere and taken over with its targets key."
    )
    pinned_root_key_ids = models.JSONField(
        default=list,
        blank=True,
        help_text="IDs of the root certificates as root.json names them: those seen at "
        "adoption, or this GUN's certificate of Gatehouse's root key.",
    )
    delegations = models.JSONField(
        default=list, blank=True, help_text='As last published: [{"role", "key_ids"}].'
    )
    notary_state = models.JSONField(
        null=True, blank=True, help_text="The targets and snapshot meta last seen or published."
    )
    drift = models.JSONField(null=True, blank=True)
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    lock_job = models.ForeignKey(
        "Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    lock_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["gun"]
        verbose_name_plural = "repositories"

    def __str__(self) -> str:
        return self.gun


class Job(models.Model):
    """One piece of Notary work. Its status moves only forward, by compare-and-set."""

    class Kind(models.TextChoices):
        INITIALIZE = "initialize"
        ADOPT = "adopt"
        SYNC = "sync"
        DELETE = "delete"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    FINISHED = (Status.SUCCEEDED, Status.FAILED)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    repository = models.ForeignKey(
        Repository, on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs"
    )
    gun = models.CharField(max_length=255, help_text="Kept when the repository is deleted.")
    caused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    cause = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "enqueued_at"]),
            models.Index(fields=["repository", "status"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["repository"],
                condition=Q(status="queued", kind="sync"),
                name="job_one_queued_sync_per_repository",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.gun} ({self.status})"


class JobEvent(models.Model):
    """One step of a job's history, written by the job engine in the transaction of the
    transition it records, so the job page can say what happened and when."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        REQUEUED = "requeued"  # sent again: the broker may have lost its message
        STARTED = "started"
        RETRYING = "retrying"  # a transient error; it runs again after a backoff
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=16, choices=Status.choices)
    at = models.DateTimeField(default=timezone.now)
    attempt = models.PositiveIntegerField(default=0, help_text="The job's attempts by then.")
    detail = models.TextField(blank=True, help_text="The error, for a retry or a failure.")

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"job {self.job_id} {self.status} at {self.at:%Y-%m-%d %H:%M:%S}"
