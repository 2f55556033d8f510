"""The apply protocol for engines whose DDL commits statement by statement (Spark SQL; Snowflake's
and HANA's DDL commits implicitly too): journal, compensate, resume. `executor.apply_tenant` hands
such tenants here.

Under the tenant lock, before its first statement, a run journals every object its statements
will write (`sql.written_objects`) as it is then, as facts (`catalog.Before`): absent, a view and its
text, or a table, its columns, format, properties and comments; a table's rows are copied to a restore point just
before the first statement that touches it, unless the adapter keeps a history it can restore
(a Delta table altered in place without loss: its version, journaled). Each copy is listed in the
catalog's backups index before it is made, and dropped once the run concluded (the next apply drops
those of a run killed in between), but for the backups of changes that lose data and those the run's
checkpoint keeps once it applied and converged (`before-apply-<run>`: the checkpoint that DuckDB and
PostgreSQL take inside their transaction, made here of what the journal took before writing). The run's commit point
is its `applied` event in the catalog's run log: the catalog believes object records only of
runs that reached it. A failing statement, Ctrl-C, a lock taken over or a failed convergence
check compensates: every journaled object is put back (what the run created dropped, what it
changed re-created from its view text or restore point, or restored to its version, what it never
wrote left as it is), each is verified to be as it was, and the run is recorded as failed. Nothing
that holds rows is dropped unless a copy that stays holds them (`last_copy`): when one does not,
nothing is put back and the run stays running (PartlyDone). A run killed outright is compensated
by the next apply before it plans, and never finished forward: its plan was made for a desired
state that may have moved since, while its journal says exactly what the tenant was before it. An
endpoint that stops answering stops the run where it is (nothing can be put back there): the journal
stays for `unlock` or the next apply.
Never plans; only writes what the journal and the plan say.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, cast

from sqlglot.errors import SqlglotError

from .. import faults
from ..desired.sql import qualified, written_objects
from ..engines import catalog
from ..engines.contract import Session, StatementFailed
from ..engines.journaled_contract import JournaledAdapter
from ..errors import (
    ApplyFailed,
    ChecksFailed,
    GuardRefused,
    JournalRefused,
    LockTakenOver,
    PartlyDone,
    ReconcilerError,
    StalePlan,
)
from ..model import ObjectKey
from ..parallel import STOP
from ..plan import Change, Plan, TenantPlan
from ..planning.diff import views_to_bind
from ..planning.tenant import Restoring
from ..sessions import EndpointLost
from ..state import LiveObject, LiveState
from . import checkpoints, journal_authority, last_copy
from .lifecycle import (
    NotConverged,
    Progress,
    TenantResult,
    changed_tables,
    converged,
    failed_subject,
    new_run_id,
    replan,
    restored,
    run_checks,
    warnings,
)

if TYPE_CHECKING:
    from ..planning.environment import TenantState


class CompensationFailed(ApplyFailed):
    """Putting a run's objects back did not leave them as they were: the journal and the restore
    points stay for a person to finish with."""


def apply_journaled(state: TenantState, expected: TenantPlan, plan: Plan, actor: str, operation: str,
                    progress: Progress | None, moved: str, allow_data_loss: Sequence[str],
                    restoring: Restoring | None = None) -> TenantResult:
    run = catalog.Run(new_run_id(), plan, expected, actor, operation)
    adapter = cast(JournaledAdapter, state.adapter)   # `protocol_for` chose this protocol for being one
    with adapter.session(create=state.tenant.create, holder={"run_id": run.run_id, "actor": actor}) as session:
        catalog.create(session)
        recovered = _taken_over(session) + tuple(recover(session, dead) for dead in catalog.running(session))
        recovered += _drop_left_restore_points(session)
        run.record(session, "running")
        try:
            live, tenant_plan = replan(session, state, expected, plan, moved, allow_data_loss)
            run.tenant_plan = tenant_plan
            changes = (*tenant_plan.changes, *restored(session, state, live, restoring))
            kept = _kept_as_backups(changes)
            try:
                befores = journal(changes, live, adapter.engine,
                                  lambda found, rewritten: adapter.restore_point(session, found, run.run_id, rewritten))
            except StatementFailed as unreadable:   # a table's history could not be read
                raise ApplyFailed(f"tenant {expected.tenant}: cannot take a restore point: {unreadable.message}\n"
                                  f"  statement: {unreadable.statement}\n  nothing was changed") from None
        except (GuardRefused, StalePlan, ApplyFailed) as refused:   # nothing has run
            run.finish(session, "refused" if isinstance(refused, GuardRefused) else
                       "stale" if isinstance(refused, StalePlan) else "failed", str(refused))
            raise
        catalog.write_journal(session, run.run_id, befores, planned(changes))
        catalog.mark_restore_points(session, run.run_id, [b.restore_point for b in befores if b.restore_point
                                                          and b.version is None and b.key.folded() not in kept])
        touched: set[tuple[str, str]] = set()   # what the run's statements wrote: the rest stays as it is
        try:
            _execute(session, changes, befores, run, progress, touched)
            catalog.write_objects(session, tenant_plan.changes, state.desired, run)
            session.check_views(views_to_bind(changes, live, state.desired.engine))
            run_checks(session, state, changes, run)
            run.finish(session, "applied" if changes else "no-changes")   # the commit point
            with adapter.reading() as fresh:   # the applying session's cached table metadata misses others' edits
                converged(session, state, run, fresh)   # a hand edit after this reading changes the next digest
        except LockTakenOver as taken:   # the new holder recovers this run: putting back now would undo its work
            raise LockTakenOver(f"tenant {expected.tenant}: {taken}\n  the run {run.run_id} stopped before its next "
                                "statement and put nothing back: the run that holds the tenant now compensates it "
                                "from its journal (or `reconciler unlock` of it, once that run ended)") from None
        except EndpointLost as lost:   # nothing answers: no statement of a compensation could run, nor be recorded
            after = ("its journal and restore points are kept and it stays recorded as running: once the tenant "
                     f"answers again, `reconciler unlock {plan.environment} {run.run_id}`, or the next apply, puts the "
                     "tenant back as it was before the run" if run.outcome == "running" else
                     f"it was recorded {run.outcome} before that; the next apply drops the restore points it left")
            raise ApplyFailed(f"tenant {expected.tenant}: {lost.message}\n  while running: {lost.statement}\n  the run "
                              f"{run.run_id} stopped there and put nothing back; {after}") from None
        except BaseException as stopped:
            if isinstance(stopped, StatementFailed):
                what = (f"{failed_subject(changes, stopped)}: apply failed: {stopped.message}\n"
                        f"  statement: {stopped.statement}")
            elif isinstance(stopped, ChecksFailed):
                what = str(stopped).removeprefix(f"tenant {expected.tenant}: ")
            elif isinstance(stopped, NotConverged):
                what = (f"after the statements a new plan was not empty: {stopped} (this is a reconciler bug, "
                        "please report it)")
            else:
                what = f"stopped by {type(stopped).__name__}: {stopped}".rstrip(": ")
            try:
                put_back = compensate(session, run.run_id, befores, touched)
            except (CompensationFailed, PartlyDone) as failed:   # left running: the next apply compensates it again
                raise type(failed)(f"tenant {expected.tenant}: {what}\n  {failed}\n  the run {run.run_id} stays "
                                   "recorded as running, and the next apply (or `reconciler unlock` of it) tries "
                                   "to put it back again") from None
            message = (f"tenant {expected.tenant}: {what}\n  {adapter.engine} commits each statement, so the run "
                       f"was compensated from its journal: {put_back}; the tenant is as it was before the run")
            run.finish(session, "failed" if isinstance(stopped, Exception) else "interrupted", message)
            if isinstance(stopped, (StatementFailed, NotConverged)):
                raise ApplyFailed(message) from None
            if isinstance(stopped, ReconcilerError):
                raise type(stopped)(message) from None
            raise
        faults.reached("checkpoint", expected.tenant)
        checkpointed, said = _checkpoint(session, adapter, run, changes, befores, live, kept)
        faults.reached("cleanup", expected.tenant)
        drop_restore_points(session, befores, checkpointed)
    return TenantResult(expected.tenant, run.run_id, run.outcome, tenant_plan.summary,
                        notes=recovered + said + warnings(run.checks))


def _checkpoint(session: Session, adapter: JournaledAdapter, run: catalog.Run, changes: Sequence[Change],
                befores: Sequence[catalog.Before], live: LiveState, kept: set[tuple[str, str]]
                ) -> tuple[set[str], tuple[str, ...]]:
    """Once the run applied and converged: the checkpoint `before-apply-<run>` of every table it changed
    and did not drop (`checkpoint_restore_points`). Never taken for a run that was put back: its restore
    points go with it, as the transactional protocol's checkpoint goes with its rolled-back transaction."""
    journaled = {before.key.folded() for before in befores if before.restore_point}
    tables = [live.objects[key] for key in changed_tables([c for c in changes if c.action != "delete"], live)
              if key.folded() in journaled]
    return checkpoint_restore_points(session, adapter, run, tables, befores, kept)


