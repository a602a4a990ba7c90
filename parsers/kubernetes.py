"""Kubernetes metadata from a container log file's path (no API calls).

Two layouts written by the kubelet:

- ``/var/log/containers/<pod>_<namespace>_<container>-<64-hex container id>.log`` (symlinks)
  -> ``{"pod", "namespace", "container", "container_id"}``
- ``/var/log/pods/<namespace>_<pod>_<pod uid>/<container>/<restart count>.log``
  (also rotated ``<n>.log.<suffix>``) -> ``{"namespace", "pod", "pod_uid", "container",
  "restart"}`` (restart an int)

Only the file name (and, for the pods layout, the two directories above it) are matched, so
the prefix does not matter. Kubernetes names never contain ``_``, which is what makes the
split unambiguous; pod names may contain ``-`` and ``.``, namespaces and containers ``-``.
Results, including misses (None), are cached in a bounded LRU keyed by path; every call
returns a fresh dict, so callers may add keys (``node``) without touching the cache.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

__all__ = ["CACHE_SIZE", "clear_cache", "metadata_from_path"]

CACHE_SIZE = 4096

_CONTAINERS = re.compile(
    r"(?:^|/)(?P<pod>[^_/]+)_(?P<namespace>[^_/]+)_(?P<container>[^_/]+)-(?P<container_id>[0-9a-f]{64})\.log$"
)
_PODS = re.compile(
    r"(?:^|/)(?P<namespace>[^_/]+)_(?P<pod>[^_/]+)_(?P<pod_uid>[^_/]+)/(?P<container>[^_/]+)"
    r"/(?P<restart>\d+)\.log(?:\.[^/]*)?$"
)

_cache: OrderedDict[str, dict[str, Any] | None] = OrderedDict()


def _lookup(path: str) -> dict[str, Any] | None:
    m = _CONTAINERS.search(path)
    if m is not None:
        return m.groupdict()
    m = _PODS.search(path)
    if m is not None:
        meta: dict[str, Any] = m.groupdict()
        meta["restart"] = int(meta["restart"])
        return meta
    return None


def metadata_from_path(path: str) -> dict[str, Any] | None:
    """Kubernetes metadata encoded in a log file path, or None if the path has none."""
    try:
        meta = _cache[path]
    except KeyError:
        meta = _lookup(path) if isinstance(path, str) else None
        _cache[path] = meta
        if len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    except TypeError:  # unhashable: not a path
        return None
    else:
        _cache.move_to_end(path)
    return dict(meta) if meta is not None else None


def clear_cache() -> None:
    """Forget cached results (tests)."""
    _cache.clear()
