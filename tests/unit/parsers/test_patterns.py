"""The built-in pattern library: every name matches real text, families, hostile input."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from parsers.errors import GrokError
from parsers.grok import compile_grok
from parsers.patterns import (
    BUILTIN_DIR,
    ECS_COMPATIBILITY,
    builtin_pattern_names,
    builtin_patterns,
    load_library,
    parse_pattern_text,
)

from . import grok_samples, logstash_names
from .pattern_samples import APACHE_COMBINED, NEAR_MISSES, SAMPLES

# Every sample: NAME -> (text, what %{NAME} matches in it, a near miss it must not match whole).
ALL_SAMPLES: dict[str, tuple[str, str, str]] = {n: (t, m, NEAR_MISSES[n]) for n, (t, m) in SAMPLES.items()}
ALL_SAMPLES.update(grok_samples.SAMPLES)


def _expected_match(name: str, ecs: str) -> str:
    if ecs == "v1":
        return grok_samples.ECS_MATCHES.get(name, ALL_SAMPLES[name][1])
    return ALL_SAMPLES[name][1]


def _every_name() -> list[Any]:
    return [pytest.param(ecs, n, id=f"{ecs}-{n}") for ecs in ECS_COMPATIBILITY for n in builtin_pattern_names(ecs)]


def _includes(got: Any, expected: Any) -> bool:
    """``got`` holds every key of ``expected`` (recursively) with the same value."""
    if isinstance(expected, dict):
        return isinstance(got, dict) and all(k in got and _includes(got[k], v) for k, v in expected.items())
    return bool(got == expected)

DATA = Path(__file__).resolve().parents[2] / "data" / "parsers"

REQUIRED_NAMES = {
    "base": """USERNAME USER EMAILLOCALPART EMAILADDRESS INT BASE10NUM NUMBER BASE16NUM BASE16FLOAT POSINT
        NONNEGINT WORD NOTSPACE SPACE DATA GREEDYDATA QUOTEDSTRING QS UUID URN MAC CISCOMAC WINDOWSMAC COMMONMAC
        IPV6 IPV4 IP HOSTNAME IPORHOST HOSTPORT PATH UNIXPATH TTY WINPATH URIPROTO URIHOST URIPATH URIPARAM
        URIPATHPARAM URI MONTH MONTHNUM MONTHNUM2 MONTHDAY DAY YEAR HOUR MINUTE SECOND TIME DATE_US DATE_EU
        ISO8601_TIMEZONE ISO8601_SECOND TIMESTAMP_ISO8601 DATE DATESTAMP TZ DATESTAMP_RFC822 DATESTAMP_RFC2822
        DATESTAMP_OTHER DATESTAMP_EVENTLOG HTTPDATE SYSLOGTIMESTAMP PROG SYSLOGPROG SYSLOGHOST SYSLOGFACILITY
        LOGLEVEL""",
    "httpd": "HTTPDUSER HTTPDERROR_DATE COMMONAPACHELOG COMBINEDAPACHELOG HTTPD20_ERRORLOG HTTPD24_ERRORLOG "
    "HTTPD_ERRORLOG",
    "syslog": "SYSLOGBASE SYSLOGLINE",
    "java": "JAVACLASS JAVAMETHOD JAVAFILE JAVASTACKTRACEPART JAVATHREAD JAVALOGMESSAGE",
    "nginx": "NGINXACCESS NGINX_ERRORLOG",
}


def _lines(name: str) -> list[str]:
    return (DATA / name).read_text(encoding="utf-8").splitlines()


class TestLibraryLayout:
    @pytest.mark.parametrize("family", sorted(REQUIRED_NAMES))
    def test_family_file_defines_its_names(self, family: str) -> None:
        defined = parse_pattern_text((BUILTIN_DIR / f"{family}.grok").read_text(encoding="utf-8"))
        missing = set(REQUIRED_NAMES[family].split()) - set(defined)
        assert not missing

    @pytest.mark.parametrize("ecs", ECS_COMPATIBILITY)
    def test_every_builtin_name_has_a_sample(self, ecs: str) -> None:
        assert set(builtin_pattern_names(ecs)) <= set(ALL_SAMPLES)

    def test_every_sample_names_a_builtin(self) -> None:
        assert set(ALL_SAMPLES) == set(builtin_pattern_names("disabled")) | set(builtin_pattern_names("v1"))

    @pytest.mark.parametrize(
        ("ecs", "names"), [("disabled", logstash_names.LEGACY), ("v1", logstash_names.ECS_V1)], ids=["legacy", "ecs-v1"]
    )
    def test_every_logstash_name_is_built_in(self, ecs: str, names: list[str]) -> None:
        assert sorted(set(names) - set(builtin_pattern_names(ecs))) == []

    def test_ecs_overlay_changes_capture_names_only_where_defined(self) -> None:
        legacy, ecs = builtin_patterns("disabled"), builtin_patterns("v1")
        overlay = load_library(BUILTIN_DIR / "ecs-v1")
        assert {n for n in legacy if legacy[n] != ecs[n]} == set(overlay) & set(legacy)
        assert set(ecs) - set(legacy) == set(overlay) - set(legacy)

    def test_unknown_ecs_compatibility_is_an_error(self) -> None:
        with pytest.raises(GrokError, match="ecs_compatibility must be one of disabled, v1"):
            compile_grok("%{WORD}", ecs_compatibility="v8")

    def test_new_family_file_is_picked_up_without_engine_change(self, tmp_path: Path) -> None:
        for f in BUILTIN_DIR.glob("*.grok"):
            shutil.copy(f, tmp_path)
        (tmp_path / "haproxy.grok").write_text("HAPROXYTIME %{HOUR}:%{MINUTE}:%{SECOND}\n", encoding="utf-8")
        lib = load_library(tmp_path)
        assert lib["HAPROXYTIME"] == "%{HOUR}:%{MINUTE}:%{SECOND}"
        assert "COMBINEDAPACHELOG" in lib

    def test_duplicate_name_across_files_is_an_error(self, tmp_path: Path) -> None:
        (tmp_path / "a.grok").write_text("X a\n", encoding="utf-8")
        (tmp_path / "b.grok").write_text("X b\n", encoding="utf-8")
        with pytest.raises(GrokError, match=r"X defined in both a\.grok and b\.grok"):
            load_library(tmp_path)

    def test_comments_and_blank_lines_ignored(self) -> None:
        assert parse_pattern_text("# c\n\n  A  [a-z]+  \n#B x\n") == {"A": "[a-z]+"}


class TestEveryBuiltinMatches:
    """Each name of both sets compiles, finds its part of a realistic line and rejects a near miss."""

    @pytest.mark.parametrize(("ecs", "name"), _every_name())
    def test_sample(self, ecs: str, name: str) -> None:
        text = ALL_SAMPLES[name][0]
        got = compile_grok(f"%{{{name}}}", named_captures_only=False, ecs_compatibility=ecs).match(text)
        assert got is not None
        assert got.get(name, "") == _expected_match(name, ecs)

    @pytest.mark.parametrize(("ecs", "name"), _every_name())
    def test_near_miss(self, ecs: str, name: str) -> None:
        near = ALL_SAMPLES[name][2]
        assert compile_grok(rf"\A(?:%{{{name}}})\Z", ecs_compatibility=ecs).match(near) is None


class TestFamilyFields:
    """The captures of each family's top-level patterns, with Logstash's names and types, in both sets."""

    @pytest.mark.parametrize(
        ("expression", "ecs", "line", "expected"),
        [pytest.param(*f, id=f"{f[1]}-{f[0]}-{i}") for i, f in enumerate(grok_samples.FIELDS)],
    )
    def test_fields(self, expression: str, ecs: str, line: str, expected: dict[str, Any]) -> None:
        got = compile_grok(expression, ecs_compatibility=ecs).match(line)
        assert got is not None
        assert _includes(got, expected), got


class TestEnginesAgree:
    """The stdlib `re` twin (default) and the `regex` module (used with a timeout) give the same captures."""

    @pytest.mark.parametrize(("ecs", "name"), _every_name())
    def test_samples(self, ecs: str, name: str) -> None:
        text = ALL_SAMPLES[name][0]
        fast = compile_grok(f"%{{{name}}}", named_captures_only=False, ecs_compatibility=ecs)
        reference = compile_grok(f"%{{{name}}}", named_captures_only=False, timeout=10.0, ecs_compatibility=ecs)
        assert fast._compiled[0].fast is not None
        assert fast.match(text) == reference.match_or_timeout(text)

    @pytest.mark.parametrize(
        ("fixture", "pattern"),
        [
            ("access_nginx.log", "%{NGINXACCESS}"),
            ("access_apache.log", "%{COMBINEDAPACHELOG}"),
            ("error_nginx.log", "%{NGINX_ERRORLOG}"),
            ("error_apache.log", "%{HTTPD_ERRORLOG}"),
            ("syslog.log", "%{SYSLOGLINE}"),
            ("app_text.log", "%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level}"),
        ],
    )
    def test_fixtures(self, fixture: str, pattern: str) -> None:
        fast = compile_grok(pattern)
        reference = compile_grok(pattern, timeout=10.0)
        for line in _lines(fixture):
            assert fast.match(line) == reference.match_or_timeout(line), line


class TestBuiltinSemantics:
    def test_combinedapachelog_legacy_fields(self) -> None:
        line = (
            '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
            '"http://www.example.com/start.html" "Mozilla/4.08"'
        )
        assert compile_grok("%{COMBINEDAPACHELOG}").match(line) == {
            "clientip": "127.0.0.1",
            "ident": "-",
            "auth": "frank",
            "timestamp": "10/Oct/2000:13:55:36 -0700",
            "verb": "GET",
            "request": "/apache_pb.gif",
            "httpversion": "1.0",
            "response": "200",
            "bytes": "2326",
            "referrer": '"http://www.example.com/start.html"',
            "agent": '"Mozilla/4.08"',
        }

    def test_commonapachelog_raw_request_and_missing_bytes(self) -> None:
        line = '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "\\x16\\x03\\x01" 400 -'
        assert compile_grok("%{COMMONAPACHELOG}").match(line) == {
            "clientip": "1.2.3.4",
            "ident": "-",
            "auth": "-",
            "timestamp": "10/Oct/2000:13:55:36 -0700",
            "rawrequest": "\\x16\\x03\\x01",
            "response": "400",
        }

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("1.2.3.4", "1.2.3.4", id="v4"),
            pytest.param("255.255.255.255", "255.255.255.255", id="v4-max"),
            pytest.param("2001:db8:85a3::8a2e:370:7334", "2001:db8:85a3::8a2e:370:7334", id="v6-compressed"),
            pytest.param("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8", id="v6-full"),
            pytest.param("::1", "::1", id="v6-loopback"),
            pytest.param("::", "::", id="v6-unspecified"),
            pytest.param("fe80::1%eth0", "fe80::1%eth0", id="v6-zone"),
            pytest.param("::ffff:192.0.2.128", "::ffff:192.0.2.128", id="v6-mapped-v4"),
            pytest.param("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7::", id="v6-trailing-compression"),
        ],
    )
    def test_ip(self, text: str, expected: str) -> None:
        assert compile_grok("^%{IP:ip}$").match(text) == {"ip": expected}

    @pytest.mark.parametrize("text", ["256.1.1.1", "1.2.3", "1.2.3.4.5", "1:2:3:4:5:6:7:8:9", "12345::1", "a::b::c"])
    def test_not_ip(self, text: str) -> None:
        assert compile_grok("^%{IP:ip}$").match(text) is None

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("Oct 11 22:14:15", {"timestamp": "Oct 11 22:14:15"}, id="syslog"),
            pytest.param("2024-01-02T03:04:05.123+01:00", {"timestamp": "2024-01-02T03:04:05.123+01:00"}, id="iso"),
            pytest.param("2024-01-02 03:04:05,123", {"timestamp": "2024-01-02 03:04:05,123"}, id="iso-comma"),
        ],
    )
    def test_timestamps(self, text: str, expected: dict[str, str]) -> None:
        g = compile_grok(["^%{SYSLOGTIMESTAMP:timestamp}$", "^%{TIMESTAMP_ISO8601:timestamp}$"])
        assert g.match(text) == expected

    def test_loglevel_apache_trace_levels(self) -> None:
        assert compile_grok(r"\[%{LOGLEVEL:l}\]").match("[trace3]") == {"l": "trace3"}

    def test_uri_parts(self) -> None:
        got = compile_grok("%{URIPROTO:proto}://%{URIHOST:host}%{URIPATHPARAM:pp}").match(
            "https://example.com:8443/a/b?x=1&y=2"
        )
        assert got == {"proto": "https", "host": "example.com:8443", "port": "8443", "pp": "/a/b?x=1&y=2"}


class TestFamiliesOnFixtures:
    """Every line of the fixture files matches its family's top-level pattern with the legacy fields."""

    @pytest.mark.parametrize(
        ("fixture", "pattern", "required"),
        [
            pytest.param("access_apache.log", "%{COMMONAPACHELOG}", {"clientip", "timestamp", "response"},
                         id="apache-common"),
            pytest.param("access_nginx.log", "%{NGINXACCESS}", {"clientip", "timestamp", "response", "agent"},
                         id="nginx-access"),
            pytest.param("error_nginx.log", "%{NGINX_ERRORLOG}", {"timestamp", "loglevel", "pid", "tid", "message"},
                         id="nginx-error"),
            pytest.param("error_apache.log", "%{HTTPD_ERRORLOG}", {"timestamp", "loglevel", "message"},
                         id="httpd-error"),
            pytest.param("syslog.log", "%{SYSLOGLINE}", {"logsource", "program", "message"}, id="syslog"),
        ],
    )  # fmt: skip
    def test_fixture_lines(self, fixture: str, pattern: str, required: set[str]) -> None:
        g = compile_grok(f"^{pattern}")
        for line in _lines(fixture):
            got = g.match(line)
            assert got is not None, line
            assert required <= set(got), (line, got)

    def test_combined_on_apache_fixture(self) -> None:
        got = compile_grok("%{COMBINEDAPACHELOG}").match(_lines("access_apache.log")[0])
        assert got is not None
        assert got["agent"] == '"Mozilla/4.08 [en] (Win98; I ;Nav)"'

    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            pytest.param(
                '1.2.3.4 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 5 "-" "ua" 0.123 0.120 10.0.0.1:8080',
                {"request_time": "0.123", "upstream_response_time": "0.120", "upstream_addr": "10.0.0.1:8080"},
                id="bare-extras",
            ),
            pytest.param(
                '1.2.3.4 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 5 "-" "ua" "-" rt=0.5 uct="0.000" '
                'uht="0.001" urt="0.4" ua="10.0.0.1:80"',
                {"x_forwarded_for": "-", "request_time": "0.5", "upstream_response_time": "0.4",
                 "upstream_addr": "10.0.0.1:80"},
                id="keyed-extras",
            ),
            pytest.param('1.2.3.4 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 5 "-" "ua"', {},
                         id="plain-combined"),
        ],
    )  # fmt: skip
    def test_nginxaccess_extras(self, line: str, expected: dict[str, str]) -> None:
        got = compile_grok("%{NGINXACCESS}").match(line)
        assert got is not None
        extras = {k: v for k, v in got.items() if k in expected or k in {"request_time", "upstream_addr"}}
        assert extras == expected

    def test_nginx_error_fields(self) -> None:
        got = compile_grok("%{NGINX_ERRORLOG}").match(_lines("error_nginx.log")[0])
        assert got == {
            "timestamp": "2024/01/02 03:04:05",
            "loglevel": "error",
            "pid": "1234",
            "tid": "5678",
            "connection_id": "99",
            "message": "connect() failed (111: Connection refused) while connecting to upstream",
            "clientip": "198.51.100.7",
            "server": "example.com",
            "request": "GET /x?y=1 HTTP/1.1",
            "upstream": "http://10.0.0.1:8080/x?y=1",
            "host_header": "example.com",
            "referrer": "https://example.com/",
        }

    def test_httpd24_error_fields(self) -> None:
        got = compile_grok("%{HTTPD_ERRORLOG}").match(_lines("error_apache.log")[1])
        assert got == {
            "timestamp": "Wed Oct 11 14:32:52.123456 2000",
            "module": "core",
            "loglevel": "error",
            "pid": "1234",
            "tid": "5678",
            "clientip": "1.2.3.4",
            "clientport": "5678",
            "errorcode": "AH00124",
            "message": "Request exceeded the limit of 10 internal redirects due to probable configuration error., "
            "referer: http://example.com/",
        }

    def test_httpd20_error_fields(self) -> None:
        got = compile_grok("%{HTTPD_ERRORLOG}").match(_lines("error_apache.log")[0])
        assert got == {
            "timestamp": "Wed Oct 11 14:32:52 2000",
            "loglevel": "error",
            "clientip": "127.0.0.1",
            "message": "client denied by server configuration: /export/home/live/ap/htdocs/test",
        }

    def test_syslogline_rfc3339_timestamp_field_per_set(self) -> None:
        # As Logstash's SYSLOGBASE2: an RFC 3339 stamp is `timestamp8601` in the legacy set, `timestamp` in ECS.
        line = "2024-01-02T03:04:08.123456+00:00 web-1 systemd[1]: Started Daily apt download activities."
        legacy = compile_grok("%{SYSLOGLINE}").match(line)
        ecs = compile_grok("%{SYSLOGLINE}", ecs_compatibility="v1").match(line)
        assert legacy is not None and ecs is not None
        assert legacy["timestamp8601"] == ecs["timestamp"] == "2024-01-02T03:04:08.123456+00:00"
        assert "timestamp" not in legacy

    def test_syslogline_fields(self) -> None:
        got = compile_grok("%{SYSLOGLINE}").match(_lines("syslog.log")[1])
        assert got == {
            "timestamp": "Jan  2 03:04:05",
            "logsource": "web-1",
            "program": "sshd",
            "pid": "4721",
            "message": "Accepted publickey for deploy from 198.51.100.7 port 52144 ssh2",
        }

    def test_java_stack_frames(self) -> None:
        g = compile_grok("^%{JAVASTACKTRACEPART}")
        frames = [g.match(line) for line in _lines("stacktraces.log") if line.startswith("\tat ")]
        assert frames == [
            {"class": "com.example.OrderService", "method": "place", "file": "OrderService.java", "line": "42"},
            {"class": "com.example.Api", "method": "post", "file": "Api.java", "line": "10"},
            {"class": "java.lang.Thread", "method": "run", "file": "Thread.java", "line": "833"},
            {"class": "com.example.Store", "method": "write", "file": "Store.java", "line": "7"},
        ]


