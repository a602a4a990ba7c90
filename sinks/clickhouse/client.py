"""The ClickHouse connection: a sync clickhouse-connect client driven from one worker thread.

clickhouse-connect's chDB backend has no async client, and a chDB connection
handle must not be used from two threads at once, so every call on the client
runs in a single-thread executor owned here: the event loop never blocks and
calls are serialised. A server over HTTP gets the same treatment (one client,
`threads` workers) so both backends behave alike.

The client is built through a factory argument (the I/O seam): unit tests inject
a client that fails the way a server can't be made to fail on demand.
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from pipeline.atomicfile import ensure_dir
from pipeline.tls import TlsOptions, client_context, refusal
from sinks.clickhouse.config import ClickHouseSinkConfig, Target


class SyncClient(Protocol):
    """The part of clickhouse_connect's Client the sink uses."""

    def command(self, cmd: str) -> Any: ...

    def query(self, query: str, settings: dict[str, Any] | None = None) -> Any: ...

    def insert(
        self,
        table: str,
        data: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        database: str,
        column_type_names: Sequence[str],
        column_oriented: bool,
        settings: dict[str, Any],
    ) -> Any: ...

    def close(self) -> None: ...


ClientFactory = Callable[[Target, ClickHouseSinkConfig, "str | None"], SyncClient]


def default_factory(target: Target, config: ClickHouseSinkConfig, password: str | None) -> SyncClient:
    import clickhouse_connect

    if target.embedded:
        if target.path is not None:
            ensure_dir(target.path)  # owner-only: chDB creates what is inside with the process umask
        client = clickhouse_connect.get_client(interface="chdb", path=str(target.path) if target.path else None)
    else:
        kwargs: dict[str, Any] = {
            "connect_timeout": config.connect_timeout,
            "send_receive_timeout": config.send_receive_timeout,
            # Several worker threads share this client; a session id would serialise them server-side.
            "autogenerate_session_id": False,
            "query_retries": 0,  # retries are the driver's job (backoff, metrics)
        }
        if password is not None:
            kwargs["password"] = password
        if target.server_dsn.lower().startswith("https:"):
            # clickhouse-connect ignores a DSN's scheme (only ports 443/8443 or `secure` mean TLS):
            # without this an https:// DSN on another port went out as plain HTTP, password and all.
            kwargs["interface"] = "https"
            kwargs["pool_mgr"] = tls_pool(config)
        client = clickhouse_connect.get_client(dsn=target.server_dsn, **kwargs)
    return cast(SyncClient, client)


def tls_pool(config: ClickHouseSinkConfig) -> Any:
    """A urllib3 pool on our own TLS context (pipeline/tls.py), so ClickHouse checks certificates the
    way every other client does; clickhouse-connect's own TLS keywords cannot take a key password."""
    from clickhouse_connect.driver.httputil import get_pool_manager

    tls = config.tls or TlsOptions()
    # cert_reqs follows the context: urllib3 applies it to the context it is given.
    return get_pool_manager(ssl_context=client_context(tls), verify=tls.verify, maxsize=8)


# -- error classification -------------------------------------------------------------

# Server error codes worth waiting out: overload, timeouts, network, a table or database
# that went missing (recreated at the next start), or credentials an operator is fixing.
TRANSIENT_CODES = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE
        60,  # UNKNOWN_TABLE
        81,  # UNKNOWN_DATABASE
        159,  # TIMEOUT_EXCEEDED
        160,  # TOO_SLOW
        164,  # READONLY
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        497,  # ACCESS_DENIED
        516,  # AUTHENTICATION_FAILED
        999,  # KEEPER_EXCEPTION
    }
)
# Server error codes that blame the data: some row in the block does not fit.
DATA_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        441,  # CANNOT_PARSE_IPV4
        442,  # CANNOT_PARSE_IPV6
        469,  # VIOLATED_CONSTRAINT
    }
)
# Raised by clickhouse-connect while serialising a value it cannot encode for its column.
_CLIENT_DATA_ERRORS = (ValueError, TypeError, AttributeError, OverflowError, struct.error, UnicodeError)

ErrorKind = Literal["transient", "data"]


