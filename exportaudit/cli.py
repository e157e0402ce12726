"""The `exportaudit` command line (docs/outputs.md#command-line). Exit codes: 0 done; 2 unusable arguments or
unreadable input; 3 a gate failed; 1 anything else."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from exportaudit.policy import PolicyError
from exportaudit.readers import UnreadableInput
from exportaudit.redact import redact_str
from exportaudit.vocabulary import (
    DEFAULT_DB, DEFAULT_OUT, EXIT_ERROR, EXIT_OK, EXIT_USAGE, FAIL_ON_LEVELS, GENERATED_BY_RUN, GENERATED_BY_SCHEDULE,
    NEVER,
)


class UsageError(Exception):
    """Unusable arguments: exit 2 with the message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 too; keep one line, no usage dump
        raise UsageError(message)


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    help_paths = "a file, several files, a directory or a glob (.jsonl, .ndjson, .csv, .parquet; .gz for text)"
    # Every input option is optional: a run given no files evaluates what the warehouse holds.
    parser.add_argument("--exports", nargs="+", default=[], metavar="P", help=f"export register: {help_paths}")
    parser.add_argument("--deliveries", nargs="+", default=[], metavar="P", help="delivery attempts: same forms")
    parser.add_argument("--archives", nargs="+", default=[], metavar="P", help="archive references: same forms")
    parser.add_argument("--custody-checks", nargs="+", default=[], metavar="P", help="custody checks: same forms")
    # What the operator's retry worker and alerting system recorded (docs/executions-and-acknowledgements.md).
    parser.add_argument("--retry-executions", nargs="+", default=[], metavar="P",
                        help="retry worker executions: same forms")
    parser.add_argument("--alert-acks", nargs="+", default=[], metavar="P",
                        help="archive health alert acknowledgements: same forms")
    # Real sources, read as they come (docs/real-sources.md).
    parser.add_argument("--s3-inventory", nargs="+", default=[], metavar="P",
                        help="S3 Inventory reports: a manifest.json, or a directory searched recursively for them")
    parser.add_argument("--s3-batch-report", nargs="+", default=[], metavar="P",
                        help="S3 Batch Operations completion reports (Compute checksum): a manifest.json, or a "
                             "directory searched recursively for them")
    parser.add_argument("--svix-attempts", nargs="+", default=[], metavar="P",
                        help="Svix list-attempts responses (read as delivery attempts): JSON / JSON Lines files, or "
                             "a directory searched recursively for .json, .jsonl, .ndjson")
    _add_db(parser)


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=str(DEFAULT_DB), metavar="PATH",
                        help=f"DuckDB warehouse (default {DEFAULT_DB})")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="exportaudit", description="Nightly audit of final auditor exports: delivery retry "
                                                     "plan and archive reference health.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ingest = commands.add_parser("ingest", help="load the logs into the warehouse and print per-file accounting")
    _add_inputs(ingest)

    run = commands.add_parser("run", help="one nightly run as a Prefect flow: ingest, rules, evidence, report")
    _add_inputs(run)
    run.add_argument("--as-of", metavar="TS", help="ISO-8601 instant with offset to evaluate at (default: now, UTC)")
    run.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                     help=f"output directory; writes DIR/<run_id>/ and DIR/latest/ (default {DEFAULT_OUT})")
    run.add_argument("--policy", metavar="FILE.toml", help="policy file of flat keys (docs/outputs.md#policy-file)")
    run.add_argument("--fail-on", choices=FAIL_ON_LEVELS, default=NEVER,
                     help=f"exit 3 when an alert of this severity or worse exists (default {NEVER})")
    run.add_argument("--generated-by", default=GENERATED_BY_RUN, help="who asked for the run (evidence metadata)")
    api = commands.add_parser("api", help="serve the HTTP API and Evidence Console, read-only over the warehouse")
    _add_db(api)
    api.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    api.add_argument("--policy", metavar="FILE.toml", help="base policy; requests may override their keys")

    verify = commands.add_parser(
        "verify", help="check the run ledger, the run directories and the evidence against the warehouse "
                       "(docs/ledger.md#exportaudit-verify); exit 0 all holds, 1 a problem, 2 unusable arguments")
    _add_db(verify)
    verify.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                        help=f"directory holding the run directories (default {DEFAULT_OUT})")
    verify.add_argument("--run", metavar="RUN_ID", help="check this run (and the whole chain)")
    verify.add_argument("--all", action="store_true", help="check every run of the ledger (and the whole chain)")

    schedule = commands.add_parser(
        "schedule", help="serve the nightly flow on a cron schedule against a running Prefect server "
                         "(PREFECT_API_URL); each run evaluates at its start time")
    _add_inputs(schedule)
    schedule.add_argument("--cron", default="0 2 * * *", help='cron expression, UTC (default "0 2 * * *")')
    schedule.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                          help=f"output directory (default {DEFAULT_OUT})")
    schedule.add_argument("--policy", metavar="FILE.toml", help="policy file of flat keys (docs/outputs.md#policy-file)")
    schedule.add_argument("--fail-on", choices=FAIL_ON_LEVELS, default=NEVER,
                          help="mark runs failed when an alert of this severity or worse exists")
    schedule.add_argument("--name", default="exportaudit-nightly", help="deployment name")
    return parser


