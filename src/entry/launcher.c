/*
 * launcher.c — the decide launcher: one background worker per database
 * that has the extension, as the autovacuum launcher has one per database
 * to vacuum.
 *
 * The launcher is registered at preload and connects to no database (it
 * reads only the shared catalog pg_database).  It starts a database's
 * worker (worker.c) as a dynamic background worker when:
 *   - it starts, and then every RESCAN_MS, for each database that allows
 *     connections: a worker that finds no decide extension there exits at
 *     once and says so, and the database is looked at again only after
 *     RECHECK_MS, or as soon as a backend decides there;
 *   - a backend decides in a database with no worker (its first logged
 *     decision takes a log ring: audit_log.c);
 *   - a worker it started has stopped (after RESTART_MS), unless it found
 *     no decide, or its database is gone or kept away.
 * At most decide.max_databases workers run at once.  When no background
 * worker slot is free (max_worker_processes), that database's decisions
 * are counted as not logged, with a WARNING at most once a minute, and the
 * launcher tries again after RESTART_MS.
 *
 * CREATE EXTENSION decide and ALTER EXTENSION decide UPDATE ask for a
 * worker when they commit.  Databases that are gone give their log ring
 * back.  DDL that needs a database without connections (DROP DATABASE,
 * ALTER DATABASE RENAME or SET TABLESPACE, CREATE DATABASE from it as a
 * template) stops its worker and keeps workers away for KEEP_AWAY_MS (the
 * utility hook below).
 */
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "audit_log.h"
#include "launcher.h"
#include "worker_registry.h"

#define RESCAN_MS (10 * 1000)
#define RECHECK_MS (10 * 60 * 1000)
#define RESTART_MS 1000
#define KEEP_AWAY_MS (10 * 1000)
#define NO_SLOT_WARNING_MS (60 * 1000)
#define MAX_KNOWN 1024

PGDLLEXPORT void decide_launcher_main(Datum arg);

/* What the launcher knows of a database. */
typedef struct KnownDatabase
{
	Oid			database;
	BackgroundWorkerHandle *handle; /* its worker; NULL: none started */
	TimestampTz started_at;		/* its last worker was started */
	TimestampTz stopped_at;		/* its last worker stopped (or could not start) */
	TimestampTz wanted_at;		/* a backend decided there, or decide was created */
	TimestampTz without_decide_at;	/* a worker found no decide; 0: not known */
	bool		seen;			/* in pg_database at the last scan */
} KnownDatabase;

static KnownDatabase known[MAX_KNOWN];
static int	n_known = 0;
static TimestampTz warned_no_slot_at = 0;

static KnownDatabase *
known_database(Oid database, bool add)
{
	int			i;

	for (i = 0; i < n_known; i++)
		if (known[i].database == database)
			return &known[i];
	if (!add || n_known == MAX_KNOWN)
		return NULL;
	memset(&known[n_known], 0, sizeof(KnownDatabase));
	known[n_known].database = database;
	known[n_known].seen = true;
	return &known[n_known++];
}

static void
forget_database(int i)
{
	if (known[i].handle)
		pfree(known[i].handle);
	known[i] = known[--n_known];
}

/* Marks the databases that allow connections as seen; forgets the others. */
static void
scan_databases(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	int			i;

	for (i = 0; i < n_known; i++)
		known[i].seen = false;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database form = (Form_pg_database) GETSTRUCT(tuple);
		KnownDatabase *db;

		if (!form->datallowconn || form->datistemplate || database_is_invalid_form(form))
			continue;
		db = known_database(form->oid, true);
		if (db)
			db->seen = true;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();

	/*
	 * Gone (or closed to connections): its ring and its registry entry
	 * (which DDL may have taken to keep workers away) go, if no worker runs.
	 */
	for (i = n_known - 1; i >= 0; i--)
		if (!known[i].seen && known[i].handle == NULL)
		{
			audit_log_release(known[i].database);
			worker_registry_forget(known[i].database);
			forget_database(i);
		}
}

/* Looks at the workers started: which have stopped, and why. */
static void
reap_workers(TimestampTz now)
{
	int			i;

	for (i = 0; i < n_known; i++)
	{
		KnownDatabase *db = &known[i];
		pid_t		pid;

		if (db->handle == NULL ||
			GetBackgroundWorkerPid(db->handle, &pid) != BGWH_STOPPED)
			continue;
		pfree(db->handle);
		db->handle = NULL;
		db->stopped_at = now;
		/* Found no decide: true unless decide was wanted there since it started. */
		if (worker_registry_stopped(db->database) && db->wanted_at <= db->started_at)
			db->without_decide_at = now;
	}
}

static int
running_workers(void)
{
	int			running = 0;
	int			i;

	for (i = 0; i < n_known; i++)
		if (known[i].handle)
			running++;
	return running;
}

