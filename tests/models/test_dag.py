"""The generic DAG, tested with dict literals: order, ties, cycles, closures and selection."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphatwin.errors import ModelError
from alphatwin.models.dag import DAG

# raw.bars -> clean.bars -> features.returns -> signals.momentum
#                        \-> features.range  -/
WAREHOUSE = {
    "clean.bars": {"raw.bars"},
    "features.returns": {"clean.bars"},
    "features.range": {"clean.bars"},
    "signals.momentum": {"features.returns", "features.range"},
    "meta.other": set(),
}


def test_topological_order_puts_upstream_first_and_breaks_ties_by_name():
    assert DAG(WAREHOUSE).sorted() == [
        "meta.other", "raw.bars", "clean.bars", "features.range", "features.returns", "signals.momentum",
    ]


def test_ties_are_broken_by_name_not_by_insertion_order():
    assert DAG({"c": set(), "a": set(), "b": set()}).sorted() == ["a", "b", "c"]
    assert DAG({"z": {"b"}, "y": {"a"}}).sorted() == ["a", "b", "y", "z"]


def test_order_is_the_same_whatever_the_insertion_order():
    items = list(WAREHOUSE.items())
    expected = DAG(WAREHOUSE).sorted()
    rng = random.Random(7)
    for _ in range(20):
        rng.shuffle(items)
        assert DAG(dict(items)).sorted() == expected


def test_sources_named_only_as_upstream_become_nodes():
    dag = DAG({"clean.bars": {"raw.bars"}})
    assert dag.nodes == ["clean.bars", "raw.bars"]
    assert dag.upstream("raw.bars") == set()
    assert dag.downstream("raw.bars") == {"clean.bars"}


def test_empty_graph():
    assert DAG().sorted() == []
    assert DAG({}).find_cycle() is None


def test_cycle_is_printed_in_data_flow_order_from_the_smallest_name():
    # b reads a, c reads b, a reads c: data flows a -> b -> c -> a
    with pytest.raises(ModelError, match=r"cycle in the model graph: a -> b -> c -> a$"):
        DAG({"a": {"c"}, "b": {"a"}, "c": {"b"}, "d": {"c"}}).sorted()


def test_two_node_cycle_and_self_loop():
    with pytest.raises(ModelError, match=r": x -> y -> x$"):
        DAG({"x": {"y"}, "y": {"x"}}).sorted()
    with pytest.raises(ModelError, match=r": solo -> solo$"):
        DAG({"solo": {"solo"}}).sorted()


def test_cycle_downstream_of_acyclic_part_is_found():
    dag = DAG({"b": {"a"}, "c": {"b", "d"}, "d": {"c"}})
    assert dag.find_cycle() == ["c", "d", "c"]


def test_closures():
    dag = DAG(WAREHOUSE)
    assert dag.upstream_closure("signals.momentum") == {"raw.bars", "clean.bars", "features.returns", "features.range"}
    assert dag.downstream_closure("clean.bars") == {"features.returns", "features.range", "signals.momentum"}
    assert dag.downstream_closure("signals.momentum") == set()
    assert dag.upstream("signals.momentum") == {"features.returns", "features.range"}


def test_edges_follow_build_order():
    assert DAG({"b": {"a"}, "c": {"b", "a"}}).edges() == [("a", "b"), ("a", "c"), ("b", "c")]


@pytest.mark.parametrize(("spec", "expected"), [
    ("features.returns", {"features.returns"}),
    ("features.returns+", {"features.returns", "signals.momentum"}),
    ("+features.returns", {"features.returns", "clean.bars", "raw.bars"}),
    ("+features.returns+", {"features.returns", "clean.bars", "raw.bars", "signals.momentum"}),
    ("clean.bars+", {"clean.bars", "features.returns", "features.range", "signals.momentum"}),
    ("features.*", {"features.returns", "features.range"}),
    ("features.range,meta.other", {"features.range", "meta.other"}),
    ("features.range meta.other", {"features.range", "meta.other"}),
])
def test_selection_syntax(spec, expected):
    assert DAG(WAREHOUSE).select(spec) == expected


def test_selection_of_several_specs_is_their_union():
    assert DAG(WAREHOUSE).select(["meta.other", "signals.momentum"]) == {"meta.other", "signals.momentum"}


@pytest.mark.parametrize("spec", ["nope.table", "nope.*", "+", "++", "a++b", "+nope+"])
def test_bad_selection_names_the_spec(spec):
    with pytest.raises(ModelError, match="selection"):
        DAG(WAREHOUSE).select(spec)


def test_unknown_node_is_an_error():
    with pytest.raises(ModelError, match="unknown node 'x'"):
        DAG(WAREHOUSE).upstream("x")


def test_subdag_keeps_only_inner_edges():
    sub = DAG(WAREHOUSE).subdag({"clean.bars", "features.range", "signals.momentum"})
    assert sub.graph == {"clean.bars": set(), "features.range": {"clean.bars"}, "signals.momentum": {"features.range"}}


@given(st.dictionaries(st.integers(0, 12), st.sets(st.integers(0, 12), max_size=4), max_size=12))
def test_property_order_respects_every_edge_or_a_real_cycle_is_reported(raw):
    graph = {f"n{k:02d}": {f"n{u:02d}" for u in ups} for k, ups in raw.items()}
    dag = DAG(graph)
    try:
        order = dag.sorted()
    except ModelError:
        cycle = dag.find_cycle()
        assert cycle is not None and cycle[0] == cycle[-1] == min(cycle)
        for up, down in zip(cycle, cycle[1:], strict=False):
            assert up in graph[down]  # each node is read by the next one
        return
    rank = {n: i for i, n in enumerate(order)}
    assert sorted(order) == dag.nodes
    for node, ups in graph.items():
        assert all(rank[u] < rank[node] for u in ups)
