"""Exim main log: message arrivals."""

from __future__ import annotations

from typing import Any

ARR = (
    "2024-01-02 03:04:05 [12345] 1rKXyZ-0001Ab-Cd <= alice@example.org H=mail.example.org (helo.example.org) "
    "[192.0.2.1]:49152 I=[198.51.100.5]:25 P=esmtps X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no S=2345 "
    'id=20240102030405.GA1234@example.org T="Quarterly \\"numbers\\"" for bob@example.com'
)

SAMPLES: dict[str, tuple[str, str, str]] = {
    "EXIM_MSGID": ("1rKXyZ-0001Ab-Cd", "1rKXyZ-0001Ab-Cd", "1rKXy-0001Ab-Cd"),
    "EXIM_FLAGS": ("=>", "=>", "=<"),
    "EXIM_DATE": ("2024-01-02 03:04:05", "2024-01-02 03:04:05", "2024/01/02 03:04:05"),
    "EXIM_PID": ("[12345]", "[12345]", "[abc]"),
    "EXIM_QT": ("1d2h3m", "1d2h3m", "1x"),
    "EXIM_EXCLUDE_TERMS": ("Start queue run", "Start queue run", "Start queue"),
    "EXIM_REMOTE_HOST": (
        "H=mail.example.org [192.0.2.1]:25",
        "H=mail.example.org [192.0.2.1]:25",
        "H=mail.example.org",
    ),
    "EXIM_INTERFACE": ("I=[198.51.100.5]:25", "I=[198.51.100.5]:25", "I=198.51.100.5:25"),
    "EXIM_PROTOCOL": ("P=esmtps", "P=esmtps", "P="),
    "EXIM_MSG_SIZE": ("S=2345", "S=2345", "S=big"),
    "EXIM_HEADER_ID": ("id=abc@example.org", "id=abc@example.org", "id="),
    "EXIM_SUBJECT": ('T="Hello there"', 'T="Hello there"', "T=Hello there"),
    "EXIM_UNKNOWN_FIELD": ("CV=no", "CV=no", "CVXYZ=no"),
    "EXIM_NAMED_FIELDS": (" P=esmtp S=12", " P=esmtp S=12", "P=esmtp"),
    "EXIM_MESSAGE_ARRIVAL": (ARR, ARR, ARR.replace(" <= ", " => ")),
    "EXIM": (ARR, ARR, ARR.replace("1rKXyZ-0001Ab-Cd", "message")),
    # ECS v1 only
    "EXIM_QUOTED_CONTENT": ('Quarterly \\"numbers\\"', 'Quarterly \\"numbers\\"', 'bare " quote'),
}

FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{EXIM}", "disabled", ARR, {"timestamp": "2024-01-02 03:04:05", "exim_year": "2024", "pid": "12345",
     "exim_msgid": "1rKXyZ-0001Ab-Cd", "exim_flags": "<=", "exim_sender_email": "alice@example.org",
     "remote_hostname": "mail.example.org", "remote_heloname": "helo.example.org", "remote_host": "192.0.2.1",
     "remote_port": "49152", "exim_interface": "198.51.100.5", "protocol": "esmtps", "exim_msg_size": "2345",
     "exim_subject": '"Quarterly \\"numbers\\""', "exim_recipient_email": "bob@example.com"}),
    ("%{EXIM}", "v1", ARR, {"process": {"pid": 12345}, "exim": {"log": {"message": {"id": "1rKXyZ-0001Ab-Cd",
     "size": 2345, "subject": 'Quarterly \\"numbers\\"'}, "flags": "<=", "sender": {"email": "alice@example.org"},
     "recipient": {"email": "bob@example.com"}, "remote_address": "helo.example.org"}},
     "source": {"address": "mail.example.org", "ip": "192.0.2.1", "port": 49152},
     "destination": {"ip": "198.51.100.5", "port": 25}, "network": {"protocol": "esmtps"}}),
]  # fmt: skip
