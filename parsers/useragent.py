"""User agents: ``user_agent`` -> browser name and version, OS, device (``ua-parser``), LRU cached.

The regexes are uap-core's, maintained upstream and shipped in ``ua-parser-builtins``;
``ua-parser-rs`` (the ``ua-parser[regex]`` extra) runs them natively. Without the
accelerator ``ua-parser`` falls back to its pure-Python resolver, which gives the same
answers much more slowly.

One uncached lookup costs tens of microseconds even with the accelerator (several times
a whole access-log parse), so results are kept in a bounded LRU cache keyed by the string:
real traffic repeats a few hundred agents, and a hit costs one dict lookup.

Fields set (only the parts that were recognised; ``Other`` means not recognised and is
left out): ``user_agent_name`` (``Chrome Mobile``), ``user_agent_version`` (``120.0.6099``),
``user_agent_os_name`` (``Android``), ``user_agent_os_version`` (``14``),
``user_agent_device`` (``Pixel 8``). Never raises; an empty or ``-`` agent sets nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from parsers.errors import OptionError, ParserError
from parsers.types import Event

__all__ = ["DEFAULT_CACHE_SIZE", "UserAgentParser"]

DEFAULT_CACHE_SIZE = 10000
_EMPTY: tuple[tuple[str, str], ...] = ()


def _version(*parts: str | None) -> str | None:
    """ "120", "0", None -> "120.0"; the leading parts that are set."""
    out = []
    for part in parts:
        if not part:
            break
        out.append(part)
    return ".".join(out) or None


class UserAgentParser:
    """``__call__(event)`` adds the parsed fields of ``event["user_agent"]`` (see module doc)."""

    __slots__ = ("_cache", "_cache_size", "_domains", "_resolve", "field")

    def __init__(self, field: str = "user_agent", cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        if cache_size < 1:
            raise OptionError("user_agent_cache_size", "user agent cache_size must be >= 1")
        try:
            import ua_parser
        except ImportError as exc:  # a runtime dependency; say which one is missing
            raise ParserError(f"user agent parsing needs the ua-parser package: {exc}") from None
        # The lazy builtins compile each regex on first use: a fast start, and the accelerator
        # (when installed) is what BestAvailableResolver picks.
        self._resolve: Any = ua_parser.BestAvailableResolver(ua_parser.load_lazy_builtins())
        self._domains = ua_parser.Domain.ALL
        self._cache: OrderedDict[str, tuple[tuple[str, str], ...]] = OrderedDict()
        self._cache_size = cache_size
        self.field = field

    def lookup(self, agent: str) -> dict[str, str]:
        """The fields for ``agent`` (empty when nothing was recognised)."""
        return dict(self._fields(agent))

    def _fields(self, agent: str) -> tuple[tuple[str, str], ...]:
        cache = self._cache
        hit = cache.get(agent)
        if hit is not None:
            cache.move_to_end(agent)
            return hit
        try:
            result = self._resolve(agent, self._domains)
        except Exception:  # a resolver bug must not lose the event: no fields, cached too
            fields = _EMPTY
        else:
            fields = self._read(result)
        cache[agent] = fields
        if len(cache) > self._cache_size:
            cache.popitem(last=False)
        return fields

    @staticmethod
    def _read(result: Any) -> tuple[tuple[str, str], ...]:
        out: list[tuple[str, str]] = []
        ua, os, device = result.user_agent, result.os, result.device
        if ua is not None and ua.family != "Other":
            out.append(("user_agent_name", ua.family))
            version = _version(ua.major, ua.minor, ua.patch)
            if version:
                out.append(("user_agent_version", version))
        if os is not None and os.family != "Other":
            out.append(("user_agent_os_name", os.family))
            version = _version(os.major, os.minor, os.patch)
            if version:
                out.append(("user_agent_os_version", version))
        if device is not None and device.family != "Other":
            out.append(("user_agent_device", device.family))
        return tuple(out)

    def __call__(self, event: Event) -> Event:
        agent = event.get(self.field)
        if type(agent) is str and agent and agent != "-":
            for key, value in self._fields(agent):
                event[key] = value
        return event
