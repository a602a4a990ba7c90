"""Timestamp parsing to UTC RFC 3339 with milliseconds (``2000-10-10T20:55:36.000Z``).

``DateParser.parse`` returns the normalised string, or ``None`` when the text
is not a recognised date: callers tag ``_dateparsefailure`` and keep the
existing ``@timestamp``. It never raises on bad input.

Without explicit formats it recognises, by shape and without strptime:

* ISO 8601 / RFC 3339: ``2024-01-02T03:04:05Z``, space instead of ``T``,
  fractions with ``.`` or ``,``, offsets ``+01:00`` / ``+0100``, no zone;
* HTTPDATE: ``10/Oct/2000:13:55:36 -0700``;
* nginx error log: ``2024/01/02 03:04:05``;
* Apache error log: ``Wed Oct 11 14:32:52.123456 2000``;
* syslog: ``Oct 11 14:32:52`` (year from the injected clock; a date more than
  a month ahead of "now" is taken as last year, for December lines read in
  January);
* RFC 2822: ``Tue, 02 Jan 2024 03:04:05 +0000``;
* epoch numbers (int, float or digit strings): seconds, or milli/micro/nano
  seconds told apart by magnitude.

Explicit ``formats`` are tried in order instead: strptime syntax, or the
keywords ``ISO8601``, ``UNIX`` (seconds) and ``UNIX_MS``. Text without a zone
is read in ``default_timezone`` (an IANA name, via ``zoneinfo``).

Results are cached per input text (log lines repeat the same second many
times), so the common formats cost one dict lookup.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from parsers.errors import OptionError

__all__ = ["DateParser", "format_utc", "rfc3339_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_MONTHS = {
    m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}

_HTTPDATE = re.compile(
    r"(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))? ?(?:([+-])(\d{2}):?(\d{2})|Z)?"
)
_NGINX = re.compile(r"(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?")
# "Wed Oct 11 14:32:52.123456 2000" (Apache error log, ctime()); day name optional.
_CTIME = re.compile(
    r"(?:[A-Za-z]{3,9},? +)?([A-Za-z]{3,9}) +(\d{1,2}) (\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))? +(\d{4})"
)
# "Oct 11 14:32:52" / "Oct  1 14:32:52.123" (BSD syslog), optional trailing year.
_SYSLOG = re.compile(r"([A-Za-z]{3,9}) +(\d{1,2}) (\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(?: (\d{4}))?")
_ISO_SHAPE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)
_ISO_FRACTION = re.compile(r"([.,])(\d{7,})")
_LEAP = re.compile(r"(?<=\d\d:\d\d):60(?:[.,]\d+)?")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def format_utc(dt: datetime) -> str:
    """An aware (or UTC-naive) datetime as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (milliseconds truncated)."""
    if dt.tzinfo is not None:
        off = dt.utcoffset()
        dt = dt.replace(tzinfo=None)
        if off:
            dt -= off
    return dt.isoformat(timespec="milliseconds") + "Z"


def rfc3339_ms(epoch: float | None = None) -> str:
    """Epoch seconds (default: now) as ``@timestamp`` is written: UTC, milliseconds truncated, ``Z``.

    The one formatter of the current time for events, logs and the dead-letter queue (fast:
    no datetime object)."""
    if epoch is None:
        epoch = time.time()
    secs = int(epoch)
    ms = int((epoch - secs) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{ms:03d}Z"


def _format_epoch(value: float, unit: int) -> str | None:
    """Epoch ``value`` in units of ``1/unit`` seconds, exact to the millisecond when integral."""
    try:
        if isinstance(value, int):
            ms = value // (unit // 1000) if unit >= 1000 else value * (1000 // unit)
        else:
            ms = round(value * 1000 / unit)
        return format_utc(_EPOCH + timedelta(milliseconds=ms))
    except (OverflowError, ValueError):
        return None


def _frac_us(frac: str | None) -> int:
    if not frac:
        return 0
    return int((frac + "000000")[:6])


def _epoch_unit(v: float) -> int:
    """Guess the unit of an epoch number from its magnitude."""
    a = abs(v)
    if a >= 1e17:
        return 1_000_000_000
    if a >= 1e14:
        return 1_000_000
    if a >= 1e11:
        return 1000
    return 1


class DateParser:
    """Parse timestamps into UTC RFC 3339 strings with millisecond precision.

    ``clock`` returns epoch seconds and only decides the year of dates written
    without one. With ``formats``, ``builtin_fallback=True`` also tries the
    built-in recognition when no format matched.
    """

    __slots__ = (
        "_cache",
        "_cache_size",
        "_clock",
        "_fallback",
        "_formats",
        "_minutes",
        "_tz",
        "_tz_is_utc",
        "default_timezone",
    )

    def __init__(
        self,
        formats: list[str] | None = None,
        default_timezone: str = "UTC",
        *,
        clock: Callable[[], float] = time.time,
        cache_size: int = 4096,
        builtin_fallback: bool = False,
    ) -> None:
        try:
            self._tz: tzinfo = UTC if default_timezone in ("UTC", "Z", "Etc/UTC") else ZoneInfo(default_timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise OptionError("timezone", f"unknown timezone {default_timezone!r}") from exc
        self.default_timezone = default_timezone
        self._tz_is_utc = self._tz is UTC
        self._formats: tuple[str, ...] | None = tuple(formats) if formats else None
        for f in self._formats or ():
            if not isinstance(f, str) or not f:
                raise OptionError("date_formats", f"invalid date format {f!r}")
        self._fallback = builtin_fallback
        self._clock = clock
        self._cache: dict[object, str | None] = {}
        self._minutes: dict[tuple[int, int, int, int, int, int | None], str] = {}
        self._cache_size = cache_size

    # -- public ------------------------------------------------------------------------------

    def parse(self, text: object) -> str | None:
        """``text`` (str, or int/float epoch) as ``YYYY-MM-DDTHH:MM:SS.mmmZ``; ``None`` if not a date."""
        cache = self._cache
        key = text if type(text) is str else (type(text), text)
        try:
            return cache[key]
        except KeyError:
            pass
        except TypeError:  # unhashable (a dict/list from JSON)
            return None
        if isinstance(text, str):
            s = text.strip()
            result = self._parse_with_formats(s) if self._formats else self._parse_builtin(s)
        elif isinstance(text, bool):
            result = None
        elif isinstance(text, int | float):
            if self._formats and "UNIX_MS" in self._formats and "UNIX" not in self._formats:
                result = _format_epoch(text, 1000)
            elif self._formats and "UNIX" in self._formats:
                result = _format_epoch(text, 1)
            else:
                result = self._parse_number(text)
        else:
            result = None
        if len(cache) >= self._cache_size:
            cache.clear()  # cheap bound; the working set refills in a few lines
        cache[key] = result
        return result

    # -- helpers -----------------------------------------------------------------------------

    def _finish(self, y: int, mo: int, d: int, h: int, mi: int, s: int, us: int, offset_min: int | None) -> str | None:
        """Components in ``offset_min`` (or the default zone when None) -> UTC string.

        The UTC string up to the minute is cached per (components, offset): consecutive
        lines share their minute even when every line has its own second, so the
        datetime arithmetic runs about once a minute of log instead of once a line.
        """
        if s == 60:  # leap second: clamp, as most tools do
            s, us = 59, 999_999
        elif not 0 <= s <= 59:
            return None
        key = (y, mo, d, h, mi, offset_min)
        minute = self._minutes.get(key)
        if minute is None:
            try:
                if offset_min is not None:
                    dt = datetime(y, mo, d, h, mi) - timedelta(minutes=offset_min)
                elif self._tz_is_utc:
                    dt = datetime(y, mo, d, h, mi)
                else:
                    dt = datetime(y, mo, d, h, mi, tzinfo=self._tz)
            except (ValueError, OverflowError):
                return None
            text = format_utc(dt)
            if text[17:19] != "00":
                # A zone offset with seconds (historical local mean time): no minute sharing.
                return format_utc(dt + timedelta(seconds=s))[:19] + f".{us // 1000:03d}Z"
            minute = text[:17]
            if len(self._minutes) >= self._cache_size:
                self._minutes.clear()
            self._minutes[key] = minute
        return f"{minute}{s:02d}.{us // 1000:03d}Z"

    def _aware(self, dt: datetime) -> str | None:
        try:
            if dt.tzinfo is None:
                if self._tz_is_utc:
                    return format_utc(dt)
                dt = dt.replace(tzinfo=self._tz)
            return format_utc(dt)
        except (ValueError, OverflowError):
            return None

    def _parse_number(self, v: float) -> str | None:
        if v != v or v in (float("inf"), float("-inf")):
            return None
        return _format_epoch(v, _epoch_unit(v))

    def _parse_iso(self, s: str) -> str | None:
        if len(s) == 24 and s[23] == "Z" and s[10] == "T" and s[19] == "." and s[4] == "-" and s[13] == ":":
            # Already canonical ("2024-01-02T03:04:05.123Z"): only validate.
            try:
                datetime.fromisoformat(s[:23])
            except ValueError:
                return None
            return s
        try:
            return self._aware(datetime.fromisoformat(s))  # the common forms, in C
        except ValueError:
            pass
        if _ISO_SHAPE.fullmatch(s) is None:
            return None
        s = s.replace(" Z", "Z").replace("z", "Z").replace("t", "T")
        if "," in s or len(s) > 32:
            # fromisoformat takes at most 9 fraction digits: trim nanoseconds and beyond.
            s = _ISO_FRACTION.sub(lambda m: m.group(1) + m.group(2)[:6], s)
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            # "+01" offsets without minutes, "2024-01-02 03:04:05 +0100" with a space.
            t = s.replace(" +", "+").replace(" -", "-")
            if len(t) >= 3 and t[-3] in "+-" and t[-2:].isdigit():
                t += "00"
            if ":60" in t:  # leap second: clamp to the last representable instant
                t = _LEAP.sub(":59.999999", t, count=1)
            try:
                dt = datetime.fromisoformat(t)
            except ValueError:
                return None
        return self._aware(dt)

    def _parse_builtin(self, s: str) -> str | None:
        if not s:
            return None
        c = s[0]
        n = len(s)
        if c.isdigit():
            if n >= 10 and s[4] == "-":
                return self._parse_iso(s)
            if n >= 19 and s[4] == "/":
                m = _NGINX.fullmatch(s)
                if m is None:
                    return None
                y, mo, d, h, mi, se, fr = m.groups()
                return self._finish(int(y), int(mo), int(d), int(h), int(mi), int(se), _frac_us(fr), None)
            if n >= 20 and (s[2] == "/" or s[1] == "/"):
                return self._parse_httpdate(s)
            if _NUMBER.fullmatch(s):
                try:
                    v: float = int(s) if s.isdigit() else float(s)
                except ValueError:
                    return None
                return self._parse_number(v)
            return None
        if c in "+-" and _NUMBER.fullmatch(s):
            return self._parse_number(float(s))
        if c.isalpha():
            m = _CTIME.fullmatch(s)
            if m is not None:
                mon, d, h, mi, se, fr, y = m.groups()
                mo = _MONTHS.get(mon[:3].lower())
                if mo is None:
                    return None
                return self._finish(int(y), mo, int(d), int(h), int(mi), int(se), _frac_us(fr), None)
            m = _SYSLOG.fullmatch(s)
            if m is not None:
                return self._parse_syslog(m)
            if "," in s[:10]:
                return self._parse_rfc2822(s)
        return None

    def _parse_httpdate(self, s: str) -> str | None:
        m = _HTTPDATE.fullmatch(s)
        if m is None:
            return None
        d, mon, y, h, mi, se, fr, sign, oh, om = m.groups()
        mo = _MONTHS.get(mon.lower())
        if mo is None:
            return None
        offset = None
        if sign is not None:
            offset = int(oh) * 60 + int(om)
            if sign == "-":
                offset = -offset
        elif s.endswith("Z"):
            offset = 0
        return self._finish(int(y), mo, int(d), int(h), int(mi), int(se), _frac_us(fr), offset)

    def _parse_syslog(self, m: re.Match[str]) -> str | None:
        mon, d, h, mi, se, fr, y = m.groups()
        mo = _MONTHS.get(mon[:3].lower())
        if mo is None:
            return None
        year = int(y) if y is not None else self._guess_year(mo)
        return self._finish(year, mo, int(d), int(h), int(mi), int(se), _frac_us(fr), None)

    def _guess_year(self, month: int) -> int:
        """Year of a date written without one: this year, unless that puts it more than
        a month in the future (a December line read in January is from last year)."""
        now = datetime.fromtimestamp(self._clock(), self._tz)
        return now.year - 1 if month - now.month > 1 else now.year

    def _parse_rfc2822(self, s: str) -> str | None:
        try:
            dt = parsedate_to_datetime(s)
        except (TypeError, ValueError, IndexError):
            return None
        return self._aware(dt)

    def _parse_with_formats(self, s: str) -> str | None:
        formats = self._formats
        assert formats is not None
        for f in formats:
            if f == "ISO8601":
                r = self._parse_iso(s)
            elif f == "UNIX" or f == "UNIX_MS":
                if _NUMBER.fullmatch(s) is None:
                    continue
                try:
                    v: float = int(s) if s.isdigit() else float(s)
                except ValueError:
                    continue
                r = _format_epoch(v, 1 if f == "UNIX" else 1000)
            else:
                try:
                    dt = datetime.strptime(s, f)
                except ValueError:
                    continue
                if "%Y" not in f and "%y" not in f and "%G" not in f:
                    try:
                        dt = dt.replace(year=self._guess_year(dt.month))
                    except ValueError:  # Feb 29 parsed as 1900, guessed year not leap
                        continue
                r = self._aware(dt)
            if r is not None:
                return r
        return self._parse_builtin(s) if self._fallback else None
