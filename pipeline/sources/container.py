"""`container` source: the file source over container log files (Docker json-file and CRI).

It is the file source (`file.py`: the tracker and the per-file readers) with
other framers; everything about files (identity, rotation, checkpoints,
fairness) is shared. This module only frames lines differently:

- the format is detected per file from its first line (`detect_container_format`):
  Docker json-file (`{"log": ..., "stream": ..., "time": ...}`) or CRI
  (`<time> <stream> <P|F> <message>`); that guess is the fast path, and a line that does
  not fit it but fits the other format is decoded as the other (`decoder_for`);
- lines are decoded by `parsers.formats.docker.DockerDecoder` /
  `parsers.formats.cri.CriDecoder`, which reassemble Docker's 16 KiB partial
  entries and CRI `P` fragments per stream;
- multiline (if configured) runs after decoding, one joiner per stream
  (stdout and stderr are joined separately:
  `parsers.formats.container.ContainerStreamDemux`);
- events keep `stream`, take `@timestamp` from the container runtime's time,
  and carry `kubernetes: {namespace, pod, pod_uid?, container, container_id?, node}`
  from the path (`/var/log/containers/<pod>_<ns>_<container>-<id>.log` and the
  `/var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log` it links to; `node` from
  `NODE_NAME`, else the host name);
- on a Docker host without Kubernetes (`/var/lib/docker/containers/<id>/<id>-json.log`),
  events carry `container: {id, name, image: {name}, labels}` instead, from the path and the
  container's `config.v2.json` (`docker_meta.py`).

Receipt ranges follow the decoders' `resume_offset` (the smallest start of
anything still held), so with interleaved streams a restart may repeat a record
but never skips one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from parsers.formats.container import ContainerDecoder, ContainerRecord, ContainerStreamDemux
from parsers.formats.cri import decoder_for, detect_container_format, parse_cri
from parsers.formats.docker import decode_docker
from parsers.kubernetes import metadata_from_path
from parsers.multiline import Joiner, Line
from parsers.types import INVALID_UTF8, TRUNCATED
from pipeline.context import BuildContext
from pipeline.event import Event
from pipeline.registry import register
from pipeline.sources.docker_meta import DockerContainer, DockerMetadata, event_fields
from pipeline.sources.file import FileSource
from pipeline.sources.file_config import FileSourceConfig
from pipeline.sources.framing import FeedResult, Framer, Stamp
from pipeline.sources.lines import RawLine
from pipeline.units import ByteSize, Duration

KUBERNETES_KEYS = ("namespace", "pod", "pod_uid", "container", "container_id")


class ContainerSourceConfig(FileSourceConfig):
    type: Literal["container"]  # type: ignore[assignment]
    include: list[str] = Field(
        default_factory=lambda: ["/var/log/containers/*.log"],
        min_length=1,
        description=(
            "Globs of container log files (symlinks are followed). Kubernetes nodes: `/var/log/containers/*.log` "
            "(events get `kubernetes` metadata from the path). A Docker host without Kubernetes: "
            "`/var/lib/docker/containers/*/*-json.log` (events get `container.id`, `.name`, `.image.name` and "
            "`.labels` from the path and the container's `config.v2.json`; see docs/sources.md)."
        ),
        examples=[["/var/log/containers/*.log"], ["/var/lib/docker/containers/*/*-json.log"]],
    )
    max_message_bytes: ByteSize = Field(
        default=1024 * 1024,
        gt=0,
        description="A message reassembled from partial entries is cut to this and tagged `_truncated`.",
        examples=["1MiB"],
    )
    partial_timeout: Duration = Field(
        default=5.0,
        ge=0,
        description="Emit fragments still waiting for their final entry after this long without a new line.",
        examples=["5s"],
    )
    format: Literal["auto", "docker", "cri"] = Field(
        default="auto",
        description=(
            "Container log format; `auto` detects it per file from its first line. Either way, a line that does "
            "not fit the file's format but fits the other is decoded as the other (files that mix them)."
        ),
    )


class _StreamFlags:
    """Line tags (invalid UTF-8, truncated) by (start offset, stream), carried onto records."""

    __slots__ = ("_flags",)

    def __init__(self) -> None:
        self._flags: list[tuple[int, str, str]] = []

    def __bool__(self) -> bool:
        return bool(self._flags)

    def add(self, start: int, stream: str, tag: str) -> None:
        self._flags.append((start, stream, tag))

    def tags_for(self, rec: ContainerRecord) -> list[str] | None:
        tags: list[str] | None = None
        for start, stream, tag in self._flags:
            if rec.start <= start < rec.end and (stream == rec.stream or start == rec.start):
                if tags is None:
                    tags = [tag]
                elif tag not in tags:
                    tags.append(tag)
        return tags

    def drop_before(self, offset: int | None) -> None:
        if offset is not None and self._flags:
            self._flags = [f for f in self._flags if f[0] >= offset]


def _stream_of(text: str, fmt: str) -> str:
    """The stream of a flagged line, in either format (the file's first)."""
    first, second = (decode_docker, parse_cri) if fmt == "docker" else (parse_cri, decode_docker)
    entry = first(text) or second(text)
    return entry.stream if entry is not None else ""


class ContainerFramer:
    """Raw lines -> container decoder (+ per-stream multiline) -> events."""

    __slots__ = ("_demux", "_docker", "_flags", "_fmt", "_joiners", "_kube", "_max_bytes", "_timeout", "stamp")

    def __init__(
        self,
        stamp: Stamp,
        kube: dict[str, Any] | None,
        joiners: Any,
        fmt: str,
        max_bytes: int,
        timeout: float,
        docker: DockerContainer | None = None,
    ) -> None:
        self.stamp = stamp
        self._kube = kube
        self._docker = docker
        self._joiners = joiners  # Callable[[str], Joiner] | None
        self._fmt = fmt
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._demux: ContainerStreamDemux | None = None
        self._flags = _StreamFlags()

    @property
    def format(self) -> str:
        return self._fmt

    @property
    def pending(self) -> bool:
        return self._demux is not None and self._demux.pending

    @property
    def idle_deadline(self) -> float | None:
        return self._demux.idle_deadline if self._demux is not None else None

    def _start(self, lines: list[Line]) -> ContainerStreamDemux:
        fmt = self._fmt
        if fmt == "auto":
            for line in lines:
                found = detect_container_format(line.text)
                if found is not None:
                    fmt = found
                    break
            else:
                fmt = "docker" if lines and lines[0].text.startswith("{") else "cri"
            self._fmt = fmt
        decoder: ContainerDecoder = decoder_for(fmt, self._max_bytes, self._timeout)
        self._demux = ContainerStreamDemux(decoder, self._joiners)
        return self._demux

    def feed(self, lines: list[RawLine], now: float, ts: str, crlf: bool) -> FeedResult:
        out: list[Line] = []
        append = out.append
        odd: list[tuple[int, int, str]] | None = None  # (index, start, tag) of flagged lines
        for raw, start, end, truncated in lines:
            if crlf and raw[-1:] == b"\r":
                raw = raw[:-1]
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                text = raw.decode("utf-8", "replace")
                odd = odd or []
                odd.append((len(out), start, INVALID_UTF8))
            if truncated:
                odd = odd or []
                odd.append((len(out), start, TRUNCATED))
            append(Line(text, start, end))
        demux = self._demux or self._start(out)
        if odd:
            for index, start, tag in odd:
                self._flags.add(start, _stream_of(out[index].text, self._fmt), tag)
        return self._events(demux.feed(out, now), ts, now), demux.resume_offset

    def flush_idle(self, now: float, ts: str) -> FeedResult:
        if self._demux is None:
            return [], None
        return self._events(self._demux.flush_idle(now), ts, now), self._demux.resume_offset

    def flush(self, ts: str) -> FeedResult:
        if self._demux is None:
            return [], None
        return self._events(self._demux.flush(), ts, None), self._demux.resume_offset

    def _events(self, records: list[ContainerRecord], ts: str, now: float | None) -> list[Event]:
        stamp = self.stamp
        host = stamp.host
        path = stamp.path
        log_type = stamp.log_type
        kube = self._kube
        flags = self._flags
        prefix = stamp.id_prefix
        # Docker host: the container's metadata, checked for changes at most once per call.
        docker = self._docker.fields(now) if self._docker is not None and records else None
        events: list[Event] = []
        append = events.append
        for rec in records:
            start = rec.start
            event: Event = {"@timestamp": rec.time or ts, "message": rec.text, "host": host, "stream": rec.stream}
            if log_type:
                event["log_type"] = log_type
            event["source"] = {"path": path, "offset": start}
            event["event_id"] = f"{prefix}{start:012x}"
            if kube is not None:
                event["kubernetes"] = kube.copy()
            elif docker is not None:
                event["container"] = event_fields(docker)
            tags = list(rec.tags) if rec.tags else None
            if flags:
                more = flags.tags_for(rec)
                if more:
                    tags = tags or []
                    tags.extend(t for t in more if t not in tags)
            if tags:
                event["tags"] = tags
            append(event)
        if flags and self._demux is not None:
            flags.drop_before(self._demux.resume_offset)
        return events


def kubernetes_metadata(path: str, node: str) -> dict[str, Any] | None:
    """Kubernetes fields from a log path and, for a symlink, from its target's path."""
    meta = metadata_from_path(path)
    real = os.path.realpath(path)
    if real != path:
        target = metadata_from_path(real)
        if target is not None:
            meta = {**target, **meta} if meta is not None else target
    if meta is None:
        return None
    out = {k: meta[k] for k in KUBERNETES_KEYS if meta.get(k) is not None}
    out["node"] = node
    return out


class ContainerFramers:
    """The `container` source's framers: one `ContainerFramer` per file, with its Kubernetes metadata."""

    def __init__(self, config: ContainerSourceConfig, node: str | None = None) -> None:
        self.config = config
        self.node = node
        self.docker = DockerMetadata()

    def __call__(self, host: str, key: str, path: str) -> Framer:
        cfg = self.config
        node = self.node or os.environ.get("NODE_NAME") or host
        multiline = cfg.multiline
        joiners = None
        if multiline is not None:

            def joiners(stream: str) -> Joiner:
                return multiline.build()

        kube = kubernetes_metadata(path, node)
        return ContainerFramer(
            Stamp(host, key, path, cfg.log_type),
            kube,
            joiners,
            cfg.format,
            cfg.max_message_bytes,
            cfg.partial_timeout,
            # Kubernetes paths keep their `kubernetes` metadata only (also on Docker-based nodes).
            self.docker.for_path(path) if kube is None else None,
        )


class ContainerSource(FileSource):
    """The file source (tracker + readers) with container framers."""

    def __init__(
        self, name: str, config: ContainerSourceConfig, data_dir: Path, host: str, node: str | None = None
    ) -> None:
        super().__init__(name, config, data_dir, host, ContainerFramers(config, node))


@register("source", "container", ContainerSourceConfig)
def build(name: str, config: ContainerSourceConfig, ctx: BuildContext) -> ContainerSource:
    return ContainerSource(name, config, ctx.data_dir, ctx.host)