static void
start_worker(KnownDatabase *db, TimestampTz now)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "decide");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "decide_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "decide worker for database %u", db->database);
	snprintf(worker.bgw_type, BGW_MAXLEN, "decide worker");
	worker.bgw_main_arg = ObjectIdGetDatum(db->database);
	worker.bgw_notify_pid = MyProcPid;
	db->started_at = now;
	if (RegisterDynamicBackgroundWorker(&worker, &db->handle))
	{
		audit_log_set_no_worker(db->database, false);
		return;
	}
	db->handle = NULL;
	db->stopped_at = now;
	audit_log_set_no_worker(db->database, true);
	if (TimestampDifferenceExceeds(warned_no_slot_at, now, NO_SLOT_WARNING_MS))
	{
		ereport(WARNING,
				(errmsg("decide could not start a worker for database %u: no background worker slot is free",
						db->database),
				 errdetail("Its decisions are counted as not logged until one is."),
				 errhint("Raise max_worker_processes (a restart).")));
		warned_no_slot_at = now;
	}
}

/* Should the database's worker be started now? */
static bool
wants_worker(const KnownDatabase *db, TimestampTz now)
{
	if (db->handle != NULL || worker_registry_kept_away(db->database, now))
		return false;
	if (db->stopped_at != 0 && !TimestampDifferenceExceeds(db->stopped_at, now, RESTART_MS))
		return false;
	if (db->without_decide_at != 0)
		return TimestampDifferenceExceeds(db->without_decide_at, now, RECHECK_MS);
	return true;
}

void
decide_launcher_main(Datum arg)
{
	TimestampTz last_scan = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("decide launcher");
	worker_registry_attach_launcher(MyLatch);

	while (!ShutdownRequestPending)
	{
		TimestampTz now = GetCurrentTimestamp();
		Oid			wanted[64];
		int			n_wanted;
		int			i;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		reap_workers(now);
		if (last_scan == 0 || TimestampDifferenceExceeds(last_scan, now, RESCAN_MS))
		{
			scan_databases();
			last_scan = now;
		}
		/* Backends decided there: decide is installed, whatever a worker found before. */
		n_wanted = worker_registry_take_wanted(wanted, lengthof(wanted));
		for (i = 0; i < n_wanted; i++)
		{
			KnownDatabase *db = known_database(wanted[i], true);

			if (db)
			{
				db->without_decide_at = 0;
				db->wanted_at = now;
			}
		}
		for (i = 0; i < n_known && running_workers() < audit_log_max_databases(); i++)
			if (wants_worker(&known[i], now))
				start_worker(&known[i], now);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 RESTART_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	proc_exit(0);
}

void
launcher_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "decide");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "decide_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "decide launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "decide launcher");
	RegisterBackgroundWorker(&worker);
}

/* ---- database DDL that needs the database without connections ---- */

static ProcessUtility_hook_type prev_utility_hook = NULL;

/* The database a statement needs without connections; NULL: none. */
static const char *
database_needed_alone(Node *statement)
{
	ListCell   *cell;

	switch (nodeTag(statement))
	{
		case T_DropdbStmt:
			return ((DropdbStmt *) statement)->dbname;
		case T_RenameStmt:
			if (((RenameStmt *) statement)->renameType == OBJECT_DATABASE)
				return ((RenameStmt *) statement)->subname;
			return NULL;
		case T_CreatedbStmt:
			foreach(cell, ((CreatedbStmt *) statement)->options)
			{
				DefElem    *option = lfirst(cell);

				if (strcmp(option->defname, "template") == 0 && option->arg != NULL)
					return defGetString(option);
			}
			return NULL;
		case T_AlterDatabaseStmt:
			foreach(cell, ((AlterDatabaseStmt *) statement)->options)
			{
				DefElem    *option = lfirst(cell);

				if (strcmp(option->defname, "tablespace") == 0)
					return ((AlterDatabaseStmt *) statement)->dbname;
			}
			return NULL;
		default:
			return NULL;
	}
}

/* CREATE EXTENSION decide, or ALTER EXTENSION decide UPDATE (an old version has no log). */
static bool
creates_decide(Node *statement)
{
	return (IsA(statement, CreateExtensionStmt) &&
			strcmp(((CreateExtensionStmt *) statement)->extname, "decide") == 0) ||
		(IsA(statement, AlterExtensionStmt) &&
		 strcmp(((AlterExtensionStmt *) statement)->extname, "decide") == 0);
}

static void
decide_utility_hook(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					ProcessUtilityContext context, ParamListInfo params,
					QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	const char *name = database_needed_alone(pstmt->utilityStmt);

	if (name != NULL)
	{
		Oid			database = get_database_oid(name, true);

		if (OidIsValid(database))
		{
			int			pid = worker_registry_keep_away(database,
														TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																					KEEP_AWAY_MS));

			/* It drains its ring and exits; the statement waits for it as for any backend. */
			if (pid != 0)
				kill(pid, SIGTERM);
		}
	}
	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv,
								dest, qc);
	if (creates_decide(pstmt->utilityStmt))
		worker_registry_note_decide_at_commit();
}

void
launcher_install_hooks(void)
{
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = decide_utility_hook;
}
