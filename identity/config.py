"""Every setting of the service, with its default, in one place.

Each setting is read from the environment as ``IDENTITY_<NAME>`` (Flask's
``from_prefixed_env``: values that parse as JSON are parsed, so ``5`` is an
int and ``["a","b"]`` a list).  ``docs/configuration.md`` documents the same
list for operators; a test keeps the two in step.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ConfigurationError(Exception):
    """A setting the service must not start with; the message names the settings, never a value."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    doc: str
    secret: bool = False


SETTINGS = [
    Setting("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'identity.db'}",
            "SQLAlchemy URL of the legacy store; `mysql+pymysql://user:pw@host/db?charset=utf8mb4` "
            "for MariaDB/MySQL.", secret=True),
    Setting("KEYCLOAK_URL", "http://127.0.0.1:8080", "Base URL the service uses to reach Keycloak."),
    Setting("KEYCLOAK_PUBLIC_URL", None,
            "Keycloak's public base URL, where browsers reach its login page (defaults to PUBLIC_BASE_URL: "
            "one origin, through nginx or KEYCLOAK_PROXY)."),
    Setting("KEYCLOAK_PROXY", False, "Development only (`make run` turns it on): serve the app realm's login "
            "pages, login-actions and resources from the service's origin, as nginx does in production."),
    Setting("KEYCLOAK_REALM", "china", "Realm that holds the users."),
    Setting("KEYCLOAK_APP_CLIENT_ID", "mobile", "Client id of the public app client (the Cognito `ClientId`)."),
    Setting("KEYCLOAK_APP_REDIRECT_URIS", ["http://127.0.0.1:8000/oauth2/idpresponse", "com.example.app://callback"],
            "Redirect URIs allowed for the app client (JSON list)."),
    Setting("APP_CLIENT_SECRETS", {},
            "App clients with a secret (Cognito clients that send SECRET_HASH): JSON object client id -> secret. "
            "`identity keycloak bootstrap` makes each in Keycloak, confidential, with the app client's token "
            "claims; each call proves the secret (SECRET_HASH, ClientSecret, or client_secret / HTTP Basic on "
            "/oauth2/*), never filled in by the service. The public app client needs none.", secret=True),
    Setting("KEYCLOAK_ADMIN_CLIENT_ID", "identity-service",
            "Confidential client the service uses for the Admin API (service account)."),
    Setting("KEYCLOAK_ADMIN_CLIENT_SECRET", None, "Secret of that client; bootstrap sets it in Keycloak.",
            secret=True),
    Setting("KEYCLOAK_BOOTSTRAP_USERNAME", None,
            "Master-realm admin used only by `identity keycloak bootstrap`."),
    Setting("KEYCLOAK_BOOTSTRAP_PASSWORD", None, "Its password.", secret=True),
    Setting("KEYCLOAK_BMP_ONLY", False,
            "Set when Keycloak's database is MySQL/MariaDB: its user columns are utf8mb3, so the importer "
            "replaces characters beyond the BMP (emoji) with U+FFFD and reports each such user."),
    Setting("KEYCLOAK_TIMEOUT", 10, "Seconds before a call to Keycloak gives up."),
    Setting("READINESS_TIMEOUT", 2, "Seconds each `/readyz` check may take."),
    Setting("PUBLIC_BASE_URL", "http://127.0.0.1:8000", "URL the apps use to reach this service."),
    Setting("SECRET_KEY", None, "Service secret: keys the fingerprints of imported hashes (and later codes). "
            "Required by the importer; at least 32 random bytes.", secret=True),
    Setting("BRIDGE_URL", None, "Where Keycloak reaches the service's bridge (set in the realm by the "
            "bootstrap; default: PUBLIC_BASE_URL/bridge/v1)."),
    Setting("BRIDGE_SECRET", None, "Shared secret of the Keycloak bridge (the same value Keycloak's "
            "provider is started with); without it the bridge refuses every request.", secret=True),
    Setting("LEGACY_HASH_KEY", None, "The Kii hash-key (secret), for bare and keyless HMAC hashes.", secret=True),
    Setting("LEGACY_HASH_KEY_FILE", None, "File holding the hash-key instead (first line, trailing newline ignored); "
            "setting both this and `IDENTITY_LEGACY_HASH_KEY` refuses to start."),
    Setting("LEGACY_DEFAULT_SCHEME", "hmac-sha256;encoding=hex",
            "Scheme for bare Kii hashes: `<digest>;encoding=<hex|base64>[;template=...]`."),
    Setting("LEGACY_LAYER_TIME_COST", 2, "argon2id iterations of the layer `identity legacy layer` puts on legacy hashes."),
    Setting("LEGACY_LAYER_MEMORY_KIB", 19456, "argon2id memory (KiB) of that layer (OWASP's minimum: 19 MiB, t=2, p=1)."),
    Setting("LEGACY_LAYER_PARALLELISM", 1, "argon2id lanes of that layer."),
    Setting("LOCKOUT_THRESHOLD", 5, "Failed legacy sign-ins of one account before it is locked out."),
    Setting("LOCKOUT_BASE_SECONDS", 60, "First lockout; doubles with each further failure."),
    Setting("LOCKOUT_MAX_SECONDS", 900, "Longest lockout."),
    Setting("IP_FAILURE_LIMIT", 50, "Failed sign-ins from one client address within the window before "
            "that address gets `Password attempts exceeded`."),
    Setting("IP_FAILURE_WINDOW_SECONDS", 900, "That window."),
    Setting("FAILED_SIGN_IN_FLOOR_MS", 250, "A refused password sign-in answers no sooner than this, so its "
            "timing does not tell an unknown user from a wrong password, a Kii user from a migrated one."),
    Setting("USER_POOL_ID", "cn-north-1_china", "The user pool id the apps are configured with (Amplify's "
            "`userPoolId`); SRP sign-in computes over its name part, so changing it makes every stored "
            "SRP verifier unusable until its user signs in with the password again."),
    Setting("SRP_TIMESTAMP_TOLERANCE_SECONDS", 300, "How far an SRP answer's TIMESTAMP may be from the "
            "service's clock (a phone's clock drifts)."),
    Setting("SRP_CHALLENGE_SECONDS", 180, "How long an SRP challenge (PASSWORD_VERIFIER) may be answered, "
            "once."),
    Setting("TRUSTED_PROXIES", 0, "How many reverse proxies (nginx) put X-Forwarded-For in front of the "
            "service: the client address is taken from that many hops back."),
    Setting("SMTP_HOST", "127.0.0.1", "SMTP server for the codes of password resets and sign-ups."),
    Setting("SMTP_PORT", 25, "Its port."),
    Setting("SMTP_STARTTLS", False, "Upgrade the connection with STARTTLS."),
    Setting("SMTP_TLS", False, "Connect with TLS from the start (port 465)."),
    Setting("SMTP_USERNAME", None, "SMTP login, when the server wants one."),
    Setting("SMTP_PASSWORD", None, "Its password.", secret=True),
    Setting("SMTP_TIMEOUT", 10, "Seconds before a delivery attempt gives up. Mail is sent after the answer: an "
            "undelivered code is withdrawn, logged and counted (`identity_code_delivery_failures_total`)."),
    Setting("MAIL_FROM", "no-reply@example.cn", "Sender of those emails (and of Keycloak's, which the bootstrap "
            "points at the same SMTP server)."),
    Setting("REALM_DISPLAY_NAME", "健康账户", "The realm's name on Keycloak's login page and in its emails."),
    Setting("RESET_CODE_MINUTES", 60, "Lifetime of a password-reset code."),
    Setting("SIGNUP_CODE_HOURS", 24, "Lifetime of a sign-up confirmation code."),
    Setting("CODE_MAX_ATTEMPTS", 5, "Wrong entries of one code before it stops working."),
    Setting("CODES_PER_HOUR", 5, "Codes of one kind sent to one user per hour (and answered for one unknown "
            "name, so the limit does not tell them apart)."),
    Setting("CODE_FAILURE_LIMIT", 10, "Wrong codes entered for one user (every kind of code together) within "
            "the window; past it even the right code answers `LimitExceededException` until the window ends."),
    Setting("CODE_FAILURE_WINDOW_SECONDS", 86400, "That window, from its first wrong code."),
    Setting("PREVENT_USER_EXISTENCE_ERRORS", True, "As Cognito's PreventUserExistenceErrors: ForgotPassword, "
            "ConfirmForgotPassword, ResendConfirmationCode and ConfirmSignUp answer an unknown, disabled or "
            "unreachable user as an existing one (docs/hardening.md, \"User existence\"); false names the "
            "reason (`UserNotFoundException`, ...)."),
    Setting("LOG_LEVEL", "INFO", "Level of the JSON logs on stderr."),
    Setting("MAX_REQUEST_BYTES", 65536, "Largest request body accepted; a larger one is refused before it is "
            "read (Cognito API: `InvalidParameterException`, HTTP 413)."),
    Setting("MAX_JSON_DEPTH", 8, "Deepest JSON nesting accepted in a Cognito API body (Cognito's own requests "
            "nest 3 deep); deeper is refused before it is parsed."),
    Setting("MAX_IN_FLIGHT", 8, "Requests one service process works on at once (Cognito API and /oauth2/*); "
            "gunicorn's threads should outnumber it."),
    Setting("ADMISSION_WAIT_MS", 1000, "How long a request may wait for one of those slots before it is refused "
            "with `TooManyRequestsException` (hosted UI: 503), instead of timing out."),
]