# -- hostile input --------------------------------------------------------------------------

HOSTILE_SIZE = 64 * 1024
BOUND_SECONDS = 2.0


def _fill(unit: str) -> str:
    return (unit * (HOSTILE_SIZE // len(unit) + 1))[:HOSTILE_SIZE]


# Long runs of characters that almost match something: token characters, separators, quotes,
# escapes, digits and dots (IPs, numbers), colons (IPv6, times), brackets.
_GENERIC = [
    _fill(u)
    for u in ("a", "1", "1.", " ", '"\\', "a.", "a-", "a:", "[", "/", "%{", "::", "a@", "a b ")
]  # fmt: skip


def _near_misses(sample: str) -> list[str]:
    """Repetitions and prefixes of a real match with its end cut off."""
    if len(sample) < 2:
        return []
    cut = sample[:-1]
    return [
        _fill(cut),
        _fill(cut + " "),
        _fill(sample[: len(sample) // 2]),
        cut + _fill("a"),
        cut + _fill(" "),
        _fill(sample.replace(" ", "  ")[:-1]),
        _fill(sample.replace('"', "")),
    ]


def _hostile_cases() -> list[Any]:
    """Every name of both sets, once per distinct regex: an ECS name that expands to the
    same regex as its legacy twin (no captures involved) is the same search."""
    seen: set[str] = set()
    cases = []
    for ecs in ECS_COMPATIBILITY:
        for name in builtin_pattern_names(ecs):
            source = compile_grok(f"%{{{name}}}", ecs_compatibility=ecs).regexes[0]
            if source not in seen:
                seen.add(source)
                cases.append(pytest.param(ecs, name, id=f"{ecs}-{name}"))
    return cases


class TestHostileInput:
    """No catastrophic backtracking: each built-in name on 64 KiB near-miss lines stays bounded.

    The bound is the `regex` engine's own per-search timeout (``match_or_timeout`` raises
    past it), not a clock read by the test; the default engine (stdlib ``re``) must then
    give the same answer on the same hostile line.
    """

    @pytest.mark.parametrize(("ecs", "name"), _hostile_cases())
    def test_bounded_on_both_engines(self, ecs: str, name: str) -> None:
        bounded = compile_grok(f"%{{{name}}}", timeout=BOUND_SECONDS, ecs_compatibility=ecs)
        default = compile_grok(f"%{{{name}}}", ecs_compatibility=ecs)
        for text in _GENERIC + _near_misses(ALL_SAMPLES[name][0]):
            assert default.match(text) == bounded.match_or_timeout(text)

    def test_hostile_lines_really_are_near_misses(self) -> None:
        # Guard against a generator that only produces trivially failing input.
        assert compile_grok("%{COMBINEDAPACHELOG}").match(_near_misses(APACHE_COMBINED)[3]) is None
        assert compile_grok("%{QS:q}").match(_fill('"\\')) is None
