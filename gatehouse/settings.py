"""Gatehouse settings, read from the environment.

Every setting is documented in README.md. In production mode (``GATEHOUSE_DEBUG`` off) no
secret has a default: start-up fails with a message naming the missing variable.
"""

import ipaddress
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("GATEHOUSE_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def development_secret(filename: str, *, nbytes: int) -> str:
    """Read a secret kept under ``var/``, creating it on first use (development only)."""
    path = VAR_DIR / filename
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(nbytes))
    return path.read_text().strip()


def required_secret(name: str, *, development_file: str, nbytes: int) -> str:
    """A secret from the environment; in development, one kept under ``var/``."""
    value = os.environ.get(name, "")
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(
            f"{name} must be set when GATEHOUSE_DEBUG is off (generate one with: "
            f"python -c 'import secrets; print(secrets.token_urlsafe({nbytes}))')."
        )
    return development_secret(development_file, nbytes=nbytes)


DEBUG = env_bool("GATEHOUSE_DEBUG")

SECRET_KEY = required_secret("GATEHOUSE_SECRET_KEY", development_file="secret_key", nbytes=50)

# Private keys at rest are sealed with AES-256-GCM under this key-encryption key: 32 random
# bytes, URL-safe base64. A comma-separated list rotates it: the first seals, all unseal.
GATEHOUSE_KEY_ENCRYPTION_KEYS = [
    key.strip()
    for key in required_secret(
        "GATEHOUSE_KEY_ENCRYPTION_KEY", development_file="key_encryption_key", nbytes=32
    ).split(",")
    if key.strip()
]

ALLOWED_HOSTS = env_list(
    "GATEHOUSE_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]" if DEBUG else ""
) or ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "bundles",
    "trust",
    "policy",
    "audit",
    "directory",
]

