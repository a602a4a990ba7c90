"""Application logs: JSON lines, logfmt, and the common plain-text layouts; stack traces.

JSON (one object per line, limits in ``formats/json.py``) and logfmt
(``level=info msg="..."``) keys are mapped by role:

==============================================  =======================================
keys                                            event field
==============================================  =======================================
``@timestamp timestamp time ts asctime``        ``@timestamp`` (UTC RFC 3339 ms)
``level levelname severity lvl``                ``level`` (uppercased; pino/bunyan numbers
                                                mapped: 10 TRACE ... 60 FATAL)
``logger logger_name name``                     ``logger``
``message msg``                                 ``message``
``requestId traceId spanId userId``             ``request_id trace_id span_id user_id``
``exception exc_info exc err error(object)``    ``error.type``, ``error.message``,
``stack_trace stacktrace``                      ``error.stack_trace``
==============================================  =======================================

Any other key is kept as-is at the top level, except reserved keys (``host``,
``source``, ``tags``, ``log_type``, ``kubernetes``, a second ``@timestamp``...)
which go under ``json``. Invalid or truncated JSON (a message starting with
``{``), or JSON over the limits, tags ``_jsonparsefailure``, keeps the message,
and the plain-text layouts are tried next.

Plain-text layouts (first line of the record)::

    TS LEVEL LOGGER - MESSAGE                2024-01-02 03:04:05,123 INFO com.example.App - started
    TS [LEVEL] LOGGER: MESSAGE               2024-01-02T03:04:05Z [ERROR] app.db: connection lost
    TS LEVEL [thread] LOGGER - MESSAGE       logback / log4j
    TS [thread] LEVEL LOGGER - MESSAGE       logback default layout
    TS LEVEL PID --- [thread] LOGGER : MSG   Spring Boot
    TS - LOGGER - LEVEL - MESSAGE            Python "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
    [TS] LEVEL in LOGGER: MESSAGE            Flask
    TS LEVEL [LOGGER] MESSAGE                Python "%(asctime)s %(levelname)s [%(name)s] %(message)s"
    TS [LEVEL] MESSAGE / TS LEVEL MESSAGE / TS MESSAGE
    LEVEL:LOGGER:MESSAGE                     Python logging's default format
    [LEVEL] MESSAGE / LEVEL: MESSAGE
    I0102 03:04:05.123456   12345 file.go:42] MESSAGE     klog (Kubernetes components)

giving ``@timestamp``, ``level`` (uppercased), ``logger``, ``thread``, ``pid``
(int), ``source_file`` (klog) and ``message``.

A joined multi-line record that holds a Python traceback (``Traceback (most
recent call last):`` ... ``ExcType: msg``) or a Java/JVM/Node stack trace
(``com.x.FooException: msg`` then ``\\tat ...`` lines, ``Caused by: ...``) keeps
the whole trace in ``error.stack_trace`` and extracts ``error.type`` and
``error.message`` (the outermost exception for Java, the last one raised for
Python); ``message`` becomes the first line's message.
"""

from __future__ import annotations

import re
from typing import Any

from parsers.dates import DateParser
from parsers.formats.json import DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, JsonDecoder, looks_like_json
from parsers.types import DATE_FAILURE, GROK_FAILURE, JSON_FAILURE, RESERVED_KEYS, Event, add_tag

__all__ = ["ApplicationLogFormat", "extract_stack_trace"]

# -- roles of JSON / logfmt keys -----------------------------------------------------------

