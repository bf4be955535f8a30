"""Every setting the project reads, in one place.

Values come from environment variables with defaults that run the assistant
on one machine with embedded storage (SQLite files under ``var/``).
Secrets have no defaults: they come only from the environment.
"""

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).resolve() if value else default


VAR_DIR = _path("CLINIC_VAR_DIR", PROJECT_DIR / "var")
MODELS_DIR = _path("CLINIC_MODELS_DIR", PROJECT_DIR / "models")
MODEL_NAME = _env("CLINIC_MODEL_NAME", "clinic-assistant")
SPACY_MODEL_DIR = _path("CLINIC_SPACY_MODEL_DIR", PROJECT_DIR / "var" / "spacy" / "en_clinic")
ARTICLE_PATH = _path("CLINIC_ARTICLE_PATH", PROJECT_DIR / "content" / "article.txt")
CLINIC_PROFILE_PATH = _path("CLINIC_PROFILE", PROJECT_DIR / "clinic.yml")
RESPONSES_DIR = PROJECT_DIR / "data" / "responses"
HELDOUT_NLU_PATH = PROJECT_DIR / "tests" / "nlu" / "heldout.yml"
# Rasa's training cache (reused components) lives with the other local state.
RASA_CACHE_DIR = _path("RASA_CACHE_DIRECTORY", VAR_DIR / "rasa-cache")

RASA_HOST = _env("RASA_HOST", "127.0.0.1")
RASA_PORT = int(_env("RASA_PORT", "5005"))
ACTIONS_HOST = _env("ACTIONS_HOST", "127.0.0.1")
ACTIONS_PORT = int(_env("ACTIONS_PORT", "5055"))
ACTION_ENDPOINT_URL = _env(
    "ACTION_ENDPOINT_URL", f"http://{ACTIONS_HOST}:{ACTIONS_PORT}/webhook"
)

# Rasa's SQL tracker store: a SQLite file by default, any SQLAlchemy URL by env
# (credentials, when needed, are part of that URL and so come from the environment).
TRACKER_URL = _env("TRACKER_URL", f"sqlite:///{VAR_DIR / 'tracker.db'}")

# After this many visitor messages in one conversation session, the session continues in a new one with
# every slot and an open form carried over (clinic_assistant/tracker_store.py): Rasa replays a session's
# whole history on every turn, so this bounds what a turn costs. Transcripts keep every message.
SESSION_TURN_LIMIT = int(_env("SESSION_TURN_LIMIT", "20"))

# Texts whose NLU parse each Rasa process keeps, so a repeated text ("yes", "thanks") is not parsed again
# (clinic_assistant/parse_cache.py); 0 turns the cache off.
NLU_CACHE_SIZE = int(_env("NLU_CACHE_SIZE", "2048"))

# Rasa's lock store, which serialises the turns of one conversation. In memory by default (one Rasa
# process); with several Rasa processes they must share one: redis://[:password@]host:port/db.
LOCK_STORE_URL = os.environ.get("LOCK_STORE_URL") or None

# The clinic's own database (safety flags, consultation requests, outbox),
# owned by the action server. SQLite by default, PostgreSQL by URL.
CLINIC_DATABASE_URL = _env("CLINIC_DATABASE_URL", f"sqlite:///{VAR_DIR / 'clinic.db'}")
# Safety flags and reach-out requests wait here while the clinic database is unreachable.
RECORD_SPOOL_PATH = _path("CLINIC_RECORD_SPOOL", VAR_DIR / "unstored-records.jsonl")

# The clinic's webhook that receives consultation requests; unset, they wait in the outbox.
CLINIC_WEBHOOK_URL = os.environ.get("CLINIC_WEBHOOK_URL") or None
# Shared secret signing each delivery (HMAC-SHA256): a secret, so from the environment only.
CLINIC_WEBHOOK_SECRET = os.environ.get("CLINIC_WEBHOOK_SECRET") or None
# Seconds between two looks at the outbox for deliveries that are due.
DELIVERY_POLL_SECONDS = float(_env("DELIVERY_POLL_SECONDS", "5"))
# After its n-th failed attempt a delivery waits BASE ** n seconds before the next one...
DELIVERY_BACKOFF_BASE = float(_env("DELIVERY_BACKOFF_BASE", "2"))
# ...but never more than this many seconds, so a clinic back online gets its requests soon.
DELIVERY_BACKOFF_MAX = float(_env("DELIVERY_BACKOFF_MAX", "300"))