def checkpoint_restore_points(session: Session, adapter: JournaledAdapter, run: catalog.Run,
                              tables: Sequence[LiveObject], befores: Sequence[catalog.Before],
                              kept: Collection[tuple[str, str]] = ()) -> tuple[set[str], tuple[str, ...]]:
    """The checkpoint `before-<operation>-<run>` of `tables`, made of the restore points the run took
    before writing them (no row copied again): a Delta table's the version it was at, else its copy,
    which is listed by the checkpoint's rows and then leaves the backups index (but for the backups of
    changes that lose data, `kept`, which stay listed as backups too). The copies it keeps (not to be
    dropped as restore points), and what to say when it could not be taken: the run stays as it ended,
    and its restore points are dropped."""
    journaled = {before.key.folded(): before for before in befores if before.restore_point}
    if not tables:
        return set(), ()
    name, points = f"before-{run.operation}-{run.run_id}", []
    try:
        for found in tables:
            before = journaled[found.key.folded()]
            if before.version is not None:
                kind, rows = catalog.HISTORY_KIND, adapter.rows_at(session, found.key, before.version)
            else:
                kind = catalog.COPY_POINT
                copy = ObjectKey(catalog.BACKUP_SCHEMA, before.restore_point)
                rows = session.count_rows([copy])[copy]
            points.append(checkpoints.Point(name, run.plan.environment, run.tenant_plan.tenant, found.key, kind,
                                            before.restore_point, run.plan.commit, run.run_id, run.started, rows,
                                            checkpoints.structure(found)))
        session.hold()
        checkpoints.record(session, points)
    except StatementFailed as failed:
        return set(), (f"its checkpoint {name} was not taken: {failed.message} (statement: {failed.statement}); "
                       "its restore points are dropped",)
    copies = {p.restore_point for p in points if p.kind == catalog.COPY_POINT}
    try:   # listed by the checkpoint now: kept, whatever happens to their unlisting as backups
        for point in copies - {journaled[k].restore_point for k in kept if k in journaled}:
            session.hold()
            session.execute(catalog.unlist_backup_statement(session, point))
    except StatementFailed as failed:
        return copies, (f"its checkpoint {name} was taken, but its copies are still listed as restore points "
                        f"({failed.message}); the next apply unlists them",)
    return copies, ()


