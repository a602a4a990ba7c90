"""AWS: S3 server access logs, Classic ELB access logs, CloudFront standard logs."""

from __future__ import annotations

from typing import Any

S3 = (
    "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be awsexamplebucket1 "
    "[06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be "
    '3E57427F3EXAMPLE REST.GET.VERSIONING - "GET /awsexamplebucket1?versioning HTTP/1.1" 200 - 113 - 7 - "-" '
    '"S3Console/0.4" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 '
    "ECDHE-RSA-AES128-GCM-SHA256 AuthHeader awsexamplebucket1.s3.us-west-1.amazonaws.com TLSV1.2"
)
ELB = (
    "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 "
    '200 200 0 29 "GET http://www.example.com:80/index.html?x=1 HTTP/1.1" "curl/7.38.0" - -'
)
ELB_SHORT = ELB[: ELB.index(' "curl')]
CF = "\t".join([
    "2019-12-04", "21:02:31", "LAX1-C3", "392", "192.0.2.100", "GET", "d111111abcdef8.cloudfront.net", "/index.html",
    "200", "-", "Mozilla/5.0%20(Windows%20NT%2010.0)", "-", "-", "Hit",
    "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==", "d111111abcdef8.cloudfront.net", "https", "23",
    "0.001", "-", "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", "Hit", "HTTP/2.0", "-", "-", "11040", "0.001", "Hit",
    "text/html", "78", "-", "-",
])  # fmt: skip
CF_SHORT = "\t".join(CF.split("\t")[:23])

SAMPLES: dict[str, tuple[str, str, str]] = {
    "S3_REQUEST_LINE": ("GET /awsexamplebucket1?versioning HTTP/1.1", "GET /awsexamplebucket1?versioning HTTP/1.1",
                        'GET /x "HTTP/1.1"'),
    "S3_ACCESS_LOG": (S3, S3, S3.replace("[06/Feb/2019:00:00:38 +0000]", "06/Feb/2019")),
    "ELB_URIPATHPARAM": ("/index.html?x=1", "/index.html?x=1", "index.html?x=1"),
    "ELB_URI": ("http://www.example.com:80/index.html", "http://www.example.com:80/index.html", "www.example.com/x"),
    "ELB_REQUEST_LINE": ("GET http://www.example.com:80/ HTTP/1.1", "GET http://www.example.com:80/ HTTP/1.1",
                         'GET http://x/ "HTTP/1.1"'),
    "ELB_ACCESS_LOG": (ELB_SHORT, ELB_SHORT, ELB.replace("192.168.131.39:2817", "192.168.131.39")),
    "CLOUDFRONT_FIELD": ("Hit\tMiss", "Hit", "a\tb"),
    "CLOUDFRONT_ACCESS_LOG": (CF_SHORT, CF_SHORT, CF_SHORT.replace("\t200\t", "\tOK\t")),
    # ECS v1 only
    "ELB_URIHOST": ("www.example.com:80", "www.example.com:80", "www.example.com:http"),
    "ELB_URIPATHQUERY": ("/index.html?x=1", "/index.html?x=1", "/index.html#?x=1 y"),
    "ELB_V1_HTTP_LOG": (ELB, ELB, ELB.replace(" 200 200 ", " OK OK ")),
    "CLOUDFRONT_EDGE_LOCATION": ("LAX1-C3", "LAX1-C3", "lax1-c3"),
}  # fmt: skip

FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{S3_ACCESS_LOG}", "disabled", S3, {"owner": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
     "bucket": "awsexamplebucket1", "timestamp": "06/Feb/2019:00:00:38 +0000", "clientip": "192.0.2.3",
     "operation": "REST.GET.VERSIONING", "verb": "GET", "request": "/awsexamplebucket1?versioning",
     "httpversion": "1.1", "response": 200, "bytes": 113, "request_time_ms": 7, "agent": '"S3Console/0.4"'}),
    ("%{S3_ACCESS_LOG}", "v1", S3, {"aws": {"s3access": {"bucket": "awsexamplebucket1",
     "operation": "REST.GET.VERSIONING", "bytes_sent": 113, "total_time": 7, "signature_version": "SigV4",
     "tls_version": "TLSV1.2", "request_uri": "GET /awsexamplebucket1?versioning HTTP/1.1"}},
     "client": {"ip": "192.0.2.3"}, "http": {"response": {"status_code": 200}, "request": {"method": "GET"}},
     "user_agent": {"original": "S3Console/0.4"}, "tls": {"cipher": "ECDHE-RSA-AES128-GCM-SHA256"}}),
    ("%{ELB_ACCESS_LOG}", "disabled", ELB, {"elb": "my-loadbalancer", "clientip": "192.168.131.39",
     "clientport": 2817, "backendip": "10.0.0.1", "backendport": 80, "request_processing_time": 0.000073,
     "response": 200, "backend_response": 200, "received_bytes": 0, "bytes": 29, "verb": "GET",
     "proto": "http", "urihost": "www.example.com:80", "path": "/index.html", "params": "?x=1",
     "httpversion": "1.1"}),
    ("%{ELB_ACCESS_LOG}", "v1", ELB, {"aws": {"elb": {"name": "my-loadbalancer", "backend": {"ip": "10.0.0.1",
     "port": 80}}}, "source": {"ip": "192.168.131.39", "port": 2817}, "url": {"scheme": "http",
     "domain": "www.example.com", "port": 80, "path": "/index.html", "query": "x=1"},
     "user_agent": {"original": "curl/7.38.0"}, "http": {"response": {"status_code": 200}}}),
    ("%{CLOUDFRONT_ACCESS_LOG}", "disabled", CF, {"timestamp": "2019-12-04\t21:02:31", "x_edge_location": "LAX1-C3",
     "sc_bytes": 392, "clientip": "192.0.2.100", "cs_method": "GET", "cs_uri_stem": "/index.html", "sc_status": 200,
     "x_edge_result_type": "Hit", "cs_protocol": "https", "cs_bytes": 23, "time_taken": 0.001}),
    ("%{CLOUDFRONT_ACCESS_LOG}", "v1", CF, {"aws": {"cloudfront": {"x_edge_location": "LAX1-C3",
     "time_to_first_byte": 0.001}}, "source": {"ip": "192.0.2.100", "port": 11040, "bytes": 23},
     "http": {"version": "2.0", "response": {"status_code": 200}, "request": {"mime_type": "text/html"}},
     "url": {"domain": "d111111abcdef8.cloudfront.net", "path": "/index.html"}}),
]  # fmt: skip
