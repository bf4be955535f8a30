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

# Website widget (socket.io channel). Pages allowed to connect, comma separated
# (the demo page's origin by default). The session secret comes from the
# environment; without it one is generated once into var/ for local runs.
WIDGET_ALLOWED_ORIGINS = [o.strip() for o in _env(
    "WIDGET_ALLOWED_ORIGINS", "http://127.0.0.1:8080,http://localhost:8080"
).split(",") if o.strip()]
WIDGET_SESSION_SECRET = os.environ.get("WIDGET_SESSION_SECRET")
WIDGET_SECRET_FILE = VAR_DIR / "widget-session-secret"
WIDGET_MAX_MESSAGES_PER_MINUTE = int(_env("WIDGET_MAX_MESSAGES_PER_MINUTE", "20"))

# Phone numbers typed without a country code are read as this country's.
PHONE_REGION = _env("CLINIC_PHONE_REGION", "US")

# Tests that need PostgreSQL or Redis skip when they are unreachable, unless
# this is set (CI sets it, so they can never be skipped silently there).
REQUIRE_SERVICES = _env("CLINIC_REQUIRE_SERVICES", "") not in ("", "0", "false")
TEST_POSTGRES_URL = _env("CLINIC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def rasa_environment() -> dict:
    """Variables that ``endpoints.yml`` interpolates (``${NAME}``)."""
    return {
        "ACTION_ENDPOINT_URL": ACTION_ENDPOINT_URL,
        "TRACKER_URL": TRACKER_URL,
        "RASA_CACHE_DIRECTORY": str(RASA_CACHE_DIR),
    }
