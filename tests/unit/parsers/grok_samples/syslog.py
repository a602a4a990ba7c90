"""linux-syslog: PAM sessions, cron, RFC 5424 (legacy and ECS)."""

from __future__ import annotations

from typing import Any

PAM = "Jan  2 03:04:05 web-1 sshd[4721]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)"
CRON = "Jan  2 03:17:01 web-1 CRON[9876]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)"
R5424 = (
    '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 4321 ID47 [exampleSDID@32473 iut="3" '
    'eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] An application event log entry'
)
R5424_NOSD = (
    "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8"
)

SAMPLES: dict[str, tuple[str, str, str]] = {
    "SYSLOGPAMSESSION": (PAM, PAM, PAM.replace("session opened", "session")),
    "CRON_ACTION": ("CMD", "CMD", "cmd"),
    "CRONLOG": (CRON, CRON, CRON.replace("(root)", "root")),
    "SYSLOG5424PRINTASCII": ("evntslog", "evntslog", "evnt slog"),
    "SYSLOG5424PRI": ("<165>1", "<165>", "<16a>"),
    "SYSLOG5424SD": (R5424, R5424[R5424.index("[") : R5424.index("] An") + 1], '[exampleSDID@32473 iut="3"'),
    "SYSLOG5424BASE": (R5424_NOSD, R5424_NOSD[: R5424_NOSD.index(" 'su")], "<34>1 2003-10-11T22:14:15.003Z"),
    "SYSLOG5424LINE": (R5424, R5424, R5424.replace("<165>1", "165 1")),
    "FACILITY5424KEYWORD": ("facility=security/authorization", "security/authorization", "local8"),
    "FACILITY5424": ("local7", "local7", "local 7"),
}

NO_HOST = "Feb  3 04:05:06 sudo: deploy : TTY=pts/0 ; PWD=/home/deploy ; COMMAND=/bin/systemctl restart app"
UNQUOTED_SD = "<30>1 2024-06-30T23:59:60.5Z fw-2 - - - [meta seq=42] link flapped on port 7"

FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    # ECS SYSLOGLINE takes a line without a host (legacy needs one, as in Logstash).
    ("%{SYSLOGLINE}", "v1", NO_HOST, {"process": {"name": "sudo"}, "message": NO_HOST[NO_HOST.index("deploy :") :]}),
    # A leap second, and an unquoted structured-data value as some senders write it.
    ("%{SYSLOG5424LINE}", "disabled", UNQUOTED_SD, {"syslog5424_ts": "2024-06-30T23:59:60.5Z",
     "syslog5424_sd": "[meta seq=42]", "syslog5424_msg": "link flapped on port 7"}),
    ("%{FACILITY5424}", "disabled", "facility: line printer", {"log_facility": "line printer"}),
    ("%{SYSLOGPAMSESSION}", "disabled", PAM, {"logsource": "web-1", "program": "sshd", "pid": "4721",
     "pam_module": "pam_unix", "pam_caller": "sshd:session", "pam_session_state": "opened", "username": "deploy"}),
    ("%{SYSLOGPAMSESSION}", "v1", PAM, {"host": {"hostname": "web-1"}, "process": {"name": "sshd", "pid": 4721},
     "system": {"auth": {"pam": {"module": "pam_unix", "origin": "sshd:session", "session_state": "opened"}}},
     "user": {"name": "deploy"}}),
    ("%{CRONLOG}", "disabled", CRON, {"user": "root", "action": "CMD",
     "message": "   cd / && run-parts --report /etc/cron.hourly"}),
    ("%{CRONLOG}", "v1", CRON, {"user": {"name": "root"}, "system": {"cron": {"action": "CMD"}}}),
    ("%{SYSLOG5424LINE}", "disabled", R5424, {"syslog5424_pri": "165", "syslog5424_ver": "1",
     "syslog5424_ts": "2003-10-11T22:14:15.003Z", "syslog5424_host": "mymachine.example.com",
     "syslog5424_app": "evntslog", "syslog5424_proc": "4321", "syslog5424_msgid": "ID47",
     "syslog5424_sd": '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
                      '[examplePriority@32473 class="high"]',
     "syslog5424_msg": "An application event log entry"}),
    ("%{SYSLOG5424LINE}", "disabled", R5424_NOSD, {"syslog5424_app": "su", "syslog5424_msgid": "ID47",
     "syslog5424_msg": "'su root' failed for lonvick on /dev/pts/8"}),
    ("%{SYSLOG5424LINE}", "v1", R5424, {"log": {"syslog": {"priority": 165}}, "system": {"syslog": {"version": "1",
     "structured_data": '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
                        '[examplePriority@32473 class="high"]'}},
     "timestamp": "2003-10-11T22:14:15.003Z", "host": {"hostname": "mymachine.example.com"},
     "process": {"name": "evntslog", "pid": 4321}, "event": {"code": "ID47"},
     "message": "An application event log entry"}),
    ("%{SYSLOGLINE}", "v1", "Oct 11 22:14:15 mymachine su[230]: 'su root' failed", {"timestamp": "Oct 11 22:14:15",
     "host": {"hostname": "mymachine"}, "process": {"name": "su", "pid": 230}, "message": "'su root' failed"}),
]  # fmt: skip
