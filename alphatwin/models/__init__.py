"""Models: the tables built inside the warehouse from the lake, as one DAG.

- :mod:`~alphatwin.models.parse`: one SQL file -> its query, the tables it reads (sqlglot), its top comment.
- :mod:`~alphatwin.models.registry`: ``sql/<schema>/<table>.sql`` and ``@model`` Python functions
  (``def <schema>__<table>(<schema>__<table>: LazyFrame, ...)``) -> :class:`~alphatwin.models.registry.Registry`.
- :mod:`~alphatwin.models.dag`: the generic, deterministic DAG (order, cycles, ``MODEL+`` selection).
- :mod:`~alphatwin.models.build`: builds the models in order, each table replaced atomically,
  recorded in ``meta.model_runs`` and ``meta.stage_runs``.
- :mod:`~alphatwin.models.lineage`: the DAG as text and as a Mermaid flowchart.
- :mod:`~alphatwin.models.testing`: given/expect unit tests of SQL models (``tests/sql/``).
"""
