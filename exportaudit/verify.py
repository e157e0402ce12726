"""`exportaudit verify` (docs/ledger.md): the ledger chain, each run directory's files against the
ledger, and the evidence recomputed from the warehouse against the stored evidence ids.

Every check returns a list of `Problem`s (one printed line each) instead of stopping at the first,
so a pruned run directory (`missing`) never hides a broken chain or a wrong evidence id.
The checks take the recomputation (rules over the accepted records of the files ingested up to a
run, at its as_of and policy) as `recompute`; `warehouse_recompute(con)` is the real one: the
warehouse seen as it was when the run evaluated (temporary views over the read-only connection),
through exportaudit/evaluation.py, the night's own path.

A directory of OUT that neither the ledger nor the runs table names (a run killed before its
COMMIT, docs/ledger.md#crashes-and-unrecorded-directories) is reported as `unrecorded`: listed,
not checked, and not a failure — the ledger never vouched for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from exportaudit.attestation import PREDICATE_TYPE, STATEMENT_TYPE
from exportaudit.evidence import dataset_identity
from exportaudit.ledger import (ATTESTATION_FILE, GENESIS, LEDGER_FILE, NOT_ARTIFACTS, entry_hash, ledger_json,
                                read_ledger)

KINDS = ("chain", "file", "evidence", "missing", "unrecorded")
NOT_FAILURES = {"all": ("missing", "unrecorded"), "run": ("unrecorded",)}
MODES = ("all", "run")
EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
LATEST = "latest"  # OUT/latest: a symlink to the latest run directory (artifacts.point_latest)


def evidence_columns() -> dict[str, str]:
    """Evidence document file of a run -> the runs-table column holding its evidence_id, for every
    document a run writes (outputs.DOCUMENT_FILES; `<answer>_evidence_id`, as history.run_row)."""
    from exportaudit.outputs import DOCUMENT_FILES

    return {file_name: f"{answer}_evidence_id" for answer, file_name in DOCUMENT_FILES.items()}

# recompute(run_id, as_of (aware UTC datetime), file_sha256s) -> {document file name: evidence_id}
Recompute = Callable[[str, datetime, list[str]], Mapping[str, str]]

_PLAIN_NAME = re.compile(r"^[^/\\\x00]+$")


class UnknownRun(LookupError):
    """--run names a run the ledger does not hold (a usage error: exit 2)."""


@dataclass(frozen=True)
class Problem:
    kind: str  # chain | file | evidence | missing
    seq: int | None
    run_id: str | None
    message: str

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown problem kind {self.kind!r}")

    def line(self) -> str:
        """One line: `<kind> seq <n> run <id>: <message>` (control characters flattened)."""
        where = " ".join(part for part in (f"seq {self.seq}" if self.seq is not None else "",
                                           f"run {self.run_id}" if self.run_id is not None else "") if part)
        text = f"{self.kind} {where}: {self.message}" if where else f"{self.kind}: {self.message}"
        return re.sub(r"[\x00-\x1f\x7f]", " ", text)


def _is_seq(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def verify_chain(entries: Iterable[Mapping[str, Any]]) -> list[Problem]:
    """The chain in the order given (read_ledger: by seq): seq contiguous from 1, each
    previous_hash equal to the prior entry's entry_hash, each entry_hash recomputing, each run_id
    once. A removed entry is named by the seq that is missing; an edited one by its own seq (or,
    when its entry_hash was recomputed too, by the next seq, whose previous_hash no longer matches)."""
    problems: list[Problem] = []
    previous_seq, previous_hash = 0, GENESIS
    seen_runs: dict[str, int] = {}
    for entry in entries:
        seq, run_id = entry.get("seq"), entry.get("run_id")
        expected = previous_seq + 1
        if not _is_seq(seq):
            problems.append(Problem("chain", expected, run_id, f"seq {seq!r} is not an integer"))
        elif seq > expected:
            gap = f"seq {expected}" if seq == expected + 1 else f"seqs {expected}-{seq - 1}"
            problems.append(Problem("chain", expected, run_id,
                                    f"{gap} missing: the entry after seq {previous_seq} has seq {seq} "
                                    f"(entries removed or out of order)"))
        elif seq < expected:
            problems.append(Problem("chain", seq, run_id, f"seq {seq} found after seq {previous_seq} "
                                                          f"(entries duplicated or out of order)"))
        elif entry.get("previous_hash") != previous_hash:
            problems.append(Problem("chain", seq, run_id,
                                    f"previous_hash {entry.get('previous_hash')} is not the entry_hash of seq "
                                    f"{previous_seq} ({previous_hash}): seq {previous_seq} rewritten or removed"))
        try:
            recomputed = entry_hash(entry)
        except (TypeError, ValueError):
            recomputed = None
        if recomputed != entry.get("entry_hash"):
            problems.append(Problem("chain", seq if _is_seq(seq) else expected, run_id,
                                    f"entry_hash {entry.get('entry_hash')} does not recompute "
                                    f"({recomputed}): the entry was edited"))
        if isinstance(run_id, str):
            if run_id in seen_runs:
                problems.append(Problem("chain", seq if _is_seq(seq) else expected, run_id,
                                        f"run_id already recorded at seq {seen_runs[run_id]}"))
            else:
                seen_runs[run_id] = seq
        previous_seq = seq if _is_seq(seq) else expected
        previous_hash = entry.get("entry_hash")
    return problems


def _sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def verify_run_directory(out_dir: str | Path, entry: Mapping[str, Any]) -> list[Problem]:
    """OUT/<run_id>/ against its ledger entry: each artifact's sha256, no unrecorded file,
    ledger.json equal to the entry (a directory holding another run's files names that run), and
    attestation.intoto.json consistent with the entry. A directory that is not there is one
    `missing` problem (pruned on purpose), not a tampering."""
    seq, run_id = entry.get("seq"), entry.get("run_id")

    def problem(message: str, kind: str = "file") -> Problem:
        return Problem(kind, seq, run_id, message)

    if not isinstance(run_id, str) or not _PLAIN_NAME.match(run_id) or run_id in (".", ".."):
        return [problem(f"run_id {run_id!r} cannot name a run directory")]
    run_dir = Path(out_dir) / run_id
    if not run_dir.exists() and not run_dir.is_symlink():
        return [problem(f"run directory {run_dir} not found (pruned?): its files were not checked", "missing")]
    if not run_dir.is_dir():
        return [problem(f"{run_dir} is not a directory")]

    problems: list[Problem] = []
    ledger_path = run_dir / LEDGER_FILE
    if not ledger_path.is_file():
        problems.append(problem(f"{LEDGER_FILE}: missing"))
    elif ledger_path.read_bytes() != ledger_json(entry):
        recorded = _read_json(ledger_path)
        if isinstance(recorded, dict) and recorded.get("run_id") != run_id:
            problems.append(problem(f"{LEDGER_FILE}: is the entry of run {recorded.get('run_id')} (seq "
                                    f"{recorded.get('seq')}): the directory holds another run's files"))
        elif isinstance(recorded, dict):
            fields = sorted(k for k in set(recorded) | set(entry) if recorded.get(k) != entry.get(k))
            problems.append(problem(f"{LEDGER_FILE}: differs from the ledger entry"
                                    + (f" in {', '.join(fields)}" if fields else " (not canonical JSON)")))
        else:
            problems.append(problem(f"{LEDGER_FILE}: not a JSON object"))

    artifacts = entry.get("artifacts")
    if not isinstance(artifacts, Mapping):
        problems.append(problem("the ledger entry's artifacts are not an object: files not checked"))
        return problems
    for name, recorded_sha in sorted(artifacts.items()):
        path = run_dir / name
        if not _PLAIN_NAME.match(name) or name in (".", ".."):
            problems.append(problem(f"{name!r}: not a plain file name"))
        elif not path.is_file():
            problems.append(problem(f"{name}: missing (recorded sha256 {recorded_sha})"))
        else:
            actual = _sha256_file(path)
            if actual != recorded_sha:
                problems.append(problem(f"{name}: sha256 {actual} differs from the recorded {recorded_sha}"))
    for child in sorted(run_dir.iterdir()):
        # dot files are write_atomic's temp files; everything else must be accounted for
        if not child.name.startswith(".") and child.name not in artifacts and child.name not in NOT_ARTIFACTS:
            problems.append(problem(f"{child.name}: not recorded in the ledger entry"))
    problems.extend(problem(message) for message in _attestation_problems(run_dir, entry, artifacts))
    return problems


def _attestation_problems(run_dir: Path, entry: Mapping[str, Any], artifacts: Mapping[str, str]) -> list[str]:
    path = run_dir / ATTESTATION_FILE
    if not path.is_file():
        return [f"{ATTESTATION_FILE}: missing"]
    statement = _read_json(path)
    if not isinstance(statement, dict):
        return [f"{ATTESTATION_FILE}: not a JSON object"]
    messages = []
    if statement.get("_type") != STATEMENT_TYPE:
        messages.append(f"{ATTESTATION_FILE}: _type {statement.get('_type')!r} is not {STATEMENT_TYPE}")
    if statement.get("predicateType") != PREDICATE_TYPE:
        messages.append(f"{ATTESTATION_FILE}: predicateType {statement.get('predicateType')!r} is not {PREDICATE_TYPE}")
    subjects = statement.get("subject")
    digests: dict[str, Any] = {}
    if isinstance(subjects, list):
        for subject in subjects:
            if isinstance(subject, dict) and isinstance(subject.get("digest"), dict):
                digests[subject.get("name")] = subject["digest"].get("sha256")
    if digests != dict(artifacts) or not isinstance(subjects, list) or len(subjects) != len(digests):
        differing = sorted(str(name) for name in set(digests) | set(artifacts)
                           if digests.get(name) != artifacts.get(name))
        messages.append(f"{ATTESTATION_FILE}: subjects do not match the ledger entry's artifacts"
                        + (f" ({', '.join(differing)})" if differing else ""))
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        return [*messages, f"{ATTESTATION_FILE}: no predicate object"]
    for key, expected in (("ledger_entry_hash", entry.get("entry_hash")), ("run_id", entry.get("run_id")),
                          ("as_of", entry.get("as_of"))):
        if predicate.get(key) != expected:
            messages.append(f"{ATTESTATION_FILE}: predicate.{key} {predicate.get(key)!r} is not the entry's "
                            f"{expected!r}")
    dataset = predicate.get("dataset")
    if not isinstance(dataset, dict) or dataset.get("sha256") != entry.get("dataset_sha256"):
        messages.append(f"{ATTESTATION_FILE}: predicate.dataset.sha256 is not the entry's dataset_sha256")
    evidence_ids = predicate.get("evidence_ids")
    if not isinstance(evidence_ids, dict):
        messages.append(f"{ATTESTATION_FILE}: predicate.evidence_ids is not an object")
    else:
        for name, evidence_id in sorted(evidence_ids.items()):
            if name in artifacts and _PLAIN_NAME.match(name) and (run_dir / name).is_file():
                document = _read_json(run_dir / name)
                actual = document.get("evidence_id") if isinstance(document, dict) else None
                if actual != evidence_id:
                    messages.append(f"{ATTESTATION_FILE}: predicate.evidence_ids[{name}] {evidence_id} is not "
                                    f"{name}'s evidence_id {actual}")
    return messages


def stored_evidence_ids(con, run_id: str) -> dict[str, str] | None:
    """The evidence ids the runs table holds for a run, by document file name, leaving out the
    documents it did not compute (null); None: no row."""
    cursor = con.execute("select * from runs where run_id = ?", [run_id])
    names = [column[0] for column in cursor.description]
    rows = cursor.fetchall()
    if not rows:
        return None
    row = dict(zip(names, rows[0]))
    return {file_name: row[column] for file_name, column in evidence_columns().items() if row.get(column) is not None}


def files_up_to(con, entry: Mapping[str, Any]) -> list[str]:
    """sha256s of the files ingested up to the run: those ingested by a run of the ledger at or
    before its seq (chain order, whatever the clocks), and the others (`exportaudit ingest`, runs
    before the ledger) ingested at or before its generated_at (a run ingests at its start, which
    is its generated_at). verify_evidence checks the choice against the entry's dataset_sha256."""
    return [row[0] for row in con.execute(
        "select file_sha256 from ingested_files where run_id in (select run_id from ledger where seq <= ?) "
        "or (run_id not in (select run_id from ledger where run_id is not null) "
        "and ingested_at <= ?::TIMESTAMPTZ) order by file_sha256",
        [entry["seq"] if _is_seq(entry.get("seq")) else 0, entry["generated_at"]]).fetchall()]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def verify_evidence(con, entry: Mapping[str, Any], recompute: Recompute,
                    stored: Mapping[str, str] | None = None) -> list[Problem]:
    """The run's evidence recomputed from the warehouse equals the stored evidence ids.

    The files ingested up to the run must still give the entry's dataset_sha256 (else the warehouse's
    record of them changed: reported, and nothing recomputed). `recompute(run_id, as_of, file_sha256s)`
    (supplied by the caller: rules over the accepted records of those files, at the run's as_of and
    policy) returns {document file name: evidence_id}; each is compared with `stored` (default: the
    runs table's ids, see evidence_columns()) for every document the run stored an id for or lists
    among its artifacts; a recomputed document the run did not write (a run made before that
    document existed) is not compared. Each differing document is one problem naming the id."""
    seq, run_id = entry.get("seq"), entry.get("run_id")

    def problem(message: str) -> Problem:
        return Problem("evidence", seq, run_id, message)

    if stored is None:
        stored = stored_evidence_ids(con, run_id)
        if stored is None:
            return [problem("no runs row holds the run's evidence ids")]
    files = files_up_to(con, entry)
    dataset = dataset_identity(files)
    if dataset["sha256"] != entry.get("dataset_sha256"):
        return [problem(f"the {dataset['files']} files ingested up to the run give dataset sha256 "
                        f"{dataset['sha256']}, not the recorded {entry.get('dataset_sha256')}: not recomputed")]
    try:
        recomputed = dict(recompute(run_id, _instant(entry["as_of"]), files))
    except Exception as error:  # the check fails, the other runs are still checked
        return [problem(f"recomputation failed: {type(error).__name__}: {error}")]
    problems = []
    artifacts = entry.get("artifacts") if isinstance(entry.get("artifacts"), Mapping) else {}
    for name in sorted(set(stored) | (set(artifacts) & set(evidence_columns()))):
        if name not in stored:
            problems.append(problem(f"{name}: the run wrote it but the runs table holds no evidence_id for it"))
        elif name not in recomputed:
            problems.append(problem(f"{name}: not recomputed (stored evidence_id {stored[name]})"))
        elif stored.get(name) != recomputed[name]:
            problems.append(problem(f"{name}: stored evidence_id {stored.get(name)} differs from the recomputed "
                                    f"{recomputed[name]}"))
    return problems


def verify_runs_recorded(con, entries: list[Mapping[str, Any]]) -> list[Problem]:
    """Each run of the runs table since the ledger began has an entry (runs and their entries are
    committed together, so a run without one means its entry was removed, e.g. the chain's tail).
    Runs finished before the first entry's generated_at predate the ledger and are not checked."""
    if not entries:
        return []
    recorded = {entry.get("run_id") for entry in entries}
    first = entries[0].get("generated_at")
    try:
        rows = con.execute("select run_id from runs where finished_at >= ?::TIMESTAMPTZ order by finished_at, run_id",
                           [first]).fetchall()
    except Exception:  # noqa: BLE001 - an unreadable generated_at is already a chain problem
        return []
    return [Problem("chain", None, run_id, "the run is in the runs table but has no ledger entry (entry removed)")
            for (run_id,) in rows if run_id not in recorded]


def _recorded_runs(con) -> set[str]:
    return {row[0] for row in con.execute("select run_id from runs").fetchall()}


def unrecorded_directories(con, out_dir: str | Path, entries: list[Mapping[str, Any]]) -> list[Problem]:
    """Directories of OUT that neither the ledger nor the runs table names: runs killed before their
    COMMIT (their files may be all there, ledger.json included, yet the run never happened). Listed
    as `unrecorded`, never checked and never a failure: nothing vouches for them. Directories of
    runs in the runs table without an entry are verify_runs_recorded's."""
    out = Path(out_dir)
    if not out.is_dir():
        return []
    known = {entry.get("run_id") for entry in entries} | _recorded_runs(con)
    return [Problem("unrecorded", None, child.name, f"{child}: a run directory the ledger does not hold (a run "
                                                     f"stopped before its commit?): not checked, not vouched for")
            for child in sorted(out.iterdir())
            if child.is_dir() and not child.is_symlink() and not child.name.startswith(".")
            and child.name != LATEST and child.name not in known]


def verify_latest(con, out_dir: str | Path, entries: list[Mapping[str, Any]]) -> list[Problem]:
    """OUT/latest names a recorded run: it is switched only after the run's COMMIT, so a target that
    neither the ledger nor the runs table holds means the run's records (entry and row) were removed."""
    latest = Path(out_dir) / LATEST
    if not latest.is_symlink():
        return []
    target = Path(os.readlink(latest)).name
    if target in {entry.get("run_id") for entry in entries} or target in _recorded_runs(con):
        return []
    return [Problem("chain", None, target, f"{latest} points to run {target}, which neither the ledger nor the "
                                           f"runs table holds: its records were removed")]


def verify(con, out_dir: str | Path, *, run_id: str | None = None, recompute: Recompute | None = None,
           check_runs: bool = True) -> list[Problem]:
    """Everything `exportaudit verify` checks: the whole chain always; the run directory (and, when
    `recompute` is given, the evidence) of every run (`run_id` None: --all) or of one run (--run);
    with --all, OUT's directories that no run recorded (`unrecorded`). Raises UnknownRun when
    `run_id` is not in the ledger."""
    if not con.execute("select 1 from duckdb_tables() where table_name = 'ledger' and schema_name = 'main'").fetchall():
        if run_id is not None:
            raise UnknownRun(f"run {run_id} is not in the ledger: the warehouse has no ledger table")
        return [Problem("chain", None, None, "the warehouse has no ledger table (dropped, or made before the "
                                             "ledger and never run since)")]
    entries = read_ledger(con)
    problems = verify_chain(entries)
    if check_runs:
        problems.extend(verify_runs_recorded(con, entries))
        problems.extend(verify_latest(con, out_dir, entries))
    selected = entries if run_id is None else [entry for entry in entries if entry.get("run_id") == run_id]
    if run_id is not None and not selected:
        raise UnknownRun(f"run {run_id} is not in the ledger")
    for entry in selected:
        problems.extend(verify_run_directory(out_dir, entry))
        if recompute is not None:
            problems.extend(verify_evidence(con, entry, recompute))
    if run_id is None and check_runs:
        problems.extend(unrecorded_directories(con, out_dir, entries))
    return problems


# ---------------------------------------------------------------- recomputing a past run's evidence

VERIFY_GENERATED_BY = "exportaudit verify"


def run_policy(con, run_id: str):
    """The Policy a recorded run evaluated at: runs.policy_json (every document's policy block); for
    a run recorded before that column, the blocks evidence_documents holds (retry, health) over the
    defaults. Validated like a policy file."""
    from exportaudit.policy import policy_from_mapping

    rows = con.execute("select policy_json from runs where run_id = ?", [run_id]).fetchall()
    if rows and rows[0][0] is not None:
        return policy_from_mapping(json.loads(rows[0][0]))
    values: dict[str, Any] = {}
    for (block,) in con.execute("select policy_json from evidence_documents where run_id = ? order by document",
                                [run_id]).fetchall():
        values.update(json.loads(block))
    return policy_from_mapping(values)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def warehouse_at_run(con, seq: int, file_sha256s: list[str]) -> Iterator[None]:
    """The warehouse as the run with this seq saw it when it evaluated, for the queries of
    exportaudit/evaluation.py on `con` (read-only is fine): temporary views shadow the tables, holding
    the accepted records and S3 report rows of the given files only (lineage: source_file_sha256,
    report_id), those files in ingested_files, and the run history recorded before the run (every
    run but this one and the later ones of the ledger). Dropped on exit."""
    from exportaudit import warehouse

    catalog = _ident(con.execute("select current_database()").fetchall()[0][0])

    def table(name: str) -> str:
        return f"{catalog}.main.{_ident(name)}"

    files = "(select file_sha256 from temp.main._verify_files)"
    reports = (f"(select report_id from {table('ingested_files')} where file_sha256 in {files} "
               f"and report_id is not null)")
    views = {log: f"select * from {table(log)} where source_file_sha256 in {files}"
             for log in warehouse.ACCEPTED_SCHEMAS}
    views["ingested_files"] = f"select * from {table('ingested_files')} where file_sha256 in {files}"
    views.update({name: f"select * from {table(name)} where report_id in {reports}" for name in warehouse.REPORT_TABLES})
    views["runs"] = (f"select * from {table('runs')} where run_id not in "
                     f"(select run_id from {table('ledger')} where seq >= {int(seq)} and run_id is not null)")
    views.update({name: f"select * from {table(name)} where run_id in (select run_id from temp.main.runs)"
                  for name in warehouse.RESULT_SCHEMAS})
    con.execute("create or replace temp table _verify_files (file_sha256 varchar)")
    try:
        if file_sha256s:
            con.executemany("insert into temp.main._verify_files values (?)", [[sha] for sha in file_sha256s])
        for name, query in views.items():
            con.execute(f"create or replace temp view {_ident(name)} as {query}")
        yield
    finally:
        for name in reversed(list(views)):
            con.execute(f"drop view if exists temp.main.{_ident(name)}")
        con.execute("drop table if exists temp.main._verify_files")


def warehouse_recompute(con) -> Recompute:
    """The recomputation `exportaudit verify` uses: a run's evidence documents from the warehouse's
    accepted records of the files ingested up to it, at its as_of and policy (run_policy), through
    evaluation.evaluate — the night's own path, every answer of the night — as {file name: evidence_id}."""
    from exportaudit import evaluation
    from exportaudit.outputs import evidence_ids

    def recompute(run_id: str, as_of: datetime, file_sha256s: list[str]) -> dict[str, str]:
        seq = con.execute("select min(seq) from ledger where run_id = ?", [run_id]).fetchall()[0][0]
        policy = run_policy(con, run_id)
        with warehouse_at_run(con, seq, file_sha256s):
            context = evaluation.context(con, run_id=run_id, as_of=as_of, generated_at=as_of,
                                         generated_by=VERIFY_GENERATED_BY, inputs=[])
            evaluated = evaluation.evaluate(evaluation.accepted(con, evaluation.NIGHT_ANSWERS), as_of, policy,
                                            context, evaluation.NIGHT_ANSWERS)
        return evidence_ids(evaluated.documents)

    return recompute


def exit_code(problems: Iterable[Problem], mode: str) -> int:
    """0 when everything holds, 1 when anything does not. A pruned run directory (`missing`) alone
    leaves --all at 0 (the chain and the evidence still verify) but makes --run 1 (that run's files
    cannot be checked). An `unrecorded` directory is never a failure."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if all(problem.kind in NOT_FAILURES[mode] for problem in problems):
        return EXIT_OK
    return EXIT_PROBLEMS