def inputs_of(args) -> dict[str, list[str]]:
    """The log options given (a log without files is left out)."""
    paths = {"exports": args.exports, "deliveries": args.deliveries, "archives": args.archives,
             "custody_checks": args.custody_checks, "retry_executions": args.retry_executions,
             "alert_acknowledgements": args.alert_acks}
    return {log: files for log, files in paths.items() if files}


def real_sources_of(args) -> dict[str, list[str]]:
    from exportaudit.sources.report_ingest import real_source_paths

    return real_source_paths(s3_inventory=args.s3_inventory, s3_batch_report=args.s3_batch_report,
                             svix_attempts=args.svix_attempts)


def command_ingest(args) -> int:
    from exportaudit import warehouse
    from exportaudit.history import new_run_id
    from exportaudit.ingest import ingest, read_inputs
    from exportaudit.sources.report_ingest import ingest_reports, log_sources, read_real_sources

    decoded = read_inputs(inputs_of(args))
    sources = read_real_sources(real_sources_of(args))  # integrity of every report: exit 2 before any write
    now = datetime.now(timezone.utc)
    run_id = new_run_id(now)
    con = warehouse.connect(args.db)
    try:
        warehouse.ensure_schema(con)
        accounts = ingest(con, log_sources(decoded, sources), run_id, now)
        accounts += ingest_reports(con, sources, run_id, now)
    finally:
        con.close()
    print(f"{'log':<22} {'file':<32} {'read':>9} {'accepted':>9} {'quarantined':>11} {'duplicate':>9}")
    for a in accounts:
        note = "  (already ingested: skipped)" if a.skipped else ""
        print(f"{a.log:<22} {a.file_name[:32]:<32} {a.rows_read:>9} {a.rows_accepted:>9} "
              f"{a.rows_quarantined:>11} {a.rows_duplicate:>9}{note}")
    return EXIT_OK


def command_run(args) -> int:
    """Validate everything that can make the run unusable (exit 2) before Prefect starts, then run the flow."""
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from exportaudit.ingest import DecodedInputs, read_inputs
    from exportaudit.policy import load_policy
    from exportaudit.prefect_env import configure_prefect, prefect_home, start_temporary_api
    from transforms.timestamps import parse_instant

    if args.as_of:
        try:
            parse_instant(args.as_of)
        except ValueError:
            raise UsageError(f"--as-of: not an ISO-8601 timestamp with offset: {args.as_of!r}") from None
    load_policy(args.policy)
    configure_prefect(prefect_home(args.db))
    prefect_api = start_temporary_api()  # starts while the inputs are read (stopped at exit)
    from exportaudit.sources.report_ingest import read_real_sources

    def checked_inputs() -> tuple[DecodedInputs, list]:
        # Unreadable input: exit 2 before the flow starts; a partial or altered report likewise.
        return DecodedInputs(read_inputs(inputs_of(args))), read_real_sources(real_sources_of(args))

    # The inputs are checked (hashed: hashlib works outside the GIL) while Prefect and the flow are
    # imported: at 1M exports in JSON Lines the hashing alone takes 3-6 s.
    with ThreadPoolExecutor(1, thread_name_prefix="check-inputs") as pool:
        checking = pool.submit(checked_inputs)
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        from exportaudit.summary import print_summary
        from flows.nightly import nightly
        preread, preread_sources = checking.result()

    if prefect_api:  # imported Prefect meanwhile: the server has had that time to start too
        prefect_api.wait_ready()
    interactive = sys.stderr.isatty()
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):  # no 1 s wait at exit
        result = nightly(inputs_of(args), db=args.db, out=args.out, as_of=args.as_of, policy_path=args.policy,
                         fail_on=args.fail_on, generated_by=args.generated_by, preread=preread,
                         real_sources=real_sources_of(args), preread_sources=preread_sources,
                         show_progress=interactive)
    print_summary(result, Path(args.out))
    return result.exit_code


