"""Fuzzing the parsers: random and adversarial input never raises, and work per line stays bounded.

Covered: every built-in format through the dispatcher (each `log_type`), JSON decoding, Docker
and CRI decoding (and the demultiplexer), the multiline joiner (every preset), and every grok
pattern the built-in library exposes (`builtin_pattern_names()`: new patterns are covered
without touching this file).

No timed assertions. Hypothesis runs with `deadline=None` on bounded input sizes; the
catastrophic-backtracking check feeds 64 KiB hostile lines to every pattern and format under
one overall work budget per test (`work_budget`): linear matching of the whole library takes
seconds, while one exponential or quadratic pattern on 64 KiB takes hours, so the budget is
generous (it tolerates a loaded CI machine) and still cannot be met by a backtracking pattern.
When the budget runs out, the failure names the pattern and the input being matched, instead
of a bare timeout.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.dispatch import LOG_TYPES, EventParser
from parsers.formats.container import ContainerStreamDemux
from parsers.formats.cri import CriDecoder, detect_container_format, parse_cri
from parsers.formats.docker import DockerDecoder, decode_docker
from parsers.formats.json import JsonDecoder
from parsers.grok import compile_grok
from parsers.multiline import PRESETS, Line, joiner_from_preset
from parsers.patterns import builtin_pattern_names

from .pattern_samples import SAMPLES

HOSTILE_SIZE = 64 * 1024
# One overall budget per test (see the module docstring): minutes, for work that takes seconds.
LIBRARY_BUDGET_S = 300.0
FORMATS_BUDGET_S = 120.0
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class WorkBudgetExceeded(Exception):
    pass


@contextlib.contextmanager
def work_budget(seconds: float, doing: list[str]) -> Iterator[None]:
    """Fail (naming `doing[0]`, what was running) if the block is not done within `seconds` overall."""

    def expire(signum: int, frame: Any) -> None:
        raise WorkBudgetExceeded(f"still busy after the whole test's budget of {seconds:.0f}s: {doing[0]}")

    # pytest-timeout may hold the interval timer already: borrow it, then give back what is left.
    previous = signal.signal(signal.SIGALRM, expire)
    started = time.monotonic()
    outer, _ = signal.getitimer(signal.ITIMER_REAL)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, outer) if outer else seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 0.001) if outer else 0)
        signal.signal(signal.SIGALRM, previous)


def fill(unit: str) -> str:
    return (unit * (HOSTILE_SIZE // len(unit) + 1))[:HOSTILE_SIZE]


# Long runs of what almost matches something: token characters, separators, quotes and escapes,
# digits and dots (IPs, numbers), colons (IPv6, times), brackets, JSON and key=value shapes.
GENERIC = [
    fill(u) for u in ("a", "1", "1.", " ", "\t", '"\\', "a.", "a-", "a:", "[", "]", "/", "%{", "::", "a@", "a b ",
                      "{", '{"a":', "[[", "a=", 'a="', "\\", "-", "1:", "Oct 11 ", "at a.b(", "\u00e9", "\x00")
]  # fmt: skip


def near_misses(sample: str) -> list[str]:
    """Repetitions and prefixes of a real match with its end cut off."""
    if len(sample) < 2:
        return []
    cut = sample[:-1]
    return [fill(cut), fill(cut + " "), fill(sample[: len(sample) // 2]), cut + fill("a"), cut + fill(" "),
            fill(sample.replace(" ", "  ")[:-1]), fill(sample.replace('"', ""))]  # fmt: skip


def hostile_lines(name: str | None = None) -> list[str]:
    lines = list(GENERIC)
    if name is not None and name in SAMPLES:
        lines += near_misses(SAMPLES[name][0])
    return lines


class TestNoCatastrophicBacktracking:
    def test_every_library_pattern_on_64k_hostile_lines(self) -> None:
        names = builtin_pattern_names()
        assert len(names) >= 50  # the library itself, not an empty list
        doing = ["compiling"]
        with work_budget(LIBRARY_BUDGET_S, doing):
            for name in names:
                grok = compile_grok(f"%{{{name}}}")
                for text in hostile_lines(name):
                    doing[0] = f"%{{{name}}} on {text[:24]!r}... ({len(text)} chars)"
                    grok.match(text)  # never raises; the result does not matter here

    def test_every_format_on_64k_hostile_lines(self) -> None:
        samples = [sample for sample, _ in SAMPLES.values()]
        lines = GENERIC + [m for s in samples if len(s) > 20 for m in near_misses(s)[:3]]
        doing = ["building"]
        with work_budget(FORMATS_BUDGET_S, doing):
            for log_type in LOG_TYPES:
                parser = EventParser(log_type)
                for text in lines:
                    doing[0] = f"log_type {log_type} on {text[:24]!r}... ({len(text)} chars)"
                    out = parser({"message": text})
                    assert isinstance(out, dict)
            for name in PRESETS:
                joiner = joiner_from_preset(name)
                for i, text in enumerate(lines):
                    doing[0] = f"multiline preset {name} on {text[:24]!r}..."
                    joiner.feed([Line(text, i * HOSTILE_SIZE, (i + 1) * HOSTILE_SIZE)], now=float(i))
                joiner.flush()


# -- random and adversarial input: nothing escapes ----------------------------------------

raw_bytes = st.binary(max_size=2048)
text_lines = st.one_of(
    st.text(max_size=2048),
    raw_bytes.map(lambda b: b.decode("utf-8", "replace")),
    st.text(alphabet=st.sampled_from(list('{}[]":,\\ 0123456789.-eE+truefalsn\t\n')), max_size=512),
    st.sampled_from([s for s, _ in SAMPLES.values()]).flatmap(
        lambda s: st.integers(0, len(s)).map(lambda n: s[:n] + s[n + 1 :])  # a real line with one char cut
    ),
)


class TestFormats:
    @FUZZ
    @given(text=text_lines, log_type=st.sampled_from(LOG_TYPES))
    def test_dispatcher_never_raises(self, text: str, log_type: str) -> None:
        out = EventParser(log_type)({"message": text})
        assert isinstance(out, dict)

    @FUZZ
    @given(message=st.one_of(st.none(), st.integers(), st.binary(max_size=64), st.lists(st.integers(), max_size=3)),
           log_type=st.sampled_from(LOG_TYPES))  # fmt: skip
    def test_a_message_that_is_not_text_never_raises(self, message: Any, log_type: str) -> None:
        assert isinstance(EventParser(log_type)({"message": message}), dict)

    @FUZZ
    @given(text=text_lines)
    def test_json_decoder_returns_an_object_or_none(self, text: str) -> None:
        decoded = JsonDecoder(max_bytes=1024, max_depth=8).decode(text)
        assert decoded is None or isinstance(decoded, dict)

    @settings(max_examples=50, deadline=None)
    @given(depth=st.integers(1, 5000), shape=st.sampled_from(['{"a":', "[", '{"a":[']))
    def test_nesting_bombs_are_refused_not_recursed(self, depth: int, shape: str) -> None:
        closing = "".join({"{": "}", "[": "]"}[c] for c in shape if c in "{[")[::-1]
        decoded = JsonDecoder(max_depth=64).decode(shape * depth + "1" + closing * depth)
        assert decoded is None or isinstance(decoded, dict)
        if depth * len(closing) > 200:
            assert decoded is None


container_lines = st.one_of(
    raw_bytes,
    st.builds(
        lambda log, stream, time: f'{{"log":{log},"stream":{stream},"time":{time}}}'.encode(),
        st.sampled_from(['"x\\n"', '"x"', "1", "null", '"\\ud800"', '"' + "a" * 300 + '"', "{}"]),
        st.sampled_from(['"stdout"', '"stderr"', '"other"', "1", "null"]),
        st.sampled_from(['"2024-01-02T03:04:05.123456789Z"', '"2024-13-45T99:99:99Z"', '"x"', "0", "null"]),
    ),
    st.builds(
        lambda ts, stream, tag, text: f"{ts} {stream} {tag} {text}".encode(),
        st.sampled_from(["2024-01-02T03:04:05.123456789Z", "2024-01-02T03:04:05+01:00", "bad", ""]),
        st.sampled_from(["stdout", "stderr", "x", ""]),
        st.sampled_from(["F", "P", "F:x", "", "PP"]),
        st.text(max_size=100),
    ),
)


class TestContainers:
    @FUZZ
    @given(raw=container_lines)
    def test_single_line_decoders_never_raise(self, raw: bytes) -> None:
        decode_docker(raw)
        decode_docker(raw.decode("utf-8", "replace"))
        parse_cri(raw.decode("utf-8", "replace"))
        assert detect_container_format(raw) in (None, "docker", "cri")

    @FUZZ
    @given(raws=st.lists(container_lines, max_size=20), fmt=st.sampled_from(["docker", "cri", "demux"]))
    def test_stream_decoders_never_raise_and_stay_within_the_input(self, raws: list[bytes], fmt: str) -> None:
        # (Records of different streams may come out of input order: partial lines wait per stream.)
        decoder: Any = {
            "docker": lambda: DockerDecoder(max_bytes=256),
            "cri": lambda: CriDecoder(max_bytes=256),
            "demux": lambda: ContainerStreamDemux(DockerDecoder(max_bytes=256),
                                                  lambda stream: joiner_from_preset("java_stacktrace")),
        }[fmt]()  # fmt: skip
        lines, pos = [], 0
        for raw in raws:
            text = raw.decode("utf-8", "replace").replace("\n", " ")
            lines.append(Line(text, pos, pos + len(raw) + 1))
            pos += len(raw) + 1
        records = decoder.feed(lines, now=0.0) + decoder.flush_idle(now=1e9) + decoder.flush()
        assert all(0 < r.end <= pos and 0 <= r.start < r.end for r in records)


class TestMultiline:
    @FUZZ
    @given(texts=st.lists(text_lines, max_size=30), preset=st.sampled_from(sorted(PRESETS)),
           max_lines=st.integers(1, 50), max_bytes=st.integers(1, 4096))  # fmt: skip
    def test_joiner_never_raises_and_never_reorders(
        self, texts: list[str], preset: str, max_lines: int, max_bytes: int
    ) -> None:
        joiner = joiner_from_preset(preset, max_lines=max_lines, max_bytes=max_bytes)
        lines, pos = [], 0
        for text in texts:
            flat = text.replace("\n", " ")
            lines.append(Line(flat, pos, pos + len(flat.encode()) + 1))
            pos = lines[-1].end
        records = joiner.feed(lines, now=0.0) + joiner.flush()
        assert [r.start for r in records] == sorted(r.start for r in records)
        assert sum(r.lines for r in records) == len(lines)


class TestGrok:
    @FUZZ
    @given(name=st.sampled_from(builtin_pattern_names()), text=text_lines)
    def test_library_patterns_never_raise(self, name: str, text: str) -> None:
        result = compile_grok(f"%{{{name}:value}}").match(text)
        assert result is None or isinstance(result, dict)

    @settings(max_examples=200, deadline=None)
    @given(expression=st.text(alphabet=st.sampled_from(list("%{}:()[]?<>P*+.\\aZ_09|^$ ")), max_size=40),
           text=st.text(max_size=200))  # fmt: skip
    def test_hostile_expressions_fail_at_build_or_match_quietly(self, expression: str, text: str) -> None:
        from parsers.errors import GrokError

        try:
            grok = compile_grok(expression)
        except GrokError:
            return
        result = grok.match(text)
        assert result is None or isinstance(result, dict)
