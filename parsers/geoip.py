"""GeoIP enrichment with MaxMind databases (``geoip2``), an LRU cache and hot reload.

``GeoIPEnricher(city_database, asn_database=None, ...)`` looks up
``event[field]`` and sets ``event[target]`` to a dict with the keys that exist
among ``country_iso_code``, ``country_name``, ``region_name``, ``city_name``,
``location`` (``{"lat", "lon"}``), ``timezone`` (from a City or Country
database; a Country database gives the first two) and ``asn``, ``as_org``
(from an ASN database).

* Absent field, ``""`` or ``"-"``: nothing happens.
* Private, loopback, link-local, reserved, multicast, unspecified and shared
  (100.64/10) addresses (Python's ``ipaddress`` classification, which also counts
  the documentation networks as private) are skipped without a tag. MaxMind
  databases hold no records for them, so the check runs only when no database
  has a record, off the hot path.
* An invalid address, or a public one no database has a record for, tags
  ``_geoip_lookup_failure``.

Databases are opened when the enricher is built (checked with
``geoip2.database.Reader``, then read through the raw ``maxminddb`` reader,
which is what geoip2 wraps, without building model objects); a missing,
unreadable or wrong-type file raises ``GeoIPDatabaseError`` naming the path.
Results are kept in a bounded LRU cache keyed by the IP text. Every
``reload_check_interval`` seconds (checked lazily on calls, with the injected
``clock``) the files are stat'ed; when device, inode, size or mtime changed the
database is reopened and the cache cleared. If the new file cannot be opened
the old reader is kept. Replace databases atomically (write elsewhere, then
rename, as ``geoipupdate`` does): readers memory-map the file.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import geoip2.database
import maxminddb

from parsers.errors import GeoIPDatabaseError
from parsers.fieldpath import compile_getter
from parsers.ipaddr import is_public_ip
from parsers.types import GEOIP_FAILURE, Event, add_tag

__all__ = ["GeoIPEnricher"]

_SKIP = object()  # cached verdict: private/reserved address, no lookup, no tag
_FAIL = object()  # cached verdict: invalid address or no record: tag

_Signature = tuple[int, int, int, int]


def _signature(path: str) -> _Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class _Database:
    """One open MaxMind database and the lookup method that fits its type."""

    __slots__ = ("kind", "lookup", "path", "reader", "signature")

    def __init__(self, path: str, kind: str) -> None:
        self.path = path
        self.kind = kind
        self.signature = _signature(path)
        self.reader, self.lookup = self._open(path, kind)

    @staticmethod
    def _open(path: str, kind: str) -> tuple[maxminddb.Reader, Callable[[str], Any]]:
        """Validate with ``geoip2`` (type check), then serve lookups from the raw ``maxminddb`` reader.

        geoip2's model objects cost about twice a raw lookup on a hit and ten times on
        a miss (it raises); the raw record has the same structure, so we read it directly.
        """
        try:
            checker = geoip2.database.Reader(path)
        except FileNotFoundError as exc:
            raise GeoIPDatabaseError(path, "file not found") from exc
        except (OSError, maxminddb.InvalidDatabaseError, ValueError, TypeError) as exc:
            raise GeoIPDatabaseError(path, f"not a readable MaxMind database ({exc})") from exc
        try:
            db_type = checker.metadata().database_type
        finally:
            checker.close()
        if kind == "city":
            ok = any(t in db_type for t in ("City", "Country", "Enterprise"))
            want = "a City or Country"
        else:
            ok = "ASN" in db_type or "ISP" in db_type
            want = "an ASN or ISP"
        if not ok:
            raise GeoIPDatabaseError(path, f"database type {db_type!r} is not {want} database")
        try:
            reader = maxminddb.open_database(path)
        except (OSError, maxminddb.InvalidDatabaseError, ValueError) as exc:
            raise GeoIPDatabaseError(path, f"not a readable MaxMind database ({exc})") from exc
        return reader, reader.get

    def reopen_if_changed(self) -> bool:
        """Reopen when the file changed on disk; True if a new reader is in use."""
        sig = _signature(self.path)
        if sig == self.signature:
            return False
        self.signature = sig  # do not retry a bad file every interval; the next change retries
        if sig is None:
            return False  # file gone: keep serving from the open reader
        try:
            reader, lookup = self._open(self.path, self.kind)
        except GeoIPDatabaseError:
            return False
        old = self.reader
        self.reader, self.lookup = reader, lookup
        old.close()
        return True

    def close(self) -> None:
        self.reader.close()


def _en(node: Any) -> Any:
    names = node.get("names") if isinstance(node, dict) else None
    return names.get("en") if names else None


def _city_fields(rec: dict[str, Any], out: dict[str, Any]) -> None:
    """Fields of a raw City/Country/Enterprise record (English names)."""
    country = rec.get("country")
    if country:
        iso = country.get("iso_code")
        if iso:
            out["country_iso_code"] = iso
        name = _en(country)
        if name:
            out["country_name"] = name
    subdivisions = rec.get("subdivisions")
    if subdivisions:
        name = _en(subdivisions[-1])  # the most specific one
        if name:
            out["region_name"] = name
    name = _en(rec.get("city"))
    if name:
        out["city_name"] = name
    loc = rec.get("location")
    if loc:
        lat = loc.get("latitude")
        lon = loc.get("longitude")
        if lat is not None and lon is not None:
            out["location"] = {"lat": lat, "lon": lon}
        tz = loc.get("time_zone")
        if tz:
            out["timezone"] = tz


def _copy(result: dict[str, Any]) -> dict[str, Any]:
    out = result.copy()
    loc = out.get("location")
    if loc is not None:
        out["location"] = loc.copy()
    return out


class GeoIPEnricher:
    """Add ``event[target]`` from the IP in ``event[field]`` (see the module docstring)."""

    __slots__ = (
        "_asn",
        "_cache",
        "_cache_size",
        "_city",
        "_clock",
        "_get_field",
        "_next_check",
        "field",
        "reload_check_interval",
        "target",
    )

    def __init__(
        self,
        city_database: str,
        asn_database: str | None = None,
        field: str = "client_ip",
        target: str = "geoip",
        cache_size: int = 10000,
        reload_check_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        self._city = _Database(os.fspath(city_database), "city")
        try:
            self._asn = _Database(os.fspath(asn_database), "asn") if asn_database else None
        except GeoIPDatabaseError:
            self._city.close()
            raise
        self.field = field
        self._get_field = compile_getter(field)
        self.target = target
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_size = cache_size
        self.reload_check_interval = reload_check_interval
        self._clock = clock
        self._next_check = clock() + reload_check_interval

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database readers."""
        self._city.close()
        if self._asn is not None:
            self._asn.close()

    def __enter__(self) -> GeoIPEnricher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def maybe_reload(self) -> bool:
        """Stat the databases if the check interval has passed; reopen changed ones.

        Returns True when a database was reopened (the cache is then cleared).
        """
        now = self._clock()
        if now < self._next_check:
            return False
        self._next_check = now + self.reload_check_interval
        changed = self._city.reopen_if_changed()
        if self._asn is not None and self._asn.reopen_if_changed():
            changed = True
        if changed:
            self._cache.clear()
        return changed

    # -- enrichment --------------------------------------------------------------------------

    def __call__(self, event: Event) -> Event:
        if self._clock() >= self._next_check:
            self.maybe_reload()
        self._enrich(event)
        return event

    def enrich_batch(self, events: list[Event]) -> list[Event]:
        """Enrich every event of a batch in place (one reload check per batch)."""
        self.maybe_reload()
        enrich = self._enrich
        for event in events:
            enrich(event)
        return events

    def lookup(self, ip: str) -> dict[str, Any] | None:
        """The enrichment dict for ``ip``; ``{}`` for a skipped (private...) address, None on failure."""
        result = self._cached(ip)
        if result is _SKIP:
            return {}
        if result is _FAIL:
            return None
        return _copy(result)

    def _enrich(self, event: Event) -> None:
        ip = self._get_field(event)
        if ip is None or ip == "" or ip == "-":
            return
        if not isinstance(ip, str):
            add_tag(event, GEOIP_FAILURE)
            return
        result = self._cached(ip)
        if result is _SKIP:
            return
        if result is _FAIL:
            add_tag(event, GEOIP_FAILURE)
            return
        event[self.target] = _copy(result)

    def _cached(self, ip: str) -> Any:
        cache = self._cache
        result = cache.get(ip)
        if result is not None:
            cache.move_to_end(ip)  # most recently used
            return result
        result = self._resolve(ip)
        if self._cache_size:
            if len(cache) >= self._cache_size:
                cache.popitem(last=False)  # evict the least recently used
            cache[ip] = result
        return result

    def _resolve(self, text: str) -> Any:
        ip = text.strip()
        out: dict[str, Any] = {}
        try:
            # maxminddb parses the text itself (inet_pton in C; IPv4-mapped IPv6 included)
            # and raises ValueError for anything that is not an address.
            rec = self._city.lookup(ip)
            if rec:
                _city_fields(rec, out)
            if self._asn is not None:
                rec = self._asn.lookup(ip)
                if rec:
                    number = rec.get("autonomous_system_number")
                    if number is not None:
                        out["asn"] = number
                    org = rec.get("autonomous_system_organization")
                    if org:
                        out["as_org"] = org
        except ValueError:
            return _FAIL
        except maxminddb.InvalidDatabaseError:
            return _FAIL
        if out:
            return out
        # No record. MaxMind databases hold no private/reserved space, so only here do we
        # tell "skip" from "failure".
        return _SKIP if is_public_ip(ip) is False else _FAIL
