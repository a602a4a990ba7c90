"""sinks/encoding.py: cutting an event's message so its JSON fits a size limit."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sinks.encoding import fit_message


def dumps(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS)


class TestFitMessage:
    @pytest.mark.parametrize("message", [
        pytest.param("a" * 5000, id="ascii"),
        pytest.param("日本語のログ" * 800, id="multi-byte"),
        pytest.param("line\n\t\"quoted\"\x01" * 400, id="json-escapes"),
        pytest.param("😀" * 1500, id="four-byte"),
    ])
    @pytest.mark.parametrize("tags", [None, ["_grokparsefailure"], "single"])
    def test_cut_to_fit_and_tagged_without_changing_the_event(self, message: str, tags: Any) -> None:
        event: dict[str, Any] = {"@timestamp": "2024-01-02T03:04:05.000Z", "host": "h", "message": message}
        if tags is not None:
            event["tags"] = tags
        before = dumps(event)
        fitted = fit_message(event, before, 3000)
        assert fitted is not None
        cut, encoded = fitted
        assert len(encoded) <= 3000 and encoded == dumps(cut)
        assert len(encoded) > 3000 - 60  # cut to the limit, not far below it (JSON escapes counted)
        assert message.startswith(cut["message"]) and len(cut["message"]) < len(message)
        assert cut["tags"][-1] == "_truncated" and cut["tags"].count("_truncated") == 1
        assert {k: v for k, v in cut.items() if k not in ("message", "tags")} == \
            {k: v for k, v in event.items() if k not in ("message", "tags")}
        assert dumps(event) == before  # the caller's event is untouched

    def test_already_tagged_is_not_tagged_twice(self) -> None:
        event = {"message": "x" * 2000, "tags": ["_truncated"]}
        fitted = fit_message(event, dumps(event), 1000)
        assert fitted is not None and fitted[0]["tags"] == ["_truncated"]

    @pytest.mark.parametrize("event", [
        pytest.param({"message": "short", "blob": "y" * 5000}, id="other-fields-too-large"),
        pytest.param({"blob": "y" * 5000}, id="no-message"),
        pytest.param({"message": ["not", "text"] * 1000}, id="message-not-text"),
    ])
    def test_none_when_the_message_cannot_absorb_the_excess(self, event: dict[str, Any]) -> None:
        assert fit_message(event, dumps(event), 1000) is None