MIDDLEWARE = [
    "gatehouse.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "gatehouse.security.ContentSecurityPolicyMiddleware",
    "gatehouse.security.NoStoreMiddleware",
    # Inside the middleware that add headers, so its answers get them too; those above it
    # read nothing from the database until a view or a template asks.
    "gatehouse.middleware.NulCharacterMiddleware",
    "gatehouse.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "gatehouse.urls"
WSGI_APPLICATION = "gatehouse.wsgi.application"
ASGI_APPLICATION = "gatehouse.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "trust.context_processors.root_key_warning",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'gatehouse.sqlite3'}",
        conn_max_age=int(os.environ.get("GATEHOUSE_DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, with a health check that sends nothing (gatehouse/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "gatehouse.postgresql"
    # Values travel as parameters, not quoted into the SQL text, and a statement run five
    # times on a connection is prepared there: no parsing and planning it again. Off for a
    # pooler that cannot keep prepared statements (PgBouncer's transaction mode before 1.21).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("server_side_binding", True)
    if env_bool("GATEHOUSE_DB_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# One backend checks every password: a local account's here, a directory user's in LDAP.
AUTHENTICATION_BACKENDS = ["directory.backends.DirectoryBackend"]
# Lockout after repeated failed logins, per account and per address, for a while.
GATEHOUSE_LOGIN_MAX_FAILURES = int(os.environ.get("GATEHOUSE_LOGIN_MAX_FAILURES", "5"))
GATEHOUSE_LOGIN_MAX_FAILURES_PER_ADDRESS = int(
    os.environ.get("GATEHOUSE_LOGIN_MAX_FAILURES_PER_ADDRESS", "50")
)
GATEHOUSE_LOGIN_LOCKOUT_SECONDS = int(os.environ.get("GATEHOUSE_LOGIN_LOCKOUT_SECONDS", "900"))
GATEHOUSE_TOKENS_PER_HOUR = int(os.environ.get("GATEHOUSE_TOKENS_PER_HOUR", "120"))
# Password checks (each a deliberately slow hash) one address may ask for per minute.
GATEHOUSE_PASSWORD_CHECKS_PER_MINUTE = int(
    os.environ.get("GATEHOUSE_PASSWORD_CHECKS_PER_MINUTE", "30")
)
# Audit entries anyone can cause at will (denied evaluations): identical ones within this
# window are one entry with a count, and one actor and address write at most this many
# distinct ones per window before the rest fold into one more (0: no limit).
GATEHOUSE_AUDIT_FOLD_SECONDS = int(os.environ.get("GATEHOUSE_AUDIT_FOLD_SECONDS", "600"))
GATEHOUSE_AUDIT_FOLD_DISTINCT = int(os.environ.get("GATEHOUSE_AUDIT_FOLD_DISTINCT", "100"))
# The cache holds the password-check counts: set a Redis URL so every web process shares
# them (the default cache is per process).
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["GATEHOUSE_CACHE_URL"],
        }
        if os.environ.get("GATEHOUSE_CACHE_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("GATEHOUSE_STATIC_ROOT", VAR_DIR / "static"))

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Production (GATEHOUSE_DEBUG off) runs behind HTTPS: cookies only over TLS, and HSTS.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = 0 if DEBUG else int(os.environ.get("GATEHOUSE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("GATEHOUSE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("GATEHOUSE_HSTS_PRELOAD", True)
# Redirect plain HTTP to HTTPS; behind a TLS-terminating proxy, trust its X-Forwarded-Proto.
SECURE_SSL_REDIRECT = env_bool("GATEHOUSE_SSL_REDIRECT")
if env_bool("GATEHOUSE_BEHIND_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env_list("GATEHOUSE_CSRF_TRUSTED_ORIGINS")
# The proxies (addresses or networks) whose X-Forwarded-For names the client; from anyone
# else the header is ignored (gatehouse/addresses.py).
try:
    GATEHOUSE_TRUSTED_PROXIES = [
        ipaddress.ip_network(item, strict=False) for item in env_list("GATEHOUSE_TRUSTED_PROXIES")
    ]
except ValueError as error:
    raise ImproperlyConfigured(f"GATEHOUSE_TRUSTED_PROXIES: {error}") from error

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "gatehouse.api.Pagination",
    "DEFAULT_FILTER_BACKENDS": ["gatehouse.api.ListFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["gatehouse.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "gatehouse.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Gatehouse API",
    "DESCRIPTION": "Users, teams, client bundles and content trust for Notary.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two models have a "status" of their own choices; a job's keeps the name it has always had.
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "trust.models.Job.Status",
        "JobEventStatusEnum": "trust.models.JobEvent.Status",
    },
}

GATEHOUSE_TOKEN_TTL = timedelta(
    seconds=int(os.environ.get("GATEHOUSE_TOKEN_TTL_SECONDS", str(12 * 3600)))
)

# A URL the console writes into commands people paste (the Sign images guide, bundles' env
# scripts for sh, PowerShell and cmd): scheme, host, port and path, and no character any of
# those shells would read as its own.
PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/\-]*)?")


def url_setting(name: str, default: str = "") -> str:
    """``name`` from the environment, without a trailing slash; refused unless a plain URL."""
    value = os.environ.get(name, default).rstrip("/")
    if value and not PLAIN_URL.fullmatch(value):
        raise ImproperlyConfigured(
            f"{name} must be an http:// or https:// URL of a host, a port and a path, "
            "without spaces, quotes, a query or other characters a shell would read."
        )
    return value


NOTARY_URL = url_setting("NOTARY_URL")
GATEHOUSE_TLS_CA_FILE = os.environ.get("GATEHOUSE_TLS_CA_FILE", "")  # caBundle of webhooks
NOTARY_CA_BUNDLE = os.environ.get("NOTARY_CA_BUNDLE", "")
NOTARY_USERNAME = os.environ.get("NOTARY_USERNAME", "")
NOTARY_PASSWORD = os.environ.get("NOTARY_PASSWORD", "")
NOTARY_TIMEOUT = float(os.environ.get("NOTARY_TIMEOUT_SECONDS", "10"))
# Where signers reach Notary (the guide on My profile, bundles' README.txt and env scripts);
# blank: NOTARY_URL. And the CA certificate they verify it with, put in every bundle.
NOTARY_PUBLIC_URL = url_setting("NOTARY_PUBLIC_URL")
NOTARY_PUBLIC_CA_FILE = os.environ.get("NOTARY_PUBLIC_CA_FILE", "")

# Notary token service (docs/notary-protocol.md, "Token authentication"): Gatehouse issues
# the bearer tokens notary-server demands, at <GATEHOUSE_PUBLIC_URL>/auth/token
# (`manage.py notary_server_config`).
GATEHOUSE_PUBLIC_URL = url_setting("GATEHOUSE_PUBLIC_URL", "http://127.0.0.1:8000")
GATEHOUSE_NOTARY_SERVICE = os.environ.get("GATEHOUSE_NOTARY_SERVICE", "notary-server")
GATEHOUSE_TOKEN_ISSUER = os.environ.get("GATEHOUSE_TOKEN_ISSUER", "gatehouse")
GATEHOUSE_NOTARY_ANONYMOUS_PULL = env_bool("GATEHOUSE_NOTARY_ANONYMOUS_PULL")
# Lifetime of a Notary token; the registry token spec's minimum is 60 s.
GATEHOUSE_NOTARY_TOKEN_SECONDS = max(
    int(os.environ.get("GATEHOUSE_NOTARY_TOKEN_SECONDS", "300")), 60
)

# Jobs: retries with exponential backoff while Notary is unavailable, then fail.
GATEHOUSE_JOB_MAX_ATTEMPTS = int(os.environ.get("GATEHOUSE_JOB_MAX_ATTEMPTS", "8"))
GATEHOUSE_JOB_BACKOFF_SECONDS = float(os.environ.get("GATEHOUSE_JOB_BACKOFF_SECONDS", "2"))
GATEHOUSE_JOB_BACKOFF_MAX_SECONDS = float(os.environ.get("GATEHOUSE_JOB_BACKOFF_MAX_SECONDS", "60"))
# How long a job holds its repository: a worker killed mid-job frees it after this. Keep it
# above the longest a job can run (the Celery hard time limit is 300 s).
GATEHOUSE_JOB_LEASE_SECONDS = float(os.environ.get("GATEHOUSE_JOB_LEASE_SECONDS", "300"))
# A job still unfinished this long after it was sent is sent again (its message may have been
# lost with a broker that restarted empty); beat sweeps at half this, at least once a minute.
GATEHOUSE_JOB_REQUEUE_SECONDS = float(os.environ.get("GATEHOUSE_JOB_REQUEUE_SECONDS", "120"))
# A burst of identity changes within this many seconds ends in one sync per repository.
GATEHOUSE_SYNC_DELAY_SECONDS = float(os.environ.get("GATEHOUSE_SYNC_DELAY_SECONDS", "1"))
if (
    GATEHOUSE_JOB_REQUEUE_SECONDS
    <= GATEHOUSE_JOB_BACKOFF_MAX_SECONDS + GATEHOUSE_SYNC_DELAY_SECONDS
):
    # Shorter, and the sweep would resend jobs that are only waiting out their countdown.
    raise ImproperlyConfigured(
        "GATEHOUSE_JOB_REQUEUE_SECONDS must exceed GATEHOUSE_JOB_BACKOFF_MAX_SECONDS + "
        "GATEHOUSE_SYNC_DELAY_SECONDS."
    )
# Verified trust data is cached per repository and its timestamp re-fetched at most this often.
# Count repositories whose root nothing pins (trust on first use). Off: in enforced mode only
# repositories Gatehouse made or adopted, or whose root an admin pinned, can pass.
GATEHOUSE_TRUST_ON_FIRST_USE = env_bool("GATEHOUSE_TRUST_ON_FIRST_USE")
GATEHOUSE_TRUST_REVALIDATE_SECONDS = float(
    os.environ.get("GATEHOUSE_TRUST_REVALIDATE_SECONDS", "3")
)
GATEHOUSE_DRIFT_CHECK_SECONDS = int(os.environ.get("GATEHOUSE_DRIFT_CHECK_SECONDS", "300"))
# The bearer token Prometheus scrapes GET /metrics with (signed-in admins need none). Unset:
# /metrics is a 404 to everyone else.
GATEHOUSE_METRICS_TOKEN = os.environ.get("GATEHOUSE_METRICS_TOKEN", "").strip()
if GATEHOUSE_METRICS_TOKEN and len(GATEHOUSE_METRICS_TOKEN) < 32:
    raise ImproperlyConfigured(
        "GATEHOUSE_METRICS_TOKEN must be at least 32 characters (generate one with: "
        "openssl rand -hex 32)."
    )

# The company directory (docs/directory.md): LDAP logins and a scheduled sync, and OpenID
# Connect logins. Each is off while its URL is blank.
GATEHOUSE_LDAP_URL = os.environ.get("GATEHOUSE_LDAP_URL", "").strip()
GATEHOUSE_LDAP_START_TLS = env_bool("GATEHOUSE_LDAP_START_TLS", True)
GATEHOUSE_LDAP_ALLOW_PLAIN = env_bool("GATEHOUSE_LDAP_ALLOW_PLAIN")
if GATEHOUSE_LDAP_ALLOW_PLAIN and not DEBUG:
    raise ImproperlyConfigured(
        "GATEHOUSE_LDAP_ALLOW_PLAIN sends passwords in the clear and is for development only "
        "(GATEHOUSE_DEBUG=1); use ldaps:// or StartTLS."
    )
if GATEHOUSE_LDAP_URL and not re.fullmatch(r"ldaps?://[^/\s]+/?", GATEHOUSE_LDAP_URL):
    raise ImproperlyConfigured(
        "GATEHOUSE_LDAP_URL must be ldaps://host[:port] or ldap://host[:port] (StartTLS)."
    )
if (
    GATEHOUSE_LDAP_URL.startswith("ldap://")
    and not GATEHOUSE_LDAP_START_TLS
    and not GATEHOUSE_LDAP_ALLOW_PLAIN
):
    raise ImproperlyConfigured(
        "GATEHOUSE_LDAP_START_TLS is off for an ldap:// URL: passwords would cross the network "
        "in the clear. Use ldaps://, StartTLS, or GATEHOUSE_LDAP_ALLOW_PLAIN in development."
    )
GATEHOUSE_LDAP_CA_FILE = os.environ.get("GATEHOUSE_LDAP_CA_FILE", "")
if GATEHOUSE_LDAP_CA_FILE and not os.path.isfile(GATEHOUSE_LDAP_CA_FILE):
    raise ImproperlyConfigured(f"GATEHOUSE_LDAP_CA_FILE: no such file: {GATEHOUSE_LDAP_CA_FILE}")
GATEHOUSE_LDAP_BIND_DN = os.environ.get("GATEHOUSE_LDAP_BIND_DN", "")
GATEHOUSE_LDAP_BIND_PASSWORD = os.environ.get("GATEHOUSE_LDAP_BIND_PASSWORD", "")
GATEHOUSE_LDAP_USER_DN_TEMPLATE = os.environ.get("GATEHOUSE_LDAP_USER_DN_TEMPLATE", "")
GATEHOUSE_LDAP_USER_BASE = os.environ.get("GATEHOUSE_LDAP_USER_BASE", "")
GATEHOUSE_LDAP_USER_FILTER = os.environ.get(
    "GATEHOUSE_LDAP_USER_FILTER", "(objectClass=inetOrgPerson)"
)
GATEHOUSE_LDAP_DISABLED_FILTER = os.environ.get("GATEHOUSE_LDAP_DISABLED_FILTER", "")
GATEHOUSE_LDAP_USERNAME_ATTRIBUTE = os.environ.get("GATEHOUSE_LDAP_USERNAME_ATTRIBUTE", "uid")
GATEHOUSE_LDAP_FULL_NAME_ATTRIBUTE = os.environ.get("GATEHOUSE_LDAP_FULL_NAME_ATTRIBUTE", "cn")
GATEHOUSE_LDAP_EMAIL_ATTRIBUTE = os.environ.get("GATEHOUSE_LDAP_EMAIL_ATTRIBUTE", "mail")
GATEHOUSE_LDAP_GROUP_BASE = os.environ.get("GATEHOUSE_LDAP_GROUP_BASE", "")
GATEHOUSE_LDAP_GROUP_FILTER = os.environ.get(
    "GATEHOUSE_LDAP_GROUP_FILTER", "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
)
GATEHOUSE_LDAP_MEMBER_ATTRIBUTE = os.environ.get("GATEHOUSE_LDAP_MEMBER_ATTRIBUTE", "member")
GATEHOUSE_LDAP_TIMEOUT_SECONDS = float(os.environ.get("GATEHOUSE_LDAP_TIMEOUT_SECONDS", "5"))
# How often the worker's beat reads the whole directory (0: only at logins and on demand).
GATEHOUSE_DIRECTORY_SYNC_SECONDS = int(os.environ.get("GATEHOUSE_DIRECTORY_SYNC_SECONDS", "300"))
# A scheduled sync that would deactivate more than this share of the active LDAP users (and
# more than 10) changes nothing: a mistaken filter or base looks like a mass departure.
GATEHOUSE_DIRECTORY_MAX_DEACTIVATIONS_PERCENT = float(
    os.environ.get("GATEHOUSE_DIRECTORY_MAX_DEACTIVATIONS_PERCENT", "20")
)
# Exactly as the provider writes it in its tokens' iss (some end it with "/", most do not).
GATEHOUSE_OIDC_ISSUER = os.environ.get("GATEHOUSE_OIDC_ISSUER", "").strip()
GATEHOUSE_OIDC_CLIENT_ID = os.environ.get("GATEHOUSE_OIDC_CLIENT_ID", "")
GATEHOUSE_OIDC_CLIENT_SECRET = os.environ.get("GATEHOUSE_OIDC_CLIENT_SECRET", "")
GATEHOUSE_OIDC_SCOPES = os.environ.get("GATEHOUSE_OIDC_SCOPES", "openid profile email groups")
GATEHOUSE_OIDC_GROUPS_CLAIM = os.environ.get("GATEHOUSE_OIDC_GROUPS_CLAIM", "groups")
GATEHOUSE_OIDC_USERNAME_CLAIM = os.environ.get(
    "GATEHOUSE_OIDC_USERNAME_CLAIM", "preferred_username"
)
GATEHOUSE_OIDC_NAME = os.environ.get("GATEHOUSE_OIDC_NAME", "single sign-on")
GATEHOUSE_OIDC_CA_FILE = os.environ.get("GATEHOUSE_OIDC_CA_FILE", "")
if GATEHOUSE_OIDC_CA_FILE and not os.path.isfile(GATEHOUSE_OIDC_CA_FILE):
    raise ImproperlyConfigured(f"GATEHOUSE_OIDC_CA_FILE: no such file: {GATEHOUSE_OIDC_CA_FILE}")
# How long the groups of an OpenID Connect sign-in count: the provider cannot be asked who
# left, so after this a user leaves mapped teams until they sign in again.
GATEHOUSE_OIDC_GROUPS_SECONDS = int(os.environ.get("GATEHOUSE_OIDC_GROUPS_SECONDS", "86400"))
GATEHOUSE_OIDC_TIMEOUT_SECONDS = float(os.environ.get("GATEHOUSE_OIDC_TIMEOUT_SECONDS", "5"))
if GATEHOUSE_OIDC_ISSUER and not (GATEHOUSE_OIDC_ISSUER.startswith("https://") or DEBUG):
    raise ImproperlyConfigured(
        "GATEHOUSE_OIDC_ISSUER must be an https:// URL (plain http only with GATEHOUSE_DEBUG=1)."
    )
if GATEHOUSE_OIDC_ISSUER and not (GATEHOUSE_OIDC_CLIENT_ID and GATEHOUSE_OIDC_CLIENT_SECRET):
    raise ImproperlyConfigured(
        "GATEHOUSE_OIDC_ISSUER needs GATEHOUSE_OIDC_CLIENT_ID and GATEHOUSE_OIDC_CLIENT_SECRET."
    )

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("GATEHOUSE_CELERY_QUEUE", "gatehouse")
CELERY_BEAT_SCHEDULE = {
    "check-drift": {"task": "trust.check_drift", "schedule": GATEHOUSE_DRIFT_CHECK_SECONDS},
    "requeue-stale-jobs": {
        "task": "trust.requeue_stale_jobs",
        "schedule": min(60.0, GATEHOUSE_JOB_REQUEUE_SECONDS / 2),
    },
}
# A scheduled sync reads everyone from LDAP (with the service account and the user base),
# and expires OpenID Connect sign-ins' groups.
if GATEHOUSE_DIRECTORY_SYNC_SECONDS > 0 and (
    (GATEHOUSE_LDAP_URL and GATEHOUSE_LDAP_BIND_DN and GATEHOUSE_LDAP_USER_BASE)
    or GATEHOUSE_OIDC_ISSUER
):
    CELERY_BEAT_SCHEDULE["sync-directory"] = {
        "task": "directory.sync",
        "schedule": GATEHOUSE_DIRECTORY_SYNC_SECONDS,
    }
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "celery-queue"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }

# One line per record, with the request or job id (gatehouse/logging.py); JSON lines when
# GATEHOUSE_LOG_JSON is on.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "gatehouse.logging.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(context)s] %(message)s"},
        "json": {"()": "gatehouse.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if env_bool("GATEHOUSE_LOG_JSON") else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("GATEHOUSE_LOG_LEVEL", "INFO")},
    # Django's own console and mail handlers go: its records reach the root's handler.
    "loggers": {"django": {"handlers": [], "propagate": True}},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # the worker logs through LOGGING's handler too

GATEHOUSE_BUNDLE_CERT_DAYS = int(os.environ.get("GATEHOUSE_BUNDLE_CERT_DAYS", "365"))
GATEHOUSE_DOCKER_HOST = os.environ.get("GATEHOUSE_DOCKER_HOST", "")
