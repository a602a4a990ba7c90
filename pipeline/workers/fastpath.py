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
"""

from __future__ import annotations

from collections.abc import Callable

from parsers.formats.access import ACCESS_LINE_IN_BLOCK, ACCESS_LINE_IN_PLAIN_BLOCK, AccessLogFormat
from pipeline.event import Event
from pipeline.sources.framing import Stamp

# Frame and parse one line the general way: (line text, start offset) -> its event.
SlowLine = Callable[[str, int], Event]


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
