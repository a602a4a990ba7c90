"""Tomcat / Catalina: java.util.logging SimpleFormatter (Tomcat 7), OneLineFormatter (8.5+), log4j-style."""

from __future__ import annotations

from typing import Any

C7 = "Jan 9, 2014 7:13:13 AM org.apache.catalina.startup.Catalina start INFO: Server startup in 1234 ms"
C8 = (
    "31-Jul-2020 16:40:38.123 INFO [main] org.apache.catalina.startup.VersionLoggerListener.log "
    "Server version name:   Apache Tomcat/8.5.57"
)
LEGACY = "2014-01-09 20:03:28,269 -0800 | ERROR | com.example.service.ExampleService - something unexpected happened"

SAMPLES: dict[str, tuple[str, str, str]] = {
    "CATALINA7_DATESTAMP": (C7, "Jan 9, 2014 7:13:13 AM", "Jan 9, 2014 7:13:13"),
    "CATALINA7_LOG": (C7, C7, "Jan 9 2014 7:13:13 AM org.apache.Catalina INFO: x"),
    "CATALINA8_DATESTAMP": (C8, "31-Jul-2020 16:40:38.123", "31/Jul/2020 16:40:38"),
    "CATALINA8_LOG": (C8, C8, "31-Jul-2020 16:40:38.123 INFO main org.apache.Foo.bar x"),
    "CATALINA_DATESTAMP": (C7, "Jan 9, 2014 7:13:13 AM", "2014-01-09 7:13:13 AM"),
    "CATALINALOG": (C8, C8, "Server version name: Apache Tomcat/8.5.57"),
    "TOMCAT7_LOG": (C7, C7, "Jan 9, 2014 7:13:13 AM"),
    "TOMCAT8_LOG": (C8, C8, "31-Jul-2020 16:40:38.123 INFO [main]"),
    "TOMCATLEGACY_DATESTAMP": (LEGACY, "2014-01-09 20:03:28,269 -0800", "2014-01-09T20:03:28,269 -0800"),
    "TOMCATLEGACY_LOG": (LEGACY, LEGACY, "2014-01-09 20:03:28,269 -0800 ERROR com.example.Foo - x"),
    "TOMCAT_DATESTAMP": (LEGACY, "2014-01-09 20:03:28,269 -0800", "09/01/2014 20:03"),
    "TOMCATLOG": (LEGACY, LEGACY, "2014-01-09 20:03:28,269 -0800 | ERROR | - x"),
}

FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{TOMCATLOG}", "disabled", C7, {"timestamp": "Jan 9, 2014 7:13:13 AM",
     "class": "org.apache.catalina.startup.Catalina", "method": "start", "level": "INFO",
     "logmessage": "Server startup in 1234 ms"}),
    ("%{CATALINALOG}", "disabled", C8, {"timestamp": "31-Jul-2020 16:40:38.123", "level": "INFO", "thread": "main",
     "class": "org.apache.catalina.startup.VersionLoggerListener", "method": "log"}),
    ("%{TOMCATLOG}", "disabled", LEGACY, {"level": "ERROR", "class": "com.example.service.ExampleService",
     "logmessage": "something unexpected happened"}),
    ("%{CATALINALOG}", "v1", C8, {"log": {"level": "INFO"}, "java": {"log": {"origin": {"thread": {"name": "main"},
     "class": {"name": "org.apache.catalina.startup.VersionLoggerListener"}}}}}),
    ("%{JAVASTACKTRACEPART}", "v1", "\tat com.example.Api.post(Api.java:10)", {"log": {"origin": {"function": "post",
     "file": {"name": "Api.java", "line": 10}}}}),
    ("%{TOMCATLOG}", "v1", LEGACY, {"log": {"level": "ERROR"}, "message": "something unexpected happened"}),
]  # fmt: skip
