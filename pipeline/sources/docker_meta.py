"""Docker container metadata of json-file logs on a Docker host: `container.{id, name, image, labels}`.

Docker without Kubernetes writes each container's log to
`/var/lib/docker/containers/<id>/<id>-json.log` (rotated: `<id>-json.log.1`, ...). The id
comes from that path; name, image and labels from `config.v2.json` beside the log, in
Docker's own format: `"Name": "/web-1"` (the leading slash is dropped), `"Config": {"Image":
"nginx:1.25", "Labels": {...}}`. Events get them under `container`, with ECS names:
`{id, name, image: {name}, labels}`.

Label keys have their dots replaced with `_` (`com.docker.compose.project` ->
`com_docker_compose_project`), as Filebeat's `labels.dedot` does by default: Docker Compose
sets both `com.docker.compose.project` and `com.docker.compose.project.working_dir`, which
Elasticsearch cannot map (one would be a string and an object at once).

One `DockerContainer` per container directory, shared by the log and its rotated files. It
stats `config.v2.json` at most once per `REFRESH_SECONDS` (asked once per chunk of lines,
never per line) and parses it again only when its mtime, size or inode changed (Docker
rewrites it when the container's state changes, renames included). Missing, unreadable or
not JSON: the events still carry `container.id`, the last metadata read stays, and one
warning is logged per container.
"""

from __future__ import annotations

import logging
import os
import re
import weakref
from typing import Any

import orjson

__all__ = [
    "CONFIG_FILE",
    "REFRESH_SECONDS",
    "DockerContainer",
    "DockerMetadata",
    "container_fields",
    "container_id",
    "event_fields",
]

log = logging.getLogger(__name__)

CONFIG_FILE = "config.v2.json"
REFRESH_SECONDS = 5.0
MAX_CONFIG_BYTES = 4 * 1024 * 1024  # config.v2.json is a few KiB; a bigger one is not Docker's

_LOG_PATH = re.compile(r"(?:^|/)(?P<id>[0-9a-f]{64})/(?P=id)-json\.log(?:\.\d+)?$")


def container_id(path: str) -> str | None:
    """The container id of a Docker json-file log path (`.../<id>/<id>-json.log[.N]`), else None."""
    m = _LOG_PATH.search(path)
    return m.group("id") if m is not None else None


def container_fields(config: Any, cid: str) -> dict[str, Any]:
    """Docker's `config.v2.json` (parsed) -> `{id, name?, image?: {name}, labels?}`; raises ValueError
    if it is not an object. Fields that are absent or of the wrong type are left out."""
    if not isinstance(config, dict):
        raise ValueError("not a JSON object")
    out: dict[str, Any] = {"id": cid}
    name = config.get("Name")
    if isinstance(name, str) and name.strip("/"):
        out["name"] = name[1:] if name.startswith("/") else name
    spec = config.get("Config")
    if isinstance(spec, dict):
        image = spec.get("Image")
        if isinstance(image, str) and image:
            out["image"] = {"name": image}
        labels = spec.get("Labels")
        if isinstance(labels, dict) and labels:
            out["labels"] = {str(k).replace(".", "_"): v for k, v in labels.items() if isinstance(v, str)}
    return out


class DockerContainer:
    """One container directory's metadata, read again when its `config.v2.json` changes."""

    __slots__ = ("__weakref__", "_checked", "_fields", "_stat", "_warned", "config_path", "id")

    def __init__(self, cid: str, directory: str) -> None:
        self.id = cid
        self.config_path = os.path.join(directory, CONFIG_FILE)
        self._fields: dict[str, Any] = {"id": cid}
        self._stat: tuple[int, int, int] | None = None
        self._checked: float | None = None
        self._warned = False

    def fields(self, now: float | None) -> dict[str, Any]:
        """The current metadata (shared: copy it with `event_fields`); `now` (monotonic seconds)
        allows a refresh when the last check is `REFRESH_SECONDS` old; None never refreshes
        after the first read."""
        checked = self._checked
        if checked is None or (now is not None and now - checked >= REFRESH_SECONDS):
            self._checked = now if now is not None else 0.0
            self._refresh()
        return self._fields

    def _refresh(self) -> None:
        try:
            st = os.stat(self.config_path)
        except OSError as exc:
            self._warn("cannot read", exc)
            return
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if key == self._stat:
            return
        self._stat = key
        try:
            if st.st_size > MAX_CONFIG_BYTES:
                raise ValueError(f"larger than {MAX_CONFIG_BYTES} bytes")
            with open(self.config_path, "rb") as fh:
                data = fh.read(MAX_CONFIG_BYTES + 1)
            self._fields = container_fields(orjson.loads(data), self.id)
        except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
            self._warn("cannot use", exc)

    def _warn(self, what: str, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                f"{what} {CONFIG_FILE}: events keep container.id and the metadata last read, if any",
                extra={"path": self.config_path, "container_id": self.id, "error": str(exc)},
            )


def event_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A copy for one event (its nested objects too: a transform may change them in place)."""
    out = dict(fields)
    image = out.get("image")
    if image is not None:
        out["image"] = dict(image)
    labels = out.get("labels")
    if labels is not None:
        out["labels"] = dict(labels)
    return out


class DockerMetadata:
    """A source's containers, one per directory, while some open file refers to them (weakly held)."""

    def __init__(self) -> None:
        self._containers: weakref.WeakValueDictionary[str, DockerContainer] = weakref.WeakValueDictionary()

    def for_path(self, path: str) -> DockerContainer | None:
        """The container of a Docker json-file log path (or of the file a symlink points to), else None."""
        cid = container_id(path)
        if cid is None:
            path = os.path.realpath(path)
            cid = container_id(path)
            if cid is None:
                return None
        directory = os.path.dirname(path)
        found = self._containers.get(directory)
        if found is None:
            found = self._containers[directory] = DockerContainer(cid, directory)
        return found
