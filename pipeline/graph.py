"""Graph checks over the `inputs` of transforms and sinks.

Reports unknown inputs and outputs, cycles, sinks without inputs and sources
nobody reads, each naming the component and key. Also gives the topological
order used to build the running topology.

An input names a source or transform (`parsed`), or one named output of a
transform that has several (`router.errors`, a `route`). A name that exists as
written wins over the `name.output` reading, so component names with dots
still work.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any


def split_input(ref: str, producers: Collection[str]) -> tuple[str, str | None]:
    """`router.errors` -> ("router", "errors"); `parsed` -> ("parsed", None)."""
    if ref in producers:
        return ref, None
    base, dot, output = ref.rpartition(".")
    if dot and base in producers:
        return base, output
    return ref, None


def _inputs(body: Any) -> list[str]:
    if isinstance(body, dict):
        value = body.get("inputs")
        if isinstance(value, list):
            return [str(v) for v in value]
    return []


def check_graph(root: Any, outputs: Mapping[str, tuple[str, ...]] | None = None) -> list[str]:
    """Return graph problems as `section.name.inputs: message` lines.

    `outputs` gives each validated transform's named outputs (() for a single output);
    a transform missing from it failed validation, so references to its outputs are not judged.
    """
    problems: list[str] = []
    sources = set(root.sources)
    transforms = set(root.transforms)
    producers = sources | transforms
    outputs = outputs if outputs is not None else {}
    owner: dict[str, str] = {}
    for section in ("sources", "transforms", "sinks"):
        for name in getattr(root, section):
            if name in owner:
                problems.append(f"{section}.{name}: name already used in {owner[name]}")
            else:
                owner[name] = section

    consumed: set[str] = set()
    for section, names in (("transforms", root.transforms), ("sinks", root.sinks)):
        for name, body in names.items():
            inputs = _inputs(body)
            for i, inp in enumerate(inputs):
                key = f"{section}.{name}.inputs[{i}]"
                base, output = split_input(inp, producers)
                if base not in producers:
                    problems.append(f"{key}: unknown input {inp!r}")
                    continue
                consumed.add(base)
                if base == name:
                    problems.append(f"{key}: a component cannot read itself")
                elif inputs.index(inp) < i:
                    problems.append(f"{key}: {inp!r} is listed twice (its events would arrive twice)")
                named = () if base in sources else outputs.get(base)
                problem = _output_problem(base, output, named)
                if problem:
                    problems.append(f"{key}: {problem}")

    for name in sorted(sources - consumed):
        problems.append(f"sources.{name}: unused source (no transform or sink lists it in `inputs`)")
    for name in sorted(transforms - consumed):
        problems.append(f"transforms.{name}: unused transform (no transform or sink lists it in `inputs`)")
    if not root.sinks:
        problems.append("sinks: at least one sink is required")

    cycle = _find_cycle({n: [split_input(i, producers)[0] for i in _inputs(b)] for n, b in root.transforms.items()})
    if cycle:
        problems.append(f"transforms.{cycle[0]}.inputs: cycle {' -> '.join(cycle)}")
    return problems


def _output_problem(base: str, output: str | None, named: tuple[str, ...] | None) -> str | None:
    """What is wrong with reading `output` of `base` (`named`: its outputs; None: not known)."""
    if named is None:
        return None
    if output is None:
        if named:
            choices = ", ".join(f"{base}.{o}" for o in named)
            return f"{base!r} has named outputs: read one of them ({choices})"
        return None
    if not named:
        return f"{base!r} has no named outputs (write {base!r})"
    if output not in named:
        return f"unknown output {output!r} of {base!r} (outputs: {', '.join(named)})"
    return None


def _find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, []):
            if nxt not in edges:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def topological_transforms(transforms: dict[str, Any]) -> list[str]:
    """Transforms ordered so each comes after every transform it reads."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        body = transforms[name]
        for inp in getattr(body, "inputs", []):
            base = split_input(inp, transforms)[0]
            if base in transforms:
                visit(base)
        order.append(name)

    for name in sorted(transforms):
        visit(name)
    return order