_TS, _LEVEL, _LOGGER, _MESSAGE, _EXC = range(5)
_ROLES: dict[str, int] = {
    "@timestamp": _TS, "timestamp": _TS, "time": _TS, "ts": _TS, "asctime": _TS,
    "level": _LEVEL, "levelname": _LEVEL, "severity": _LEVEL, "lvl": _LEVEL,
    "logger": _LOGGER, "logger_name": _LOGGER, "name": _LOGGER,
    "message": _MESSAGE, "msg": _MESSAGE,
    "exception": _EXC, "exc_info": _EXC, "exc": _EXC, "err": _EXC,
    "stack_trace": _EXC, "stacktrace": _EXC,
}  # fmt: skip
_ALIASES = {
    "requestId": "request_id", "req_id": "request_id", "traceId": "trace_id", "spanId": "span_id",
    "userId": "user_id", "serviceName": "service", "service_name": "service",
}  # fmt: skip
_NUMERIC_LEVELS = {10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL"}
_KLOG_LEVELS = {"I": "INFO", "W": "WARNING", "E": "ERROR", "F": "FATAL"}
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# -- plain-text layouts --------------------------------------------------------------------

_LV = (
    r"(?:TRACE|DEBUG|INFO|NOTICE|WARN(?:ING)?|ERROR|ERR|CRIT(?:ICAL)?|FATAL|SEVERE|ALERT|EMERG(?:ENCY)?"
    r"|FINEST|FINER|FINE|CONFIG)"
)
LEVEL = r"(?i:" + _LV + r")(?![\w-])"
LEVEL_UPPER = _LV + r"(?![\w-])"
TS = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?: ?(?:Z|[+-]\d{2}(?::?\d{2})?))?"

_TS_PREFIX = re.compile(r"\[?(" + TS + r")\]?\s++")
_LOGGER_CHARS = r"[^\s\[\]:]++"
# After the timestamp; each entry: (regex, names of its groups in order).
_AFTER_TS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"(" + LEVEL + r")\s++(\d++)\s++---\s++(?:\[[^\]]*+\]\s++)?\[\s*+([^\]]*?)\s*+\]\s++(\S++)\s*+:\s(.*+)",
                re.DOTALL), ("level", "pid", "thread", "logger", "message")),
    (re.compile(r"\[?(" + LEVEL + r")\]?\s++\[([^\]]*+)\]\s++(\S++)\s++-\s(.*+)", re.DOTALL),
     ("level", "thread", "logger", "message")),
    (re.compile(r"\[([^\]]*+)\]\s++(" + LEVEL + r")\s++(\S++)\s++-\s(.*+)", re.DOTALL),
     ("thread", "level", "logger", "message")),
    (re.compile(r"-\s++(\S++)\s++-\s++(" + LEVEL + r")\s++-\s(.*+)", re.DOTALL), ("logger", "level", "message")),
    (re.compile(r"(" + LEVEL + r") in ([^\s:]++): (.*+)", re.DOTALL), ("level", "logger", "message")),
    (re.compile(r"\[?(" + LEVEL + r")\]?:?\s++(" + _LOGGER_CHARS + r")(?::| -)\s(.*+)", re.DOTALL),
     ("level", "logger", "message")),
    # Python "%(asctime)s %(levelname)s [%(name)s] %(message)s"
    (re.compile(r"\[?(" + LEVEL + r")\]?\s++\[([^\]\s]++)\]:?\s++(.*+)", re.DOTALL), ("level", "logger", "message")),
    (re.compile(r"\[?(" + LEVEL + r")\]?:?(?:\s++(.*+))?", re.DOTALL), ("level", "message")),
    (re.compile(r"(.*+)", re.DOTALL), ("message",)),  # a timestamp and free text
)  # fmt: skip
_NO_TS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"(" + LEVEL_UPPER + r"):([^:\s]*+):(.*+)", re.DOTALL), ("level", "logger", "message")),
    (re.compile(r"\[(" + LEVEL + r")\]:?\s*+(.*+)", re.DOTALL), ("level", "message")),
    (re.compile(r"(" + LEVEL_UPPER + r"):?\s++(.*+)", re.DOTALL), ("level", "message")),
)
_KLOG = re.compile(
    r"([IWEF])(\d{2})(\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)\s++(\d++) ([^\s\]]++)\] ?(.*+)", re.DOTALL
)
_LOGFMT_START = re.compile(r"[A-Za-z_][\w.-]*+=")
_LOGFMT_PAIR = re.compile(r'([A-Za-z_@][\w.@-]*+)=(?:"((?:[^"\\]++|\\.)*+)"|([^\s"]*+))')
_LOGFMT_UNESCAPE = re.compile(r'\\(["\\nt])')
_LOGFMT_ESC = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}

