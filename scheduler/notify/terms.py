"""What notify is told by the policy store: the SMS terms in force.

Notify never reads the policies itself (it sits below the use cases): the caller
that queues or sends a message hands it these terms, built by
``scheduler.usecases.policy.policies.sms_terms`` from the admins' overrides and
the settings' defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time

from scheduler.domain.sms import CountryRule, rule_for


@dataclass(frozen=True)
class SmsTerms:
    countries: Mapping[str, CountryRule]  # by calling code; "default" for every other
    quiet_hours: tuple[time, time] | None  # None: no quiet hours
    rate_per_second: float
    default_timezone: str  # for a message with no office
    validity_seconds: int

    def rule_for(self, phone: str) -> CountryRule:
        """The rule of an E.164 number's country."""
        return rule_for(phone, self.countries)
