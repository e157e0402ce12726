"""The bundled sample's two nights, as `make run` runs them (README "Quick start").

`python -m exportaudit.sample.nights --sample data/sample --db data/exportaudit.duckdb --out reports`:
the first night, `exportaudit run` over every sample source at 2026-11-20T06:00:00Z; then the
second night's logs, written from the first night's evidence (second_night.py); then the second
night, `exportaudit run` over them at 2026-11-21T06:00:00Z
(docs/executions-and-acknowledgements.md#the-samples-second-night).

Both nights are the command line's own `run` (exportaudit.cli.main), in one process: Python,
Polars, DuckDB and Prefect are imported once, and the temporary Prefect API the first night
starts serves the second night too (it is stopped at exit).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FIRST_AS_OF, SECOND_AS_OF = "2026-11-20T06:00:00Z", "2026-11-21T06:00:00Z"


def first_night(sample: Path, db: Path, out: Path) -> list[str]:
    """`exportaudit run` arguments of the first night: every log and real source of the sample."""
    return ["run", "--exports", f"{sample}/exports.jsonl", f"{sample}/real/exports.jsonl",
            "--deliveries", f"{sample}/deliveries.csv", "--svix-attempts", f"{sample}/real/svix",
            "--archives", f"{sample}/archives.parquet", f"{sample}/real/archives.jsonl",
            "--custody-checks", f"{sample}/custody_checks.jsonl.gz",
            "--s3-inventory", f"{sample}/real/s3/inventory", "--s3-batch-report", f"{sample}/real/s3/batch",
            "--as-of", FIRST_AS_OF, "--db", str(db), "--out", str(out)]


def second_night(logs: dict[str, Path], db: Path, out: Path) -> list[str]:
    """`exportaudit run` arguments of the second night: the retry executions and acknowledgements."""
    return ["run", "--retry-executions", str(logs["retry_executions"]),
            "--alert-acks", str(logs["alert_acknowledgements"]),
            "--as-of", SECOND_AS_OF, "--db", str(db), "--out", str(out)]


def run_nights(sample: Path, db: Path, out: Path, second_night_dir: Path) -> int:
    """Both nights; the exit code of the first that does not exit 0, else 0."""
    from exportaudit.cli import main
    from exportaudit.sample.second_night import write_second_night

    code = main(first_night(sample, db, out))
    if code != 0:
        return code
    return main(second_night(write_second_night(db, second_night_dir), db, out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exportaudit.sample.nights", description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=Path("data/sample"), help="the generated sample")
    parser.add_argument("--db", type=Path, default=Path("data/exportaudit.duckdb"))
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--second-night-dir", type=Path, default=None,
                        help="where the second night's logs go (default: <sample>/second-night)")
    args = parser.parse_args(argv)
    return run_nights(args.sample, args.db, args.out, args.second_night_dir or args.sample / "second-night")


if __name__ == "__main__":
    sys.exit(main())
