"""Settings, all read from the environment (see README.md for every variable).

Embedded default: SQLite in WAL mode under ``data/``, django-q2's ORM broker, the in-memory
channel layer and a local-memory cache. With ``DATABASE_URL`` and ``REDIS_URL`` the same code runs
on PostgreSQL with channels-redis and a Redis cache.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from config.localkeys import fernet_key_new, local_key, secret_key_new

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("WEFT_DATA_DIR", BASE_DIR / "data"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# Keys. Production sets SECRET_KEY and WEFT_ENCRYPTION_KEY; with DEBUG off a missing or publicly
# known one refuses to start. The embedded default (WEFT_LOCAL_KEYS, on for manage.py runweft and
# make run; also in DEBUG) generates both once and keeps them in the data directory instead
# (config/localkeys.py). Tests get theirs from config/settings_test.py.
DEBUG = env_bool("DEBUG", False)
WEFT_LOCAL_KEYS = env_bool("WEFT_LOCAL_KEYS", "runweft" in sys.argv[:2])
_PUBLIC_SECRET_KEYS = {"weft-insecure-development-key-change-me", "change-me", "secret", ""}
SECRET_KEY = os.environ.get("SECRET_KEY", "").strip()
if not SECRET_KEY and (WEFT_LOCAL_KEYS or DEBUG):
    SECRET_KEY = local_key(DATA_DIR, "secret_key", secret_key_new)
if not DEBUG and (SECRET_KEY in _PUBLIC_SECRET_KEYS or SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured(
        "SECRET_KEY is not set (or is a known development value, or shorter than 32 characters) and DEBUG is "
        "off. Set the SECRET_KEY environment variable to a long random value, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))', or set WEFT_LOCAL_KEYS=1 to keep "
        "generated keys in the data directory (the embedded default, what make run does)."
    )

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

# Fernet key for stored secrets (credentials): its own setting, never derived from SECRET_KEY.
# WEFT_ENCRYPTION_KEY_FALLBACKS (comma-separated) still decrypt, for key rotation.
WEFT_ENCRYPTION_KEY = os.environ.get("WEFT_ENCRYPTION_KEY", "").strip()
WEFT_ENCRYPTION_KEY_FALLBACKS = [k.strip() for k in os.environ.get("WEFT_ENCRYPTION_KEY_FALLBACKS", "").split(",")
                                 if k.strip()]
if not WEFT_ENCRYPTION_KEY and (WEFT_LOCAL_KEYS or DEBUG):
    WEFT_ENCRYPTION_KEY = local_key(DATA_DIR, "encryption_key", fernet_key_new)
    # What earlier versions derived from the public development key: data stored by them still
    # decrypts (it is re-encrypted with the local key when saved again).
    WEFT_ENCRYPTION_KEY_FALLBACKS.append(base64.urlsafe_b64encode(
        hashlib.sha256(b"weft-encryption:weft-insecure-development-key-change-me").digest()).decode())
if not WEFT_ENCRYPTION_KEY:
    raise ImproperlyConfigured(
        "WEFT_ENCRYPTION_KEY is not set and DEBUG is off. Set it to a Fernet key (python -c 'from "
        "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'), or set WEFT_LOCAL_KEYS=1 "
        "to keep generated keys in the data directory."
    )
try:
    Fernet(WEFT_ENCRYPTION_KEY.encode())
except ValueError:
    raise ImproperlyConfigured("WEFT_ENCRYPTION_KEY is not a Fernet key (32 url-safe base64-encoded bytes).") from None

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_q",
    "accounts",
    "workflows",
    "runs",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "runs.limits.BodySizeLimitMiddleware",  # 413 before anything reads an oversized body
    "config.jsoninput.UnstorableRequestMiddleware",  # 400 for a NUL in the URL or a header
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.security.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

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
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'weft.sqlite3'}"
# Every process keeps its connections (WEFT_DB_CONN_MAX_AGE seconds, checked at each request's
# start): worker processes (``manage.py qcluster``) are long-lived synchronous threads (django-q2
# closes every connection before it forks), and the web process serves each request on a kept
# thread (config.handlers), not on a thread made for it, so a connection per thread is reused.
# WEFT_HTTP_IDLE_THREADS: idle request threads (each with its connection) kept per web process.
DATABASES = {"default": dj_database_url.parse(
    DATABASE_URL, conn_max_age=env_int("WEFT_DB_CONN_MAX_AGE", 600), conn_health_checks=True)}
WEFT_HTTP_IDLE_THREADS = env_int("WEFT_HTTP_IDLE_THREADS", 16)
# Garbage collection of server processes (config.gctune): start-up's objects frozen, the young
# generation collected every WEFT_GC_THRESHOLD allocations (0: Python's defaults).
WEFT_GC_THRESHOLD = env_int("WEFT_GC_THRESHOLD", 10000)
_SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if _SQLITE:
    # WAL + busy timeout + IMMEDIATE transactions: the web server and the workers write to the
    # same file; concurrent writers queue instead of failing with "database is locked".
    DATABASES["default"]["ENGINE"] = "config.sqlite"  # writers of one process queue in order (see there)
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
    }

# Each test session gets its own test database (several sessions may run at once on one machine);
# the name is exported so that servers and workers started by the tests use the same database.
os.environ.setdefault("WEFT_TEST_DB_SUFFIX", str(os.getpid()))
_test_suffix = os.environ["WEFT_TEST_DB_SUFFIX"]
if _SQLITE:
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test_weft_{_test_suffix}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_weft_{_test_suffix}"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
# channels-redis waits for a socket's messages with BZPOPMIN and a 5 s server-side timeout; redis-py
# 8 reads every answer within a 5 s socket timeout by default, so on a busy loop the server's empty
# answer came in late, the read raised TimeoutError and the socket's consumer died (closed 1011).
# 0: no socket timeout at all.
WEFT_CHANNEL_LAYER_SOCKET_TIMEOUT = float(os.environ.get("WEFT_CHANNEL_LAYER_SOCKET_TIMEOUT", "30"))
if 0 < WEFT_CHANNEL_LAYER_SOCKET_TIMEOUT <= 5:
    raise ImproperlyConfigured(
        "WEFT_CHANNEL_LAYER_SOCKET_TIMEOUT must be 0 (none) or more than 5 seconds: the Redis channel layer "
        f"waits up to 5 s for each message (it is {WEFT_CHANNEL_LAYER_SOCKET_TIMEOUT:g})."
    )
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [
            {"address": REDIS_URL, "socket_timeout": WEFT_CHANNEL_LAYER_SOCKET_TIMEOUT or None},
        ]}}
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CACHES["throttle"] = {**CACHES["default"]}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # Shared by every process of this installation (web processes, workers): config/sharedcache.
    CACHES = {"default": {"BACKEND": "config.sharedcache.SharedFileCache", "LOCATION": ""}}
    CACHES["throttle"] = {**CACHES["default"]}  # sign-in throttling (accounts.throttle), shared likewise
CACHES["throttle"]["KEY_PREFIX"] = os.environ.get("WEFT_THROTTLE_PREFIX", "weft")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
]
AUTHENTICATION_BACKENDS = ["accounts.throttle.ThrottledModelBackend"]
WEFT_LOGIN_FAILURES_PER_ACCOUNT = env_int("WEFT_LOGIN_FAILURES_PER_ACCOUNT", 5)
WEFT_LOGIN_FAILURES_PER_ADDRESS = env_int("WEFT_LOGIN_FAILURES_PER_ADDRESS", 30)
WEFT_LOGIN_WINDOW_SECONDS = env_int("WEFT_LOGIN_WINDOW_SECONDS", 900)
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["config.fastjson.FastJSONRenderer"],  # orjson
    "DEFAULT_PARSER_CLASSES": ["config.jsoninput.CheckedJSONParser"],  # depth budget, NUL, lone surrogates
    "EXCEPTION_HANDLER": "config.exceptions.problem_exception_handler",
    # Requests per minute per token and per team (runs.limits; WEFT_*RATE_LIMIT_PER_MINUTE, 0 = off).
    "DEFAULT_THROTTLE_CLASSES": ["runs.limits.RequestRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Weft API",
    "DESCRIPTION": "Native (/api/v1/), Dify-style (/v1/) and Coze-style (/) run APIs and the management API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "BearerToken": {"type": "http", "scheme": "bearer"},
            "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        },
        # An async step's callback body: any JSON object, or problem+json (runs.apis.CallbackApi).
        "schemas": {"CallbackResult": {"type": "object", "additionalProperties": True,
                                       "description": "The step's result (JSON), or problem+json for a failure"}},
    },
    "ENUM_NAME_OVERRIDES": {"TriggerKindEnum": "workflows.models.TriggerKind",
                            "CredentialKindEnum": "accounts.models.CredentialKind"},
}

# django-q2: the ORM broker in every setup (the database is the record; queues only wake things up).
Q_CLUSTER = {
    "name": "weft",
    "orm": "default",
    "workers": env_int("WEFT_Q_WORKERS", 2),
    "timeout": env_int("WEFT_Q_TIMEOUT", 90000),
    "retry": env_int("WEFT_Q_RETRY", 90060),
    "max_attempts": 1,
    "catch_up": False,
    "poll": 0.2,
    # Successful tasks are not kept: a run's record is the run (django-q2 would otherwise load and
    # lock its whole success table on every task to prune it). Failures are kept.
    "save_limit": -1,
    "ack_failures": True,
    "sync": env_bool("WEFT_Q_SYNC", False),
    "log_level": os.environ.get("WEFT_Q_LOG_LEVEL", "WARNING"),
}

# Platform limits and behaviour.
# Resolved tokens and app entry workflows cached per web process (config.stamp; 0: no cache).
WEFT_AUTH_CACHE_SIZE = env_int("WEFT_AUTH_CACHE_SIZE", 1024)
# Daphne processes `manage.py runweft` starts on its one listening socket (0: one per core).
WEFT_WEB_PROCESSES = env_int("WEFT_WEB_PROCESSES", 0)
WEFT_BLOCKING_TIMEOUT = env_int("WEFT_BLOCKING_TIMEOUT", 300)
WEFT_STREAMING_TIMEOUT = env_int("WEFT_STREAMING_TIMEOUT", 900)
WEFT_ASYNC_TIMEOUT = env_int("WEFT_ASYNC_TIMEOUT", 86400)
WEFT_LEASE_SECONDS = env_int("WEFT_LEASE_SECONDS", 30)
WEFT_MAX_CLAIMS = env_int("WEFT_MAX_CLAIMS", 3)
# Durable execution (docs/durable.md): the periodic pass (reaper, schedules, batches) every
# WEFT_TICK_SECONDS; lost wake-ups re-queued after WEFT_STALE_SECONDS; batches and their callbacks.
WEFT_TICK_SECONDS = env_int("WEFT_TICK_SECONDS", 2)
WEFT_STALE_SECONDS = env_int("WEFT_STALE_SECONDS", 120)
WEFT_BATCH_CONCURRENCY = env_int("WEFT_BATCH_CONCURRENCY", 8)
WEFT_CALLBACK_ATTEMPTS = env_int("WEFT_CALLBACK_ATTEMPTS", 8)
WEFT_CALLBACK_BACKOFF = env_int("WEFT_CALLBACK_BACKOFF", 5)
# Requests per minute per token and per team. A production integration is often one token calling
# as fast as the platform answers (a Dify or n8n client, a queue consumer), so the defaults sit
# above what one machine serves (1,000/s per token): they stop a runaway client on a large
# deployment, and the concurrent-run limits below protect the server itself.
WEFT_RATE_LIMIT_PER_MINUTE = env_int("WEFT_RATE_LIMIT_PER_MINUTE", 60_000)
WEFT_TEAM_RATE_LIMIT_PER_MINUTE = env_int("WEFT_TEAM_RATE_LIMIT_PER_MINUTE", 120_000)
WEFT_MAX_CONCURRENT_RUNS = env_int("WEFT_MAX_CONCURRENT_RUNS", 50)
WEFT_MAX_CONCURRENT_RUNS_PER_TOKEN = env_int("WEFT_MAX_CONCURRENT_RUNS_PER_TOKEN", 20)
WEFT_SSE_PING_SECONDS = float(os.environ.get("WEFT_SSE_PING_SECONDS", "10"))
# The Coze coding runtime pings its workflow streams every 30 s (coze-coding-utils PING_INTERVAL_SECONDS).
WEFT_COZE_PING_SECONDS = float(os.environ.get("WEFT_COZE_PING_SECONDS", "30"))
# Following runs (runs.cursor): open SSE streams and websockets per token (or signed-in user) and
# per team, per web process (0 = no limit); the shared log poll of followed runs no event reached.
WEFT_MAX_STREAMS_PER_TOKEN = env_int("WEFT_MAX_STREAMS_PER_TOKEN", 20)
WEFT_MAX_STREAMS_PER_TEAM = env_int("WEFT_MAX_STREAMS_PER_TEAM", 100)
WEFT_STREAM_POLL_SECONDS = float(os.environ.get("WEFT_STREAM_POLL_SECONDS", "0.3"))
WEFT_MAX_BODY_BYTES = env_int("WEFT_MAX_BODY_BYTES", 1024 * 1024 * 2)
# Nesting of any JSON the platform accepts (config.jsoninput): deeper is a 400 naming the place.
WEFT_MAX_JSON_DEPTH = env_int("WEFT_MAX_JSON_DEPTH", 64)
WEFT_HTTP_ALLOW_NETWORKS = [n.strip() for n in os.environ.get("WEFT_HTTP_ALLOW_NETWORKS", "").split(",") if n.strip()]
WEFT_HTTP_MAX_RESPONSE_BYTES = env_int("WEFT_HTTP_MAX_RESPONSE_BYTES", 10 * 1024 * 1024)
WEFT_PUBLIC_URL = os.environ.get("WEFT_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# Budgets of WORKFLOW_FORMAT.md "Limits" (workflows.budgets hands them to the engine): a 400 naming
# the place at publish/run request, or a node failure with code limit_exceeded at run time.
WEFT_MAX_GRAPH_NODES = env_int("WEFT_MAX_GRAPH_NODES", 500)
WEFT_MAX_GRAPH_NESTING = env_int("WEFT_MAX_GRAPH_NESTING", 8)
# db and queue nodes, queue triggers (docs/queues.md). Connections obey WEFT_HTTP_ALLOW_NETWORKS.
WEFT_CONNECT_TIMEOUT = float(os.environ.get("WEFT_CONNECT_TIMEOUT", "10"))
WEFT_DB_SQLITE_DIR = os.environ.get("WEFT_DB_SQLITE_DIR", str(DATA_DIR / "sqlite"))  # empty: SQLite off
WEFT_DB_SQLITE_MAX_BYTES = env_int("WEFT_DB_SQLITE_MAX_BYTES", 100 * 1024 * 1024)
WEFT_DB_MAX_CONNECTIONS_PER_TEAM = env_int("WEFT_DB_MAX_CONNECTIONS_PER_TEAM", 5)
WEFT_DB_MAX_ROWS = env_int("WEFT_DB_MAX_ROWS", 10000)
WEFT_DB_STATEMENT_TIMEOUT = float(os.environ.get("WEFT_DB_STATEMENT_TIMEOUT", "30"))
WEFT_DB_MAX_STATEMENT_TIMEOUT = float(os.environ.get("WEFT_DB_MAX_STATEMENT_TIMEOUT", "300"))
WEFT_NODE_MAX_OUTPUT_BYTES = env_int("WEFT_NODE_MAX_OUTPUT_BYTES", 1024 * 1024)
WEFT_QUEUE_MAX_MESSAGE_BYTES = env_int("WEFT_QUEUE_MAX_MESSAGE_BYTES", 1024 * 1024)
WEFT_CONSUMER_PREFETCH = env_int("WEFT_CONSUMER_PREFETCH", 10)
WEFT_CONSUMER_RELOAD_SECONDS = float(os.environ.get("WEFT_CONSUMER_RELOAD_SECONDS", "2"))
WEFT_CONSUMER_MAX_BACKOFF = float(os.environ.get("WEFT_CONSUMER_MAX_BACKOFF", "30"))
WEFT_CONSUMER_CLAIM_IDLE_SECONDS = float(os.environ.get("WEFT_CONSUMER_CLAIM_IDLE_SECONDS", "60"))
WEFT_CONSUMER_MAX_TRIGGERS = env_int("WEFT_CONSUMER_MAX_TRIGGERS", 200)
WEFT_MAX_EXPRESSION_BYTES = env_int("WEFT_MAX_EXPRESSION_BYTES", 4096)
WEFT_MAX_EXPRESSION_DEPTH = env_int("WEFT_MAX_EXPRESSION_DEPTH", 32)
WEFT_MAX_COMPREHENSION_DEPTH = env_int("WEFT_MAX_COMPREHENSION_DEPTH", 2)
WEFT_MAX_COMPREHENSION_COST = env_int("WEFT_MAX_COMPREHENSION_COST", 4_000_000)
WEFT_MAX_LOOP_ITEMS = env_int("WEFT_MAX_LOOP_ITEMS", 10_000)
# Sub-workflow runs inside sub-workflow runs (a top-level run is depth 0); a call cycle is refused
# at publish whatever this is (workflows.calls), and a child past it fails limit_exceeded.
WEFT_MAX_WORKFLOW_DEPTH = env_int("WEFT_MAX_WORKFLOW_DEPTH", 5)
WEFT_MAX_RUN_CPU_SECONDS = float(os.environ.get("WEFT_MAX_RUN_CPU_SECONDS", "60"))
WEFT_MAX_REGEX_PATTERN_BYTES = env_int("WEFT_MAX_REGEX_PATTERN_BYTES", 1024)
WEFT_MAX_REGEX_SUBJECT_BYTES = env_int("WEFT_MAX_REGEX_SUBJECT_BYTES", 1024 * 1024)
# The execution tier (runs.pool, docs/durable.md): warm executor processes per web process (each
# django-q2 worker has one of its own), grown to WEFT_EXECUTORS_MAX while all are busy; per-run
# limits. WEFT_EXECUTORS=0 executes runs inside the calling process: tests and debugging only.
WEFT_EXECUTORS = env_int("WEFT_EXECUTORS", 2)
WEFT_EXECUTORS_MAX = env_int("WEFT_EXECUTORS_MAX", 8)
WEFT_EXECUTOR_CPU_SECONDS = env_int("WEFT_EXECUTOR_CPU_SECONDS", 60)
WEFT_EXECUTOR_MEMORY_MB = env_int("WEFT_EXECUTOR_MEMORY_MB", 512)
WEFT_EXECUTOR_GRACE_SECONDS = env_int("WEFT_EXECUTOR_GRACE_SECONDS", 5)
# Extra node type modules imported at start-up (each registers its types); the tests' hostile nodes.
WEFT_EXTRA_NODE_MODULES = [m.strip() for m in os.environ.get("WEFT_EXTRA_NODE_MODULES", "").split(",") if m.strip()]
DATA_UPLOAD_MAX_MEMORY_SIZE = WEFT_MAX_BODY_BYTES
# Idempotency-Key (runs.idempotency): how long a key answers its first run; swept hourly.
WEFT_IDEMPOTENCY_TTL = env_int("WEFT_IDEMPOTENCY_TTL", 86400)
# File uploads for runs (runs.files): size and type limits; stored through Django's storage API in
# the "uploads" storage: the filesystem under the data directory unless WEFT_UPLOAD_STORAGE names
# another backend (WEFT_UPLOAD_STORAGE_OPTIONS: its options as JSON). Remote file inputs are fetched
# under the HTTP node's address policy (WEFT_HTTP_ALLOW_NETWORKS) with the same size limit.
WEFT_UPLOAD_MAX_BYTES = env_int("WEFT_UPLOAD_MAX_BYTES", 15 * 1024 * 1024)
WEFT_UPLOAD_ALLOWED_TYPES = [t.strip().lower() for t in os.environ.get(
    "WEFT_UPLOAD_ALLOWED_TYPES",
    "image/*,audio/*,video/*,text/*,application/pdf,application/json,application/xml,application/zip,"
    "application/msword,application/vnd.ms-excel,application/vnd.ms-powerpoint,"
    "application/vnd.openxmlformats-officedocument.*").split(",") if t.strip()]
WEFT_UPLOAD_DIR = os.environ.get("WEFT_UPLOAD_DIR", str(DATA_DIR / "uploads"))
WEFT_UPLOAD_STORAGE = os.environ.get("WEFT_UPLOAD_STORAGE", "django.core.files.storage.FileSystemStorage")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "uploads": {"BACKEND": WEFT_UPLOAD_STORAGE, "OPTIONS": json.loads(os.environ["WEFT_UPLOAD_STORAGE_OPTIONS"])
                if os.environ.get("WEFT_UPLOAD_STORAGE_OPTIONS") else
                ({"location": WEFT_UPLOAD_DIR} if WEFT_UPLOAD_STORAGE.endswith("FileSystemStorage") else {})},
}

# Mail (verification, invitations, password reset): Django's email settings from the environment.
# SMTP when EMAIL_HOST is set, else the console (development); EMAIL_BACKEND overrides (e.g.
# django.core.mail.backends.filebased.EmailBackend with EMAIL_FILE_PATH). Tests: local memory.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(DATA_DIR / "mail"))
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Weft <weft@localhost>")
WEFT_VERIFICATION_DAYS = env_int("WEFT_VERIFICATION_DAYS", 3)
WEFT_INVITATION_DAYS = env_int("WEFT_INVITATION_DAYS", 7)
PASSWORD_RESET_TIMEOUT = env_int("WEFT_PASSWORD_RESET_SECONDS", 3600)

# Transport security (docs/accounts.md). Behind a TLS-terminating proxy set
# WEFT_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https (only if the proxy always sets that header).
WEFT_SECURE_COOKIES = env_bool("WEFT_SECURE_COOKIES", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = WEFT_SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("WEFT_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("WEFT_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("WEFT_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("WEFT_HSTS_PRELOAD", False)
_proxy_header = [p.strip() for p in os.environ.get("WEFT_PROXY_SSL_HEADER", "").split(",") if p.strip()]
SECURE_PROXY_SSL_HEADER = tuple(_proxy_header) if len(_proxy_header) == 2 else None
# Sent on every response; the default cannot break the pages (no script or style restriction).
WEFT_CSP = os.environ.get("WEFT_CSP", "frame-ancestors 'none'; object-src 'none'; base-uri 'self'").strip()
# Django's admin site (/admin/) is off unless enabled.
WEFT_ADMIN_ENABLED = env_bool("WEFT_ADMIN_ENABLED", False)

# Capability tokens in URLs (receipt tokens, hook keys, mailed links, websocket tickets) are masked
# in every line (config.logmask); Django's own loggers write through the same handler.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"capabilities": {"()": "config.logmask.CapabilityMaskFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["capabilities"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("WEFT_LOG_LEVEL", "WARNING")},
    "loggers": {name: {"handlers": ["console"], "propagate": False} for name in ("django", "django.server")},
}
