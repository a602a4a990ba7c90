"""Config models of the `file` source (shared by the `container` source)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from parsers.multiline import PRESETS, MultilineJoiner, joiner_from_preset
from pipeline.config import Model, SourceConfig
from pipeline.sources.transcode import check_encoding
from pipeline.units import ByteSize, Duration

PresetName = Literal[
    "python_traceback", "java_stacktrace", "go_panic", "ruby_backtrace", "iso8601_start", "nginx_error"
]


class MultilineConfig(Model):
    """Join continuation lines into one record (Filebeat `type` / `pattern` / `negate` / `match`)."""

    type: Literal["pattern", "count", "while_pattern"] = Field(
        default="pattern",
        description="`pattern`: lines join the one before (or after) them by `pattern`, `negate` and "
        "`match`; `count`: every `count_lines` lines make one record; `while_pattern`: consecutive "
        "lines that match (with `negate`: that do not) make one record, any other line is a record alone.",
        examples=["pattern"],
    )
    preset: PresetName | None = Field(
        default=None,
        description="A ready setting (type `pattern`): python_traceback, java_stacktrace (log line and "
        "its trace in one record), go_panic, ruby_backtrace (the trace starts its own record), "
        "iso8601_start, nginx_error (a record starts with a date). Other keys given here override "
        "the preset's.",
        examples=["python_traceback"],
    )
    pattern: str | None = Field(
        default=None,
        description="Regex tested against each line (not with `preset`); found anywhere in the line, "
        "anchor with `^`. Grok references (`%{TIMESTAMP_ISO8601}`) are expanded, as in Logstash's codec.",
        examples=[r"^\d{4}-\d{2}-\d{2}", "^%{TIMESTAMP_ISO8601} "],
    )
    count_lines: int | None = Field(
        default=None, gt=0, description="Lines per record (type `count` only).", examples=[3]
    )
    negate: bool = Field(default=False, description="Invert the pattern: lines that do NOT match continue.")
    match: Literal["after", "before"] = Field(
        default="after",
        description="`after`: continuation lines join the line before them; `before`: the line after them.",
    )
    max_lines: int = Field(
        default=500, gt=0, description="Lines per record at most; more are dropped (the record is tagged `_truncated`)."
    )
    max_bytes: ByteSize = Field(
        default=10 * 1024 * 1024, gt=0, description="Bytes per record at most.", examples=["10MiB"]
    )
    timeout: Duration = Field(
        default=5.0, ge=0, description="Emit a held record after this long without a new line.", examples=["5s"]
    )
    flush_pattern: str | None = Field(default=None, description="A line matching this ends the record.")

    @model_validator(mode="after")
    def _check(self) -> MultilineConfig:
        if self.type == "count":
            if self.count_lines is None:
                raise ValueError("type `count` needs `count_lines`")
            if self.preset is not None or self.pattern is not None or self.flush_pattern is not None:
                raise ValueError("type `count` takes no `preset`, `pattern` or `flush_pattern`")
        elif self.count_lines is not None:
            raise ValueError("`count_lines` is only for type `count`")
        elif self.type == "while_pattern" and self.preset is not None:
            raise ValueError("presets are of type `pattern`; give type `while_pattern` a `pattern`")
        elif (self.preset is None) == (self.pattern is None):
            raise ValueError("set exactly one of `preset` or `pattern`")
        self.build()  # a bad regex is a config error (ValueError names the pattern)
        return self

    def build(self) -> MultilineJoiner:
        overrides = {
            k: getattr(self, k)
            for k in ("negate", "match", "max_lines", "max_bytes", "timeout", "flush_pattern")
            if k in self.model_fields_set
        }
        if self.preset is not None:
            return joiner_from_preset(self.preset, **overrides)
        return MultilineJoiner(
            self.pattern,
            self.negate,
            self.match,
            self.max_lines,
            self.max_bytes,
            self.timeout,
            self.flush_pattern,
            mode=self.type,
            count_lines=self.count_lines,
        )


assert set(PresetName.__args__) <= set(PRESETS)  # type: ignore[attr-defined]


class FileSourceConfig(SourceConfig):
    type: Literal["file"]
    include: list[str] = Field(
        min_length=1,
        description="Globs of files to read (`**` matches any depth; symlinks are followed).",
        examples=[["/var/log/app/*.log"]],
    )
    exclude: list[str] = Field(
        default_factory=list, description="Globs of paths to skip.", examples=[["/var/log/app/*.gz"]]
    )
    start_at: Literal["beginning", "end"] = Field(
        default="beginning",
        description="Where to start a file with no checkpoint found at startup "
        "(files appearing later are always read from the beginning).",
    )
    scan_interval: Duration = Field(
        default=10.0,
        gt=0,
        description="Rescan the globs this often (filesystem events make discovery prompt in between).",
        examples=["10s"],
    )
    watch: bool = Field(
        default=True, description="Use filesystem events (inotify via watchfiles) for prompt discovery and reading."
    )
    poll_interval: Duration = Field(
        default=0.25, gt=0, description="How often idle open files are checked for new data.", examples=["250ms"]
    )
    read_chunk_bytes: ByteSize = Field(
        default=256 * 1024, gt=0, description="Bytes read per file per turn.", examples=["256KiB"]
    )
    batch_max_lines: int = Field(
        default=1000,
        gt=0,
        description="Events per emitted batch at most. On the batch path (see the top-level `workers`), a batch is "
        "one read chunk instead (`read_chunk_bytes` of whole lines).",
    )
    batch_max_bytes: ByteSize = Field(
        default=1024 * 1024,
        gt=0,
        description="Raw bytes per emitted batch at most (a single longer line still makes one batch).",
        examples=["1MiB"],
    )
    max_line_bytes: ByteSize = Field(
        default=1024 * 1024,
        gt=0,
        description="Longer lines are cut to this and tagged `_truncated`; the rest is skipped, never buffered.",
        examples=["1MiB"],
    )
    encoding: str = Field(
        default="utf-8",
        description="Encoding of the files' bytes (a Python codec name): ASCII-compatible ones such as "
        "`gb18030` / `gbk`, `big5`, `shift_jis`, `euc-kr`, `latin-1`, `cp1252`, or `utf-16` (byte order "
        "from the BOM, little-endian without one), `utf-16le`, `utf-16be`. Lines are decoded whole and "
        "emitted as UTF-8; bytes invalid in the encoding become U+FFFD and the event is tagged "
        "`_invalid_utf8`. Docker json-file logs are always UTF-8 (Docker transcodes them); on the "
        "`container` source set this only for CRI files of containers writing another encoding. "
        "A UTF-16 or multi-byte encoded line may grow by half when re-encoded as UTF-8. "
        "Non-UTF-8 files are framed in the daemon process (no `workers` block path).",
        examples=["utf-8", "gb18030", "utf-16"],
    )
    ignore_older: Duration | None = Field(
        default=None, description="Skip files not modified for this long (unset: read all).", examples=["24h"]
    )
    close_inactive: Duration = Field(
        default=300.0,
        gt=0,
        description="Close a file without new data for this long; its unterminated last line is emitted then.",
        examples=["5m"],
    )
    max_open_files: int = Field(default=1024, gt=0, description="Files open at once; more wait their turn.")
    multiline: MultilineConfig | None = Field(
        default=None, description="Join multiline records (stack traces).", examples=[{"preset": "python_traceback"}]
    )
    fingerprint_bytes: ByteSize = Field(
        default=1024, gt=0, description="Leading bytes hashed into the file identity (with device and inode)."
    )
    checkpoint_interval: Duration = Field(
        default=0.2,
        gt=0,
        description="Write the checkpoint soon after batches settle, at most once per this interval "
        "(a write appends what changed to a journal; also written whole at shutdown). "
        "After a crash, what was in flight plus at most this much settled data is read again.",
        examples=["200ms", "1s"],
    )
    checkpoint_retention: Duration = Field(
        default=86400.0,
        gt=0,
        description="Forget checkpoint entries of files not seen for this long.",
        examples=["24h"],
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        return check_encoding(value)

    def max_event_bytes(self) -> int | None:
        """The longest message this source emits: a line, or a joined multiline record (for `validate`)."""
        if self.multiline is not None:
            return max(self.max_line_bytes, self.multiline.max_bytes)
        return self.max_line_bytes
