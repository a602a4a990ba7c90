"""File identity: device + inode + a fingerprint of the first bytes.

Paths are not identities: rotation renames files and inode numbers are reused
after a delete. A file is identified by `(st_dev, st_ino)` *and* a hash of its
first `fingerprint_bytes` bytes:

- A renamed file keeps its device, inode and first bytes: the same file, read
  on from its offset (never re-read).
- A new file that reuses a deleted file's inode has different first bytes: a
  new file, read from 0.
- A file truncated and rewritten in place (copytruncate) keeps its inode but
  its first bytes change (or its size drops below the read offset): a new
  identity, read from 0.

Files shorter than `fingerprint_bytes`: the fingerprint covers the bytes that
exist (`length` < limit) and *grows* as the file grows, until it covers the
full limit. Matching always compares the stored fingerprint's length: a file
matches a stored fingerprint when its first `length` bytes hash the same. So a
100-byte file that grows to 5 KiB still matches its 100-byte fingerprint (same
file), while a reused inode with other content does not. Empty files have no
fingerprint and are not read until they hold a byte.

Two files whose first `length` bytes are identical and that share an inode
(one deleted, the other created with the same prefix) cannot be told apart;
with the default 1 KiB of timestamped log lines this does not happen in
practice (Filebeat's fingerprint identity has the same property).

The identity *key* (checkpoint key, and the file part of `event_id`) is fixed
when the file is first seen and stored in the checkpoint; the fingerprint
used for matching may grow afterwards without changing the key, so event ids
stay stable for the life of the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from hashlib import blake2b

FP_DIGEST_BYTES = 8


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """Hash of the first `length` bytes of a file."""

    length: int
    digest: str


def fingerprint_bytes(data: bytes) -> Fingerprint:
    return Fingerprint(len(data), blake2b(data, digest_size=FP_DIGEST_BYTES).hexdigest())


def fingerprint(fd: int, limit: int) -> Fingerprint:
    """Fingerprint of the first min(size, limit) bytes of an open file."""
    return fingerprint_bytes(_pread_all(fd, limit, 0))


def matches(fd: int, fp: Fingerprint) -> bool:
    """Do the file's first `fp.length` bytes hash to `fp.digest`?"""
    data = _pread_all(fd, fp.length, 0)
    return len(data) == fp.length and blake2b(data, digest_size=FP_DIGEST_BYTES).hexdigest() == fp.digest


def identity_key(dev: int, ino: int, fp: Fingerprint) -> str:
    """The stable key of a file identity (checkpoint key, event_id input)."""
    return f"{dev}:{ino}:{fp.digest}"


def event_id_prefix(host: str, key: str) -> str:
    """The per-file part of event ids: blake2b(host | identity key), 8 bytes, hex."""
    return blake2b(f"{host}|{key}".encode(), digest_size=8).hexdigest()


def event_id(host: str, key: str, offset: int) -> str:
    """The event_id of the record starting at `offset` in a file identity.

    `<16 hex digits of blake2b(host | key)><offset as at least 12 hex digits>`: deterministic
    (a replay after a crash yields the same ids, so sinks can drop duplicates) and unique per
    host, file identity and offset. The prefix is computed once per file, so the per-event cost
    is one string format instead of one hash.
    """
    return f"{event_id_prefix(host, key)}{offset:012x}"


def _pread_all(fd: int, n: int, offset: int) -> bytes:
    if n <= 0:
        return b""
    data = os.pread(fd, n, offset)
    if len(data) == n or not data:
        return data
    # Short reads happen on some filesystems even before EOF; keep going until EOF.
    parts = [data]
    got = len(data)
    while got < n:
        more = os.pread(fd, n - got, offset + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)
