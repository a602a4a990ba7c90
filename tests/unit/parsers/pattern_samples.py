"""One real-looking positive sample per built-in grok pattern name.

Maps NAME -> (text, the part of ``text`` that ``%{NAME}`` must match). Used by
test_patterns.py for the positive table and to build hostile near-misses.
"""

from __future__ import annotations

APACHE_COMMON = '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'
APACHE_COMBINED = APACHE_COMMON + ' "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"'
NGINX_COMBINED = (
    '203.0.113.9 - - [02/Jan/2024:03:04:05 +0000] "POST /api/v1/orders?id=7 HTTP/1.1" 201 512 '
    '"https://shop.example.com/cart" "curl/8.5.0" 0.123 0.120 10.0.0.1:8080'
)
NGINX_ERROR = (
    "2024/01/02 03:04:05 [error] 1234#5678: *99 connect() failed (111: Connection refused) while "
    'connecting to upstream, client: 198.51.100.7, server: example.com, request: "GET /x HTTP/1.1", '
    'upstream: "http://10.0.0.1:8080/x", host: "example.com", referrer: "https://example.com/"'
)
HTTPD22_ERROR = "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration"
HTTPD24_ERROR = (
    "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1234:tid 5678] [client 1.2.3.4:5678] "
    "AH00124: Request exceeded the limit of 10 internal redirects"
)
SYSLOG = "Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8"

