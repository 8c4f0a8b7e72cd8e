"""The model graph for people: a plain-text lineage and a Mermaid flowchart for the docs.

Both list nodes in build order (topological, ties by name). External sources (``raw.bars``,
``quality.accepted_bars``) are drawn as cylinders, SQL models as boxes and Python models as
subroutine boxes.

Examples
--------
>>> from alphatwin.models.registry import Registry, Model
>>> m = Model("clean.bars", "sql", frozenset({"raw.bars"}), None, "", "")
>>> print(lineage_text(Registry({"clean.bars": m})))
raw.bars (source)
  -> clean.bars
clean.bars (sql)
"""

from __future__ import annotations

from alphatwin.models.registry import Registry

__all__ = ["lineage_text", "lineage_mermaid", "kind_of"]

_SHAPES = {"source": '[("{}")]', "sql": '["{}"]', "python": '[["{}"]]'}


def kind_of(registry: Registry, node: str) -> str:
    """``sql``, ``python`` or ``source`` (a table the models read but do not build)."""
    return registry[node].kind if node in registry else "source"


def lineage_text(registry: Registry) -> str:
    """Every node in build order with its kind, followed by the nodes that read it (``-> x``)."""
    dag = registry.dag()
    lines: list[str] = []
    for node in dag.sorted():
        lines.append(f"{node} ({kind_of(registry, node)})")
        lines += [f"  -> {child}" for child in sorted(dag.downstream(node))]
    return "\n".join(lines)


def lineage_mermaid(registry: Registry) -> str:
    """A Mermaid ``flowchart LR`` of the graph (paste it in a ```` ```mermaid ```` block)."""
    dag = registry.dag()
    order = dag.sorted()
    ids = {node: f"n{i}" for i, node in enumerate(order)}
    lines = ["flowchart LR"]
    for node in order:
        kind = kind_of(registry, node)
        lines.append(f"  {ids[node]}{_SHAPES[kind].format(node)}:::{kind}")
    lines += [f"  {ids[up]} --> {ids[down]}" for up, down in dag.edges()]
    lines += [
        "  classDef source fill:#eee,stroke:#888",
        "  classDef sql fill:#e8f0fe,stroke:#4a6fa5",
        "  classDef python fill:#fef3e0,stroke:#b7791f",
    ]
    return "\n".join(lines)
