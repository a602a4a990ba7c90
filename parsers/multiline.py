"""Multiline joiner: turn a stream of lines into records (stack traces, continued lines).

One joiner per stream (a file, or one stdout/stderr stream of a container). It is pure and
stateful: ``feed`` takes a batch of lines with offsets and returns only the records that are
known to be complete; the lines of the record still being built stay inside the joiner, and
``pending_start_offset`` tells the source that its checkpoint must not pass them (the batch
receipt ends at the last complete record, as in Vector's ``line_agg``). Time is injected:
``feed(lines, now)`` and ``flush_idle(now)`` take the caller's clock, so tests drive it.

Semantics follow Filebeat's ``multiline.type: pattern`` (pattern / negate / match):

=======  ======  ===========================================================================
negate   match   result
=======  ======  ===========================================================================
false    after   consecutive lines that match are appended to the previous line that doesn't
true     after   consecutive lines that don't match are appended to the previous one that does
false    before  consecutive lines that match are prepended to the next line that doesn't
true     before  consecutive lines that don't match are prepended to the next one that does
=======  ======  ===========================================================================

Equivalently, with ``m(line) = pattern matches line XOR negate``: in ``after`` mode a line
continues the pending record when ``m(line)``; in ``before`` mode when ``m(previous line)``.
In ``before`` mode a line with ``not m(line)`` closes its record at once (Filebeat would emit
it when the next line arrives; the output is the same, it only comes out sooner).
``flush_pattern``: a line that matches it is added to the pending record (or starts one) and
closes it.

Filebeat's other two ``multiline.type`` s:

* ``count``: every ``count_lines`` consecutive lines make one record (no pattern); a
  partial record is emitted at the idle timeout or at the end of the stream.
* ``while_pattern``: consecutive lines for which ``m(line)`` holds are joined into one
  record; any other line is a record on its own (``match`` does not apply).

A pattern may hold grok references (``^%{TIMESTAMP_ISO8601} ``), as Logstash's multiline
codec allows: they are expanded with the built-in grok library (``parsers.grok``) before
the regex is compiled.

Limits: past ``max_lines`` lines, or ``max_bytes`` UTF-8 bytes of joined text, further text is
dropped from the record (the line that crosses ``max_bytes`` is cut at a character boundary),
but the dropped lines are still consumed: their bytes are covered by the record's ``end`` so
the checkpoint passes them, and the record has ``truncated=True`` (tag ``_truncated``).

A pattern matches a line when it is found anywhere in it (Filebeat's Go ``MatchString``
semantics; anchor with ``^``). Patterns are compiled with the stdlib ``re`` (the fastest for these anchored patterns); a
pattern that ``re`` rejects or warns about, such as Filebeat's POSIX classes
(``^[[:space:]]``), is compiled with the ``regex`` module instead. A pattern neither accepts
raises ``ValueError`` naming it.

Checkpointing recipe for the caller: after each ``feed``, the position a restart can safely
resume from is ``resume_offset`` (the start of the pending record, else the end of the last
line fed). A batch's receipt covers ``[previous resume_offset, resume_offset)``; that range is
contiguous from batch to batch and covers exactly the records emitted so far.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, Protocol

from parsers.types import INVALID_UTF8, TRUNCATED

__all__ = [
    "MODES",
    "PRESETS",
    "TAG_INVALID_UTF8",
    "TAG_TRUNCATED",
    "Joiner",
    "Line",
    "LineLike",
    "MultilineJoiner",
    "PassthroughJoiner",
    "Record",
    "compile_pattern",
    "cut_utf8",
    "joiner_from_preset",
    "utf8_len",
]

# The shared tag names, under the names this module has always exported.
TAG_TRUNCATED = TRUNCATED
TAG_INVALID_UTF8 = INVALID_UTF8

DEFAULT_MAX_LINES = 500
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_TIMEOUT = 5.0

#: Filebeat's ``multiline.type`` values.
MODES = ("pattern", "count", "while_pattern")
Mode = Literal["pattern", "count", "while_pattern"]

# Building a NamedTuple through tuple.__new__ skips its Python-level __new__ (about a third
# of the cost of a record on the hot path).
_tuple_new = tuple.__new__


class Line(NamedTuple):
    """One line as read from a file: its text without the newline, and its byte offsets.

    ``start`` is the offset of the line's first byte; ``end`` the offset just past its
    newline, i.e. the position a checkpoint may resume from once the line is delivered.
    """

    text: str
    start: int
    end: int


class LineLike(Protocol):
    """Anything with ``text``, ``start`` and ``end`` (a ``Line``, a decoded container record)."""

    @property
    def text(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


class Record(NamedTuple):
    """A complete record: one or more lines joined with ``\\n``.

    ``start`` is the first line's start, ``end`` the LAST line's end (the offset to
    checkpoint). ``lines`` counts every line consumed, including lines dropped past a limit;
    ``truncated`` is true when any text was dropped. ``first`` is the first input line object
    itself, so a caller that feeds richer line objects (container records with a stream and a
    time) gets them back; a single-line untruncated record has ``first.text == text``.
    """

    text: str
    start: int
    end: int
    lines: int
    truncated: bool
    first: LineLike


class Joiner(Protocol):
    """The interface shared by ``MultilineJoiner`` and ``PassthroughJoiner``."""

    def feed(self, lines: Sequence[LineLike], now: float) -> list[Record]: ...
    def flush_idle(self, now: float) -> list[Record]: ...
    def flush(self) -> list[Record]: ...
    @property
    def pending(self) -> bool: ...
    @property
    def pending_start_offset(self) -> int | None: ...
    @property
    def resume_offset(self) -> int | None: ...
    @property
    def idle_deadline(self) -> float | None: ...


def utf8_len(text: str) -> int:
    """Length of ``text`` in UTF-8 bytes (lone surrogates count 3, never raises)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def cut_utf8(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits in ``limit`` bytes."""
    if limit <= 0:
        return ""
    if text.isascii():
        return text[:limit]
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    cut = limit
    # Back off to the start of the character the cut falls into (continuation bytes 10xxxxxx).
    while cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return data[:cut].decode("utf-8", "surrogatepass")


def compile_pattern(pattern: str) -> Callable[[str], Any]:
    """Compile a multiline pattern and return its bound ``search`` method.

    As in Filebeat (Go's ``regexp.MatchString``) the pattern may match anywhere in the line;
    anchor it with ``^`` / ``$``.

    ``re`` first (faster); ``regex`` for what ``re`` rejects or warns about (POSIX classes).
    Grok references (``%{NAME}``, ``%{NAME:field}``) are expanded first with the built-in
    grok library. Raises ``ValueError`` naming the pattern when it cannot be compiled.
    """
    if not isinstance(pattern, str):
        raise ValueError(f"multiline pattern must be a string, got {type(pattern).__name__}")
    if "%{" in pattern:
        from parsers.errors import GrokError
        from parsers.grok import compile_grok  # only when used: sources import this module

        try:
            pattern = compile_grok(pattern).regexes[0]
        except GrokError as exc:
            raise ValueError(f"invalid multiline pattern {pattern!r}: {exc}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return re.compile(pattern).search
    except (re.error, Warning, RecursionError, OverflowError) as re_exc:
        first_error = re_exc
    import regex  # only for what `re` cannot compile: not imported at every start

    try:
        compiled: Callable[[str], Any] = regex.compile(pattern).search
    except Exception as exc:  # regex raises regex.error, and sometimes other types
        raise ValueError(f"invalid multiline pattern {pattern!r}: {exc} ({first_error})") from exc
    return compiled


class MultilineJoiner:
    """Filebeat-compatible pattern joiner for one stream. See the module docstring."""

    __slots__ = (
        "_before",
        "_count",
        "_end",
        "_fast_chars",
        "_fed_end",
        "_first",
        "_flush_match",
        "_last_feed",
        "_match",
        "_max_bytes",
        "_max_lines",
        "_nbytes",
        "_negate",
        "_nlines",
        "_parts",
        "_timeout",
        "_truncated",
        "count_lines",
        "flush_pattern",
        "match",
        "max_bytes",
        "max_lines",
        "mode",
        "negate",
        "pattern",
        "timeout",
    )

    def __init__(
        self,
        pattern: str | None = None,
        negate: bool = False,
        match: Literal["after", "before"] = "after",
        max_lines: int = DEFAULT_MAX_LINES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        flush_pattern: str | None = None,
        *,
        mode: Mode = "pattern",
        count_lines: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"multiline type must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "count":
            if count_lines is None or count_lines < 1:
                raise ValueError(f"multiline type count needs count_lines >= 1, got {count_lines}")
            if pattern is not None or flush_pattern is not None:
                raise ValueError("multiline type count takes no pattern or flush_pattern")
        else:
            if pattern is None:
                raise ValueError(f"multiline type {mode} needs a pattern")
            if count_lines is not None:
                raise ValueError(f"count_lines is only for multiline type count, not {mode}")
        if match not in ("after", "before"):
            raise ValueError(f"multiline match must be 'after' or 'before', got {match!r}")
        if max_lines < 1:
            raise ValueError(f"multiline max_lines must be >= 1, got {max_lines}")
        if max_bytes < 1:
            raise ValueError(f"multiline max_bytes must be >= 1, got {max_bytes}")
        if timeout < 0 or math.isnan(timeout):
            raise ValueError(f"multiline timeout must be >= 0 (inf disables it), got {timeout}")
        self.mode = mode
        self.count_lines = count_lines
        self.pattern = pattern
        self.negate = bool(negate)
        self.match = match
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.flush_pattern = flush_pattern
        self._match = compile_pattern(pattern) if pattern is not None else _never
        self._count = count_lines or 0
        self._flush_match = compile_pattern(flush_pattern) if flush_pattern is not None else None
        self._negate = self.negate
        self._before = match == "before"
        self._max_lines = max_lines
        self._max_bytes = max_bytes
        # A line of at most this many characters fits max_bytes whatever its encoding (<= 4 B/char).
        self._fast_chars = max_bytes // 4
        self._timeout = timeout
        # Pending record. _parts is None while it is a single line that fits (text = first.text).
        self._first: LineLike | None = None
        self._parts: list[str] | None = None
        self._end = 0
        self._nlines = 0
        self._nbytes = 0
        self._truncated = False
        self._last_feed = 0.0
        self._fed_end: int | None = None

    # -- public API ---------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """True while lines are held for a record that is not complete yet."""
        return self._first is not None

    @property
    def pending_start_offset(self) -> int | None:
        """Start offset of the first held line; the checkpoint must not pass it."""
        first = self._first
        return first.start if first is not None else None

    @property
    def resume_offset(self) -> int | None:
        """Where a restart must resume: the pending start, else the end of the last line fed."""
        first = self._first
        return first.start if first is not None else self._fed_end

    @property
    def idle_deadline(self) -> float | None:
        """The clock value at which ``flush_idle`` will emit the pending record (None: nothing)."""
        return self._last_feed + self._timeout if self._first is not None else None

    def feed(self, lines: Sequence[LineLike], now: float) -> list[Record]:
        """Consume ``lines`` (in stream order) and return the records they complete."""
        if not lines:
            return []
        self._last_feed = now
        self._fed_end = lines[-1].end
        if self.mode == "count":
            return self._feed_count(lines)
        if self.mode == "while_pattern":
            return self._feed_while(lines)
        if self._before:
            return self._feed_before(lines)
        return self._feed_after(lines)

    def flush_idle(self, now: float) -> list[Record]:
        """Emit the pending record if no line was fed for ``timeout`` seconds."""
        if self._first is not None and now - self._last_feed >= self._timeout:
            return [self._take()]
        return []

    def flush(self) -> list[Record]:
        """Emit whatever is pending (end of stream, file closed, shutdown)."""
        if self._first is not None:
            return [self._take()]
        return []

    # -- internals ----------------------------------------------------------------------------

    def _feed_after(self, lines: Sequence[LineLike]) -> list[Record]:
        out: list[Record] = []
        emit = out.append
        new = _tuple_new
        match = self._match
        negate = self._negate
        flush_match = self._flush_match
        fast_chars = self._fast_chars
        for line in lines:
            text = line.text
            if flush_match is not None and flush_match(text) is not None:
                if self._first is None:
                    self._start(line)
                else:
                    self._add(line)
                emit(self._take())
                continue
            # Continuation: "pattern matched" differs from negate.
            if (match(text) is None) is negate and self._first is not None:
                self._add(line)
                continue
            first = self._first
            if first is not None:
                if self._parts is None:
                    emit(new(Record, (first.text, first.start, first.end, 1, False, first)))
                else:
                    emit(self._take())
            if len(text) <= fast_chars:
                self._first = line
                self._parts = None
                self._nlines = 1
            else:
                self._first = None
                self._start(line)
        return out

    def _feed_before(self, lines: Sequence[LineLike]) -> list[Record]:
        out: list[Record] = []
        emit = out.append
        new = _tuple_new
        match = self._match
        negate = self._negate
        flush_match = self._flush_match
        fast_chars = self._fast_chars
        for line in lines:
            text = line.text
            # A line "continues into the next" when "pattern matched" differs from negate.
            closes = (match(text) is None) is not negate
            if flush_match is not None and flush_match(text) is not None:
                closes = True
            if self._first is None:
                if closes and len(text) <= fast_chars:
                    emit(new(Record, (text, line.start, line.end, 1, False, line)))
                    continue
                self._start(line)
            else:
                self._add(line)
            if closes:
                emit(self._take())
        return out

    def _feed_count(self, lines: Sequence[LineLike]) -> list[Record]:
        out: list[Record] = []
        count = self._count
        for line in lines:
            if self._first is None:
                self._start(line)
            else:
                self._add(line)
            if self._nlines >= count:
                out.append(self._take())
        return out

    def _feed_while(self, lines: Sequence[LineLike]) -> list[Record]:
        out: list[Record] = []
        match = self._match
        negate = self._negate
        for line in lines:
            if (match(line.text) is None) is negate:
                # The line belongs to a run: it starts one or continues the pending one.
                if self._first is None:
                    self._start(line)
                else:
                    self._add(line)
                continue
            if self._first is not None:
                out.append(self._take())
            self._start(line)
            out.append(self._take())
        return out

    def _start(self, line: LineLike) -> None:
        """Make ``line`` the first line of the pending record (any size)."""
        text = line.text
        self._first = line
        self._nlines = 1
        self._end = line.end
        if len(text) <= self._fast_chars:
            self._parts = None
            self._truncated = False
            return
        size = utf8_len(text)
        if size <= self._max_bytes:
            self._parts = [text]
            self._nbytes = size
            self._truncated = False
        else:
            self._parts = [cut_utf8(text, self._max_bytes)]
            self._nbytes = self._max_bytes
            self._truncated = True

    def _add(self, line: LineLike) -> None:
        """Append ``line`` to the pending record, applying max_lines / max_bytes."""
        first = self._first
        assert first is not None
        parts = self._parts
        if parts is None:
            text0 = first.text
            parts = self._parts = [text0]
            self._nbytes = utf8_len(text0)
            self._truncated = False
        self._end = line.end
        self._nlines += 1
        if self._nlines > self._max_lines:
            self._truncated = True
            return
        room = self._max_bytes - self._nbytes - 1  # 1 for the "\n" separator
        if room < 0:
            self._truncated = True
            return
        text = line.text
        size = len(text) if text.isascii() else utf8_len(text)
        if size <= room:
            parts.append(text)
            self._nbytes += size + 1
        else:
            parts.append(cut_utf8(text, room))
            self._nbytes = self._max_bytes
            self._truncated = True

    def _take(self) -> Record:
        """Return the pending record and reset."""
        first = self._first
        assert first is not None
        parts = self._parts
        if parts is None:
            rec = Record(first.text, first.start, first.end, 1, False, first)
        else:
            text = parts[0] if len(parts) == 1 else "\n".join(parts)
            rec = Record(text, first.start, self._end, self._nlines, self._truncated, first)
        self._first = None
        self._parts = None
        self._truncated = False
        return rec


class PassthroughJoiner:
    """No multiline: every line is a record. Same interface as ``MultilineJoiner``."""

    __slots__ = ("_fed_end",)

    def __init__(self) -> None:
        self._fed_end: int | None = None

    @property
    def pending(self) -> bool:
        return False

    @property
    def pending_start_offset(self) -> int | None:
        return None

    @property
    def resume_offset(self) -> int | None:
        return self._fed_end

    @property
    def idle_deadline(self) -> float | None:
        return None

    def feed(self, lines: Sequence[LineLike], now: float) -> list[Record]:
        if not lines:
            return []
        self._fed_end = lines[-1].end
        new = _tuple_new
        return [new(Record, (ln.text, ln.start, ln.end, 1, False, ln)) for ln in lines]

    def flush_idle(self, now: float) -> list[Record]:
        return []

    def flush(self) -> list[Record]:
        return []


# -- presets ----------------------------------------------------------------------------------

#: Ready multiline settings by name. Each value holds MultilineJoiner keyword arguments.
#:
#: The line just before a trace is a choice each preset makes on purpose:
#:
#: * joined (``python_traceback``, ``java_stacktrace``): there the trace is printed by a logging
#:   call (``logger.exception``, ``log.error("...", e)``) right under its own log line, which
#:   carries the time, level, logger and message of the same event. One record keeps them
#:   together, so the application parser gives it a timestamp and the trace as
#:   ``stack_trace``. (Fluent Bit and detect-exceptions start a new record at the trace
#:   instead; here that would leave a trace with no time or level.) The cost: an uncaught
#:   exception the interpreter prints to stderr joins whatever line came before it.
#: * kept apart (``go_panic``, ``ruby_backtrace``): there the runtime itself writes the trace
#:   (``panic:``, ``fatal error:``, a SIGQUIT dump; MRI's uncaught-exception report, Rails'
#:   ``Error (...):`` block) after unrelated lines, and the trace's first line holds the error
#:   itself. So the trace starts its own record, as Fluent Bit's and detect-exceptions' do.
PRESETS: dict[str, dict[str, Any]] = {
    # A Python log line, then "Traceback (most recent call last):", indented frames and source
    # lines, the unindented "XError: message" line, and the chained-exception banners (with
    # their blank separator lines) all join the log line before them.
    "python_traceback": {
        "pattern": (
            r"^\s|^$|^Traceback \(most recent call last\):"
            r"|^[\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Iteration|Group)(?::|$)"
            r"|^During handling of the above exception|^The above exception was"
        ),
        "negate": False,
        "match": "after",
    },
    # Java: "\tat ..." frames, "\t... 12 more" / "... 12 common frames omitted", "Caused by:"
    # (also indented, inside a "Suppressed:" block), "Suppressed:", the "nested exception is:"
    # line of older APIs (RMI, JavaMail) with the exception under it, and the
    # "pkg.SomeException: message" line that loggers (logback, log4j) print right under the
    # log line: all in the record of the log line.
    "java_stacktrace": {
        "pattern": (
            r"^\s+at |^\s*\.\.\. \d+ (?:more|common frames omitted)|^\s*Caused by:|^\s+Suppressed:|^\t"
            r"|^\s*nested exception is"
            r"|^(?:[a-zA-Z_$][\w$]*\.)+[\w$]*(?:Exception|Error|Throwable)(?::|$)"
        ),
        "negate": False,
        "match": "after",
    },
    # Go: "panic: ...", "fatal error: ..." and "SIGQUIT: quit" (a goroutine dump) start a record;
    # "[signal ...]", "PC=...", blank lines, "goroutine N [state]:" headers, function lines
    # ("main.main()", "panic({0x4b3a40?, ...})"), indented file:line lines and nested
    # "\tpanic: ..." lines, "created by ...", "...additional frames elided...", the register
    # dump ("rax    0x0") and "exit status 2" continue it.
    "go_panic": {
        "pattern": (
            r"^\s|^$|^goroutine \d+ |^\[signal |^PC=0x|^created by |^[^\s(]+\(.*\)$"
            r"|^\.\.\.additional frames elided\.\.\.$|^[a-z0-9]{2,6} +0x[0-9a-f]+$|^exit status \d+$"
        ),
        "negate": False,
        "match": "after",
    },
    # Ruby: MRI's "file.rb:12:in `meth': message (Class)" report starts a record and its
    # "\tfrom file.rb:5:in `caller'" frames, blank lines and indented lines (error_highlight's
    # source excerpt) continue it. A Rails "SomeError (message):" block starts a record; its
    # indented source excerpt and its unindented frames ("app/x.rb:5:in `show'",
    # "app/views/x.html.erb:1") continue it. Unindented frames under a Logger line
    # ("E, [...] ERROR -- : message (Class)") join that line. Ruby >= 3.1 prints an exception's
    # cause after its frames with a head line of its own: that head starts a new record (it
    # cannot be told from a new report by the line alone).
    "ruby_backtrace": {
        "pattern": r"^\s|^$|^[^\s:]+:\d+:in [`'\u2018].*['\u2019]$|^[^\s:]+\.\w+:\d+$",
        "negate": False,
        "match": "after",
    },
    # A record starts with an ISO 8601 date-time; everything else continues the previous one.
    "iso8601_start": {
        "pattern": r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}",
        "negate": True,
        "match": "after",
    },
    # nginx error log: a record starts with nginx's "2024/01/02 03:04:05 [" prefix; other lines
    # (PHP-FPM output relayed by FastCGI keeps its newlines) continue it.
    "nginx_error": {
        "pattern": r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[",
        "negate": True,
        "match": "after",
    },
}


def _never(text: str) -> None:
    """The match function of a joiner with no pattern (``count`` mode)."""
    return None


def joiner_from_preset(name: str, **overrides: Any) -> MultilineJoiner:
    """A ``MultilineJoiner`` from ``PRESETS[name]``; keyword overrides win (e.g. max_lines)."""
    try:
        settings = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown multiline preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None
    return MultilineJoiner(**{**settings, **overrides})
