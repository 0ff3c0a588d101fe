"""Settings: read once from the environment, typed, failing loudly.

Every setting is documented in ``config/example.env``. ``load_settings`` collects
*all* bad values before failing so that an operator fixes a broken deployment
in one go instead of one restart per typo.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import time
from functools import lru_cache
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

T = TypeVar("T")

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105 - refused in production


class SettingsError(ValueError):
    """One or more settings are missing or malformed."""


@dataclass(frozen=True)
class Settings:
    app_env: str = "development"
    database_url: str = "sqlite:///var/registry.sqlite3"
    # Seconds each process keeps an availability answer (and browsers may, max-age);
    # 0: computed for every request. Bookings are checked on the primary either way.
    availability_cache_seconds: int = 2
    # A streaming replica of a PostgreSQL primary for reads that decide nothing
    # (availability, month views, reports, audit log); empty: all reads on the primary.
    database_replica_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = DEV_SECRET_KEY
    public_base_url: str = "http://127.0.0.1:8000"
    default_timezone: str = "Asia/Shanghai"
    default_locale: str = "zh-Hans"
    booking_days_ahead: int = 30
    booking_opens_at: time = time(8, 30)
    hold_minutes: int = 15
    cancel_cutoff_hours: int = 2
    code_max_attempts: int = 5
    idempotency_ttl_hours: int = 24
    jobs_enabled: bool = True
    slot_generation_hour: int = 2
    sms_backend: str = "console"
    sms_rules_file: str = "config/sms_rules.toml"
    # Messages per second per sender (From number or Messaging Service), across all processes.
    sms_rate_per_second: float = 10.0
    # Twilio drops a message still queued after this long; we stop claiming before that.
    sms_validity_seconds: int = 14400
    sms_max_attempts: int = 8
    # How long a killed dispatcher's rows stay leased after their send time or last renewal.
    sms_lease_grace_seconds: float = 60.0
    sms_backoff_base_seconds: int = 10
    # Local hours in which non-urgent SMS wait (start-end, may wrap past midnight).
    sms_quiet_hours: tuple[time, time] | None = (time(21, 0), time(8, 0))
    # After a carrier failure (30001/30003/30005/30006/30007): retry later, or flag for a clerk.
    sms_fallback: str = "retry"
    sms_fallback_retry_minutes: int = 60
    # Check-in accepted from this many minutes before the slot to this many after it;
    # later arrivals need a clerk's decision.
    checkin_early_minutes: int = 60
    checkin_late_minutes: int = 30
    # Calls without showing up before a ticket may be marked missed.
    queue_max_calls: int = 3
    # Minutes one couple takes at a counter, for the board's wait estimate.
    queue_minutes_per_couple: float = 10.0
    reminder_day_before_at: time = time(10, 0)
    reminder_same_day_hours: int = 3
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from_number: str = ""
    twilio_messaging_service_sid: str = ""
    # Only for tests and mocks: where the Twilio client sends its requests.
    twilio_api_base: str = "https://api.twilio.com"
    # Requests per minute per client address on endpoints that send SMS; 0 turns it off.
    # A ceiling against floods only: thousands of phones share one carrier IPv4
    # address (CGNAT), so the limits that refuse key on IDs, phones and holds.
    rate_limit_sms_per_minute: int = 600
    # Applications, bookings and code requests per ID number / per phone per hour
    # (all processes together); 0 turns it off.
    rate_limit_id_per_hour: int = 10
    rate_limit_phone_per_hour: int = 10
    # Code texts per destination number per day (all processes together); 0: off.
    rate_limit_phone_texts_per_day: int = 10
    # At most this share (%) of a slot's and an office-day's seats may be unconfirmed
    # holds taken first come; 100 turns the cap off.
    hold_unconfirmed_percent: int = 50
    # Beyond that share a hold waits for a seat (taken when both partners confirm):
    # a slot accepts this many waiting holds per seat not yet taken; beyond them the
    # couple hears slot-full (and may join the waiting list). 0: no waiting holds.
    hold_waiting_per_free_seat: int = 1
    # A new hold lasts this long until a partner has entered their right code, then
    # the office's hold_minutes from its start; 0 turns the shortening off.
    hold_unstarted_minutes: int = 5
    # How long a waiting-list couple has to confirm an offered seat.
    waitlist_offer_minutes: int = 60
    db_pool_min: int = 2
    db_pool_max: int = 10
    log_level: str = "INFO"
    demo_offices_file: str = "config/offices.toml"
    # AES-256 keys for personal data at rest, newest first; empty: derived from SECRET_KEY.
    data_keys: tuple[bytes, ...] = ()
    # text for a terminal, json (one object per line) for log collectors.
    log_format: str = "text"
    # /health/ready fails when more outbox rows than this are due and unsent.
    health_outbox_backlog_max: int = 5000
    # Bearer token required by /metrics; empty leaves it open (restrict it at the proxy).
    metrics_token: str = ""
    # Days after the appointment day until the couple's personal data is erased.
    retention_days: int = 180
    # Addresses or networks of the reverse proxies whose X-Forwarded-For is believed
    # (comma-separated); empty: none, the connecting peer is the client.
    trusted_proxies: str = ""

    @property
    def must_be_hardened(self) -> bool:
        """Real data or a public URL: secrets must be real, whatever APP_ENV says."""
        return (
            self.app_env == "production"
            or not self.is_sqlite
            or self.public_base_url.startswith("https://")
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @property
    def sqlite_path(self) -> str:
        return self.database_url.removeprefix("sqlite:///")


def _to_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true/false")


def _to_time(raw: str) -> time:
    if not re.fullmatch(r"\d{2}:\d{2}", raw.strip()):
        raise ValueError("expected HH:MM")
    return time.fromisoformat(raw.strip())


def _to_int_range(low: int, high: int) -> Callable[[str], int]:
    def convert(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}")
        return value

    return convert


def _one_of(*choices: str) -> Callable[[str], str]:
    def convert(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return raw

    return convert


def _timezone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("unknown IANA time zone") from exc
    return raw


def _quiet_hours(raw: str) -> tuple[time, time] | None:
    if raw.strip().lower() in {"off", "none"}:
        return None
    start, sep, end = raw.partition("-")
    if not sep:
        raise ValueError("expected HH:MM-HH:MM or off")
    return _to_time(start), _to_time(end)


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= 10_000:
        raise ValueError("expected a number above 0 and at most 10000")
    return value


def _database_url(raw: str) -> str:
    if not re.match(r"^(sqlite:///.+|postgres(ql)?://.+)$", raw):
        raise ValueError("expected sqlite:///path or postgresql://user:pass@host:port/db")
    return raw


def _base_url(raw: str) -> str:
    if not re.match(r"^https?://[^/\s]+", raw):
        raise ValueError("expected an absolute http(s) URL")
    return raw.rstrip("/")


def _trusted_proxies(raw: str) -> str:
    import ipaddress

    parts = [p.strip() for p in raw.split(",") if p.strip()]
    for part in parts:
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError as exc:
            # "*" is refused on purpose: it would let any client choose its own address.
            raise ValueError(f"{part!r} is not an IP address or network") from exc
    return ",".join(parts)


def _data_keys(raw: str) -> tuple[bytes, ...]:
    """``DATA_KEYS``: comma-separated urlsafe-base64 32-byte keys, newest first.
    Parsed here, with every other setting (kernel/crypto uses them, and imports this
    module: parsing them there made an import cycle)."""
    keys = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            key = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except ValueError as exc:
            raise ValueError("each key must be urlsafe base64") from exc
        if len(key) != 32:
            raise ValueError("each key must decode to 32 bytes (openssl rand -base64 32)")
        keys.append(key)
    return tuple(keys)


# env name -> (field name, converter)
_SPEC: dict[str, tuple[str, Callable[[str], Any]]] = {
    "APP_ENV": ("app_env", _one_of("development", "test", "production")),
    "DATABASE_URL": ("database_url", _database_url),
    "AVAILABILITY_CACHE_SECONDS": ("availability_cache_seconds", _to_int_range(0, 60)),
    "DATABASE_REPLICA_URL": ("database_replica_url", _database_url),
    "HOST": ("host", str),
    "PORT": ("port", _to_int_range(1, 65535)),
    "SECRET_KEY": ("secret_key", str),
    "PUBLIC_BASE_URL": ("public_base_url", _base_url),
    "DEFAULT_TIMEZONE": ("default_timezone", _timezone),
    "DEFAULT_LOCALE": ("default_locale", _one_of("zh-Hans", "zh-Hant", "en")),
    "BOOKING_DAYS_AHEAD": ("booking_days_ahead", _to_int_range(1, 366)),
    "BOOKING_OPENS_AT": ("booking_opens_at", _to_time),
    "HOLD_MINUTES": ("hold_minutes", _to_int_range(1, 24 * 60)),
    "CANCEL_CUTOFF_HOURS": ("cancel_cutoff_hours", _to_int_range(0, 72)),
    "CODE_MAX_ATTEMPTS": ("code_max_attempts", _to_int_range(1, 20)),
    "IDEMPOTENCY_TTL_HOURS": ("idempotency_ttl_hours", _to_int_range(1, 24 * 30)),
    "JOBS_ENABLED": ("jobs_enabled", _to_bool),
    "SLOT_GENERATION_HOUR": ("slot_generation_hour", _to_int_range(0, 23)),
    "SMS_BACKEND": ("sms_backend", _one_of("console", "twilio")),
    "SMS_RULES_FILE": ("sms_rules_file", str),
    "SMS_RATE_PER_SECOND": ("sms_rate_per_second", _positive_float),
    "SMS_VALIDITY_SECONDS": ("sms_validity_seconds", _to_int_range(60, 36000)),
    "SMS_MAX_ATTEMPTS": ("sms_max_attempts", _to_int_range(1, 50)),
    "SMS_LEASE_GRACE_SECONDS": ("sms_lease_grace_seconds", _positive_float),
    "SMS_BACKOFF_BASE_SECONDS": ("sms_backoff_base_seconds", _to_int_range(1, 3600)),
    "SMS_QUIET_HOURS": ("sms_quiet_hours", _quiet_hours),
    "SMS_FALLBACK": ("sms_fallback", _one_of("retry", "clerk")),
    "SMS_FALLBACK_RETRY_MINUTES": ("sms_fallback_retry_minutes", _to_int_range(1, 24 * 60)),
    "CHECKIN_EARLY_MINUTES": ("checkin_early_minutes", _to_int_range(0, 24 * 60)),
    "CHECKIN_LATE_MINUTES": ("checkin_late_minutes", _to_int_range(0, 24 * 60)),
    "QUEUE_MAX_CALLS": ("queue_max_calls", _to_int_range(1, 10)),
    "QUEUE_MINUTES_PER_COUPLE": ("queue_minutes_per_couple", _positive_float),
    "REMINDER_DAY_BEFORE_AT": ("reminder_day_before_at", _to_time),
    "REMINDER_SAME_DAY_HOURS": ("reminder_same_day_hours", _to_int_range(1, 12)),
    "TWILIO_ACCOUNT_SID": ("twilio_account_sid", str),
    "TWILIO_AUTH_TOKEN": ("twilio_auth_token", str),
    "TWILIO_FROM_NUMBER": ("twilio_from_number", str),
    "TWILIO_MESSAGING_SERVICE_SID": ("twilio_messaging_service_sid", str),
    "TWILIO_API_BASE": ("twilio_api_base", _base_url),
    "RATE_LIMIT_SMS_PER_MINUTE": ("rate_limit_sms_per_minute", _to_int_range(0, 100_000)),
    "RATE_LIMIT_ID_PER_HOUR": ("rate_limit_id_per_hour", _to_int_range(0, 100_000)),
    "RATE_LIMIT_PHONE_PER_HOUR": ("rate_limit_phone_per_hour", _to_int_range(0, 100_000)),
    "RATE_LIMIT_PHONE_TEXTS_PER_DAY": (
        "rate_limit_phone_texts_per_day",
        _to_int_range(0, 100_000),
    ),
    "HOLD_UNCONFIRMED_PERCENT": ("hold_unconfirmed_percent", _to_int_range(1, 100)),
    "HOLD_WAITING_PER_FREE_SEAT": ("hold_waiting_per_free_seat", _to_int_range(0, 10)),
    "HOLD_UNSTARTED_MINUTES": ("hold_unstarted_minutes", _to_int_range(0, 24 * 60)),
    "WAITLIST_OFFER_MINUTES": ("waitlist_offer_minutes", _to_int_range(5, 24 * 60)),
    "DB_POOL_MIN": ("db_pool_min", _to_int_range(1, 200)),
    "DB_POOL_MAX": ("db_pool_max", _to_int_range(1, 500)),
    "LOG_LEVEL": ("log_level", _one_of("DEBUG", "INFO", "WARNING", "ERROR")),
    "DEMO_OFFICES_FILE": ("demo_offices_file", str),
    "DATA_KEYS": ("data_keys", _data_keys),
    "LOG_FORMAT": ("log_format", _one_of("text", "json")),
    "HEALTH_OUTBOX_BACKLOG_MAX": ("health_outbox_backlog_max", _to_int_range(1, 10_000_000)),
    "METRICS_TOKEN": ("metrics_token", str),
    "RETENTION_DAYS": ("retention_days", _to_int_range(30, 3650)),
    "TRUSTED_PROXIES": ("trusted_proxies", _trusted_proxies),
}


def parse_settings(environ: Mapping[str, str]) -> Settings:
    """Build settings from a mapping; raises SettingsError naming every bad value."""
    values: dict[str, Any] = {}
    errors: list[str] = []
    for env_name, (attr, convert) in _SPEC.items():
        raw = environ.get(env_name)
        if raw is None or raw == "":
            continue
        try:
            values[attr] = convert(raw)
        except ValueError as exc:
            errors.append(f"{env_name}={raw!r}: {exc}")
    settings = Settings(**values)
    # Not only APP_ENV=production: a forgotten APP_ENV must not run PostgreSQL (real
    # couples' data) or an https site (public) on the published development secret.
    if settings.must_be_hardened and settings.secret_key == DEV_SECRET_KEY:
        errors.append(
            "SECRET_KEY: must be set to a long random value in production"
            " (and with PostgreSQL or an https PUBLIC_BASE_URL)"
        )
    if settings.must_be_hardened and not settings.data_keys:
        errors.append(
            "DATA_KEYS: required in production (and with PostgreSQL or an https"
            " PUBLIC_BASE_URL; see config/example.env)"
        )
    if len(settings.secret_key) < 16:
        errors.append("SECRET_KEY: must be at least 16 characters")
    if settings.sms_backend == "twilio":
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            errors.append("TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN: required with SMS_BACKEND=twilio")
        if not (settings.twilio_from_number or settings.twilio_messaging_service_sid):
            errors.append(
                "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID:"
                " one is required with SMS_BACKEND=twilio"
            )
    if settings.database_replica_url and (
        settings.is_sqlite or settings.database_replica_url.startswith("sqlite:")
    ):
        errors.append("DATABASE_REPLICA_URL: a replica needs PostgreSQL for both databases")
    if settings.db_pool_min > settings.db_pool_max:
        errors.append("DB_POOL_MIN: must not exceed DB_POOL_MAX")
    if errors:
        raise SettingsError("Invalid settings:\n  " + "\n  ".join(errors))
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return parse_settings(os.environ)
