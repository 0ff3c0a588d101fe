"""Editable policies: their typed values, validation, and the no-show rule. Pure.

A policy value arrives as JSON (API body, form) and is checked here field by field;
a bad value raises :class:`PolicyError` naming the field (``ban_days``,
``countries.86.max_segments``) and a reason slug that is also a translation key
(``error.invalid-input.policy-<reason>``). Stored values are the normalised
``to_json()`` of a parsed value, so what is read back always parses again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from scheduler.domain.identity import ID_TYPES
from scheduler.domain.services import SERVICES
from scheduler.domain.sms import CountryRule

NAMES = ("no_show", "id_types", "sms_quiet_hours", "sms_rate", "sms_countries")
MAX_DAYS = 730
MAX_COUNTRIES = 60
MAX_SIGNATURE = 16
_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_CALLING_CODE = re.compile(r"[1-9]\d{0,3}")
_REGION = re.compile(r"[A-Z]{2}")
_OFFICE_CODE = re.compile(r"[A-Z0-9-]{1,16}")
# Phones that may book, join a waiting list or apply (ISO 3166 regions of the
# number): mainland China, Hong Kong, Macau, Taiwan. Codes texted elsewhere were
# SMS pumping (issue 13.3); an office serving foreigners widens its own list.
BOOKING_REGIONS = ("CN", "HK", "MO", "TW")
MAX_REGIONS = 60


class PolicyError(ValueError):
    """A policy value was refused: ``field`` names it, ``reason`` says why."""

    def __init__(self, field: str, reason: str, **params: Any) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.params = params


# --- reading raw JSON, strictly --------------------------------------------------------


def _object(raw: Any, where: str, allowed: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise PolicyError(where or "value", "object")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise PolicyError(_join(where, str(unknown[0])), "unknown-field")
    return raw


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _required(raw: Mapping[str, Any], where: str, name: str) -> Any:
    if name not in raw:
        raise PolicyError(_join(where, name), "required")
    return raw[name]


def _bool(value: Any, name: str) -> bool:
    # JSON true/false only; forms send "on"/"" and are converted by the page first.
    if not isinstance(value, bool):
        raise PolicyError(name, "boolean")
    return value


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(name, "range", low=low, high=high)
    if not low <= value <= high:
        raise PolicyError(name, "range", low=low, high=high)
    return value


def _clock(value: Any, name: str) -> time:
    if not isinstance(value, str) or not _CLOCK.fullmatch(value):
        raise PolicyError(name, "clock")
    return time.fromisoformat(value)


def _types(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise PolicyError(name, "id-types-empty")
    for item in value:
        if item not in ID_TYPES:
            raise PolicyError(name, "id-type-unknown", value=str(item)[:24])
    return tuple(t for t in ID_TYPES if t in value)  # canonical order, no duplicates


# --- the policies --------------------------------------------------------------------


@dataclass(frozen=True)
class NoShowRule:
    """N no-shows or M cancellations (0: not counted) within ``window_days``
    -> no new booking for ``ban_days``."""

    enabled: bool = True
    no_shows: int = 2
    cancellations: int = 5
    window_days: int = 180
    ban_days: int = 90

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "no_shows": self.no_shows,
            "cancellations": self.cancellations,
            "window_days": self.window_days,
            "ban_days": self.ban_days,
        }


def parse_no_show(raw: Any) -> NoShowRule:
    keys = ("enabled", "no_shows", "cancellations", "window_days", "ban_days")
    data = _object(raw, "", keys)
    rule = NoShowRule(
        enabled=_bool(_required(data, "", "enabled"), "enabled"),
        no_shows=_int(_required(data, "", "no_shows"), "no_shows", 0, 20),
        cancellations=_int(_required(data, "", "cancellations"), "cancellations", 0, 50),
        window_days=_int(_required(data, "", "window_days"), "window_days", 1, MAX_DAYS),
        ban_days=_int(_required(data, "", "ban_days"), "ban_days", 1, MAX_DAYS),
    )
    if rule.enabled and rule.no_shows == 0 and rule.cancellations == 0:
        raise PolicyError("no_shows", "no-show-nothing-counted")
    return rule


@dataclass(frozen=True)
class IdTypes:
    """ID documents accepted for booking: ``accepted`` for every service unless
    ``by_service`` names the service."""

    accepted: tuple[str, ...] = ID_TYPES
    by_service: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def for_service(self, service: str) -> tuple[str, ...]:
        return self.by_service.get(service, self.accepted)

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": list(self.accepted),
            "by_service": {s: list(t) for s, t in sorted(self.by_service.items())},
        }


def parse_id_types(raw: Any) -> IdTypes:
    data = _object(raw, "", ("accepted", "by_service"))
    accepted = _types(_required(data, "", "accepted"), "accepted")
    by_service_raw = _object(data.get("by_service", {}), "by_service", SERVICES)
    by_service = {
        service: _types(types, f"by_service.{service}")
        for service, types in sorted(by_service_raw.items())
    }
    return IdTypes(accepted=accepted, by_service=by_service)


@dataclass(frozen=True)
class QuietHours:
    """Local hours in which non-urgent SMS wait (may wrap past midnight)."""

    enabled: bool = True
    start: time = time(21, 0)
    end: time = time(8, 0)

    @property
    def window(self) -> tuple[time, time] | None:
        return (self.start, self.end) if self.enabled else None

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "start": f"{self.start:%H:%M}", "end": f"{self.end:%H:%M}"}


def quiet_hours_from(window: tuple[time, time] | None) -> QuietHours:
    """The policy equivalent of the SMS_QUIET_HOURS setting (its default)."""
    return QuietHours(True, *window) if window else QuietHours(enabled=False)


def parse_quiet_hours(raw: Any) -> QuietHours:
    data = _object(raw, "", ("enabled", "start", "end"))
    hours = QuietHours(
        enabled=_bool(_required(data, "", "enabled"), "enabled"),
        start=_clock(_required(data, "", "start"), "start"),
        end=_clock(_required(data, "", "end"), "end"),
    )
    if hours.enabled and hours.start == hours.end:
        raise PolicyError("end", "quiet-hours-empty")
    return hours


@dataclass(frozen=True)
class SmsRate:
    per_second: float = 10.0

    def to_json(self) -> dict[str, Any]:
        return {"per_second": self.per_second}


def parse_sms_rate(raw: Any) -> SmsRate:
    data = _object(raw, "", ("per_second",))
    value = _required(data, "", "per_second")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError("per_second", "rate")
    # The setting's own bounds (SMS_RATE_PER_SECOND): above 0, at most 10,000.
    if not 0 < value <= 10_000:
        raise PolicyError("per_second", "rate")
    return SmsRate(float(value))


@dataclass(frozen=True)
class SmsCountries:
    """Per-country SMS rules by calling code; ``default`` for every other country."""

    default: CountryRule = field(default_factory=CountryRule)
    countries: Mapping[str, CountryRule] = field(default_factory=dict)
    # Regions whose phones may book (texts go only there), per office if named.
    booking_regions: tuple[str, ...] = BOOKING_REGIONS
    office_regions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def regions_for(self, office_code: str) -> tuple[str, ...]:
        return self.office_regions.get(office_code, self.booking_regions)

    def table(self) -> dict[str, CountryRule]:
        """The shape scheduler.notify.texts uses: calling code -> rule, plus "default"."""
        return {"default": self.default, **self.countries}

    def to_json(self) -> dict[str, Any]:
        def rule(r: CountryRule) -> dict[str, Any]:
            return {
                "signature": r.signature,
                "allow_urls": r.allow_urls,
                "max_segments": r.max_segments,
            }

        return {
            "default": rule(self.default),
            "countries": {c: rule(r) for c, r in sorted(self.countries.items(), key=_code_order)},
            "booking_regions": list(self.booking_regions),
            "office_regions": {o: list(r) for o, r in sorted(self.office_regions.items())},
        }


def _code_order(item: tuple[str, Any]) -> tuple[int, str]:
    return len(item[0]), item[0]


def _rule(raw: Any, where: str) -> CountryRule:
    data = _object(raw, where, ("signature", "allow_urls", "max_segments"))
    signature = _required(data, where, "signature")
    if not isinstance(signature, str):
        raise PolicyError(_join(where, "signature"), "signature", max=MAX_SIGNATURE)
    signature = signature.strip()
    if len(signature) > MAX_SIGNATURE or not signature.isprintable():
        raise PolicyError(_join(where, "signature"), "signature", max=MAX_SIGNATURE)
    return CountryRule(
        signature=signature,
        allow_urls=_bool(_required(data, where, "allow_urls"), _join(where, "allow_urls")),
        max_segments=_int(
            _required(data, where, "max_segments"), _join(where, "max_segments"), 1, 10
        ),
    )


def _regions(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_REGIONS:
        raise PolicyError(name, "regions", max=MAX_REGIONS)
    for item in value:
        if not isinstance(item, str) or not _REGION.fullmatch(item):
            raise PolicyError(name, "regions", max=MAX_REGIONS)
    return tuple(sorted(set(value)))


def parse_sms_countries(raw: Any) -> SmsCountries:
    keys = ("default", "countries", "booking_regions", "office_regions")
    data = _object(raw, "", keys)
    default = _rule(_required(data, "", "default"), "default")
    countries_raw = data.get("countries", {})
    if not isinstance(countries_raw, Mapping):
        raise PolicyError("countries", "object")
    if len(countries_raw) > MAX_COUNTRIES:
        raise PolicyError("countries", "too-many", max=MAX_COUNTRIES)
    countries = {}
    for code, rule in countries_raw.items():
        if not _CALLING_CODE.fullmatch(str(code)):
            raise PolicyError(f"countries.{str(code)[:8]}", "calling-code")
        countries[str(code)] = _rule(rule, f"countries.{code}")
    # Optional: values stored before these fields existed parse with the defaults.
    regions = _regions(data.get("booking_regions", list(BOOKING_REGIONS)), "booking_regions")
    offices_raw = data.get("office_regions", {})
    if not isinstance(offices_raw, Mapping) or len(offices_raw) > MAX_COUNTRIES:
        raise PolicyError("office_regions", "object")
    office_regions = {}
    for office, listed in offices_raw.items():
        if not _OFFICE_CODE.fullmatch(str(office)):
            raise PolicyError(f"office_regions.{str(office)[:16]}", "office-code")
        office_regions[str(office)] = _regions(listed, f"office_regions.{office}")
    return SmsCountries(
        default=default,
        countries=countries,
        booking_regions=regions,
        office_regions=office_regions,
    )


PARSERS = {
    "no_show": parse_no_show,
    "id_types": parse_id_types,
    "sms_quiet_hours": parse_quiet_hours,
    "sms_rate": parse_sms_rate,
    "sms_countries": parse_sms_countries,
}


def parse(name: str, raw: Any) -> Any:
    """The typed value of policy ``name`` (PolicyError on a bad value, KeyError on a bad name)."""
    return PARSERS[name](raw)


# --- the no-show rule ---------------------------------------------------------------


@dataclass(frozen=True)
class Strike:
    """One no-show or cancellation by the couple, counted against each partner."""

    at: datetime
    kind: str  # "no_show" | "cancelled"
    appointment_id: int
    office_id: int


def crossing(strikes: Iterable[Strike], rule: NoShowRule) -> Strike | None:
    """The earliest strike that brings its kind's count within one window up to the
    rule's threshold, or None. Strikes the caller passes are those not yet used by an
    earlier ban (a ban consumes the strikes that caused it)."""
    if not rule.enabled:
        return None
    window = timedelta(days=rule.window_days)
    thresholds = {"no_show": rule.no_shows, "cancelled": rule.cancellations}
    ordered = sorted(strikes, key=lambda s: (s.at, s.appointment_id))
    for index, strike in enumerate(ordered):
        needed = thresholds.get(strike.kind, 0)
        if needed <= 0:
            continue
        count = sum(
            1
            for earlier in ordered[: index + 1]
            if earlier.kind == strike.kind and strike.at - earlier.at <= window
        )
        if count >= needed:
            return strike
    return None


def ban_end(start: datetime, rule: NoShowRule) -> datetime:
    return start + timedelta(days=rule.ban_days)