# -- stack traces --------------------------------------------------------------------------

_PY_TRACEBACK = "Traceback (most recent call last):"
_PY_EXC_LINE = re.compile(r"([A-Za-z_][\w.]*+)(?::[ \t]?+(.*+))?")
_FRAME = re.compile(r"\n[ \t]++at [^\n]", re.MULTILINE)
_JAVA_HEADER = re.compile(
    r"(?:Exception in thread \"[^\"\n]*+\" )?"
    r"((?:[A-Za-z_$][\w$]*+\.)++[A-Za-z_$][\w$]*+|[A-Za-z_$][\w$]*?(?:Exception|Error|Throwable))"
    r"(?:: ?+(.*+))?"
)
_MAX_HEADER_LOOKBACK = 20  # lines between an exception header and its first frame (multi-line messages)


def _python_trace(text: str, start: int) -> tuple[str, str | None, int] | None:
    """(type, message, start of trace) of a Python traceback starting at ``start``."""
    lines = text[start:].rstrip().split("\n")
    last_frame = 0
    for i, line in enumerate(lines):
        if line.startswith("  File "):
            last_frame = i
    # The exception line: first non-indented line after the last frame (skipping its
    # source line and 3.11 "^^^^" markers, which are indented).
    for i in range(last_frame + 1, len(lines)):
        line = lines[i]
        if line and not line[0].isspace():
            m = _PY_EXC_LINE.fullmatch(line)
            if m is None:
                return None
            msg = m.group(2)
            extra = lines[i + 1 :]
            if msg is not None and extra:
                msg = "\n".join([msg, *extra]).rstrip()
            return m.group(1), msg or None, start
    return None


def _jvm_trace(text: str) -> tuple[str, str | None, int] | None:
    """(type, message, start of trace) of a Java/Node stack trace: header line + ``at`` frames."""
    frame = _FRAME.search(text)
    if frame is None:
        return None
    end = frame.start()  # the "\n" before the first frame
    # Walk back line by line to the nearest line that looks like an exception header.
    pos = end
    for _ in range(_MAX_HEADER_LOOKBACK):
        line_start = text.rfind("\n", 0, pos) + 1
        m = _JAVA_HEADER.fullmatch(text, line_start, pos)
        if m is not None:
            msg = m.group(2)
            if pos < end:  # continuation lines of a multi-line exception message
                msg = (msg or "") + text[pos:end]
            return m.group(1), (msg.strip() or None) if msg else None, line_start
        if line_start == 0:
            break
        pos = line_start - 1
    return None


def extract_stack_trace(text: str) -> tuple[str, str | None, int] | None:
    """Find a Python traceback or a JVM/Node stack trace in a multi-line record.

    Returns ``(error type, error message or None, offset where the trace starts)``.
    """
    idx = text.find(_PY_TRACEBACK)
    if idx >= 0 and (idx == 0 or text[idx - 1] == "\n"):
        found = _python_trace(text, idx)
        if found is not None:
            return found
    if "at " in text:
        return _jvm_trace(text)
    return None