# The REST channel is for the clinic's trusted integrations: every request carries
# "Authorization: Bearer <REST_API_TOKEN>". A secret, so from the environment; for local runs
# one is generated once into var/rest-api-token.
REST_API_TOKEN = os.environ.get("REST_API_TOKEN") or None
# Messages a minute one REST conversation, and one client address, may send (0: no limit).
REST_MAX_MESSAGES_PER_MINUTE = int(_env("REST_MAX_MESSAGES_PER_MINUTE", "30"))
REST_MAX_MESSAGES_PER_ADDRESS_PER_MINUTE = int(_env("REST_MAX_MESSAGES_PER_ADDRESS_PER_MINUTE", "1800"))

# The project's web app: the demo page and the widget's files.
WEB_HOST = _env("WEB_HOST", "127.0.0.1")
WEB_PORT = int(_env("WEB_PORT", "8080"))

# Website widget (socket.io channel). Pages allowed to connect, comma separated
# (the demo page's origin by default). The session secret comes from the
# environment; without it one is generated once into var/ for local runs.
WIDGET_ALLOWED_ORIGINS = [o.strip() for o in _env(
    "WIDGET_ALLOWED_ORIGINS", f"http://{WEB_HOST}:{WEB_PORT},http://localhost:{WEB_PORT}"
).split(",") if o.strip()]
WIDGET_SESSION_SECRET = os.environ.get("WIDGET_SESSION_SECRET")
WIDGET_MAX_MESSAGES_PER_MINUTE = int(_env("WIDGET_MAX_MESSAGES_PER_MINUTE", "20"))
# Per client address, across its conversations and reconnects: messages, new conversations and connections a
# minute (a household or a waiting room shares one address, so these are well above one visitor's pace).
WIDGET_MAX_MESSAGES_PER_ADDRESS_PER_MINUTE = int(_env("WIDGET_MAX_MESSAGES_PER_ADDRESS_PER_MINUTE", "60"))
WIDGET_MAX_SESSIONS_PER_ADDRESS_PER_MINUTE = int(_env("WIDGET_MAX_SESSIONS_PER_ADDRESS_PER_MINUTE", "20"))
WIDGET_MAX_CONNECTIONS_PER_ADDRESS_PER_MINUTE = int(_env("WIDGET_MAX_CONNECTIONS_PER_ADDRESS_PER_MINUTE", "60"))
# A widget session token resumes its conversation only if the conversation was active this many hours ago or
# later; "Clear chat" revokes the old token at once.
WIDGET_SESSION_IDLE_HOURS = float(_env("WIDGET_SESSION_IDLE_HOURS", "24"))
# Where browsers reach the Rasa server (its public URL behind a proxy); the widget connects there.
WIDGET_SERVER_URL = _env("WIDGET_SERVER_URL", f"http://{RASA_HOST}:{RASA_PORT}")
# The widget's built script and stylesheet (npm, make setup).
WIDGET_DIST_DIR = _path("WIDGET_DIST_DIR", PROJECT_DIR / "widget" / "dist")