def _kept_as_backups(changes: Sequence[Change]) -> set[tuple[str, str]]:
    """The tables (folded keys) whose restore points are kept as the tenant's backups: those of changes
    that lose data, as on the other engines."""
    return {ObjectKey.parse(c.object).folded() for c in changes if c.data_loss}


def _drop_left_restore_points(session: Session) -> tuple[str, ...]:
    """Under the lock, before this run plans: the restore points that runs killed after their commit point
    left (`catalog.left_restore_points`), each unlisted, then dropped. None is the last copy of anything:
    a restore point is taken of a table whose change loses nothing (the others are backups, kept), and its
    run concluded, applied (every row where its statements put it, a rebuild's proven) or put back and
    verified; a restore point of a run still recorded as running is never one of them."""
    left = catalog.left_restore_points(session)
    if left:   # a run killed after it listed its checkpoint, before its copies left the backups index: finished
        kept = {(row["restore_point"], row["run_id"]) for row in catalog.checkpoints(session)
                if row["kind"] == catalog.COPY_POINT}
        for backup in [b for b in left if (b["name"], b["run_id"]) in kept]:
            session.hold()
            session.execute(catalog.unlist_backup_statement(session, backup["name"]))
        left = [backup for backup in left if (backup["name"], backup["run_id"]) not in kept]
    for backup in left:
        for statement in catalog.drop_backup_statements(session, backup["name"]):
            session.hold()
            session.execute(statement)
    if not left:
        return ()
    runs = ", ".join(sorted({backup["run_id"] for backup in left}))
    return (f"dropped {len(left)} restore point{'s' * (len(left) != 1)} left in {catalog.BACKUP_SCHEMA} by run "
            f"{runs}, which concluded before it dropped them: {', '.join(b['name'] for b in left)}",)


