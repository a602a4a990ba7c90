"""Sinks: where events leave the pipeline. Each module registers itself at import."""
