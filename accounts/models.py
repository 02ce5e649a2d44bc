"""Identity: users, teams and who belongs to which team.

Team names become Notary role names (``targets/<team>``), hence their strict syntax.
"""

from typing import ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

# "releases" is Notary's targets/releases; "new" is the console's create page (/teams/new/).
RESERVED_TEAM_NAMES = frozenset({"releases", "new"})
RESERVED_USERNAMES = frozenset({"new"})

team_name_syntax = RegexValidator(
    regex=r"\A[a-z0-9][a-z0-9_-]{0,63}\Z",
    message=(
        "Team names are 1 to 64 characters of lowercase letters, digits, '_' and '-', "
        "starting with a letter or digit."
    ),
)


def team_name_not_reserved(value: str) -> None:
    if value in RESERVED_TEAM_NAMES:
        raise ValidationError(f"'{value}' is reserved and cannot be used as a name.")


def username_not_reserved(value: str) -> None:
    if value in RESERVED_USERNAMES:
        raise ValidationError(f"'{value}' is reserved and cannot be used as a name.")


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def with_username(self, username: str) -> models.QuerySet["User"]:
        """The user whose username is ``username`` in any case (at most one): the
        database's ``LOWER``, as in the constraint that keeps them one."""
        return self.alias(username_lower=Lower("username")).filter(
            username_lower=Lower(models.Value(username, output_field=models.CharField()))
        )

    def get_by_natural_key(self, username: str | None) -> "User":
        """Logins ignore case: ``Jenkins`` and ``jenkins`` are one account."""
        return self.with_username(username or "").get()

    def create_user(self, username: str, password: str | None = None, **fields) -> "User":
        user = self.model(username=username, **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, username: str, password: str | None = None, **fields) -> "User":
        return self.create_user(username, password, is_admin=True, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person or a service account. Deleting deactivates, so history stays intact.

    Usernames are unique regardless of case (``user_username_lower_unique``), and logins
    ignore it; URLs name a user by their username exactly as it was created.
    """

    username = models.CharField(
        max_length=150,
        unique=True,
        validators=[UnicodeUsernameValidator(), username_not_reserved],
        help_text="150 characters or fewer: letters, digits and @ . + - _ only.",
        error_messages={"unique": "A user with that username already exists."},
    )
    full_name = models.CharField(max_length=150, blank=True)
    email = models.EmailField(blank=True)
    is_admin = models.BooleanField(
        default=False, help_text="Admins manage users, teams, repositories and policy."
    )
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["username"]
        constraints = [
            models.UniqueConstraint(
                Lower("username"),
                name="user_username_lower_unique",
                violation_error_message="A user with that username already exists "
                "(usernames ignore case).",
            )
        ]

    def __str__(self) -> str:
        return self.username

    # In place of PermissionsMixin's field (the table has no such column). The stubs only
    # know that assignable field, so mypy takes this read-only property for a bad override.
    @property
    def is_superuser(self) -> bool:  # type: ignore[override]
        """The admin flag replaces Django's superuser field: one way to say "may do all"."""
        return self.is_admin

    @property
    def is_staff(self) -> bool:
        return self.is_admin

    def get_full_name(self) -> str:
        return self.full_name or self.username

    def get_short_name(self) -> str:
        return self.username


class Team(models.Model):
    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[team_name_syntax, team_name_not_reserved],
        error_messages={"unique": "A team with that name already exists."},
    )
    description = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    members: "models.ManyToManyField[User, Membership]" = models.ManyToManyField(
        User, through="Membership", related_name="teams"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    since = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "team"], name="membership_unique_user_team")
        ]
        ordering = ["team__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class ApiToken(models.Model):
    """A bearer token for the API. Only its SHA-256 digest is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"token {self.pk} of {self.user}"


class LoginFailure(models.Model):
    """A failed login, kept for the lockout window: per account and per address.

    A row is written before the password is checked (``accounts.services.login_attempt_begin``,
    under the ``LoginGuard`` locks) and deleted when it was right, so concurrent attempts
    never check more passwords than the limit. ``username`` is the account's key: the
    username as typed, lowercased, so every case of it counts for one account.
    """

    username = models.CharField(max_length=150, db_index=True)
    address = models.CharField(max_length=45, blank=True, db_index=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"failed login for {self.username} from {self.address or 'unknown'}"


class LoginGuard(models.Model):
    """One row per account (``user:<key>``) and per address (``address:<group>``) that has
    tried to log in. An attempt takes the lock of its account's row and its address's row
    (in that key order) before counting recent failures and reserving its own, so
    counting and reserving are one step however many attempts arrive at once."""

    key = models.CharField(max_length=200, unique=True)
    touched_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.key