def _taken_over(session) -> tuple[str, ...]:
    """Said when this run took the tenant lock over from a holder that never released it."""
    holder = getattr(getattr(session, "lock", None), "taken_over", None)
    if not holder:
        return ()
    return (f"took over the tenant lock of run {holder.get('run_id', '?')} ({holder.get('actor', '?')} on "
            f"{holder.get('host', '?')}, pid {holder.get('pid', '?')}), which never released it: its lease ran "
            f"until {holder.get('lease_until', '?')} UTC, or its process on this machine is gone",)


def planned(changes: Sequence[Change]) -> set[ObjectKey]:
    """The objects a run's plan names: each change's object and the table it is renamed from (a
    rebuild's working table is one of these, `REBUILD_SUFFIX` added: `journal_authority`)."""
    return {ObjectKey.parse(name) for c in changes for name in (c.object, c.renamed_from) if name}


def journal(changes: Sequence[Change], live: LiveState, engine: str,
            restore_point: Callable[[LiveObject, bool], str]) -> list[catalog.Before]:
    """Every object the changes' statements write, as the tenant has it now (its facts: never a
    statement), in the order the changes first touch them (the catalog's own tables are not the plan's
    objects). A table's restore point is the adapter's (`restore_point(found, rewritten)`): `rewritten`
    when the run drops it, renames it away or loses data in it, where only a copy of its rows can bring
    it back. A statement that writes an object outside the plan (`planned`) is not run: a recovery would
    not believe its journal."""
    befores: dict[tuple[str, str], catalog.Before] = {}
    written: list[tuple[int, ObjectKey]] = []
    rewritten = {ObjectKey.parse(c.object).folded() for c in changes if c.data_loss}
    plan = {key.folded() for key in planned(changes)}
    for step, change in enumerate(changes):
        for statement in change.statements:
            try:
                touched, replaced = written_objects(statement, engine)
                written += [(step, ObjectKey(schema, name)) for schema, name in touched]
                rewritten |= {ObjectKey(schema, name).folded() for schema, name in replaced}
            except SqlglotError as error:   # what cannot be journaled is not run
                raise ApplyFailed(f"{change.kind} {change.object}: cannot tell which objects this statement writes, "
                                  f"so it cannot be undone: {statement} ({error}); nothing was changed") from None
    for step, key in written:
        if key.folded() in befores or key.schema.lower().startswith(catalog.CATALOG_SCHEMA):
            continue
        if not journal_authority.in_plan(key, plan):
            raise ApplyFailed(f"{changes[step].kind} {changes[step].object}: a statement writes {key}, which the "
                              "plan does not name, so a recovery could not trust its journal; nothing was changed")
        found = live.object(key)
        point = restore_point(found, found.key.folded() in rewritten) if found and found.kind == "Table" else None
        befores[key.folded()] = catalog.Before.of(step, found.key if found else key, found, point)
    return list(befores.values())