# SMS by Twilio. The account SID and number identify the clinic's account; the auth token is a
# secret (environment only). Without SID and token the SMS webhook answers 503.
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID") or None
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN") or None
TWILIO_FROM_NUMBER = os.environ.get("TWILIO_FROM_NUMBER") or None
# Where replies are sent: Twilio's API (a local stand-in in tests).
TWILIO_API_BASE_URL = _env("TWILIO_API_BASE_URL", "https://api.twilio.com")
# The webhook URL exactly as configured in Twilio's console. Twilio signs that URL; behind a proxy
# it differs from what this server sees. Unset: the URL of the request as received.
SMS_WEBHOOK_PUBLIC_URL = os.environ.get("SMS_WEBHOOK_PUBLIC_URL") or None
# A reply longer than this many SMS segments is split into several texts.
SMS_MAX_SEGMENTS = int(_env("SMS_MAX_SEGMENTS", "4"))
# Tries per reply before it is recorded as undelivered for staff.
SMS_SEND_ATTEMPTS = int(_env("SMS_SEND_ATTEMPTS", "3"))
# A text whose turn failed (or whose process died) is tried again after this many seconds, doubling, up to
# SMS_TURN_ATTEMPTS tries in all; it stays listed for staff in the console until it is answered.
SMS_RETRY_SECONDS = float(_env("SMS_RETRY_SECONDS", "30"))
SMS_TURN_ATTEMPTS = int(_env("SMS_TURN_ATTEMPTS", "5"))
# A process handling a text for longer than this is taken to have died, and another may handle it.
SMS_CLAIM_LEASE_SECONDS = float(_env("SMS_CLAIM_LEASE_SECONDS", "120"))
# Keys texting numbers to conversation ids (so numbers stay out of ids and logs); from the
# environment, else generated once into var/.
SMS_CONVERSATION_SECRET = os.environ.get("SMS_CONVERSATION_SECRET")

# Phone numbers typed without a country code are read as this country's.
PHONE_REGION = _env("CLINIC_PHONE_REGION", "US")

# ---- The run command's supervisor (clinic_assistant/supervisor.py) ----
# A process that exits is started again after SUPERVISOR_BACKOFF_INITIAL seconds, a wait that doubles with each
# crash in a row up to SUPERVISOR_BACKOFF_MAX; one that ran SUPERVISOR_HEALTHY_SECONDS before crashing waits the
# initial time again.
SUPERVISOR_BACKOFF_INITIAL = float(_env("SUPERVISOR_BACKOFF_INITIAL", "1"))
SUPERVISOR_BACKOFF_MAX = float(_env("SUPERVISOR_BACKOFF_MAX", "30"))
SUPERVISOR_HEALTHY_SECONDS = float(_env("SUPERVISOR_HEALTHY_SECONDS", "60"))
# More than SUPERVISOR_CRASH_LIMIT crashes within SUPERVISOR_CRASH_WINDOW seconds: that process is given up on
# (restarting it again would only hide a fault); the others keep serving.
SUPERVISOR_CRASH_LIMIT = int(_env("SUPERVISOR_CRASH_LIMIT", "5"))
SUPERVISOR_CRASH_WINDOW = float(_env("SUPERVISOR_CRASH_WINDOW", "300"))
# Seconds the processes get to finish after SIGTERM before SIGKILL: keeps a whole stop under 10 s.
SUPERVISOR_STOP_GRACE = float(_env("SUPERVISOR_STOP_GRACE", "6"))
# Where the supervisor writes each process's name, pid, state and restarts (JSON), rewritten on every change.
SUPERVISOR_STATUS_PATH = _path("SUPERVISOR_STATUS_FILE", VAR_DIR / "supervisor.json")
# ---- end of the supervisor's settings ----

# How every process logs to standard output (clinic_assistant/logs.py): "text", one readable line per event, for
# local runs; "json", one JSON object per line, where a platform collects the logs (production).
LOG_FORMAT = _env("LOG_FORMAT", "text")

