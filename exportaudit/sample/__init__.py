"""Seeded, deterministic sample data: the demo and test set, and the benchmark set.

- `planted`: the default sample (`write_sample`), ~200 hand-shaped exports in four files,
  each planted case with its expected outcome (`expected_outcomes`, `planted_cases`) and
  the credentials no output may contain (`PLANTED_SECRETS`).
- `scale`: N exports of the same shape for benchmarks (`write_scaled`), vectorised.
- `python -m exportaudit.sample --out DIR [--scale N --format parquet|jsonl]`: both, from
  the command line.

Nothing here reads the clock, the network or the `exportaudit` pipeline.
"""

from exportaudit.sample.common import DEFAULT_AS_OF, DEFAULT_SEED, DESTINATIONS, LOG_NAMES, PROVIDERS
from exportaudit.sample.planted import (
    CRITICAL_CHECKS,
    PLANTED_SECRETS,
    SAMPLE_FILES,
    Expectations,
    PlantedCase,
    build_sample,
    expected_outcomes,
    planted_cases,
    sample_file_bytes,
    write_sample,
)
from exportaudit.sample.scale import SCALE_CHUNK_EXPORTS, write_scaled

__all__ = [
    "CRITICAL_CHECKS",
    "DEFAULT_AS_OF",
    "DEFAULT_SEED",
    "DESTINATIONS",
    "LOG_NAMES",
    "PLANTED_SECRETS",
    "PROVIDERS",
    "SAMPLE_FILES",
    "SCALE_CHUNK_EXPORTS",
    "Expectations",
    "PlantedCase",
    "build_sample",
    "expected_outcomes",
    "planted_cases",
    "sample_file_bytes",
    "write_sample",
    "write_scaled",
]
