"""Timestamp parsing to UTC RFC 3339 with milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from parsers.dates import DateParser, format_utc, rfc3339_ms

# 2024-01-05T12:00:00Z: syslog dates without a year are resolved against this.
NOW = datetime(2024, 1, 5, 12, tzinfo=UTC).timestamp()


def clock() -> float:
    return NOW


class TestBuiltinRecognition:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("2024-01-02T03:04:05Z", "2024-01-02T03:04:05.000Z", id="rfc3339-z"),
            pytest.param("2024-01-02T03:04:05.123Z", "2024-01-02T03:04:05.123Z", id="rfc3339-ms"),
            pytest.param("2024-01-02T03:04:05.123456789+01:00", "2024-01-02T02:04:05.123Z", id="nanos-offset"),
            pytest.param("2024-01-02T03:04:05+0100", "2024-01-02T02:04:05.000Z", id="offset-no-colon"),
            pytest.param("2024-01-02T03:04:05+01", "2024-01-02T02:04:05.000Z", id="offset-hours-only"),
            pytest.param("2024-01-02 03:04:05 +0100", "2024-01-02T02:04:05.000Z", id="space-before-offset"),
            pytest.param("2024-01-02 03:04:05", "2024-01-02T03:04:05.000Z", id="space-no-zone"),
            pytest.param("2024-01-02 03:04:05,123", "2024-01-02T03:04:05.123Z", id="comma-fraction"),
            pytest.param("2024-01-02t03:04:05z", "2024-01-02T03:04:05.000Z", id="lowercase-t-z"),
            pytest.param("2024-01-02", "2024-01-02T00:00:00.000Z", id="date-only"),
            pytest.param("10/Oct/2000:13:55:36 -0700", "2000-10-10T20:55:36.000Z", id="httpdate"),
            pytest.param("10/Oct/2000:13:55:36 +0530", "2000-10-10T08:25:36.000Z", id="httpdate-half-hour"),
            pytest.param("2024/01/02 03:04:05", "2024-01-02T03:04:05.000Z", id="nginx-error"),
            pytest.param("Wed Oct 11 14:32:52.123456 2000", "2000-10-11T14:32:52.123Z", id="apache-error-us"),
            pytest.param("Wed Oct 11 14:32:52 2000", "2000-10-11T14:32:52.000Z", id="apache-error"),
            pytest.param("Jan  5 01:02:03", "2024-01-05T01:02:03.000Z", id="syslog-this-year"),
            pytest.param("Oct 11 14:32:52", "2023-10-11T14:32:52.000Z", id="syslog-future-month-is-last-year"),
            pytest.param("Dec 31 23:59:59", "2023-12-31T23:59:59.000Z", id="syslog-december-in-january"),
            pytest.param("Feb  1 00:00:00", "2024-02-01T00:00:00.000Z", id="syslog-next-month-is-this-year"),
            pytest.param("Tue, 02 Jan 2024 03:04:05 +0100", "2024-01-02T02:04:05.000Z", id="rfc2822"),
            pytest.param("1704164645", "2024-01-02T03:04:05.000Z", id="epoch-s-text"),
            pytest.param("1704164645.5", "2024-01-02T03:04:05.500Z", id="epoch-s-fraction-text"),
            pytest.param("1704164645123", "2024-01-02T03:04:05.123Z", id="epoch-ms-text"),
            pytest.param(1704164645, "2024-01-02T03:04:05.000Z", id="epoch-s-int"),
            pytest.param(1704164645.25, "2024-01-02T03:04:05.250Z", id="epoch-s-float"),
            pytest.param(1704164645123, "2024-01-02T03:04:05.123Z", id="epoch-ms-int"),
            pytest.param(1704164645123456, "2024-01-02T03:04:05.123Z", id="epoch-us-int"),
            pytest.param(1704164645123456789, "2024-01-02T03:04:05.123Z", id="epoch-ns-int"),
            pytest.param("  2024-01-02T03:04:05Z\n", "2024-01-02T03:04:05.000Z", id="surrounding-whitespace"),
            pytest.param("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999Z", id="leap-second-clamped"),
        ],
    )
    def test_parses(self, text: Any, expected: str) -> None:
        assert DateParser(clock=clock).parse(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("", id="empty"),
            pytest.param("garbage", id="word"),
            pytest.param("2024-13-45T00:00:00Z", id="month-13"),
            pytest.param("2024-02-30 00:00:00", id="feb-30"),
            pytest.param("99/Foo/2024:03:04:05 +0000", id="bad-httpdate-month"),
            pytest.param("2024/01/02 25:04:05", id="hour-25"),
            pytest.param("Foo 11 14:32:52", id="bad-syslog-month"),
            pytest.param("1.2.3.4", id="ip-address"),
            pytest.param(None, id="none"),
            pytest.param(True, id="bool"),
            pytest.param(float("nan"), id="nan"),
            pytest.param({"a": 1}, id="dict"),
            pytest.param(["2024-01-02"], id="list"),
            pytest.param("2024-01-02T03:04:05\ufffdZ", id="replacement-char"),
            pytest.param("2" * 5000, id="huge-number"),
        ],
    )
    def test_rejects(self, text: Any) -> None:
        assert DateParser(clock=clock).parse(text) is None


class TestTimezones:
    def test_default_timezone_applies_to_naive(self) -> None:
        p = DateParser(default_timezone="Europe/Paris")
        assert p.parse("2024-07-01 12:00:00") == "2024-07-01T10:00:00.000Z"  # CEST, +02:00
        assert p.parse("2024-01-01 12:00:00") == "2024-01-01T11:00:00.000Z"  # CET, +01:00

    def test_explicit_offset_wins_over_default(self) -> None:
        assert DateParser(default_timezone="Asia/Tokyo").parse("2024-07-01T12:00:00Z") == "2024-07-01T12:00:00.000Z"

    def test_syslog_in_default_timezone(self) -> None:
        p = DateParser(default_timezone="America/New_York", clock=clock)
        assert p.parse("Jan  5 01:02:03") == "2024-01-05T06:02:03.000Z"

    def test_unknown_timezone_raises_at_build(self) -> None:
        with pytest.raises(ValueError, match="Mars/Olympus"):
            DateParser(default_timezone="Mars/Olympus")


class TestUserFormats:
    @pytest.mark.parametrize(
        ("formats", "text", "expected"),
        [
            pytest.param(["%d.%m.%Y %H:%M:%S"], "31.10.2024 13:55:36", "2024-10-31T13:55:36.000Z", id="strptime"),
            pytest.param(["%d/%m/%Y %H:%M:%S %z"], "31/10/2024 13:55:36 +0100", "2024-10-31T12:55:36.000Z",
                         id="strptime-zone"),
            pytest.param(["%b %d %H:%M:%S"], "Oct 11 14:32:52", "2023-10-11T14:32:52.000Z", id="strptime-no-year"),
            pytest.param(["UNIX"], "1704164645", "2024-01-02T03:04:05.000Z", id="unix"),
            pytest.param(["UNIX"], "1704164645.125", "2024-01-02T03:04:05.125Z", id="unix-fraction"),
            pytest.param(["UNIX_MS"], "1704164645123", "2024-01-02T03:04:05.123Z", id="unix-ms"),
            pytest.param(["UNIX_MS"], 1704164645123, "2024-01-02T03:04:05.123Z", id="unix-ms-number"),
            pytest.param(["ISO8601"], "2024-01-02T03:04:05,5+00:00", "2024-01-02T03:04:05.500Z", id="iso8601"),
            pytest.param(["%Y%m%d", "ISO8601"], "2024-01-02T03:04:05Z", "2024-01-02T03:04:05.000Z",
                         id="first-that-matches"),
        ],
    )  # fmt: skip
    def test_formats(self, formats: list[str], text: Any, expected: str) -> None:
        assert DateParser(formats, clock=clock).parse(text) == expected

    def test_formats_replace_builtin_recognition(self) -> None:
        assert DateParser(["%d.%m.%Y"]).parse("2024-01-02T03:04:05Z") is None

    def test_builtin_fallback(self) -> None:
        p = DateParser(["%d.%m.%Y"], builtin_fallback=True)
        assert p.parse("2024-01-02T03:04:05Z") == "2024-01-02T03:04:05.000Z"
        assert p.parse("02.01.2024") == "2024-01-02T00:00:00.000Z"

    def test_unix_rejects_text(self) -> None:
        assert DateParser(["UNIX"]).parse("yesterday") is None

    def test_empty_format_rejected(self) -> None:
        with pytest.raises(ValueError, match="invalid date format"):
            DateParser([""])


class TestCache:
    def test_cache_is_bounded(self) -> None:
        p = DateParser(cache_size=8)
        for i in range(100):
            assert p.parse(f"2024-01-02T03:04:{i % 60:02d}Z") is not None
        assert len(p._cache) <= 8

    def test_cached_failure_is_still_a_failure(self) -> None:
        p = DateParser()
        assert p.parse("nope") is None
        assert p.parse("nope") is None

    def test_int_and_text_cached_separately(self) -> None:
        p = DateParser(["UNIX"])
        assert p.parse("1704164645") == p.parse(1704164645) == "2024-01-02T03:04:05.000Z"


def test_format_utc_naive_and_aware() -> None:
    assert format_utc(datetime(2024, 1, 2, 3, 4, 5, 678999)) == "2024-01-02T03:04:05.678Z"
    aware = datetime.fromisoformat("2024-01-02T03:04:05.001+05:30")
    assert format_utc(aware) == "2024-01-01T21:34:05.001Z"


def test_rfc3339_ms_truncates_to_milliseconds() -> None:
    assert rfc3339_ms(clock()) == "2024-01-05T12:00:00.000Z"
    assert rfc3339_ms(1704456000.9999) == "2024-01-05T12:00:00.999Z"
    assert rfc3339_ms(0) == "1970-01-01T00:00:00.000Z"


class TestMinuteCache:
    """The UTC minute is computed once and shared by the lines of that minute."""

    def test_seconds_of_one_minute_each_get_their_own_second(self) -> None:
        p = DateParser()
        got = [p.parse(f"10/Oct/2000:13:55:{s:02d} -0700") for s in (0, 1, 59)]
        assert got == ["2000-10-10T20:55:00.000Z", "2000-10-10T20:55:01.000Z", "2000-10-10T20:55:59.000Z"]

    def test_offset_is_part_of_the_key(self) -> None:
        p = DateParser()
        assert p.parse("10/Oct/2000:13:55:36 -0700") == "2000-10-10T20:55:36.000Z"
        assert p.parse("10/Oct/2000:13:55:36 +0200") == "2000-10-10T11:55:36.000Z"

    def test_zone_with_seconds_in_its_offset(self) -> None:
        # Amsterdam kept local mean time (+00:19:32) until 1937: the minute cannot be shared.
        p = DateParser(default_timezone="Europe/Amsterdam")
        assert p.parse("1930-06-01 12:00:10") == "1930-06-01T10:40:38.000Z"

    def test_leap_second_clamped_and_bad_second_rejected(self) -> None:
        p = DateParser()
        assert p.parse("2016-12-31T23:59:60Z") == "2016-12-31T23:59:59.999Z"
        assert p.parse("10/Oct/2000:13:55:61 -0700") is None
