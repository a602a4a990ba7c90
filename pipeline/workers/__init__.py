"""Worker processes: a file's chunks framed, transformed and encoded on every core.

`plan.py` decides which sources can be offloaded (a plain file source whose
events flow through a chain of per-event transforms into sinks), `pool.py` runs
the worker processes from the main process, and `worker.py` is what runs in
them. See docs/architecture.md ("Using every core").
"""
