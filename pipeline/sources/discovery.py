"""Find the files a source reads: include/exclude globs, and the directories to watch.

Globs use shell rules with a recursive `**` (any number of directories): `*`,
`?` and `[...]` never cross a `/`. `include` is expanded with `glob.glob`
(symlinks are followed); `exclude` is matched against the same path strings.
Hidden files (a leading `.`) are only matched by a pattern that names the dot.

Filesystem events (watchfiles) are hints that make discovery and reading
prompt; the periodic rescan (`scan_interval`) is what guarantees discovery,
so a missed event only costs latency.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable

_MAGIC = re.compile(r"[*?\[]")


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob (with `**`) to a regex over whole paths; `*` does not cross `/`."""
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    out.append("(?:.*/)?")  # `**/` : zero or more directories
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 2 if pattern.startswith("[!", i) or pattern.startswith("[^", i) else i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("(?s:" + "".join(out) + r")\Z")


def base_dir(pattern: str) -> str:
    """The longest leading directory of `pattern` without glob characters."""
    parts = pattern.split("/")
    fixed: list[str] = []
    for part in parts[:-1]:
        if _MAGIC.search(part):
            break
        fixed.append(part)
    base = "/".join(fixed)
    if pattern.startswith("/") and not base:
        return "/"
    return base or "."


def needs_recursive_watch(pattern: str) -> bool:
    """Does the pattern match below its base directory's direct children?"""
    base = base_dir(pattern)
    rest = pattern[len(base) :].lstrip("/") if base not in (".", "/") else pattern.lstrip("/")
    return "/" in rest


class Discovery:
    """Expand include globs, drop excludes; also say which directories to watch."""

    def __init__(self, include: Iterable[str], exclude: Iterable[str] = ()) -> None:
        self.include = [os.path.expanduser(p) for p in include]
        self.exclude = [glob_to_regex(os.path.expanduser(p)) for p in exclude]

    def scan(self) -> list[str]:
        """Every path matching an include and no exclude, in a stable order (no duplicates)."""
        seen: set[str] = set()
        out: list[str] = []
        for pattern in self.include:
            try:
                found = glob.glob(pattern, recursive=True)
            except OSError:
                continue
            found.sort()
            for path in found:
                if path in seen or self.excluded(path):
                    continue
                seen.add(path)
                out.append(path)
        return out

    def excluded(self, path: str) -> bool:
        return any(rx.match(path) for rx in self.exclude)

    def watch_targets(self) -> tuple[list[str], bool]:
        """Existing base directories to watch, and whether to watch them recursively."""
        dirs: list[str] = []
        recursive = False
        for pattern in self.include:
            base = base_dir(pattern)
            if os.path.isdir(base) and base not in dirs:
                dirs.append(base)
            recursive = recursive or needs_recursive_watch(pattern)
        # Watching a directory and one of its subdirectories twice only duplicates events.
        dirs = [d for d in dirs if not any(d != o and d.startswith(o.rstrip("/") + "/") for o in dirs)]
        return dirs, recursive