def _execute(session: Session, changes: Sequence[Change], befores: Sequence[catalog.Before], run: catalog.Run,
             progress: Progress | None, touched: set[tuple[str, str]]) -> None:
    """Each change's statements, a table's restore point taken just before the first that touches it,
    each reading the rows committed by then (`Session.fresh`). What each writes is added to `touched`
    before it runs."""
    fault = faults.Fault.from_environment(run.tenant_plan.tenant, STOP)
    points = {step: [b for b in befores if b.step == step and b.restore_point and b.version is None]
              for step in range(len(changes))}   # a point in a table's history needs no copy
    for step, change in enumerate(changes):
        statements: list[str] = []
        for before in points[step]:   # indexed before it is made: a copy a killed run left is listed
            statements += catalog.backup_statements(session.engine, before.key, before.restore_point, run.run_id,
                                                    run.started)
        for statement in [*statements, *change.statements]:
            if STOP.is_set():
                raise KeyboardInterrupt
            session.hold()
            written, _ = written_objects(statement, session.engine)
            touched.update(ObjectKey(schema, name).folded() for schema, name in written)
            session.fresh(statement)
            session.execute(statement)
            fault.tick()
        if progress is not None:
            progress(run.tenant_plan.tenant, change)


def compensate(session: Session, run_id: str, befores: Sequence[catalog.Before],
               touched: Collection[tuple[str, str]] | None = None) -> str:
    """Put every journaled object back as it was, then verify each: what was absent dropped, a
    view re-created from its text, a table re-created from its restore point, a table the run never
    wrote (`touched`, when known) left as it is. Newest first for what goes, tables then views for
    what comes back (a view is created over what it reads). Nothing that holds rows is dropped unless
    a copy that stays holds them (`last_copy`: PartlyDone, nothing changed, when one does not).
    Returns what was done, for people; CompensationFailed (the journal and restore points kept) when
    a statement of it fails or the result differs."""
    try:
        return _put_back(session, run_id, befores, touched)
    except StatementFailed as failure:
        raise CompensationFailed(f"putting the run's objects back failed: {failure.message}\n  statement: "
                                 f"{failure.statement}\n  its journal and restore points (schema "
                                 f"{catalog.BACKUP_SCHEMA}) are kept") from None
    except JournalRefused as refused:   # a view's text that is not one query is never run
        raise CompensationFailed(f"putting the run's objects back stopped: {refused}; its journal and restore "
                                 f"points (schema {catalog.BACKUP_SCHEMA}) are kept") from None


def _put_back(session: Session, run_id: str, befores: Sequence[catalog.Before],
              touched: Collection[tuple[str, str]] | None) -> str:
    engine = session.engine
    live, _ = session.adapter.engine_objects(session.connection)
    now = {key.folded(): obj for key, obj in live.items()}
    points = {name.lower() for name in session.tables(catalog.BACKUP_SCHEMA)}
    stays = last_copy.staying(session, befores, now, points, touched)
    dropped, back, rewound = 0, [], []
    for before in reversed(befores):
        found = now.get(before.key.folded())
        if before.kind == "View" and not before.differences(found):   # Spark keeps a view's column types
            continue
        if before.version is not None:   # put back in place from its own history (never dropped by the run)
            if found is not None and found.kind == "Table":
                rewound.append(before)
            continue
        if before.key.folded() in stays:
            continue
        if found is not None:
            session.execute(f"DROP {'VIEW' if found.kind == 'View' else 'TABLE'} "
                            f"{qualified(found.key.schema, found.key.name, engine)}")
            dropped += 1
        if before.kind != "absent":
            back.append(before)
    for before in back:
        if before.kind == "Table":   # re-created by a statement generated from the journal's facts
            definition = cast(JournaledAdapter, session.adapter).definition(before.as_table())
            for statement in catalog.from_restore_point(engine, before, definition):
                session.execute(statement)
    for before in rewound:
        cast(JournaledAdapter, session.adapter).restore_from_history(session, before, run_id)
    views = [b for b in back if b.kind == "View"]
    while views:   # in plan order; a view whose reads are not back yet waits for the next round
        waiting = []
        for before in views:
            try:
                session.execute(f"CREATE VIEW {qualified(before.key.schema, before.key.name, engine)} "
                                f"AS {journal_authority.view_query(before, engine)}")
            except StatementFailed:
                waiting.append(before)
        if len(waiting) == len(views):
            break
        views = waiting
    _verify(session, befores)
    drop_restore_points(session, befores)
    restored = f", {len(rewound)} restored to their version before the run" if rewound else ""
    return f"{dropped} object{'s' * (dropped != 1)} dropped, {len(back)} re-created as before{restored}"


