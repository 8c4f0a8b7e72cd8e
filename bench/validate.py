"""Benchmark: validate N synthetic bars against the raw suite (default 1,000 symbols x 5,000 bars = 5M rows).

Prints rows/s of :func:`alphatwin.quality.validate.validate_frame` (Polars -> pandas, GX's pandas
engine with the suite's built-in and custom expectations, row failures back in Polars) and,
measured in the same process on the same rows, a reference: plain GX pandas validation of the
same frame with the same number of built-in expectations (not-null and between checks over the
bar columns; the Polars -> pandas conversion is timed too). Target: >= 2M rows/s.

Generation, GX's import and context creation, and the Numba kernels' compilation are not timed
(a small warm-up validation pays for them). Each figure is the best of ``--repeat`` runs. Both
runs skip GX's batch fingerprint (the runner turns it off process-wide; hashing 5M rows with a
tz-aware ts takes GX ~13 s).

    .venv/bin/python bench/validate.py                  # 5M rows
    .venv/bin/python bench/validate.py --symbols 200    # 1M rows, quick look
    .venv/bin/python bench/validate.py --profile        # plus where the time goes
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from typing import Any

import polars as pl


def make_bars(symbols: int, bars: int) -> pl.DataFrame:
    """Clean synthetic daily bars, one contiguous frame (as one source batch)."""
    from alphatwin.sources.base import FetchRequest
    from alphatwin.sources.synthetic import SyntheticSource

    source = SyntheticSource(n_symbols=symbols, n_bars=bars, seed=1, chunk_rows=symbols * bars + 1)
    return pl.concat(list(source.fetch(FetchRequest(interval="1d")))).rechunk()


def time_suite(frame: pl.DataFrame, repeat: int) -> tuple[float, Any]:
    from alphatwin.quality.validate import validate_frame

    validate_frame(frame.head(2_000), interval="1d")  # warm-up: GX import, context, Numba cache
    best, report = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        report = validate_frame(frame, interval="1d")
        best = min(best, time.perf_counter() - t0)
    return best, report


def _reference_suite(n_expectations: int) -> Any:
    import great_expectations.expectations as gxe

    numeric = ["open", "high", "low", "close", "volume", "dividend", "split_ratio"]
    pool: list[Any] = [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in ["symbol", "interval", "ts", *numeric]]
    pool += [gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0) for c in numeric]
    pool += [gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=1e18) for c in numeric]
    pool += [gxe.ExpectColumnValuesToBeBetween(column=c, min_value=-1.0, strict_min=True) for c in numeric]
    pool += [gxe.ExpectColumnValuesToBeBetween(column=c, max_value=1e18) for c in numeric]
    return [pool[i % len(pool)] for i in range(n_expectations)]


def time_reference(frame: pl.DataFrame, n_expectations: int, repeat: int) -> float:
    """Plain GX: ``to_pandas()`` and a suite of ``n_expectations`` built-in expectations."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                               progress_bars=ProgressBarsConfig(globally=False), analytics_enabled=False)
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch_def = context.data_sources.add_pandas("ref").add_dataframe_asset("bars").add_batch_definition_whole_dataframe("b")
    suite = context.suites.add(gx.ExpectationSuite(name="reference", expectations=_reference_suite(n_expectations)))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="ref", data=batch_def, suite=suite))
    result_format = {"result_format": "COMPLETE", "return_unexpected_index_query": False}
    definition.run(batch_parameters={"dataframe": frame.head(2_000).to_pandas()}, result_format=result_format)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = definition.run(batch_parameters={"dataframe": frame.to_pandas()}, result_format=result_format)
        best = min(best, time.perf_counter() - t0)
        assert result.success, [r.expectation_config for r in result.results if not r.success][:3]
    return best


def profile_suite(frame: pl.DataFrame) -> str:
    from alphatwin.quality.validate import validate_frame

    profiler = cProfile.Profile()
    profiler.enable()
    validate_frame(frame, interval="1d")
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=1_000)
    parser.add_argument("--bars", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile of one validation")
    args = parser.parse_args()

    frame = make_bars(args.symbols, args.bars)
    rows = frame.height
    suite_s, report = time_suite(frame, args.repeat)
    n_exp = len(report.expectations)
    ref_s = time_reference(frame, n_exp, args.repeat)
    print(f"rows: {rows:,}  suite: {report.suite} ({n_exp} expectations, sha256 {report.suite_sha256[:12]})")
    print(f"raw suite   : {suite_s:7.2f} s  {rows / suite_s / 1e6:6.2f} M rows/s  "
          f"(success={report.success}, {report.row_failures.height} row failures)")
    print(f"plain GX    : {ref_s:7.2f} s  {rows / ref_s / 1e6:6.2f} M rows/s  ({n_exp} built-in expectations)")
    print(f"ratio       : {suite_s / ref_s:7.2f} x the plain GX time   target >= 2.00 M rows/s: "
          f"{'met' if rows / suite_s >= 2e6 else 'MISSED'}")
    if args.profile:
        print(profile_suite(frame))


if __name__ == "__main__":
    main()
