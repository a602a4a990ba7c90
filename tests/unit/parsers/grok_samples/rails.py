"""Rails 3+ request logs (a whole request joined into one multi-line event)."""

from __future__ import annotations

from typing import Any

HEAD = 'Started GET "/users/1?tab=posts" for 203.0.113.9 at 2024-01-02 03:04:05 +0000'
PROC = 'Processing by UsersController#show as HTML\n  Parameters: {"id"=>"1", "tab"=>"posts"}'
FOOT = "Completed 200 OK in 12ms (Views: 5.1ms | ActiveRecord: 1.2ms)"
REQ = "\n".join([HEAD, PROC, "  User Load (0.3ms)  SELECT users.* FROM users WHERE id = 1", FOOT])

SAMPLES: dict[str, tuple[str, str, str]] = {
    "RUUID": ("request_id=0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef", "0123456789abcdefg"),
    "RCONTROLLER": ("UsersController#show", "UsersController#show", "UsersController.show"),
    "RAILS3HEAD": (REQ, HEAD, HEAD.replace(" for ", " from ")),
    "RPROCESSING": (PROC, PROC, "Processing UsersController#show as HTML"),
    "RAILS3PROFILE": ("(Views: 5.1ms | ActiveRecord: 1.2ms)", "(Views: 5.1ms | ActiveRecord: 1.2ms", "(Views: 5.1ms)"),
    "RAILS3FOOT": (FOOT, FOOT, "Completed OK in 12ms"),
    "RAILS3": (REQ, REQ, REQ.replace("Started GET", "Started")),
}
FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{RAILS3}", "disabled", REQ, {"verb": "GET", "request": "/users/1?tab=posts", "clientip": "203.0.113.9",
     "timestamp": "2024-01-02 03:04:05 +0000", "controller": "UsersController", "action": "show", "format": "HTML",
     "params": '"id"=>"1", "tab"=>"posts"', "response": "200", "totalms": 12.0, "viewms": 5.1,
     "activerecordms": 1.2, "context": "User Load (0.3ms)  SELECT users.* FROM users WHERE id = 1\n"}),
    ("%{RAILS3}", "v1", REQ, {"http": {"request": {"method": "GET"}, "response": {"status_code": 200}},
     "url": {"original": "/users/1?tab=posts"}, "source": {"address": "203.0.113.9"},
     "rails": {"controller": {"class": "UsersController", "action": "show"}, "request": {"format": "HTML",
     "duration": {"total": 12.0, "view": 5.1, "active_record": 1.2}}}}),
]  # fmt: skip
