"""The quality gate inside real ingests: quarantine, collapse, flags, restatements, rejection,
re-validation, and the accounting invariant received = accepted + quarantined."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from alphatwin.errors import BatchRejectedError
from alphatwin.lake import catalog
from alphatwin.lake.ingest import ingest
from alphatwin.quality.gate import QualityGate
from alphatwin.quality.revalidate import revalidate
from alphatwin.sources.base import FetchRequest
from alphatwin.sources.frame import FrameSource
from alphatwin.sources.synthetic import SyntheticSource
from tests.conftest import make_bars

DEFECTS = {"gap": 0.003, "duplicate": 0.003, "broken_ohlc": 0.003, "spike": 0.001, "zero_volume_halt": 0.001}


def _q(paths, sql, params=None):
    with catalog.connect(paths, read_only=True) as con:
        return con.sql(sql, params=params).pl()


def _gated(paths, source, request=FetchRequest(), **kw):
    gate = QualityGate(paths, request, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    result = ingest(source, request, paths, gate=gate, **kw)
    return result, gate


@pytest.fixture(scope="module")
def defect_run(tmp_path_factory):
    from alphatwin.paths import WarehousePaths

    paths = WarehousePaths(tmp_path_factory.mktemp("gate") / "wh")
    src = SyntheticSource(n_symbols=12, n_bars=800, seed=5, defects=DEFECTS, chunk_rows=3_000)
    result, gate = _gated(paths, src)
    return paths, src, result, gate


def test_invariant_received_equals_accepted_plus_quarantined(defect_run):
    paths, _, result, gate = defect_run
    run = _q(paths, "SELECT * FROM meta.validation_runs").row(0, named=True)
    assert run["rows_received"] == result.rows == gate.counts.received
    assert run["rows_received"] == run["rows_accepted"] + run["rows_quarantined"]
    quarantined = _q(paths, "SELECT count(*) AS n FROM quality.quarantine")["n"][0]
    assert quarantined == run["rows_quarantined"] > 0
    raw = _q(paths, "SELECT count(*) AS n FROM raw.bars")["n"][0]
    accepted_rows = _q(paths, "SELECT count(*) AS n FROM quality.accepted_bars")["n"][0]
    accepted_keys = _q(paths, "SELECT count(*) AS n FROM (SELECT DISTINCT symbol, interval, ts FROM quality.accepted_bars)")["n"][0]
    assert raw == result.rows  # the raw lake keeps every row received
    assert accepted_rows == accepted_keys == run["rows_accepted"]  # one accepted row per key downstream
    assert run["suite"] == "raw_bars" and len(run["suite_sha256"]) == 64 and run["current"]


def test_every_hard_defect_is_quarantined_and_no_clean_row_is(defect_run):
    paths, src, _, _ = defect_run
    truth = src.defects
    q = _q(paths, "SELECT symbol, ts, reasons, collapsed FROM quality.quarantine")
    broken = truth.filter(pl.col("defect") == "broken_ohlc").select("symbol", "ts")
    dup = truth.filter(pl.col("defect") == "duplicate").select("symbol", "ts")
    got = q.select("symbol", "ts").unique()
    assert broken.join(got, on=["symbol", "ts"], how="anti").is_empty()
    assert dup.join(got, on=["symbol", "ts"], how="anti").is_empty()
    hard = pl.concat([broken, dup]).unique()
    false_positives = got.join(hard, on=["symbol", "ts"], how="anti")
    assert false_positives.is_empty(), false_positives


def test_exact_duplicates_collapse_conflicting_ones_are_all_quarantined(paths):
    bars = make_bars(["AAA"], 6, start=dt.datetime(2024, 1, 1))
    exact = bars.slice(1, 1)
    conflict = bars.slice(3, 1).with_columns(pl.col("close") * 1.001, pl.col("high") * 1.01)
    batch = pl.concat([bars, exact, conflict])
    result, gate = _gated(paths, FrameSource(batch))
    c = gate.counts
    assert (c.received, c.quarantined, c.collapsed, c.accepted) == (8, 3, 1, 5)
    q = _q(paths, "SELECT ts::DATE AS d, reasons, collapsed FROM quality.quarantine ORDER BY d, collapsed")
    assert q.rows() == [(dt.date(2024, 1, 2), ["duplicate_exact"], True),
                        (dt.date(2024, 1, 4), ["duplicate_conflict"], False),
                        (dt.date(2024, 1, 4), ["duplicate_conflict"], False)]
    accepted = _q(paths, "SELECT ts::DATE AS d FROM quality.accepted_bars ORDER BY 1")["d"].to_list()
    assert dt.date(2024, 1, 4) not in accepted and accepted.count(dt.date(2024, 1, 2)) == 1  # exact copies collapse
    assert len(accepted) == c.accepted


def test_a_newer_ingest_restating_a_bar_is_recorded(paths):
    bars = make_bars(["AAA"], 5, start=dt.datetime(2024, 1, 1))
    first, _ = _gated(paths, FrameSource(bars))
    restated = bars.slice(2, 2).with_columns(pl.col("close") * 1.0001)
    second, gate = _gated(paths, FrameSource(restated))
    assert gate.counts.restated == 2 and gate.counts.quarantined == 0
    r = _q(paths, "SELECT ts::DATE AS d, ingest_id, superseded_ingest_id FROM quality.restatements ORDER BY 1")
    assert r.rows() == [(dt.date(2024, 1, 3), second.ingest_id, first.ingest_id),
                        (dt.date(2024, 1, 4), second.ingest_id, first.ingest_id)]


def test_an_empty_batch_rejects_the_ingest(paths):
    empty = make_bars(["AAA"], 3).clear()

    class Empty:
        name, network = "empty", False

        def fetch(self, request):
            yield empty

    with pytest.raises(BatchRejectedError, match="empty batch"):
        _gated(paths, Empty())
    runs = _q(paths, "SELECT status, error FROM meta.ingest_runs")
    assert runs["status"].to_list() == ["rejected"] and "empty batch" in runs["error"][0]
    v = _q(paths, "SELECT success, batch_error FROM meta.validation_runs").rows()
    assert v == [(False, "empty batch")]
    assert not list(paths.bars.rglob("*.parquet")) if paths.bars.exists() else True


def test_bad_prices_and_nulls_are_quarantined_with_reasons(paths):
    bars = make_bars(["AAA"], 6, start=dt.datetime(2024, 1, 1))
    bad = bars.with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(-1.0).otherwise(pl.col("open")).alias("open"),
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("close")).alias("close"),
    )
    _, gate = _gated(paths, FrameSource(bad))
    q = _q(paths, "SELECT ts::DATE AS d, reasons, detail FROM quality.quarantine ORDER BY 1")
    assert q["d"].to_list() == [dt.date(2024, 1, 2), dt.date(2024, 1, 4)]
    assert any(r.startswith("open_positive") for r in q["reasons"][0]) and "open=-1" in q["detail"][0]
    assert any(r.startswith("close_not_null") for r in q["reasons"][1])
    assert gate.counts.received == gate.counts.accepted + gate.counts.quarantined == 6


def test_revalidation_reproduces_the_verdicts_and_keeps_history(defect_run):
    paths, _, result, gate = defect_run
    cols = "symbol, ts, list_sort(reasons) AS reasons, collapsed"
    before = _q(paths, f"SELECT {cols} FROM quality.quarantine ORDER BY ALL")
    (rv,) = revalidate(paths, ingest_id=result.ingest_id)
    after = _q(paths, f"SELECT {cols} FROM quality.quarantine ORDER BY ALL")
    assert rv.counts.quarantined == gate.counts.quarantined
    assert before.equals(after)
    runs = _q(paths, "SELECT trigger, current FROM meta.validation_runs ORDER BY started")
    assert runs.rows() == [("ingest", False), ("validate", True)]