def command_schedule(args) -> int:
    """Serve the flow nightly. Needs a real `prefect server` (a schedule cannot run on the temporary one)."""
    import os
    from pathlib import Path

    from exportaudit.policy import load_policy
    from exportaudit.prefect_env import configure_prefect, prefect_home

    if not os.environ.get("PREFECT_API_URL"):
        raise UsageError("schedule needs a running Prefect server: start `prefect server start --host 127.0.0.1` "
                         "and set PREFECT_API_URL to its /api address (see README)")
    load_policy(args.policy)
    configure_prefect(prefect_home(args.db))
    from flows.nightly import nightly

    parameters = {"paths_by_log": {k: [str(Path(p).resolve()) for p in v] for k, v in inputs_of(args).items()},
                  "real_sources": {k: [str(Path(p).resolve()) for p in v] for k, v in real_sources_of(args).items()},
                  "db": str(Path(args.db).resolve()), "out": str(Path(args.out).resolve()),
                  "policy_path": str(Path(args.policy).resolve()) if args.policy else None,
                  "fail_on": args.fail_on, "generated_by": GENERATED_BY_SCHEDULE}
    nightly.serve(name=args.name, cron=args.cron, parameters=parameters)
    return EXIT_OK


def command_verify(args) -> int:
    """docs/ledger.md#exportaudit-verify: one line per problem on stdout, exit 0 / 1 / 2. The
    warehouse is opened read-only."""
    from pathlib import Path

    from exportaudit import verify

    if bool(args.run) == bool(args.all):
        raise UsageError("verify: give exactly one of --run RUN_ID and --all")
    if not Path(args.db).is_file():
        raise UsageError(f"verify: no warehouse at {args.db}")
    from exportaudit import warehouse

    con = warehouse.connect(args.db, read_only=True)
    try:
        try:
            problems = verify.verify(con, args.out, run_id=args.run, recompute=verify.warehouse_recompute(con))
        except verify.UnknownRun as error:
            raise UsageError(f"verify: {error}") from None
    finally:
        con.close()
    for problem in problems:
        print(redact_str(problem.line()))
    mode = "run" if args.run else "all"
    code = verify.exit_code(problems, mode)
    failures = [problem for problem in problems if problem.kind not in verify.NOT_FAILURES[mode]]
    summary = "ok" if code == EXIT_OK else f"{len(failures)} problem(s), the first: {failures[0].line()}"
    print(f"exportaudit verify: {redact_str(summary)}", file=sys.stderr)
    return code


def command_api(args) -> int:
    from exportaudit.api import serve
    from exportaudit.policy import load_policy

    serve(args.db, args.host, args.port, load_policy(args.policy))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        handler = {"ingest": command_ingest, "run": command_run, "schedule": command_schedule,
                   "api": command_api, "verify": command_verify}[args.command]
        return handler(args)
    except (UsageError, PolicyError) as error:
        print(f"exportaudit: {redact_str(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except UnreadableInput as error:
        print(f"exportaudit: unreadable input {redact_str(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_ERROR
    except Exception as error:  # anything else: one line, no traceback, exit 1
        print(f"exportaudit: error: {redact_str(type(error).__name__ + ': ' + str(error))}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