# Staff console (python -m clinic_assistant console): staff review conversations and requests there.
CONSOLE_HOST = _env("CONSOLE_HOST", "127.0.0.1")
CONSOLE_PORT = int(_env("CONSOLE_PORT", "8081"))
# Encrypts the session cookie: a secret, so from the environment; without it one is generated once into var/.
CONSOLE_SESSION_KEY = os.environ.get("CONSOLE_SESSION_KEY") or None
# Minutes without a request after which a staff member must log in again.
CONSOLE_IDLE_MINUTES = int(_env("CONSOLE_IDLE_MINUTES", "15"))
# Send the session cookie over HTTPS only: set it when the console is served behind TLS.
CONSOLE_SECURE_COOKIE = _env("CONSOLE_SECURE_COOKIE", "") not in ("", "0", "false")
# ---- Console login throttling (clinic_assistant/console/security.py, LoginBackoff) ----
# Failed logins are counted per username *and* client address, never per account alone, so failures from one
# address cannot keep staff out from another (each address also gets 20 tries per 5 minutes, whatever the
# usernames). After CONSOLE_LOGIN_ATTEMPTS failures in a row, each further try of that username from that address
# waits CONSOLE_LOGIN_BACKOFF_BASE ** k seconds (k = failures beyond the free ones), at most
# CONSOLE_LOGIN_BACKOFF_MAX_SECONDS. A success, or CONSOLE_LOGIN_BACKOFF_RESET_MINUTES without a failure, starts
# the count again.
CONSOLE_LOGIN_ATTEMPTS = int(_env("CONSOLE_LOGIN_ATTEMPTS", "5"))
CONSOLE_LOGIN_BACKOFF_BASE = float(_env("CONSOLE_LOGIN_BACKOFF_BASE", "2"))
CONSOLE_LOGIN_BACKOFF_MAX_SECONDS = float(_env("CONSOLE_LOGIN_BACKOFF_MAX_SECONDS", "900"))
CONSOLE_LOGIN_BACKOFF_RESET_MINUTES = float(_env("CONSOLE_LOGIN_BACKOFF_RESET_MINUTES", "60"))
# ---- end of the console login throttling settings ----
# Seconds between two looks of the console's indexer for new tracker events, flags and requests.
CONSOLE_INDEX_SECONDS = float(_env("CONSOLE_INDEX_SECONDS", "2"))
# Conversations quiet for more days than this are deleted by `python -m clinic_assistant retention`
# (tracker events and console data; never those with a request not closed). Unset: keep everything.
RETENTION_DAYS = int(os.environ["RETENTION_DAYS"]) if os.environ.get("RETENTION_DAYS") else None

# Tests that need PostgreSQL or Redis skip when they are unreachable, unless
# this is set (CI sets it, so they can never be skipped silently there).
REQUIRE_SERVICES = _env("CLINIC_REQUIRE_SERVICES", "") not in ("", "0", "false")
# The browser tests drive this Chromium (Debian's package, installed by the test setup).
TEST_CHROMIUM = _env("CLINIC_TEST_CHROMIUM", "/usr/bin/chromium")
# A Redis database the scaling tests may use as Rasa's lock store.
TEST_REDIS_URL = _env("CLINIC_TEST_REDIS_URL", "redis://127.0.0.1:6379/3")
# Examples per channel in the fuzz tests (make bench runs more).
TEST_FUZZ_EXAMPLES = int(_env("CLINIC_TEST_FUZZ_EXAMPLES", "200"))
TEST_POSTGRES_URL = _env("CLINIC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def rasa_environment() -> dict:
    """Variables that ``endpoints.yml`` interpolates (``${NAME}``)."""
    return {
        "ACTION_ENDPOINT_URL": ACTION_ENDPOINT_URL,
        "TRACKER_URL": TRACKER_URL,
        "RASA_CACHE_DIRECTORY": str(RASA_CACHE_DIR),
        **lock_store_environment(LOCK_STORE_URL),
    }


def lock_store_environment(url: "str | None") -> dict:
    """``endpoints.yml``'s lock store fields from one URL (Rasa's Redis lock store takes them apart)."""
    from urllib.parse import urlsplit

    if not url:
        return {"LOCK_STORE_TYPE": "in_memory", "LOCK_STORE_HOST": "", "LOCK_STORE_PORT": "6379",
                "LOCK_STORE_DB": "1", "LOCK_STORE_PASSWORD": ""}
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"LOCK_STORE_URL must be redis://host:port/db, not {parts.scheme}://")
    return {
        # Rasa's Redis lock store with atomic ticket updates (clinic_assistant/lock_store.py).
        "LOCK_STORE_TYPE": "clinic_assistant.lock_store.AtomicRedisLockStore",
        "LOCK_STORE_HOST": parts.hostname or "127.0.0.1",
        "LOCK_STORE_PORT": str(parts.port or 6379),
        "LOCK_STORE_DB": parts.path.lstrip("/") or "1",
        "LOCK_STORE_PASSWORD": parts.password or "",
    }