def _verify(session: Session, befores: Sequence[catalog.Before]) -> None:
    """Every journaled object as the journal says it was: kind, columns, view text, format, properties
    and comments (`Before.differences`), read anew; else CompensationFailed saying exactly what differs."""
    live, _ = session.adapter.engine_objects(session.connection)
    now = {key.folded(): obj for key, obj in live.items()}
    wrong = [difference for before in befores for difference in before.differences(now.get(before.key.folded()))]
    if wrong:
        raise CompensationFailed("putting the run's objects back did not restore them: " + "; ".join(wrong)
                                 + f"; its journal and restore points (schema {catalog.BACKUP_SCHEMA}) are kept")


def drop_restore_points(session: Session, befores: Sequence[catalog.Before], checkpointed: Collection[str] = ()
                         ) -> None:
    """A run's restore points once it ended either way, each unlisted before its table is dropped; those
    of changes that lose data are kept as the tenant's backups (for `reconciler restore`), unless the run
    stopped before it made one, and those its checkpoint keeps (`checkpointed`) stay as its copies. A
    restore point no index lists (a run of an older release) is dropped."""
    listed = {backup["name"]: backup for backup in catalog.backups(session)}
    present = {name.lower() for name in session.tables(catalog.BACKUP_SCHEMA)}
    for before in befores:
        point = before.restore_point
        if not point or before.version is not None or point in checkpointed:
            continue
        backup = listed.get(point)
        if backup is not None and not backup.get("restore_point") and point.lower() in present:
            continue   # a backup
        for statement in (catalog.drop_backup_statements(session, point) if backup is not None else
                          [f"DROP TABLE IF EXISTS {qualified(catalog.BACKUP_SCHEMA, point, session.engine)}"]):
            session.execute(statement)


def recover(session: Session, run_id: str) -> str:
    """A run the audit shows as running, found by a run that holds the tenant lock: its process is
    gone. Compensated from its journal (a run that journaled nothing changed nothing) and concluded,
    once the journal is shown to be as its run wrote it and to name only what its run could touch
    (`journal_authority`); what became of it, for people."""
    tenant = session.adapter.tenant.name
    try:
        found = catalog.read_journal(session, run_id)
        if found is not None:
            live, _ = session.adapter.engine_objects(session.connection)
            records, _ = catalog.read(session)
            journal_authority.check(found, {key.folded() for key in records},
                                    {key.folded(): obj for key, obj in live.items()}, session.engine)
    except JournalRefused as refused:   # it stays running: nothing was put back
        raise JournalRefused(
            f"tenant {tenant}: run {run_id} had been interrupted, and {refused}\n  nothing was put back and it "
            f"stays recorded as running; once a person has put the tenant right by hand (or finished the run with "
            f"the release that wrote its journal), `reconciler unlock ENVIRONMENT {run_id} --as-is` concludes it "
            "without putting anything back") from None
    if found is None:
        catalog.release(session, run_id, "interrupted", "stopped before its first statement; nothing to undo")
        return f"run {run_id} had been interrupted before its first statement; nothing to undo"
    try:
        put_back = compensate(session, run_id, found.befores)
    except PartlyDone as stopped:   # it stays running: the next apply, or unlock, tries again
        raise PartlyDone(f"tenant {tenant}: run {run_id} had been interrupted, and "
                         f"{stopped}\n  its journal is kept and it stays recorded as running: once what is "
                         f"missing is back (a restore point under its name, with the columns its table had), "
                         f"`reconciler unlock` of run {run_id}, or the next apply, puts the run back") from None
    note = (f"run {run_id} had been interrupted; compensated from its journal ({put_back}) rather than "
            "finished forward: its plan was made for a desired state that may have moved, its journal says "
            "exactly what the tenant was")
    catalog.release(session, run_id, "compensated", note)
    return note