SAMPLES: dict[str, tuple[str, str]] = {
    "USERNAME": ("user=jane.doe-1 ok", "user"),
    "USER": ("jane_doe", "jane_doe"),
    "EMAILLOCALPART": ("jane.doe+tag", "jane.doe+tag"),
    "EMAILADDRESS": ("mail to jane.doe+tag@mail.example.org now", "jane.doe+tag@mail.example.org"),
    "INT": ("took -42 ms", "-42"),
    "BASE10NUM": ("ratio 3.1415", "3.1415"),
    "NUMBER": ("bytes 2326 sent", "2326"),
    "BASE16NUM": ("0x7ffee3b0 is the address", "0x7ffee3b0"),
    "BASE16FLOAT": ("val 0x1f.8 end", "0x1f.8"),
    "POSINT": ("pid 1234", "1234"),
    "NONNEGINT": ("count 0", "0"),
    "WORD": ("hello world", "hello"),
    "NOTSPACE": ("  /var/log/app.log  ", "/var/log/app.log"),
    "SPACE": ("   x", "   "),
    "DATA": ("abc", ""),
    "GREEDYDATA": ("everything to the end", "everything to the end"),
    "QUOTEDSTRING": ('say "hello \\"world\\"" now', '"hello \\"world\\""'),
    "QS": ("it's 'single' here", "'s '"),
    "UUID": ("id=123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000"),
    "URN": ("urn:isbn:0451450523", "urn:isbn:0451450523"),
    "MAC": ("hw 00:1a:2b:3c:4d:5e", "00:1a:2b:3c:4d:5e"),
    "CISCOMAC": ("mac 001a.2b3c.4d5e", "001a.2b3c.4d5e"),
    "WINDOWSMAC": ("mac 00-1A-2B-3C-4D-5E", "00-1A-2B-3C-4D-5E"),
    "COMMONMAC": ("mac 00:1a:2b:3c:4d:5e", "00:1a:2b:3c:4d:5e"),
    "IPV4_OCTET": ("255", "255"),
    "IPV4": ("from 192.168.1.254 port", "192.168.1.254"),
    "IPV6_H": ("fe80", "fe80"),
    "IPV6": ("from 2001:db8::ff00:42:8329 port", "2001:db8::ff00:42:8329"),
    "IP": ("peer ::ffff:10.0.0.1 up", "::ffff:10.0.0.1"),
    "HOSTNAME": ("web-01.prod.example.com is up", "web-01.prod.example.com"),
    "IPORHOST": ("10.1.2.3", "10.1.2.3"),
    "HOSTPORT": ("connect db.example.com:5432 ok", "db.example.com:5432"),
    "UNIXPATH": ("open /var/log/nginx/access.log failed", "/var/log/nginx/access.log"),
    "TTY": ("on /dev/pts/8", "/dev/pts/8"),
    "WINPATH": ("file C:\\Windows\\System32\\drivers", "C:\\Windows\\System32\\drivers"),
    "PATH": ("at /usr/local/bin/app", "/usr/local/bin/app"),
    "URIPROTO": ("https", "https"),
    "URIHOST": ("example.com:8443", "example.com:8443"),
    "URIPATH": ("/a/b/c.html?x=1", "/a/b/c.html"),
    "URIPARAM": ("?q=grok&lang=en", "?q=grok&lang=en"),
    "URIPATHPARAM": ("/search?q=grok", "/search?q=grok"),
    "URI": ("see https://user:pw@example.com:8443/a/b?x=1 now", "https://user:pw@example.com:8443/a/b?x=1"),
    "MONTH": ("Oct", "Oct"),
    "MONTHNUM": ("09", "09"),
    "MONTHNUM2": ("12", "12"),
    "MONTHDAY": ("31", "31"),
    "DAY": ("Wednesday", "Wednesday"),
    "YEAR": ("2024", "2024"),
    "HOUR": ("23", "23"),
    "MINUTE": ("59", "59"),
    "SECOND": ("05.123", "05.123"),
    "TIME": ("at 13:55:36 today", "13:55:36"),
    "DATE_US": ("10/31/2024", "10/31/2024"),
    "DATE_EU": ("31.10.2024", "31.10.2024"),
    "ISO8601_TIMEZONE": ("+01:00", "+01:00"),
    "ISO8601_SECOND": ("05", "05"),
    "TIMESTAMP_ISO8601": ("at 2024-01-02T03:04:05.123Z ok", "2024-01-02T03:04:05.123Z"),
    "DATE": ("on 10/31/2024", "10/31/2024"),
    "DATESTAMP": ("31.10.2024 13:55:36", "31.10.2024 13:55:36"),
    "TZ": ("PST", "PST"),
    "DATESTAMP_RFC822": ("Wed Jan 12 2024 10:00:00 EST", "Wed Jan 12 2024 10:00:00 EST"),
    "DATESTAMP_RFC2822": ("Tue, 02 Jan 2024 03:04:05 +0000", "Tue, 02 Jan 2024 03:04:05 +0000"),
    "DATESTAMP_OTHER": ("Tue Jan 02 03:04:05 UTC 2024", "Tue Jan 02 03:04:05 UTC 2024"),
    "DATESTAMP_EVENTLOG": ("20240102030405", "20240102030405"),
    "HTTPDATE": ("[10/Oct/2000:13:55:36 -0700]", "10/Oct/2000:13:55:36 -0700"),
    "SYSLOGTIMESTAMP": ("Oct  1 22:14:15 host", "Oct  1 22:14:15"),
    "PROG": ("postfix/smtpd", "postfix/smtpd"),
    "SYSLOGPROG": ("sshd[4721]", "sshd[4721]"),
    "SYSLOGHOST": ("mymachine", "mymachine"),
    "SYSLOGFACILITY": ("<4.3>", "<4.3>"),
    "LOGLEVEL": ("level=WARNING x", "WARNING"),
    "HTTPDUSER": ("frank@example.com", "frank@example.com"),
    "HTTPDERROR_DATE": ("[Wed Oct 11 14:32:52.123456 2000]", "Wed Oct 11 14:32:52.123456 2000"),
    "HTTPD_REQUESTLINE": ("GET /index.html HTTP/1.1", "GET /index.html HTTP/1.1"),
    "COMMONAPACHELOG": (APACHE_COMMON, APACHE_COMMON),
    "COMBINEDAPACHELOG": (APACHE_COMBINED, APACHE_COMBINED),
    "HTTPD_ERRORCODE": ("AH00124", "AH00124"),
    "HTTPD20_ERRORLOG": (HTTPD22_ERROR, HTTPD22_ERROR),
    "HTTPD24_ERRORLOG": (HTTPD24_ERROR, HTTPD24_ERROR),
    "HTTPD_ERRORLOG": (HTTPD24_ERROR, HTTPD24_ERROR),
    "SYSLOGBASE": (SYSLOG, "Oct 11 22:14:15 mymachine su[230]:"),
    "SYSLOGLINE": (SYSLOG, SYSLOG),
    "JAVACLASS": ("com.example.service.OrderService", "com.example.service.OrderService"),
    "JAVAMETHOD": ("<init>", "<init>"),
    "JAVAFILE": ("OrderService.java", "OrderService.java"),
    "JAVASTACKTRACEPART": (
        "\tat com.example.OrderService.place(OrderService.java:42)",
        "\tat com.example.OrderService.place(OrderService.java:42)",
    ),
    "JAVATHREAD": ("TP-Processor12", "TP-Processor12"),
    "JAVALOGMESSAGE": ("Something happened", "Something happened"),
    "NGINX_UPSTREAM_ADDR": ("10.0.0.1:8080, 10.0.0.2:8080", "10.0.0.1:8080, 10.0.0.2:8080"),
    "NGINX_TIMELIST": ("0.120, 0.003", "0.120, 0.003"),
    "NGINXACCESS": (NGINX_COMBINED, NGINX_COMBINED),
    "NGINX_ERRORDATE": ("2024/01/02 03:04:05", "2024/01/02 03:04:05"),
    "NGINX_QUOTED": ('GET /x \\"y\\" HTTP/1.1', 'GET /x \\"y\\" HTTP/1.1'),
    "NGINX_ERRORLOG": (NGINX_ERROR, NGINX_ERROR),
}
