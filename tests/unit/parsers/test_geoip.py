"""GeoIP enrichment against MaxMind's test databases (known-IP table of data/geoip/README.md)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from parsers import GeoIPDatabaseError, GeoIPEnricher
from parsers.types import GEOIP_FAILURE

GEO = Path(__file__).resolve().parents[2] / "data" / "geoip"
CITY = str(GEO / "GeoLite2-City-Test.mmdb")
ASN = str(GEO / "GeoLite2-ASN-Test.mmdb")
COUNTRY = str(GEO / "GeoLite2-Country-Test.mmdb")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def enricher() -> Any:
    with GeoIPEnricher(CITY, ASN) as g:
        yield g


def geo(enricher: GeoIPEnricher, ip: Any) -> dict[str, Any]:
    return enricher({"client_ip": ip})


class TestKnownIPs:
    # (ip, country, city, asn, as_org) from the README table (GeoLite2-City + GeoLite2-ASN columns).
    @pytest.mark.parametrize(
        ("ip", "country", "city", "asn", "as_org"),
        [
            pytest.param("81.2.69.142", "GB", "London", None, None, id="london"),
            pytest.param("81.2.69.160", "GB", "London", None, None, id="london-2"),
            pytest.param("89.160.20.112", "SE", "Linköping", 29518, "Bredband2 AB", id="linkoping-asn"),
            pytest.param("89.160.20.128", "SE", "Linköping", 29518, "Bredband2 AB", id="linkoping-asn-2"),
            pytest.param("175.16.199.0", "CN", "Changchun", None, None, id="changchun"),
            pytest.param("216.160.83.56", "US", "Milton", 209, None, id="milton-asn-without-org"),
            pytest.param("2.125.160.216", "GB", "Boxford", None, None, id="boxford"),
            pytest.param("67.43.156.0", "BT", None, 35908, None, id="country-without-city"),
            pytest.param("202.196.224.0", "PH", None, None, None, id="philippines"),
            pytest.param("2001:218::", "JP", None, None, None, id="ipv6"),
            pytest.param("1.128.0.0", None, None, 1221, "Telstra Pty Ltd", id="asn-only"),
            pytest.param("12.81.92.0", None, None, 7018, "AT&T Services", id="asn-only-2"),
            pytest.param("149.101.100.0", None, None, 6167, "CELLCO-PART", id="not-in-geolite-city"),
        ],
    )
    def test_lookup(
        self, enricher: GeoIPEnricher, ip: str, country: str | None, city: str | None, asn: int | None,
        as_org: str | None,
    ) -> None:  # fmt: skip
        event = geo(enricher, ip)
        assert "tags" not in event
        g = event["geoip"]
        assert g.get("country_iso_code") == country
        assert g.get("city_name") == city
        assert g.get("asn") == asn
        assert g.get("as_org") == as_org

    def test_full_city_record(self, enricher: GeoIPEnricher) -> None:
        assert geo(enricher, "81.2.69.142")["geoip"] == {
            "country_iso_code": "GB",
            "country_name": "United Kingdom",
            "region_name": "England",
            "city_name": "London",
            "location": {"lat": 51.5142, "lon": -0.0931},
            "timezone": "Europe/London",
        }

    def test_missing_keys_are_absent_not_none(self, enricher: GeoIPEnricher) -> None:
        g = geo(enricher, "67.43.156.0")["geoip"]
        assert set(g) == {"country_iso_code", "country_name", "location", "timezone", "asn"}

    def test_ipv4_mapped_ipv6(self, enricher: GeoIPEnricher) -> None:
        assert geo(enricher, "::ffff:81.2.69.142")["geoip"]["city_name"] == "London"


class TestSkipsAndFailures:
    @pytest.mark.parametrize(
        "ip",
        ["10.0.0.1", "192.168.1.1", "172.16.5.4", "127.0.0.1", "::1", "169.254.1.1", "fe80::1", "224.0.0.1",
         "0.0.0.0", "::", "240.0.0.1"],
    )  # fmt: skip
    def test_non_public_skipped_without_tag(self, enricher: GeoIPEnricher, ip: str) -> None:
        assert geo(enricher, ip) == {"client_ip": ip}

    @pytest.mark.parametrize("ip", ["8.8.8.8", "not-an-ip", "1.2.3.4:80", "999.1.1.1", "\ufffd", 12345])
    def test_failure_tagged(self, enricher: GeoIPEnricher, ip: Any) -> None:
        event = geo(enricher, ip)
        assert event == {"client_ip": ip, "tags": [GEOIP_FAILURE]}

    @pytest.mark.parametrize("event", [{}, {"client_ip": None}, {"client_ip": ""}, {"client_ip": "-"}])
    def test_absent_field_does_nothing(self, enricher: GeoIPEnricher, event: dict[str, Any]) -> None:
        before = dict(event)
        assert enricher(event) == before

    def test_custom_field_and_target_nested_source(self) -> None:
        with GeoIPEnricher(CITY, field="client.address", target="client_geo") as g:
            event = g({"client": {"address": "81.2.69.142"}})
        assert event["client_geo"]["country_iso_code"] == "GB"


class TestDatabases:
    def test_country_database_as_city(self) -> None:
        with GeoIPEnricher(COUNTRY) as g:
            assert geo(g, "81.2.69.142")["geoip"] == {"country_iso_code": "GB", "country_name": "United Kingdom"}
            # GeoLite2-Country-Test has no record for this one (the City DBs do).
            assert geo(g, "175.16.199.0")["tags"] == [GEOIP_FAILURE]

    @pytest.mark.parametrize(
        ("city", "asn", "match"),
        [
            pytest.param("/nonexistent/City.mmdb", None, "/nonexistent/City.mmdb.*file not found", id="missing"),
            pytest.param(ASN, None, "GeoLite2-ASN.*is not a City or Country", id="asn-as-city"),
            pytest.param(CITY, CITY, "GeoLite2-City.*is not an ASN", id="city-as-asn"),
        ],
    )
    def test_open_errors_name_the_path(self, city: str, asn: str | None, match: str) -> None:
        with pytest.raises(GeoIPDatabaseError, match=match):
            GeoIPEnricher(city, asn)

    def test_not_a_database(self, tmp_path: Path) -> None:
        bogus = tmp_path / "bogus.mmdb"
        bogus.write_bytes(b"this is not a maxmind database" * 10)
        with pytest.raises(GeoIPDatabaseError, match=r"bogus\.mmdb.*not a readable MaxMind database") as info:
            GeoIPEnricher(str(bogus))
        assert info.value.path == str(bogus)

    def test_directory_is_unreadable(self, tmp_path: Path) -> None:
        with pytest.raises(GeoIPDatabaseError, match=str(tmp_path)):
            GeoIPEnricher(str(tmp_path))


class TestCache:
    def test_results_are_independent_copies(self, enricher: GeoIPEnricher) -> None:
        a = geo(enricher, "81.2.69.142")
        a["geoip"]["location"]["lat"] = 0
        a["geoip"]["city_name"] = "changed"
        b = geo(enricher, "81.2.69.142")
        assert b["geoip"]["city_name"] == "London"
        assert b["geoip"]["location"]["lat"] == 51.5142

    def test_bounded_lru(self) -> None:
        with GeoIPEnricher(CITY, cache_size=2) as g:
            for ip in ["81.2.69.142", "89.160.20.112", "81.2.69.142", "175.16.199.0"]:
                geo(g, ip)
            # 89.160.20.112 was least recently used and is the one evicted.
            assert list(g._cache) == ["81.2.69.142", "175.16.199.0"]

    def test_cache_disabled(self) -> None:
        with GeoIPEnricher(CITY, cache_size=0) as g:
            assert geo(g, "81.2.69.142")["geoip"]["city_name"] == "London"
            assert g._cache == {}

    def test_lookup_api(self, enricher: GeoIPEnricher) -> None:
        assert enricher.lookup("10.0.0.1") == {}
        assert enricher.lookup("8.8.8.8") is None
        assert enricher.lookup("1.128.0.0") == {"asn": 1221, "as_org": "Telstra Pty Ltd"}


class TestReload:
    @pytest.fixture
    def db(self, tmp_path: Path) -> Path:
        path = tmp_path / "geo.mmdb"
        shutil.copy(CITY, path)
        return path

    @staticmethod
    def replace(path: Path, source: str) -> None:
        """Atomic replacement, as geoipupdate does."""
        tmp = path.with_suffix(".tmp")
        shutil.copy(source, tmp)
        os.replace(tmp, path)

    def test_reload_after_interval_on_change(self, db: Path) -> None:
        clock = FakeClock()
        with GeoIPEnricher(str(db), reload_check_interval=5.0, clock=clock) as g:
            assert geo(g, "175.16.199.0")["geoip"]["city_name"] == "Changchun"
            self.replace(db, COUNTRY)  # another database type: Country, no record for this IP
            clock.now += 4.9
            assert geo(g, "175.16.199.0")["geoip"]["city_name"] == "Changchun"  # not checked yet (and cached)
            clock.now += 0.2
            assert geo(g, "175.16.199.0")["tags"] == [GEOIP_FAILURE]  # reopened, cache cleared
            assert geo(g, "81.2.69.142")["geoip"] == {"country_iso_code": "GB", "country_name": "United Kingdom"}

    def test_unusable_new_file_keeps_old_reader(self, db: Path) -> None:
        clock = FakeClock()
        with GeoIPEnricher(str(db), reload_check_interval=1.0, clock=clock) as g:
            self.replace(db, ASN)  # wrong type for the city slot
            clock.now += 2
            assert g.maybe_reload() is False
            assert geo(g, "81.2.69.142")["geoip"]["city_name"] == "London"
            db.unlink()  # gone entirely
            clock.now += 2
            assert g.maybe_reload() is False
            assert geo(g, "89.160.20.112")["geoip"]["city_name"] == "Linköping"
            self.replace(db, COUNTRY)  # a good file again: picked up
            clock.now += 2
            assert g.maybe_reload() is True
            assert "city_name" not in geo(g, "81.2.69.142")["geoip"]

    def test_unchanged_file_is_not_reopened(self, db: Path) -> None:
        clock = FakeClock()
        with GeoIPEnricher(str(db), reload_check_interval=1.0, clock=clock) as g:
            reader = g._city.reader
            clock.now += 10
            assert g.maybe_reload() is False
            assert g._city.reader is reader

    def test_asn_database_reloads_too(self, tmp_path: Path) -> None:
        asn = tmp_path / "asn.mmdb"
        shutil.copy(ASN, asn)
        clock = FakeClock()
        with GeoIPEnricher(CITY, str(asn), reload_check_interval=1.0, clock=clock) as g:
            assert g.lookup("1.128.0.0") == {"asn": 1221, "as_org": "Telstra Pty Ltd"}
            self.replace(asn, ASN)  # same content, new inode: reopened, cache cleared
            clock.now += 2
            assert g.enrich_batch([{"client_ip": "1.128.0.0"}])[0]["geoip"]["asn"] == 1221
            assert g._cache == {"1.128.0.0": g._cache["1.128.0.0"]}


def test_batch(enricher: GeoIPEnricher) -> None:
    events = [{"client_ip": "81.2.69.142"}, {"client_ip": "10.0.0.1"}, {"client_ip": "8.8.8.8"}, {}]
    out = enricher.enrich_batch(events)
    assert out is events
    assert [("geoip" in e, e.get("tags")) for e in out] == [
        (True, None),
        (False, None),
        (False, [GEOIP_FAILURE]),
        (False, None),
    ]


def test_test_databases_match_shared_copies() -> None:
    shared = Path("/work/shared/data/geoip")
    if not shared.is_dir():
        pytest.skip("shared GeoIP data not present on this machine")
    for name in ("GeoLite2-City-Test.mmdb", "GeoLite2-ASN-Test.mmdb", "GeoLite2-Country-Test.mmdb"):
        assert (GEO / name).read_bytes() == (shared / name).read_bytes()
