"""A geoip transform right after an access parse, for lines written as JSON from their match.

The agent's commonest chain is parse -> geoip. For a line that `fastpath.access_block_json`
writes straight from its match, the geoip step is a JSON fragment appended after the
parsed fields: `,"geoip":{...}` for an address with a record, nothing for a private one,
`,"tags":["_geoip_lookup_failure"]` for a failure (the line has no tags before it). That is
exactly what the geoip transform adds to the event's dict, in the same place (its keys
come after the parser's); the fragment of an address is encoded once and reused while the
database is unchanged. Lines outside the common shape go through the transform itself.
"""

from __future__ import annotations

import orjson

from parsers.types import GEOIP_FAILURE
from pipeline.metrics import ComponentStats
from pipeline.transforms.base import Transform
from pipeline.transforms.geoip import GeoIPTransform
from pipeline.workers.fastpath import WRITTEN_KEYS

# Fragments kept per worker (one per client address): cleared whole when full, like a cheap LRU.
MAX_FRAGMENTS = 10_000
_FAILED = f',"tags":["{GEOIP_FAILURE}"]'


class GeoStep:
    """The geoip transform of a chain, as fragments of JSON per client address."""

    __slots__ = ("_fragments", "name", "stats", "transform")

    def __init__(self, name: str, transform: GeoIPTransform, stats: ComponentStats) -> None:
        self.name = name
        self.transform = transform
        self.stats = stats
        self._fragments: dict[str, str] = {}

    @staticmethod
    def applies(transform: Transform) -> bool:
        """A geoip transform reading `client_ip` into a key the common line does not write."""
        if not isinstance(transform, GeoIPTransform):
            return False
        enricher = transform.enricher
        return enricher.field == "client_ip" and enricher.target not in WRITTEN_KEYS

    def start_block(self) -> None:
        """Once per block, as the transform does once per batch: a changed database empties the cache."""
        if self.transform.enricher.maybe_reload():
            self._fragments.clear()

    def fragment(self, client_ip: str) -> str:
        """What the transform adds to the JSON of a common line whose client is `client_ip`."""
        fragment = self._fragments.get(client_ip)
        if fragment is None:
            fragment = self._encode(client_ip)
            if len(self._fragments) >= MAX_FRAGMENTS:
                self._fragments.clear()
            self._fragments[client_ip] = fragment
        if fragment is _FAILED:  # counted as the transform counts its tags
            tags = self.stats.tags
            tags[GEOIP_FAILURE] = tags.get(GEOIP_FAILURE, 0) + 1
        return fragment

    def _encode(self, client_ip: str) -> str:
        enricher = self.transform.enricher
        result = enricher.lookup(client_ip)  # {} private (nothing added), None a failure (tagged)
        if result is None:
            return _FAILED
        if not result:
            return ""
        # UTF-8 bytes held in a str (latin-1), as fastpath.py joins its lines (city names are not ASCII).
        body = orjson.dumps({enricher.target: result}, option=orjson.OPT_NON_STR_KEYS).decode("latin-1")
        return "," + body[1:-1]
