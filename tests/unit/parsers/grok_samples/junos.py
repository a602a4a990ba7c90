"""Juniper SRX RT_FLOW session logs."""

from __future__ import annotations

from typing import Any

CLOSE = (
    "RT_FLOW_SESSION_CLOSE: session closed TCP FIN: 10.0.0.5/51234->192.0.2.10/443 junos-https "
    "203.0.113.7/51234->192.0.2.10/443 source-nat-rule None 6 allow-web trust untrust 4521 "
    "12(1534) 10(8720) 35 UNKNOWN UNKNOWN N/A(N/A) ge-0/0/1.0"
)
CREATE = (
    "RT_FLOW_SESSION_CREATE: session created 10.0.0.5/51234->192.0.2.10/443 junos-https "
    "203.0.113.7/51234->192.0.2.10/443 source-nat-rule None 6 allow-web trust untrust 4521 N/A(N/A) ge-0/0/1.0"
)
DENY = (
    "RT_FLOW_SESSION_DENY: session denied 10.0.0.5/51234->192.0.2.10/23 junos-telnet 6(0) deny-all trust untrust "
    "UNKNOWN UNKNOWN N/A(N/A) ge-0/0/1.0"
)

SAMPLES: dict[str, tuple[str, str, str]] = {
    "RT_FLOW_EVENT": ("RT_FLOW_SESSION_CLOSE", "RT_FLOW_SESSION_CLOSE", "RT_FLOW_SESSION_OPEN"),
    "RT_FLOW_FIELD": ("junos-https x", "junos-https", "junos https"),
    "RT_FLOW1": (CLOSE, CLOSE, CLOSE.replace("12(1534)", "12 1534")),
    "RT_FLOW2": (CREATE, CREATE, CREATE.replace("session created", "session opened")),
    "RT_FLOW3": (DENY, DENY, DENY.replace("6(0)", "6")),
    # ECS v1 only
    "RT_FLOW_TAG": ("RT_FLOW_SESSION_DENY", "RT_FLOW_SESSION_DENY", "RT_FLOW_SESSION"),
}

FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{RT_FLOW1}", "disabled", CLOSE, {"event": "RT_FLOW_SESSION_CLOSE", "close-reason": "session closed TCP FIN",
     "src-ip": "10.0.0.5", "dst-port": "443", "service": "junos-https", "nat-src-ip": "203.0.113.7",
     "src-nat-rule-name": "source-nat-rule", "dst-nat-rule-name": "None", "protocol-id": "6",
     "policy-name": "allow-web", "from-zone": "trust", "to-zone": "untrust", "session-id": "4521",
     "sent": "1534", "received": "8720", "elapsed-time": "35"}),
    ("%{RT_FLOW1}", "v1", CLOSE, {"juniper": {"srx": {"tag": "RT_FLOW_SESSION_CLOSE", "reason":
     "session closed TCP FIN", "service_name": "junos-https", "src_nat_rule_name": "source-nat-rule",
     "session_id": "4521", "elapsed_time": 35}}, "source": {"ip": "10.0.0.5", "port": 51234, "bytes": 1534,
     "nat": {"ip": "203.0.113.7"}}, "destination": {"bytes": 8720}, "rule": {"name": "allow-web"},
     "observer": {"ingress": {"zone": "trust"}, "egress": {"zone": "untrust"}}}),
    ("%{RT_FLOW3}", "v1", DENY, {"network": {"iana_number": "6"}, "rule": {"name": "deny-all"}}),
]  # fmt: skip
