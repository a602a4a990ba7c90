"""Notifications as text for people: titles, the facts (value, threshold, window, count), samples.

Shared by the Slack, DingTalk and email channels so an alert reads the same everywhere;
each channel only wraps these pieces in its own format (blocks, markdown, text + HTML).
"""

from __future__ import annotations

from typing import Any

from pipeline.template import Template, to_text

Notification = dict[str, Any]
SEVERITY_MARK = {"critical": "🔴", "error": "🔴", "warning": "🟠", "info": "🔵"}
FACTS = (("value", "Value"), ("threshold", "Threshold"), ("window", "Window"), ("count", "Count"))
HIDDEN_ANNOTATIONS = frozenset({"summary", "description", "samples", "first_seen", "last_seen", *dict(FACTS)})


def severity(note: Notification) -> str:
    return str(note.get("labels", {}).get("severity", ""))


def mark(note: Notification) -> str:
    """An emoji for the severity (✅ when resolved)."""
    if note.get("status") == "resolved":
        return "✅"
    return SEVERITY_MARK.get(severity(note).lower(), "⚪")


def render(template: Template, note: Notification, component: str = "") -> str:
    return template.render({**note, "component": component})


def facts(note: Notification) -> list[tuple[str, str]]:
    """(name, value) pairs worth showing: severity, the computed value against its threshold, the window,
    the count, when it started (and ended), then the other labels and annotations."""
    ann = note.get("annotations", {})
    out = [("Status", str(note.get("status", ""))), ("Severity", severity(note))]
    out += [(title, str(ann[key])) for key, title in FACTS if ann.get(key)]
    out.append(("Started", str(note.get("startsAt", ""))))
    if note.get("status") == "resolved":
        out.append(("Ended", str(note.get("endsAt", ""))))
    labels = note.get("labels", {})
    out += [(k, str(v)) for k, v in labels.items() if k not in ("alertname", "severity")]
    out += [(k, str(v)) for k, v in ann.items() if k not in HIDDEN_ANNOTATIONS]
    return [(k, v) for k, v in out if v]


def sample_lines(note: Notification, width: int = 300) -> list[str]:
    """One line per sample event: its time and message (or the event as JSON when it has no message)."""
    lines = []
    for sample in note.get("samples") or ():
        text = sample.get("message")
        if text is None:
            text = to_text({k: v for k, v in sample.items() if k != "@timestamp"})
        line = f"{sample.get('@timestamp', '')} {text}".strip()
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    return lines


def description(note: Notification) -> str:
    ann = note.get("annotations", {})
    return "\n".join(str(ann[k]) for k in ("summary", "description") if ann.get(k))
