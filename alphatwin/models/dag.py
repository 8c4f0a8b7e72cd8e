"""A small, generic, deterministic DAG: each node maps to the set of nodes it reads (its upstream).

Nothing here knows about SQL or DuckDB; nodes are plain strings (``"clean.bars"``). A node that
is only ever named as upstream (an external source such as ``raw.bars``) is a node too, with no
upstream of its own. Every listing comes out in a deterministic order: topological, with ties
broken by name, so two runs over the same graph build the same tables in the same order.

Examples
--------
>>> dag = DAG({"b": {"a"}, "c": {"a", "b"}, "d": set()})
>>> dag.sorted()
['a', 'b', 'c', 'd']
>>> sorted(dag.select("b+"))
['b', 'c']
>>> DAG({"a": {"b"}, "b": {"a"}}).sorted()
Traceback (most recent call last):
...
alphatwin.errors.ModelError: cycle in the model graph: a -> b -> a
"""

from __future__ import annotations

import fnmatch
import heapq
from collections.abc import Iterable, Mapping

from alphatwin.errors import ModelError

__all__ = ["DAG"]


class DAG:
    """A directed acyclic graph of named nodes, stored as ``node -> upstream nodes``.

    Parameters
    ----------
    graph
        ``{node: upstream nodes}``. Upstream nodes that are not keys become nodes without
        upstream (sources). Cycles are accepted here and reported by :meth:`sorted`.
    """

    def __init__(self, graph: Mapping[str, Iterable[str]] | None = None) -> None:
        self._up: dict[str, set[str]] = {}
        self._down: dict[str, set[str]] = {}
        for node, upstream in (graph or {}).items():
            self.add(node, upstream)

    def add(self, node: str, upstream: Iterable[str] = ()) -> None:
        """Add ``node`` (if new) and edges from each of ``upstream`` to it."""
        self._up.setdefault(node, set())
        self._down.setdefault(node, set())
        for parent in upstream:
            self._up.setdefault(parent, set())
            self._down.setdefault(parent, set())
            self._up[node].add(parent)
            self._down[parent].add(node)

    def __contains__(self, node: object) -> bool:
        return node in self._up

    def __len__(self) -> int:
        return len(self._up)

    @property
    def graph(self) -> dict[str, set[str]]:
        """A copy of ``{node: upstream nodes}`` (including source nodes)."""
        return {node: set(up) for node, up in self._up.items()}

    @property
    def nodes(self) -> list[str]:
        """Every node, sorted by name."""
        return sorted(self._up)

    def upstream(self, node: str) -> set[str]:
        """The nodes ``node`` reads directly."""
        return set(self._up[self._known(node)])

    def downstream(self, node: str) -> set[str]:
        """The nodes that read ``node`` directly."""
        return set(self._down[self._known(node)])

    def upstream_closure(self, node: str) -> set[str]:
        """Every node ``node`` depends on, directly or not (``node`` itself excluded)."""
        return self._closure(self._known(node), self._up)

    def downstream_closure(self, node: str) -> set[str]:
        """Every node that depends on ``node``, directly or not (``node`` itself excluded)."""
        return self._closure(self._known(node), self._down)

    def edges(self) -> list[tuple[str, str]]:
        """``(upstream, downstream)`` pairs, in topological order of the downstream node."""
        rank = {node: i for i, node in enumerate(self.sorted())}
        return sorted(((up, node) for node, ups in self._up.items() for up in ups),
                      key=lambda e: (rank[e[1]], rank[e[0]]))

    def sorted(self) -> list[str]:
        """Nodes in topological order (upstream first), ties broken by name.

        Raises
        ------
        ModelError
            If the graph has a cycle; the message prints it as ``a -> b -> c -> a`` in the
            direction data flows (each node is read by the next).
        """
        pending = {node: len(up) for node, up in self._up.items()}
        ready = [node for node, n in pending.items() if n == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            node = heapq.heappop(ready)
            order.append(node)
            for child in self._down[node]:
                pending[child] -= 1
                if pending[child] == 0:
                    heapq.heappush(ready, child)
        if len(order) < len(self._up):
            cycle = self.find_cycle()
            assert cycle is not None, "Kahn's algorithm stalled without a cycle"
            raise ModelError(f"cycle in the model graph: {' -> '.join(cycle)}")
        return order

    def find_cycle(self) -> list[str] | None:
        """One cycle as ``[a, b, ..., a]`` (data-flow direction, smallest name first), or None."""
        done: set[str] = set()
        for start in sorted(self._up):
            if start in done:
                continue
            cycle = self._cycle_from(start, done)
            if cycle is not None:
                i = cycle.index(min(cycle))
                ring = cycle[i:] + cycle[:i]
                return [*ring, ring[0]]
        return None

    def _cycle_from(self, start: str, done: set[str]) -> list[str] | None:
        """Depth-first search along downstream edges; the nodes of the first cycle met, or None."""
        path: list[str] = [start]
        on_path = {start}
        stack = [iter(sorted(self._down[start]))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
            elif child in on_path:
                return path[path.index(child):]
            elif child not in done:
                path.append(child)
                on_path.add(child)
                stack.append(iter(sorted(self._down[child])))
        return None

    def subdag(self, nodes: Iterable[str]) -> DAG:
        """The graph induced by ``nodes``: only edges between two of them are kept."""
        keep = {self._known(n) for n in nodes}
        return DAG({n: self._up[n] & keep for n in keep})

    def select(self, specs: str | Iterable[str]) -> set[str]:
        """The nodes named by selection ``specs`` (dbt-style graph operators).

        Each spec is ``NAME`` (that node), ``NAME+`` (it and everything downstream),
        ``+NAME`` (it and everything upstream) or ``+NAME+`` (both). ``NAME`` may be a glob
        (``clean.*``). A string may hold several specs separated by commas or spaces; the
        result is their union.

        Raises
        ------
        ModelError
            If a spec is empty or matches no node.
        """
        items = [specs] if isinstance(specs, str) else list(specs)
        chosen: set[str] = set()
        for item in items:
            for spec in item.replace(",", " ").split():
                chosen |= self._select_one(spec)
        return chosen

    def _select_one(self, spec: str) -> set[str]:
        up, down = spec.startswith("+"), spec.endswith("+") and len(spec) > 1
        name = spec[1 if up else 0 : -1 if down else None]
        if not name or "+" in name:
            raise ModelError(f"selection must look like NAME, NAME+, +NAME or +NAME+, got {spec!r}")
        matched = set(fnmatch.filter(self._up, name)) if any(c in name for c in "*?[") else (
            {name} if name in self._up else set())
        if not matched:
            raise ModelError(f"selection {spec!r} matches no model; known: {_shortlist(self.nodes)}")
        out = set(matched)
        for node in matched:
            if up:
                out |= self._closure(node, self._up)
            if down:
                out |= self._closure(node, self._down)
        return out

    def _known(self, node: str) -> str:
        if node not in self._up:
            raise ModelError(f"unknown node {node!r}; known: {_shortlist(self.nodes)}")
        return node

    @staticmethod
    def _closure(node: str, edges: dict[str, set[str]]) -> set[str]:
        seen: set[str] = set()
        todo = list(edges[node])
        while todo:
            nxt = todo.pop()
            if nxt not in seen:
                seen.add(nxt)
                todo.extend(edges[nxt])
        seen.discard(node)
        return seen


def _shortlist(names: list[str], limit: int = 12) -> str:
    if not names:
        return "(none)"
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
