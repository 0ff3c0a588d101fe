"""SMS arithmetic: GSM-7 vs UCS-2 segments at their boundaries, quiet hours (also
across midnight), and the per-country rules."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scheduler.domain.sms import CountryRule, after_quiet_hours, apply_rule, count_segments
from scheduler.domain.sms import rule_for as country_rule
from scheduler.domain.sms import violations as rule_violations
from scheduler.notify.texts import file_rules, load_rules
from scheduler.settings import get_settings

GZ = ZoneInfo("Asia/Shanghai")
QUIET = (time(21, 0), time(8, 0))
GSM_LETTERS = "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà"

# ---------------------------------------------------------------- segments


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),  # 2 x 153
        ("a" * 307, "GSM-7", 307, 3),
        (GSM_LETTERS, "GSM-7", len(GSM_LETTERS), 1),  # accents and Greek are GSM-7 too
        ("€" * 80, "GSM-7", 160, 1),  # extension characters cost two septets
        ("€" * 80 + "a", "GSM-7", 161, 2),
        ("a" * 159 + "[", "GSM-7", 161, 2),
        ("{}[]~|^\\€", "GSM-7", 18, 1),
        ("中" * 70, "UCS-2", 70, 1),
        ("中" * 71, "UCS-2", 71, 2),
        ("中" * 134, "UCS-2", 134, 2),  # 2 x 67
        ("中" * 135, "UCS-2", 135, 3),
        ("a" * 69 + "ç", "UCS-2", 70, 1),  # one non-GSM letter makes the whole text UCS-2
        ("😀" * 35, "UCS-2", 70, 1),  # an emoji is two UTF-16 code units
        ("😀" * 35 + "a", "UCS-2", 71, 2),
        ("a" * 160 + "😀", "UCS-2", 162, 3),
    ],
)
def test_segments(text: str, encoding: str, units: int, segments: int) -> None:
    count = count_segments(text)
    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)


@pytest.mark.parametrize(
    ("text", "naive"),
    [
        ("a" * 152 + "€" + "a" * 152, 2),  # ESC+€ would straddle segments 1 and 2
        ("中" * 66 + "😀" + "中" * 66, 2),  # a surrogate pair would straddle them
    ],
)
def test_a_two_unit_character_is_never_split_across_segments(text: str, naive: int) -> None:
    count = count_segments(text)
    multi = 153 if count.encoding == "GSM-7" else 67
    assert -(-count.units // multi) == naive
    assert count.segments == naive + 1


# ---------------------------------------------------------------- quiet hours


def _local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=GZ)


@pytest.mark.parametrize(
    ("moment", "released"),
    [
        (_local(1, 12), _local(1, 12)),  # daytime: at once
        (_local(1, 20, 59), _local(1, 20, 59)),
        (_local(1, 21), _local(2, 8)),  # the start is quiet
        (_local(1, 23, 30), _local(2, 8)),  # before midnight: next morning
        (_local(2, 0), _local(2, 8)),  # after midnight: the same morning
        (_local(2, 7, 59), _local(2, 8)),
        (_local(2, 8), _local(2, 8)),  # the end is not quiet
        (datetime(2026, 12, 31, 22, tzinfo=GZ), datetime(2027, 1, 1, 8, tzinfo=GZ)),
    ],
)
def test_quiet_hours_wrapping_past_midnight(moment: datetime, released: datetime) -> None:
    result = after_quiet_hours(moment.astimezone(UTC), GZ, QUIET)
    assert result == released
    assert result.utcoffset() is not None


def test_quiet_hours_within_one_day() -> None:
    siesta = (time(12, 0), time(14, 0))
    assert after_quiet_hours(_local(1, 13), GZ, siesta) == _local(1, 14)
    assert after_quiet_hours(_local(1, 14), GZ, siesta) == _local(1, 14)
    assert after_quiet_hours(_local(1, 11, 59), GZ, siesta) == _local(1, 11, 59)


def test_quiet_hours_are_the_recipients_local_hours() -> None:
    noon_utc = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)  # 21:00 in Guangzhou, 14:00 in Lisbon
    assert after_quiet_hours(noon_utc, GZ, QUIET) == _local(2, 8)
    assert after_quiet_hours(noon_utc, ZoneInfo("Europe/Lisbon"), QUIET) == noon_utc


def test_no_quiet_hours() -> None:
    assert after_quiet_hours(_local(1, 23), GZ, None) == _local(1, 23)


# ---------------------------------------------------------------- country rules


@pytest.mark.parametrize(
    ("phone", "signature", "urls", "segments"),
    [
        ("+8613800138000", "【婚姻登记】", False, 2),  # mainland China
        ("+85291234567", "", True, 2),  # Hong Kong: not mistaken for +86
        ("+85366123456", "", True, 2),  # Macau
        ("+886912345678", "", True, 3),  # Taiwan: not configured, and not +86
        ("+14155550100", "", True, 3),
    ],
)
def test_rules_by_calling_code(phone: str, signature: str, urls: bool, segments: int) -> None:
    rule = country_rule(phone, file_rules(get_settings().sms_rules_file))
    assert (rule.signature, rule.allow_urls, rule.max_segments) == (signature, urls, segments)


def test_the_signature_is_prefixed_once() -> None:
    rule = CountryRule(signature="【婚姻登记】")
    signed = apply_rule("  您的验证码 123456。 ", rule)
    assert signed == "【婚姻登记】您的验证码 123456。"
    assert apply_rule(signed, rule) == signed
    assert apply_rule("Code 123456", CountryRule()) == "Code 123456"


def test_mainland_rules_refuse_links_and_a_third_segment() -> None:
    mainland = CountryRule(signature="【婚姻登记】", allow_urls=False, max_segments=2)
    assert rule_violations("【婚姻登记】" + "中" * 128, mainland) == []  # 134 units: 2 segments
    assert rule_violations("【婚姻登记】" + "中" * 129, mainland) == ["too-long"]
    for link in ("https://x.cn/a", "HTTP://X.CN", "见 www.gov.cn"):
        assert rule_violations(link, mainland) == ["url"]
    assert rule_violations("https://x.cn", CountryRule()) == []


def test_rules_file_fails_loudly_on_a_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text('[default]\n[country.CN]\nsignature = "x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="calling codes"):
        load_rules(bad)
    typo = tmp_path / "typo.toml"
    typo.write_text("[default]\nmax_segment = 2\n", encoding="utf-8")
    with pytest.raises(TypeError):
        load_rules(typo)
