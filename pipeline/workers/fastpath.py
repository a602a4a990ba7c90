"""The batch-native hot path of access logs: a block of lines framed and parsed in one loop.

The general path frames each line into an event (`PlainFramer`), then the parse
transform dispatches each event to the access format, which matches the
message again. For the commonest job (an access log, parsed by the built-in
format with nothing added) a worker instead scans the block of lines itself
with the block form of the same regex (`ACCESS_LINE_IN_BLOCK`): one match per
line straight from the block's text, the event built once with its source
fields, and the format's own `fill` sets the parsed fields. The events are
exactly those of the general path (a test compares them, line by line); a line
the fast regex does not take (a proxy list, a vhost, not an access line) goes
through the general path, in its place.

Used when the block is ASCII (so character and byte offsets agree) without
carriage returns, and the source adds no static fields.

When the parse is the whole chain (or a geoip step follows it: see
pipeline/workers/geostep.py), `access_block_json` goes one step further for the commonest line shape
(`ACCESS_COMMON_LINE_IN_PLAIN_BLOCK`): it writes the line's JSON straight from
the match, without building the event's dict, in a block where no value needs
escaping but the message's quotes (no backslash, no control character). Any
other line is built and encoded as above. The bytes are exactly what encoding
the events of `access_block` gives (a test compares them); about a third less
work per line than the dict and its encoding.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from parsers.formats.access import (
    ACCESS_COMMON_LINE_IN_PLAIN_BLOCK,
    ACCESS_LINE_IN_BLOCK,
    ACCESS_LINE_IN_PLAIN_BLOCK,
    AccessLogFormat,
)
from pipeline.event import Event
from pipeline.sources.framing import Stamp

# Frame and parse one line the general way: (line text, start offset) -> its event.
SlowLine = Callable[[str, int], Event]
# A line outside the common shape, framed and parsed as a dict: the rest of the chain, then its JSON line.
FinishLine = Callable[[Event], bytes]
# What the rest of the chain adds to a common line's JSON after its parsed fields, from its client address.
AppendFields = Callable[[str], str]

#: Every key the JSON of a common line can have (the source's, the parsed ones, and "tags").
WRITTEN_KEYS = frozenset(
    {"@timestamp", "message", "host", "log_type", "source", "event_id", "client_ip", "method", "path", "query",
     "http_version", "status", "bytes", "referrer", "user_agent", "request_time", "tags"}
)  # fmt: skip

# Added to an offset below it, `hex(...)[3:]` is the offset in 12 hex digits: what the event id's
# f"{offset:012x}" writes there, in half the time (the 13th digit, a 1, is cut).
_HEX_PAD = 1 << 48

# Printable ASCII without the backslash, and newlines: what a block written from matches may hold
# (JSON escapes nothing else but quotes). `bytes.translate` deleting these is the fastest check.
_PLAIN_BYTES = bytes(range(0x20, 0x7F)).replace(b"\\", b"") + b"\n"


def access_block(
    block: bytes, base: int, stamp: Stamp, ts: str, fmt: AccessLogFormat, slow: SlowLine
) -> list[Event] | None:
    """The events of `block` (complete lines), or None when the fast path does not apply to it."""
    if b"\r" in block or not block.isascii():
        return None
    text = block.decode("ascii")
    match = (ACCESS_LINE_IN_PLAIN_BLOCK if "\\" not in text else ACCESS_LINE_IN_BLOCK).match
    fill = fmt.fill
    host = stamp.host
    path = stamp.path
    prefix = stamp.id_prefix
    declared = stamp.log_type
    events: list[Event] = []
    append = events.append
    pos = 0
    end = len(text)
    while pos < end:
        m = match(text, pos)
        if m is None:
            nl = text.find("\n", pos)
            nl = end if nl < 0 else nl
            append(slow(text[pos:nl], base + pos))
            pos = nl + 1
            continue
        stop = m.end()
        offset = base + pos
        if declared:
            event: Event = {
                "@timestamp": ts,
                "message": text[pos:stop],
                "host": host,
                "log_type": "access",  # the source's (the parser keeps it) or the parser's own
                "source": {"path": path, "offset": offset},
                "event_id": f"{prefix}{offset:012x}",
            }
        else:
            event = {
                "@timestamp": ts,
                "message": text[pos:stop],
                "host": host,
                "source": {"path": path, "offset": offset},
                "event_id": f"{prefix}{offset:012x}",
                "log_type": "access",  # set by the parser, after the source's keys
            }
        fill(event, m.groups())
        append(event)
        pos = stop + 1
    return events


def access_block_json(
    block: bytes,
    base: int,
    stamp: Stamp,
    ts: str,
    fmt: AccessLogFormat,
    slow: SlowLine,
    finish: FinishLine,
    append_fields: AppendFields | None = None,
) -> tuple[bytes, int] | None:
    """(JSON lines, how many) of `block`, or None when this path does not apply.

    Only the lines outside the common shape become dicts, handed to `finish` (which counts
    their tags: a line written from its match has none but what `append_fields` writes).
    """
    if block.translate(None, _PLAIN_BYTES):  # a byte to escape, a carriage return, non-ASCII
        return None
    if base + len(block) > _HEX_PAD:  # (offsets past 256 TiB have longer ids: the dict way)
        return None
    text = block.decode("ascii")
    try:  # as UTF-8 bytes held in a str (latin-1): joined with the ASCII lines, encoded back once
        host = orjson.dumps(stamp.host).decode("latin-1")
        path = orjson.dumps(stamp.path).decode("latin-1")
    except orjson.JSONEncodeError:  # (a path with undecodable bytes): the dict way handles it
        return None
    prefix = stamp.id_prefix
    if stamp.log_type:  # the keys in the order the events of `access_block` have them
        after_message = f'","host":{host},"log_type":"access","source":{{"path":{path},"offset":'
        after_id = '"'
    else:
        after_message = f'","host":{host},"source":{{"path":{path},"offset":'
        after_id = '","log_type":"access"'
    match = ACCESS_COMMON_LINE_IN_PLAIN_BLOCK.match
    parse_date = fmt.parse_date
    pad = _HEX_PAD
    dates: dict[str, str] = {}
    out: list[str] = []
    append = out.append
    n = 0
    pos = 0
    end = len(text)
    while pos < end:
        n += 1
        m = match(text, pos)
        if m is not None:
            client, when, method, url, query, version, status, nbytes, referrer, agent, took = m.groups()
            stop = m.end()
            message = text[pos:stop]
            iso = None
            if "\n" not in message:  # (else a value left open ran into the next line: the dict way)
                iso = dates.get(when)
                if iso is None and (iso := parse_date(when)) is not None:
                    dates[when] = iso
            if iso is not None:
                offset = base + pos
                message = message.replace('"', '\\"')
                # The optional fields, last first: request_time as the float prints (no trailing
                # zeros, at least one decimal), user_agent and referrer unless "-" or empty.
                end_fields = "}\n" if append_fields is None else append_fields(client) + "}\n"
                if took is None:
                    tail = end_fields
                else:
                    took = took.rstrip("0")
                    if took[-1] == ".":
                        took += "0"
                    tail = f',"request_time":{took}{end_fields}'
                if agent and agent != "-":
                    tail = f',"user_agent":"{agent}"{tail}'
                if referrer and referrer != "-":
                    tail = f',"referrer":"{referrer}"{tail}'
                if query:
                    url = f'{url}","query":"{query}'
                append(
                    f'{{"@timestamp":"{iso}","message":"{message}{after_message}{offset}}}'
                    f',"event_id":"{prefix}{hex(offset + pad)[3:]}{after_id},"client_ip":"{client}","method":"{method}"'
                    f',"path":"{url}","http_version":"{version}","status":{status},"bytes":{nbytes}{tail}'
                )
                pos = stop + 1
                continue
        nl = text.find("\n", pos)
        stop = end if nl < 0 else nl + 1
        events = access_block(block[pos:stop], base + pos, stamp, ts, fmt, slow)
        assert events is not None and len(events) == 1  # one ASCII line without carriage returns
        append(finish(events[0]).decode("latin-1"))
        pos = stop
    return "".join(out).encode("latin-1"), n
