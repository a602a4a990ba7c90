"""The table `pipeline run --once` prints at the end."""

from __future__ import annotations

from pipeline.metrics import Metrics

PARSE_FAILURE_TAGS = ("_grokparsefailure", "_dateparsefailure", "_jsonparsefailure", "_geoip_lookup_failure")


def render_summary(metrics: Metrics, elapsed: float) -> str:
    header = ("component", "kind", "type", "in", "out", "dropped", "failed", "dead-lettered", "parse failures")
    rows = []
    for s in metrics.stats.values():
        parse_failures = sum(n for tag, n in s.tags.items() if tag in PARSE_FAILURE_TAGS)
        rows.append(
            (
                s.name,
                s.kind,
                s.type_name,
                str(s.events_in) if s.kind != "source" else "-",
                str(s.events_out),
                str(s.events_dropped) if s.kind == "transform" else "-",
                str(s.events_failed),
                str(s.dead_lettered),
                str(parse_failures) if s.kind == "transform" else "-",
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        cols = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in cols)

    out = [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]
    src_out = sum(s.events_out for s in metrics.stats.values() if s.kind == "source")
    rate = src_out / elapsed if elapsed > 0 else 0.0
    out.append(
        f"summary: {src_out} events read in {elapsed:.2f}s ({rate:,.0f} events/s), "
        f"{metrics.totals()['dead_lettered']} dead-lettered"
    )
    return "\n".join(out)
