"""Openrate settings: every knob is an environment variable with a safe local default.

README.md lists each variable. With nothing set, Openrate runs embedded: SQLite, a filesystem
Celery broker and a database event buffer, so no server has to be installed.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_INLINE

from config.log_levels import logger_levels

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
# The fallback key is only good for a laptop; `check --deploy` flags it, and README says so.
SECRET_KEY = env(
    "SECRET_KEY", default="django-insecure-local-only-openrate-do-not-use-in-production"
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Production over HTTPS: one switch turns on every transport-security setting Django checks.
HTTPS_ONLY = env.bool("HTTPS_ONLY", default=False)
SECURE_SSL_REDIRECT = HTTPS_ONLY
SESSION_COOKIE_SECURE = HTTPS_ONLY
CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS_ONLY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS_ONLY
SECURE_HSTS_PRELOAD = HTTPS_ONLY
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tables2",
    "django_filters",
    "anymail",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "rest_framework",
    "drf_spectacular",
    "privacy",
    "crm",
    "tracking",
    "inbound",
    "capture",
    "campaigns",
    "reports",
    "automation",
    "webhooks",
    "imports",
    "api",
    "dataprotection",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "config.middleware.UserTimeZoneMiddleware",
    "config.middleware.LoginRequiredMiddleware",
    "config.middleware.AdminRequiresVerifiedMiddleware",
    "config.middleware.AdminQueryBoundsMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: it turns a login that hit the limit into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Every page's Content-Security-Policy: scripts only from our own static files (no inline
# script, no eval), nothing framed or framing us. style-src keeps 'unsafe-inline' because
# templates size progress bars and boxes with style="" and the email bodies shown in
# sandboxed srcdoc iframes inherit this policy and carry inline styles; a style cannot run
# script. Images may come from https: and data: for the email bodies the composer edits
# (the email page's frame narrows that to data: itself, mailkit.display.FRAME_CSP).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "https:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "crm.context_processors.my_task_count",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
if env.bool("DATABASE_TRANSACTION_POOLING", default=False):
    # Behind PgBouncer in transaction mode a session lasts one transaction: no server-side
    # cursors (iterator() would lose its cursor) and no prepared statements (psycopg prepares a
    # query run five times on the connection it thinks it has).
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the Celery worker and beat share one SQLite file: WAL lets readers run
    # beside the writer, IMMEDIATE transactions and a busy timeout make writers queue, not fail.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not :memory:, so a Celery worker started by a test sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "crm.User"
# django-axes first: it refuses a locked-out username + address before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes): AXES_FAILURE_LIMIT failed logins for one username from one
# address lock that pair out for AXES_COOLOFF_MINUTES; a success clears the count. An admin
# unlocks in the admin (Axes > Access attempts) or with `manage.py axes_reset_username NAME`.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False  # no banner on every start; lockouts are still logged
# The client's address behind TRACKING_TRUSTED_PROXIES proxies, read as the fast path reads it.
AXES_CLIENT_IP_CALLABLE = "config.middleware.client_ip"
# Axes logs every login (Django admin -> Axes -> Access logs); beat prunes older entries nightly.
LOGIN_LOG_RETENTION_DAYS = env.int("LOGIN_LOG_RETENTION_DAYS", default=90)
# Two-factor (django-otp, TOTP): optional per user, enrolled on the Account security page.
OTP_TOTP_ISSUER = "Openrate"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

LANGUAGE_CODE = "en-us"
# The site's time zone: Celery's schedule, and pages for a user who has not chosen their own
# on Account security (config.middleware.UserTimeZoneMiddleware shows each user theirs).
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# One way to write a date and a time on every page (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Mail: EMAIL_URL such as smtp://user:pass@host:587/?tls=True; the console by default.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
# An ESP instead (django-anymail), e.g. EMAIL_BACKEND=anymail.backends.postmark.EmailBackend
# with ANYMAIL_POSTMARK_SERVER_TOKEN=...: every ANYMAIL_* variable goes into ANYMAIL below.
if env("EMAIL_BACKEND", default=""):
    EMAIL_BACKEND = env("EMAIL_BACKEND")
# Embedded mode with DEBUG on (`make run`: no REDIS_URL, EMAIL_URL or EMAIL_BACKEND): delivered
# mail is kept as files in OUTBOX_DIR and shown at /outbox/ (demo.outbox), so a newcomer reads
# an email as its recipient would and can open and click it. Anywhere else it is not used.
OUTBOX_DIR = Path(env("OUTBOX_DIR", default=str(VAR_DIR / "outbox")))
# Uploaded CSV / XLSX files while their import is set up and runs (deleted when it ends): a
# folder the web server and the worker share. Larger uploads are refused.
IMPORT_DIR = Path(env("IMPORT_DIR", default=str(VAR_DIR / "imports")))
IMPORT_MAX_MB = env.int("IMPORT_MAX_MB", default=50)
# Data exports (dataprotection.export): ZIP archives under random names, kept 7 days.
EXPORT_DIR = Path(env("EXPORT_DIR", default=str(VAR_DIR / "exports")))
if DEBUG and not any(env(name, default="") for name in ("REDIS_URL", "EMAIL_URL", "EMAIL_BACKEND")):
    EMAIL_BACKEND = "demo.outbox.EmailBackend"
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Openrate <openrate@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Redis: unset means embedded mode (filesystem broker, database event buffer, per-process cache).
REDIS_URL = env("REDIS_URL", default="")
CACHES = {"default": env.cache("CACHE_URL", default=REDIS_URL or "locmemcache://")}
# "localhost" names no server (the filesystem broker uses folders); without it kombu warns
# "No hostname was supplied" on every connection.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://localhost//")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = Path(env("CELERY_FILESYSTEM_DIR", default=str(VAR_DIR / "celery-queue")))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
# Queues by kind of work, so that a list email to 100,000 members cannot hold up ingestion,
# inbound mail or a rep's single email: each kind waits in its own queue, and a production
# deployment gives each its own worker (README, "Workers and queues"). `make run` and the tests'
# worker read every queue. A task not named here goes to the default queue, "celery" (its
# name before queues existed, so messages waiting at an upgrade are still read).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "tracking.tasks.ingest_events": {"queue": "ingestion"},
    "campaigns.tasks.send_list_email_batch": {"queue": "list_email"},
    "campaigns.tasks.resume_list_emails": {"queue": "list_email"},
    "inbound.tasks.*": {"queue": "inbound"},
    "capture.tasks.*": {"queue": "inbound"},
    "tracking.tasks.recount_*": {"queue": "housekeeping"},
    "crm.tasks.recompute_activity_metrics": {"queue": "housekeeping"},
    "crm.tasks.create_follow_ups": {"queue": "housekeeping"},
    "crm.tasks.prune_login_log": {"queue": "housekeeping"},
    "crm.tasks.ensure_partitions": {"queue": "housekeeping"},
    "campaigns.tasks.recompute_influence": {"queue": "housekeeping"},
    "dataprotection.tasks.*": {"queue": "housekeeping"},
    "reports.tasks.*": {"queue": "housekeeping"},
    "imports.tasks.*": {"queue": "housekeeping"},
}
CELERY_QUEUE_NAMES = ("celery", "ingestion", "list_email", "inbound", "housekeeping")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = TIME_ZONE
TRACKING_INGEST_INTERVAL = env.float("TRACKING_INGEST_INTERVAL", default=5.0)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Drain the tracking event buffer; a run that finds work keeps going for up to a minute,
    # and (with Redis) one that finds none waits on the stream for TRACKING_INGEST_WAIT seconds
    # (the interval by default: a worker on the ingestion queue is then always reading, and an
    # event is stored within a batch's time). 0 for a worker that also reads other queues.
    "ingest-tracking-events": {
        "task": "tracking.tasks.ingest_events",
        "schedule": TRACKING_INGEST_INTERVAL,
        "kwargs": {
            "wait_seconds": env.float("TRACKING_INGEST_WAIT", default=TRACKING_INGEST_INTERVAL)
        },
        "options": {"expires": 30},
    },
    # Read bounces, complaints and replies from INBOUND_IMAP_URL (does nothing when unset).
    "poll-inbound-mailbox": {
        "task": "inbound.tasks.poll_inbound_mailbox",
        "schedule": env.float("INBOUND_POLL_INTERVAL", default=60.0),
        "options": {"expires": 120},
    },
    # Each connected mailbox's new mail (capture.tasks: one job per mailbox, never two at once).
    "sync-mailboxes": {
        "task": "capture.tasks.sync_mailboxes",
        "schedule": env.float("MAILBOX_SYNC_INTERVAL", default=300.0),
        "options": {"expires": 240},
    },
    # Every record's activity metrics, at night (sends, ingestion and calls update theirs as
    # they happen; the nightly run moves "days without activity" on for everyone else).
    "recompute-activity-metrics": {
        "task": "crm.tasks.recompute_activity_metrics",
        "schedule": crontab(minute=30, hour=env.int("ACTIVITY_RECOMPUTE_HOUR", default=2)),
        "options": {"expires": 3 * 3600},
    },
    # Follow-up tasks for records quiet for Setup's "days without activity".
    "create-follow-ups": {
        "task": "crm.tasks.create_follow_ups",
        "schedule": env.float("FOLLOW_UP_INTERVAL", default=3600.0),
        "options": {"expires": 1800},
    },
    # Send later: scheduled single emails whose time has come (a missed run catches up).
    "send-scheduled-emails": {
        "task": "crm.tasks.send_scheduled_emails",
        "schedule": env.float("SCHEDULED_EMAIL_INTERVAL", default=30.0),
        "options": {"expires": 25},
    },
    # List emails whose next batch is due: after the daily list limit resets, or a lost task.
    "resume-list-emails": {
        "task": "campaigns.tasks.resume_list_emails",
        "schedule": env.float("LIST_EMAIL_RESUME_INTERVAL", default=60.0),
        "options": {"expires": 50},
    },
    # Every opportunity's campaign influence, at night (changes recompute theirs at once).
    "recompute-influence": {
        "task": "campaigns.tasks.recompute_influence",
        "schedule": crontab(minute=45, hour=env.int("ACTIVITY_RECOMPUTE_HOUR", default=2)),
        "options": {"expires": 3 * 3600},
    },
    # Engagement alerts are raised after each ingestion batch; this catches any that were not.
    "create-engagement-alerts": {
        "task": "crm.tasks.create_engagement_alerts",
        "schedule": env.float("ENGAGEMENT_ALERT_INTERVAL", default=900.0),
        "options": {"expires": 600},
    },
    # The login log's retention (LOGIN_LOG_RETENTION_DAYS), nightly.
    "prune-login-log": {
        "task": "crm.tasks.prune_login_log",
        "schedule": crontab(minute=20, hour=env.int("EMAIL_LOG_PRUNE_HOUR", default=3)),
        "options": {"expires": 3 * 3600},
    },
    # Every retention of Setup, nightly, recorded for admins (/privacy/retention/): email bodies,
    # inbound raw messages and the email log. It runs before "prune-email-log", which stays as a
    # backstop for the log (then finding nothing) while tests/reports pin that entry.
    "retention-enforce": {
        "task": "dataprotection.tasks.retention_enforce",
        "schedule": crontab(minute=5, hour=env.int("EMAIL_LOG_PRUNE_HOUR", default=3)),
        "options": {"expires": 3 * 3600},
    },
    # The email log's and the tracking events' monthly partitions, made months ahead
    # (PostgreSQL; crm.partitions). Daily, so a missed run or two changes nothing.
    "ensure-partitions": {
        "task": "crm.tasks.ensure_partitions",
        "schedule": crontab(minute=25, hour=env.int("EMAIL_LOG_PRUNE_HOUR", default=3)),
        "options": {"expires": 12 * 3600},
    },
    # Sequence steps that fell due (a batch per transaction; two runs at once never clash).
    "advance-enrolments": {
        "task": "automation.tasks.advance_enrolments",
        "schedule": env.float("SEQUENCE_ADVANCE_INTERVAL", default=60.0),
        "options": {"expires": 50},
    },
    # Enrolments that must stop (a reply, a bounce, an opt-out...), and copies a dead worker left.
    "sweep-enrolments": {
        "task": "automation.tasks.sweep_enrolments",
        "schedule": env.float("SEQUENCE_SWEEP_INTERVAL", default=300.0),
        "options": {"expires": 250},
    },
    # Triggered-email rules, for the events since their last run (each event fires once).
    "fire-rules": {
        "task": "automation.tasks.fire_rules",
        "schedule": env.float("RULES_FIRE_INTERVAL", default=120.0),
        "options": {"expires": 100},
    },
    # Data exports past their 7 days: the archive is removed and the request marked expired.
    "exports-expire": {
        "task": "dataprotection.tasks.exports_expire",
        "schedule": crontab(minute=10, hour=env.int("EMAIL_LOG_PRUNE_HOUR", default=3)),
        "options": {"expires": 3 * 3600},
    },
    # The email log's retention (Setup's months): old delivery, open and click events, nightly.
    "prune-email-log": {
        "task": "reports.tasks.prune_email_log",
        "schedule": crontab(minute=15, hour=env.int("EMAIL_LOG_PRUNE_HOUR", default=3)),
        "options": {"expires": 3 * 3600},
    },
    # Outgoing webhooks: new events into deliveries, then the due deliveries sent.
    "collect-webhook-events": {
        "task": "webhooks.tasks.collect_events",
        "schedule": env.float("WEBHOOK_COLLECT_INTERVAL", default=5.0),
        "options": {"expires": 30},
    },
    "dispatch-webhooks": {
        "task": "webhooks.tasks.dispatch_deliveries",
        "schedule": env.float("WEBHOOK_DISPATCH_INTERVAL", default=5.0),
        "options": {"expires": 30},
    },
}

# Tracking: the public origin put into pixel and link URLs, and the signing keys (newest first).
TRACKING_BASE_URL = env("TRACKING_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
TRACKING_SIGNING_KEYS = env.list("TRACKING_SIGNING_KEYS", default=[])
# Inbound mail: the VERP domain for return paths (bounces+<token>@domain must reach Openrate,
# by the IMAP mailbox or the MTA pipe), the mailbox Celery beat polls, and ESP webhooks' secret.
INBOUND_VERP_DOMAIN = env("INBOUND_VERP_DOMAIN", default="")
INBOUND_IMAP_URL = env("INBOUND_IMAP_URL", default="")
INBOUND_IMAP_FAILED_FOLDER = env("INBOUND_IMAP_FAILED_FOLDER", default="Openrate/Failed")
# Inbox capture (the capture app): the Fernet key(s) encrypting mailbox app passwords (comma
# separated, newest first; required unless DEBUG), the domain of each user's Bcc address
# (capture+<id>.<secret>@domain; INBOUND_VERP_DOMAIN when unset), a CA file to trust for mail
# servers besides the system's (a private CA), and how often beat syncs the mailboxes.
MAILBOX_ENCRYPTION_KEY = env.list("MAILBOX_ENCRYPTION_KEY", default=[])
CAPTURE_ADDRESS_DOMAIN = env("CAPTURE_ADDRESS_DOMAIN", default="") or INBOUND_VERP_DOMAIN
MAILBOX_TLS_CA_FILE = env("MAILBOX_TLS_CA_FILE", default="")
# Anymail checks this HTTP Basic secret ("user:password") on every webhook; with none set a
# random one is used, so no webhook is accepted until one is configured.
ANYMAIL = {
    name.removeprefix("ANYMAIL_"): value
    for name, value in os.environ.items()
    if name.startswith("ANYMAIL_") and value
}
ANYMAIL.setdefault("WEBHOOK_SECRET", f"disabled:{secrets.token_urlsafe(32)}")
# How many reverse proxies in front of the app append to X-Forwarded-For (0: use REMOTE_ADDR).
TRACKING_TRUSTED_PROXIES = env.int("TRACKING_TRUSTED_PROXIES", default=0)
# The balancer in front of the web hosts stamps every request with X-Openrate-Request (README,
# "Behind a load balancer"), and nothing reaches a web host but through it: a hit takes its
# event id and time from the stamp, so a request retried on another host is one event.
TRACKING_BALANCER_STAMPS = env.bool("TRACKING_BALANCER_STAMPS", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # axes logs every login at INFO; its failures and lockouts are warnings.
    "loggers": {
        "axes": {"level": "WARNING"},
        # e.g. LOG_LEVELS="tracking.ingestion=DEBUG": each ingestion batch and where its time went.
        **logger_levels(env("LOG_LEVELS", default="")),
    },
}

# The REST API (/api/v1/, the api app): personal tokens ("Authorization: Bearer ...") or the
# browser's session; each role's model permissions and record access as on the pages; cursor
# pages; errors as RFC 9457 problem details; OpenAPI 3 from drf-spectacular at /api/schema/.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.RolePermissions"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.RecordCursorPagination",
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TokenRateThrottle"],
    "DEFAULT_FILTER_BACKENDS": [
        "api.filtering.RecordFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "api.errors.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Openrate API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets that share a field name ("status") get stable names, not hashed ones.
    "ENUM_NAME_OVERRIDES": {
        "LeadStatusEnum": "crm.models.Lead.Status",
        "TaskStatusEnum": "crm.models.Task.Status",
        "EmailStatusEnum": "crm.models.EmailMessage.Status",
        "EmailDeliveryStatusEnum": "crm.models.EmailMessage.Delivery",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.problem_responses",
        "api.schema.filter_fields_uncached",
    ],
}
# Requests per token (DRF's rate syntax: "600/min", "10/s"); over it, 429 with Retry-After.
API_RATE_LIMIT = env("API_RATE_LIMIT", default="600/min")

DJANGO_TABLES2_TEMPLATE = "django_tables2/bootstrap5-responsive.html"
DJANGO_TABLES2_TABLE_ATTRS = {"class": "table table-hover align-middle mb-0"}
