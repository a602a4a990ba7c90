"""The elasticsearch-py names this sink uses, imported without pyarrow.

elasticsearch-py's serializer module imports pyarrow whenever it is installed, for an
Arrow serializer (ES|QL's Arrow responses) that this sink never asks for. Here pyarrow
is there as a dependency of the embedded ClickHouse extra, and importing it costs about
37 MiB of resident memory and 60 ms in every process that has an Elasticsearch sink
(issue 15's RSS bound: Kafka -> Elasticsearch was at 170-190 MiB). So the client is
imported with pyarrow hidden; pyarrow stays importable for whoever needs it afterwards
(the ClickHouse sink), and if something imported it already, nothing is hidden.
"""

from __future__ import annotations

import sys

_hide = "pyarrow" not in sys.modules
if _hide:
    sys.modules["pyarrow"] = None  # type: ignore[assignment]  # `import pyarrow` raises ImportError
try:
    from elasticsearch import ApiError, AsyncElasticsearch, TransportError
    from elasticsearch.serializer import OrjsonSerializer
finally:
    if _hide:
        del sys.modules["pyarrow"]

__all__ = ["ApiError", "AsyncElasticsearch", "OrjsonSerializer", "TransportError"]
