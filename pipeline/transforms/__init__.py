"""Transforms: what happens to events between sources and sinks, one module per transform."""
