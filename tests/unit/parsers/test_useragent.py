"""User-agent parsing with ua-parser and its LRU cache (parsers/useragent.py)."""

from __future__ import annotations

import pytest

from parsers import EventParser
from parsers.useragent import UserAgentParser

CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Mobile/15E148 Safari/604.1"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


@pytest.fixture(scope="module")
def ua() -> UserAgentParser:
    return UserAgentParser()


class TestLookup:
    @pytest.mark.parametrize(
        ("agent", "expected"),
        [
            pytest.param(CHROME_ANDROID, {"user_agent_name": "Chrome Mobile", "user_agent_version": "120.0.6099",
                                          "user_agent_os_name": "Android", "user_agent_os_version": "14",
                                          "user_agent_device": "Pixel 8"}, id="chrome-android"),
            pytest.param(SAFARI_IPHONE, {"user_agent_name": "Mobile Safari", "user_agent_version": "17.2",
                                         "user_agent_os_name": "iOS", "user_agent_os_version": "17.2",
                                         "user_agent_device": "iPhone"}, id="safari-iphone"),
            pytest.param(FIREFOX_LINUX, {"user_agent_name": "Firefox", "user_agent_version": "121.0",
                                         "user_agent_os_name": "Linux"}, id="firefox-linux"),
            pytest.param("curl/8.5.0", {"user_agent_name": "curl", "user_agent_version": "8.5.0"}, id="curl"),
            pytest.param("kube-probe/1.29", {}, id="unknown-is-left-out"),
            pytest.param("\ufffd\ufffd garbage \x00", {}, id="garbage"),
        ],
    )  # fmt: skip
    def test_fields(self, ua: UserAgentParser, agent: str, expected: dict[str, str]) -> None:
        assert ua.lookup(agent) == expected

    @pytest.mark.parametrize("value", [None, "", "-", 42, ["curl/8.5.0"]])
    def test_absent_or_not_text_sets_nothing(self, ua: UserAgentParser, value: object) -> None:
        event = {"message": "x", "user_agent": value}
        assert ua(dict(event)) == event

    def test_other_field(self) -> None:
        parser = UserAgentParser(field="agent")
        assert parser({"agent": "curl/8.5.0"})["user_agent_name"] == "curl"


class TestCache:
    def test_lru_keeps_the_recent_agents(self) -> None:
        parser = UserAgentParser(cache_size=2)
        parser.lookup(CHROME_ANDROID)
        parser.lookup(SAFARI_IPHONE)
        parser.lookup(CHROME_ANDROID)  # now the most recent
        parser.lookup(FIREFOX_LINUX)  # evicts Safari, the least recent
        assert list(parser._cache) == [CHROME_ANDROID, FIREFOX_LINUX]
        assert parser.lookup(SAFARI_IPHONE)["user_agent_device"] == "iPhone"  # parsed again, same answer

    def test_bad_size(self) -> None:
        with pytest.raises(ValueError, match="cache_size"):
            UserAgentParser(cache_size=0)


class TestOnTheParser:
    LINE = f'81.2.69.142 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 5 "-" "{SAFARI_IPHONE}"'

    def test_off_by_default(self) -> None:
        event = EventParser("access")({"message": self.LINE})
        assert not [k for k in event if k.startswith("user_agent_")]

    def test_on(self) -> None:
        event = EventParser("access", user_agent=True)({"message": self.LINE})
        assert event["user_agent_os_name"] == "iOS"
        assert event["user_agent"] == SAFARI_IPHONE

    def test_json_application_logs_too(self) -> None:
        event = EventParser("auto", user_agent=True)({"message": '{"msg": "hi", "user_agent": "curl/8.5.0"}'})
        assert event["user_agent_name"] == "curl"
