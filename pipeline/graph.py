"""Graph checks over the `inputs` of transforms and sinks.

Reports unknown inputs, cycles, sinks without inputs and sources nobody reads,
each naming the component and key. Also gives the topological order used to
build the running topology.
"""

from __future__ import annotations

from typing import Any


def _inputs(body: Any) -> list[str]:
    if isinstance(body, dict):
        value = body.get("inputs")
        if isinstance(value, list):
            return [str(v) for v in value]
    return []


def check_graph(root: Any) -> list[str]:
    """Return graph problems as `section.name.inputs: message` lines."""
    problems: list[str] = []
    sources = set(root.sources)
    transforms = set(root.transforms)
    producers = sources | transforms
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
                if inp not in producers:
                    problems.append(f"{section}.{name}.inputs[{i}]: unknown input {inp!r}")
                elif inp == name:
                    problems.append(f"{section}.{name}.inputs[{i}]: a component cannot read itself")
                consumed.add(inp)

    for name in sorted(sources - consumed):
        problems.append(f"sources.{name}: unused source (no transform or sink lists it in `inputs`)")
    for name in sorted(transforms - consumed):
        problems.append(f"transforms.{name}: unused transform (no transform or sink lists it in `inputs`)")
    if not root.sinks:
        problems.append("sinks: at least one sink is required")

    cycle = _find_cycle({n: _inputs(b) for n, b in root.transforms.items()})
    if cycle:
        problems.append(f"transforms.{cycle[0]}.inputs: cycle {' -> '.join(cycle)}")
    return problems


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
            if inp in transforms:
                visit(inp)
        order.append(name)

    for name in sorted(transforms):
        visit(name)
    return order
