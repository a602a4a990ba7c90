"""Grok sample tables, one module per pattern family beyond base/httpd/syslog/java/nginx.

Each module defines ``SAMPLES``: NAME -> (text, the part of text that ``%{NAME}``
matches, a near miss that ``%{NAME}`` must not match from start to end), and
``FIELDS``: (expression, ecs_compatibility, line, fields the match must include).
"""

from __future__ import annotations

from typing import Any

from . import (
    aws,
    bacula,
    bind,
    bro,
    exim,
    firewalls,
    haproxy,
    java,
    junos,
    maven,
    mcollective,
    mongodb,
    nagios,
    postgresql,
    rails,
    redis,
    ruby,
    squid,
    syslog,
    zeek,
)

FAMILIES = {
    m.__name__.rsplit(".", 1)[-1]: m
    for m in (aws, bacula, bind, bro, exim, firewalls, haproxy, java, junos, maven, mcollective, mongodb, nagios,
              postgresql, rails, redis, ruby, squid, syslog, zeek)
}  # fmt: skip

SAMPLES: dict[str, tuple[str, str, str]] = {}
ECS_MATCHES: dict[str, str] = {}
"""Where the ECS v1 pattern matches a different part of the same sample text."""
FIELDS: list[tuple[str, str, str, dict[str, Any]]] = []
for _module in FAMILIES.values():
    for _name in _module.SAMPLES:
        assert _name not in SAMPLES, _name
    SAMPLES.update(_module.SAMPLES)
    ECS_MATCHES.update(getattr(_module, "ECS_MATCHES", {}))
    FIELDS.extend(_module.FIELDS)