def classify(exc: BaseException) -> ErrorKind:
    """Whether an insert failure is about the rows (bisect them) or about now (retry later).

    Unknown errors count as transient: retrying with backoff keeps the events (and shows
    the error in metrics and logs), while calling them data would dead-letter a batch for
    what may be a server or schema problem.
    """
    if isinstance(exc, OperationalError):
        return "transient"
    if isinstance(exc, DataError):
        return "data"  # raised client-side while serialising a column
    if isinstance(exc, DatabaseError):
        code = getattr(exc, "code", None)
        return "data" if code in DATA_CODES else "transient"
    if isinstance(exc, _CLIENT_DATA_ERRORS):
        return "data"
    return "transient"


_HTTP_REFUSED = re.compile(r"HTTP status (401|403)\b")


def refused_at_start(exc: BaseException) -> tuple[str, str] | None:
    """(key, reason) when opening the connection failed for good: TLS refused (pipeline.tls.refusal),
    or credentials refused (ClickHouse's AUTHENTICATION_FAILED / ACCESS_DENIED, or a proxy's 401/403)."""
    tls = refusal(exc)
    if tls is not None:
        return tls
    if isinstance(exc, DatabaseError):
        code = getattr(exc, "code", None)
        match = _HTTP_REFUSED.search(str(exc))
        if code in (497, 516) or match:
            status = f"HTTP {match.group(1)}" if match else f"code {code}"
            return "password", f"credentials refused ({status})"
    return None


def describe(exc: BaseException) -> str:
    """One line for a DLQ reason or a log: ClickHouse messages can run to pages."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    cut = text.find(". (")  # "...message. (ERROR_NAME) (version x)": keep the name, drop the rest
    if cut > 0:
        end = text.find(")", cut + 3)
        if end > 0:
            text = text[: end + 1]
    return text if len(text) <= 500 else text[:497] + "..."


# -- the client -------------------------------------------------------------------------


# Statements that return rows; anything else (DDL, OPTIMIZE, ...) runs as a command.
ROW_STATEMENTS = ("select", "with", "show", "describe", "desc", "explain", "exists", "(")
# Replays collapsed at read time on ReplacingMergeTree tables (ignored by other engines).
OPERATOR_QUERY_SETTINGS = {"final": 1}


@dataclass
class QueryResult:
    column_names: list[str]
    rows: list[tuple[Any, ...]]


class ClickHouseClient:
    """One clickhouse-connect client, used only from its own worker thread(s)."""

    def __init__(
        self,
        target: Target,
        config: ClickHouseSinkConfig,
        password: str | None = None,
        factory: ClientFactory | None = None,
        threads: int = 1,
    ) -> None:
        self.target = target
        self.config = config
        self._password = password
        self._factory = factory or default_factory
        # chDB: exactly one thread, always (its handles are not thread-safe).
        self._threads = 1 if target.embedded else max(1, threads)
        self._executor: ThreadPoolExecutor | None = None
        self._client: SyncClient | None = None

    @property
    def is_open(self) -> bool:
        return self._client is not None

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._executor is None:
            raise RuntimeError("the ClickHouse client is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def open(self) -> None:
        if self._client is not None:
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="clickhouse")
        self._client = await self._call(self._factory, self.target, self.config, self._password)

    def _require(self) -> SyncClient:
        if self._client is None:
            raise RuntimeError("the ClickHouse client is not open")
        return self._client

    async def command(self, sql: str) -> Any:
        return await self._call(self._require().command, sql)

    async def query(self, sql: str, settings: dict[str, Any] | None = None) -> QueryResult:
        result = await self._call(self._require().query, sql, settings=settings)
        return QueryResult(list(result.column_names), [tuple(r) for r in result.result_rows])

    async def statement(self, sql: str) -> QueryResult | str:
        """Run an operator's statement: rows for the ones that return rows, else the command's answer.

        Row queries run with `final = 1`: on the ReplacingMergeTree tables (`dedup`) an event replayed
        after a crash is counted once even before the background merge removed its copy.
        """
        if sql.lstrip().lower().startswith(ROW_STATEMENTS):
            return await self.query(sql, settings=OPERATOR_QUERY_SETTINGS)
        return str(await self.command(sql))

    async def insert(
        self,
        database: str,
        table: str,
        columns: list[list[Any]],
        names: Sequence[str],
        types: Sequence[str],
        settings: dict[str, Any],
    ) -> None:
        await self._call(
            self._require().insert,
            table,
            columns,
            column_names=names,
            database=database,
            column_type_names=types,
            column_oriented=True,
            settings=settings,
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            if client is not None:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(executor, client.close)
        finally:
            executor.shutdown(wait=False)
