"""IP address helpers (parsers/ipaddr.py)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsers.ipaddr import is_public_ip, split_host_port


class TestClassification:
    @given(st.integers(min_value=0, max_value=2**32 - 1))
    def test_ipv4_fast_check_agrees_with_ipaddress(self, n: int) -> None:
        addr = ipaddress.IPv4Address(n)
        assert is_public_ip(str(addr)) == (addr.is_global and not addr.is_multicast)

    @pytest.mark.parametrize(
        "ip",
        ["0.0.0.0", "9.255.255.255", "10.0.0.0", "11.0.0.0", "100.63.255.255", "100.64.0.0", "100.127.255.255",
         "172.15.255.255", "172.16.0.0", "172.31.255.255", "172.32.0.0", "192.0.0.7", "192.0.0.8", "192.0.0.170",
         "192.0.0.172", "223.255.255.255", "224.0.0.0", "255.255.255.255", "::1", "2001:db8::1", "2001:218::",
         "ff02::1", "::ffff:10.0.0.1", "::ffff:81.2.69.142"],
    )  # fmt: skip
    def test_edges(self, ip: str) -> None:
        addr = ipaddress.ip_address(ip)
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        assert is_public_ip(ip) == (addr.is_global and not addr.is_multicast)

    @pytest.mark.parametrize(
        "text", ["unknown", "-", "", "host.example.com", "1.2.3", "1.2.3.4.5", "::g", "1.2.3.4:80"]
    )
    def test_not_an_address(self, text: str) -> None:
        assert is_public_ip(text) is None


class TestSplitHostPort:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("81.2.69.142", ("81.2.69.142", None)),
            ("81.2.69.142:51234", ("81.2.69.142", 51234)),
            ("[2001:db8::1]:443", ("2001:db8::1", 443)),
            ("[2001:db8::1]", ("2001:db8::1", None)),
            ("2001:db8::1", ("2001:db8::1", None)),
            ("2001:db8::1:5678", ("2001:db8::1:5678", None)),  # a valid address itself: not split
            ("www.example.com:443", ("www.example.com", 443)),
            ("www.example.com", ("www.example.com", None)),
            ("unix:/run/app.sock", ("unix:/run/app.sock", None)),
        ],
    )
    def test_split(self, text: str, expected: tuple[str, int | None]) -> None:
        assert split_host_port(text) == expected