def load(app, test_config=None) -> None:
    app.config.from_mapping({s.name: s.default for s in SETTINGS})
    app.config.from_prefixed_env("IDENTITY")
    if "FAILPOINTS" in app.config:
        # Crash injection is a test's tool: the environment is production's configuration.
        raise ConfigurationError("IDENTITY_FAILPOINTS is set: crash injection is for the test suite only")
    if test_config:
        app.config.from_mapping(test_config)
    cfg = app.config
    if cfg.get("FAILPOINTS") and not cfg.get("TESTING"):
        raise ConfigurationError("FAILPOINTS given without TESTING: crash injection is for the test suite only")
    cfg["SQLALCHEMY_DATABASE_URI"] = cfg["DATABASE_URL"]
    # Werkzeug refuses a longer body before reading it (and stops a chunked one at the limit).
    cfg["MAX_CONTENT_LENGTH"] = int(cfg["MAX_REQUEST_BYTES"])
    for name in ("KEYCLOAK_ADMIN_CLIENT_SECRET", "KEYCLOAK_BOOTSTRAP_PASSWORD", "LEGACY_HASH_KEY", "SECRET_KEY",
                 "BRIDGE_SECRET"):
        # from_prefixed_env parses JSON: a secret that looks like a number must stay a string.
        if cfg[name] is not None:
            cfg[name] = str(cfg[name])
    # A sign-in waiting for its user's lock holds a connection (MariaDB's GET_LOCK) while the
    # sign-in holding the lock needs another: with fewer connections than gunicorn's threads
    # (2 x MAX_IN_FLIGHT), waiters could starve the holder until their lock timeout.
    # (SQLite, one machine, takes no such sizes: its locks are files.)
    pool = {} if cfg["DATABASE_URL"].startswith("sqlite") else {
        "pool_size": 10, "max_overflow": 2 * int(cfg["MAX_IN_FLIGHT"]) + 10}
    cfg.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True, "pool_recycle": 3600, **pool})
    cfg["KEYCLOAK_URL"] = str(cfg["KEYCLOAK_URL"]).rstrip("/")
    cfg["PUBLIC_BASE_URL"] = str(cfg["PUBLIC_BASE_URL"]).rstrip("/")
    cfg["KEYCLOAK_PUBLIC_URL"] = str(cfg["KEYCLOAK_PUBLIC_URL"] or cfg["PUBLIC_BASE_URL"]).rstrip("/")
    if isinstance(cfg["APP_CLIENT_SECRETS"], str):
        cfg["APP_CLIENT_SECRETS"] = json.loads(cfg["APP_CLIENT_SECRETS"] or "{}")
    cfg["FAILPOINTS"] = frozenset(cfg.get("FAILPOINTS") or ())  # tests only: steps at which to simulate a crash
    if isinstance(cfg["KEYCLOAK_APP_REDIRECT_URIS"], str):
        cfg["KEYCLOAK_APP_REDIRECT_URIS"] = [u for u in cfg["KEYCLOAK_APP_REDIRECT_URIS"].split(",") if u]
    if cfg["DATABASE_URL"].startswith("sqlite:///"):
        Path(cfg["DATABASE_URL"][len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)


def legacy_hash_key(cfg) -> bytes | None:
    """The hash-key as bytes, from the setting or its file; None when neither is set."""
    if cfg.get("LEGACY_HASH_KEY") and cfg.get("LEGACY_HASH_KEY_FILE"):
        # Which one wins would be a guess: the operator's file silently ignored, or the reverse.
        raise ConfigurationError("IDENTITY_LEGACY_HASH_KEY and IDENTITY_LEGACY_HASH_KEY_FILE are both set: "
                                 "set one of them")
    if cfg.get("LEGACY_HASH_KEY"):
        return str(cfg["LEGACY_HASH_KEY"]).encode()
    path = cfg.get("LEGACY_HASH_KEY_FILE")
    if path:
        return Path(os.fspath(path)).read_bytes().splitlines()[0]
    return None
