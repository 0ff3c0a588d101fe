from __future__ import annotations

import pytest

from scheduler.kernel.crypto import SealError, needs_reseal, new_data_key, open_sealed, seal
from scheduler.settings import SettingsError, parse_settings


def settings_with(**env: str):
    return parse_settings({"SECRET_KEY": "a-test-secret-key-long-enough", **env})


def test_sealed_value_opens_and_hides_the_plaintext() -> None:
    settings = settings_with()
    sealed = seal(settings, "id_number", "110101199003072316")
    assert "110101199003072316" not in sealed
    assert open_sealed(settings, "id_number", sealed) == "110101199003072316"
    assert seal(settings, "id_number", "110101199003072316") != sealed  # fresh nonce


def test_purpose_is_bound() -> None:
    settings = settings_with()
    sealed = seal(settings, "id_number", "X1234567")
    with pytest.raises(SealError):
        open_sealed(settings, "phone", sealed)


def test_rotation_opens_old_values_and_flags_them() -> None:
    old, new = new_data_key(), new_data_key()
    before = settings_with(DATA_KEYS=old)
    sealed = seal(before, "id_number", "X1234567")
    after = settings_with(DATA_KEYS=f"{new},{old}")
    assert open_sealed(after, "id_number", sealed) == "X1234567"
    assert needs_reseal(after, sealed)
    assert not needs_reseal(after, seal(after, "id_number", "X1234567"))
    with pytest.raises(SealError, match="no configured key"):
        open_sealed(settings_with(DATA_KEYS=new), "id_number", sealed)


def test_tampered_value_is_refused() -> None:
    settings = settings_with()
    sealed = seal(settings, "id_number", "X1234567")
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SealError):
        open_sealed(settings, "id_number", tampered)


@pytest.mark.parametrize("raw", ["not-base64!!", "c2hvcnQ", "a,b"])
def test_bad_keys_stop_start_up(raw: str) -> None:
    with pytest.raises(SettingsError, match="DATA_KEYS"):
        settings_with(DATA_KEYS=raw)


def test_production_requires_explicit_keys() -> None:
    with pytest.raises(SettingsError, match="DATA_KEYS: required in production"):
        parse_settings({"APP_ENV": "production", "SECRET_KEY": "x" * 40})
