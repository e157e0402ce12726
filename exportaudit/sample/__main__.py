"""The sample generator's command line:

    python -m exportaudit.sample --out data/sample [--scale N] [--format jsonl|parquet]
                                 [--seed 7] [--as-of 2026-11-20T06:00:00Z]

Without --scale it writes the default sample (`planted.write_sample`) and, under `OUT/real/`,
its real-source part (`real_sources.write_real_sources`: S3 reports and a Svix page); with it,
the benchmark set (`scale.write_scaled`).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from exportaudit.sample.common import DEFAULT_AS_OF, DEFAULT_SEED, UTC
from exportaudit.sample.planted import write_sample
from exportaudit.sample.real_sources import write_real_sources
from exportaudit.sample.scale import write_scaled


def _as_of_argument(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no offset; write e.g. 2026-11-20T06:00:00Z")
    return moment.astimezone(UTC)


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m exportaudit.sample",
        description="Write exportaudit's deterministic sample data (default) or a benchmark set (--scale).",
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory (created if missing)")
    parser.add_argument("--scale", type=int, metavar="N", help="write N exports of benchmark data instead")
    parser.add_argument("--format", choices=("jsonl", "parquet"), help="file format with --scale (default parquet)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--as-of", type=_as_of_argument, default=DEFAULT_AS_OF,
                        help="instant the data is shaped around (default 2026-11-20T06:00:00Z)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _argument_parser()
    args = parser.parse_args(argv)
    if args.scale is None and args.format:
        parser.error("--format applies to --scale; the default sample writes one file per format")
    if args.scale is not None and args.scale < 1:
        parser.error("--scale must be at least 1")

    started = time.perf_counter()
    if args.scale is None:
        paths = write_sample(args.out, seed=args.seed, as_of=args.as_of)
        paths.update({f"real {name}": path for name, path in
                      write_real_sources(args.out / "real", as_of=args.as_of).items()})
    else:
        paths = write_scaled(args.out, args.scale, args.format or "parquet", seed=args.seed, as_of=args.as_of,
                             progress=lambda line: print(line, file=sys.stderr, flush=True))
    for log, path in paths.items():
        size = f"{path.stat().st_size:,} bytes" if path.is_file() else "directory"
        print(f"{log}: {path} ({size})")
    print(f"written in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