def _error_from_text(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {"stack_trace": text}
    found = extract_stack_trace(text) if "\n" in text else None
    if found is not None:
        out["type"] = found[0]
        if found[1]:
            out["message"] = found[1]
    else:
        m = _PY_EXC_LINE.fullmatch(text.strip().split("\n")[-1]) if text.strip() else None
        if m is not None and m.group(2):
            out["type"] = m.group(1)
            out["message"] = m.group(2)
    return out


def _first(d: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        v = d.get(k)
        if v not in (None, ""):
            return v
    return None


def _error_fields(value: Any) -> dict[str, Any] | None:
    """Normalise an exception value (dict, traceback string, list of lines) to ``error.*``."""
    if isinstance(value, str):
        return _error_from_text(value) if value.strip() else None
    if isinstance(value, list):
        return _error_from_text("\n".join(str(x) for x in value)) if value else None
    if not isinstance(value, dict):
        return None
    out: dict[str, Any] = {}
    stack = _first(value, ("stack_trace", "traceback", "stacktrace", "stack", "trace", "backtrace"))
    if isinstance(stack, list):
        stack = "\n".join(str(x) for x in stack)
    if stack is not None:
        out = _error_from_text(str(stack))
    etype = _first(value, ("type", "class", "exception_class", "name", "kind"))
    emsg = _first(value, ("message", "msg", "exception_message", "value"))
    if etype is not None:
        out["type"] = str(etype)
    if emsg is not None:
        out["message"] = emsg if isinstance(emsg, str) else str(emsg)
    return out or None


def _norm_level(v: Any) -> str:
    if isinstance(v, str):
        return v.upper()
    if isinstance(v, int) and not isinstance(v, bool):
        return _NUMERIC_LEVELS.get(v, str(v))
    return str(v).upper()


def _logfmt_unescape(text: str) -> str:
    return _LOGFMT_UNESCAPE.sub(lambda m: _LOGFMT_ESC[m.group(1)], text) if "\\" in text else text


class ApplicationLogFormat:
    """Parse application logs (see module docstring for layouts and fields)."""

    __slots__ = ("_json", "_parse_date", "overwrite_message")

    def __init__(
        self,
        dates: DateParser | None = None,
        *,
        max_json_bytes: int = DEFAULT_MAX_BYTES,
        max_json_depth: int = DEFAULT_MAX_DEPTH,
        overwrite_message: bool = True,
    ) -> None:
        self._parse_date = (dates or DateParser()).parse
        self._json = JsonDecoder(max_json_bytes, max_json_depth)
        self.overwrite_message = overwrite_message

    def __call__(self, event: Event) -> Event:
        message = event.get("message")
        if not isinstance(message, str) or not self.parse(event, message):
            add_tag(event, GROK_FAILURE)
        return event

    def parse(self, event: Event, message: str) -> bool:
        """Fill ``event``; False when no layout matched (the caller tags)."""
        if looks_like_json(message):
            obj = self._json.decode(message)
            if obj is not None:
                self.apply_fields(event, obj)
                return True
            add_tag(event, JSON_FAILURE)
        return self.parse_text(event, message)

    # -- JSON / logfmt -------------------------------------------------------------------------

    def apply_fields(self, event: Event, obj: dict[str, Any]) -> None:
        """Map decoded JSON (or logfmt) keys onto the event by role."""
        nested: dict[str, Any] | None = None
        done = 0  # bit set of roles already taken: a second key of the same role stays raw
        for k, v in obj.items():
            role = _ROLES.get(k)
            if role is not None and not done & (1 << role):
                if role == _TS:
                    t = self._parse_date(v)
                    if t is not None:
                        event["@timestamp"] = t
                        done |= 1 << role
                        continue
                    add_tag(event, DATE_FAILURE)
                elif role == _LEVEL:
                    if v is not None:
                        event["level"] = _norm_level(v)
                        done |= 1 << role
                        continue
                elif role == _LOGGER:
                    if isinstance(v, str):
                        event["logger"] = v
                        done |= 1 << role
                        continue
                elif role == _MESSAGE:
                    if isinstance(v, str):
                        if self.overwrite_message:
                            event["message"] = v
                        done |= 1 << role
                        continue
                elif role == _EXC:
                    err = _error_fields(v)
                    if err is not None:
                        self._set_error(event, err)
                        done |= 1 << role
                        continue
            elif k == "error" and isinstance(v, dict):
                err = _error_fields(v)
                if err is not None:
                    self._set_error(event, err)
                    continue
            else:
                alias = _ALIASES.get(k)
                if alias is not None and alias not in obj:
                    k = alias
            if k in RESERVED_KEYS or k == "json":
                if nested is None:
                    existing = event.get("json")
                    nested = existing if isinstance(existing, dict) else {}
                    event["json"] = nested
                nested[k] = v
            elif k == "error" and isinstance(event.get("error"), dict):
                event["error"].setdefault("message", v)
            else:
                event[k] = v
        if not done & (1 << _MESSAGE) and self.overwrite_message:
            # structlog's JSON renderer writes the message under "event" (kept as a field too).
            text = obj.get("event")
            if isinstance(text, str):
                event["message"] = text

    @staticmethod
    def _set_error(event: Event, err: dict[str, Any]) -> None:
        current = event.get("error")
        if isinstance(current, dict):
            for key, value in err.items():
                current.setdefault(key, value)
            return
        if current is not None and "message" not in err:
            err["message"] = current if isinstance(current, str) else str(current)
        event["error"] = err

    def _parse_logfmt(self, event: Event, line: str) -> bool:
        pairs: dict[str, Any] = {}
        pos = 0
        for m in _LOGFMT_PAIR.finditer(line):
            if line[pos : m.start()].strip():
                return False  # free text between pairs: not logfmt
            key, quoted, bare = m.groups()
            pairs[key] = _logfmt_unescape(quoted) if quoted is not None else bare
            pos = m.end()
        if line[pos:].strip() or not any(_ROLES.get(k) in (_LEVEL, _MESSAGE) for k in pairs):
            return False
        self.apply_fields(event, pairs)
        return True

    # -- plain text ------------------------------------------------------------------------

    def parse_text(self, event: Event, message: str) -> bool:
        nl = message.find("\n")
        first = message if nl < 0 else message[:nl]
        fields = self._match_first_line(event, first)
        if nl < 0:
            if fields is not None:
                self._apply_line(event, fields, first)
                return True
            return (
                len(first) <= self._json.max_bytes
                and _LOGFMT_START.match(first) is not None
                and self._parse_logfmt(event, first)
            )
        found = extract_stack_trace(message)
        if found is not None:
            etype, emsg, start = found
            err: dict[str, Any] = {"type": etype, "stack_trace": message[start:].rstrip()}
            if emsg:
                err["message"] = emsg
            self._set_error(event, err)
        if fields is not None:
            if found is not None and found[2] > nl:
                body = message[nl : found[2]].rstrip()  # lines between the first line and the trace
            elif found is not None:
                body = ""
            else:
                body = message[nl:]
            self._apply_line(event, fields, first, body)
            return True
        if found is not None:
            if self.overwrite_message:
                event["message"] = message[: found[2]].rstrip() or first
            return True
        return False

    def _match_first_line(self, event: Event, line: str) -> dict[str, str | None] | None:
        c = line[:1]
        if c.isdigit() or c == "[":
            m = _TS_PREFIX.match(line)
            if m is not None:
                rest_at = m.end()
                for rx, names in _AFTER_TS:
                    mm = rx.fullmatch(line, rest_at)
                    if mm is not None:
                        fields: dict[str, str | None] = dict(zip(names, mm.groups(), strict=True))
                        fields["@timestamp"] = m.group(1)
                        return fields
                return None
        if c in "IWEF":
            mk = _KLOG.fullmatch(line)
            if mk is not None:
                lv, mo, day, clock, pid, src, msg = mk.groups()
                month = int(mo)
                ts = f"{_MONTH_NAMES[month - 1]} {day} {clock}" if 1 <= month <= 12 else None
                return {"level": _KLOG_LEVELS[lv], "pid": pid, "source_file": src, "message": msg, "@timestamp": ts}
        for rx, names in _NO_TS:
            mm = rx.fullmatch(line)
            if mm is not None:
                return dict(zip(names, mm.groups(), strict=True))
        return None

    def _apply_line(self, event: Event, fields: dict[str, str | None], first: str, body: str = "") -> None:
        for key, value in fields.items():
            if value is None or value == "":
                continue
            if key == "@timestamp":
                t = self._parse_date(value)
                if t is None:
                    add_tag(event, DATE_FAILURE)
                else:
                    event["@timestamp"] = t
            elif key == "level":
                event["level"] = value.upper()
            elif key == "pid":
                event["pid"] = int(value)
            elif key == "message":
                if self.overwrite_message:
                    event["message"] = value + body if body else value
            else:
                event[key] = value
