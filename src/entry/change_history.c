/*
 * change_history.c — decide.changes: who changed which policy or entity,
 * when, under which epoch, and the row before and after.  The statement
 * triggers of decide.policies and decide.entities call
 * decide_record_changes(), in the transaction that makes the change, so a
 * rolled-back change (or subtransaction) leaves no trace and a committed
 * one always does.
 *
 * The trigger runs as the caller, to read current_user and session_user,
 * and writes the history as the owner of decide.changes (as the server's
 * referential-integrity triggers act as the table's owner): nobody but
 * the owner may write the history table directly.  The rows a statement
 * records are linked into the history's hash chain, decide.changes_chain
 * (log_chain.c), in the same transaction.
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/pg_type.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "change_history.h"
#include "log_chain.h"

int			decide_changes_retention_min = 0;

void
change_history_define_gucs(void)
{
	DefineCustomIntVariable("decide.changes_retention",
							"Age after which the worker deletes rows of decide.changes; 0 keeps them.",
							NULL,
							&decide_changes_retention_min, 0, 0, INT_MAX / 2,
							PGC_SIGHUP, GUC_UNIT_MIN, NULL, NULL, NULL);
}

/* The key that names a row of each table in the history. */
static const char *
row_key(const char *table)
{
	if (strcmp(table, "policies") == 0)
		return "id::text";
	if (strcmp(table, "entities") == 0)
		return "uid::text";
	return NULL;
}

/* The start of the INSERT ... SELECT that records one kind of change. */
static char *
history_insert(const char *operation, const char *table, const char *key_before_after)
{
	return psprintf("INSERT INTO decide.changes (epoch, changed_at, session_user_name,"
					" current_user_name, operation, table_name, key, before, after)"
					" SELECT (SELECT epoch FROM decide.epoch), pg_catalog.statement_timestamp(),"
					" $1, $2, '%s', '%s', %s",
					operation, table, key_before_after);
}

/* A recorded row, as its INSERT returned it. */
typedef struct RecordedRow
{
	int64		id;
	HeapTuple	tuple;
} RecordedRow;

static int
compare_recorded(const void *a, const void *b)
{
	int64		x = ((const RecordedRow *) a)->id;
	int64		y = ((const RecordedRow *) b)->id;

	return (x > y) - (x < y);
}

/*
 * Links the rows just recorded, as the INSERT returned them
 * (CHANGES_CHAIN_COLUMNS), into decide.changes_chain (log_chain.c), hashed
 * in id order.  The epoch row, locked by this transaction since its first
 * change, orders the links of concurrent transactions.
 */
static void
chain_recorded(SPITupleTable *returned, uint64 n)
{
	RecordedRow *rows = palloc(sizeof(RecordedRow) * n);
	ChainDigest *d;
	uint64		i;

	for (i = 0; i < n; i++)
	{
		bool		isnull;

		rows[i].tuple = returned->vals[i];
		rows[i].id = DatumGetInt64(SPI_getbinval(rows[i].tuple, returned->tupdesc, 1, &isnull));
	}
	qsort(rows, n, sizeof(RecordedRow), compare_recorded);
	d = log_chain_begin();
	for (i = 0; i < n; i++)
		log_chain_add_change(d, rows[i].tuple, returned->tupdesc);
	log_chain_append("changes_chain", d, rows[0].id, rows[n - 1].id, n, NULL, NULL);
}

/* One INSERT ... SELECT that records the statement's rows. */
static char *
history_query(const char *table, const char *key, TriggerEvent event)
{
	/*
	 * An insert, with the row the history last held under its key as the
	 * row before (none for a new key).  A row equal to it is the history's
	 * own row inserted again, as a restore does after the history itself
	 * was restored: nothing changed, nothing is recorded.  The key is
	 * compared in the collation of decide.changes.key, so that the lookup
	 * is one probe of its index (a uid's own collation, "C", would make it
	 * a scan of the history per inserted row).
	 */
	if (TRIGGER_FIRED_BY_INSERT(event))
		return psprintf("%s FROM (SELECT r.%s AS k, pg_catalog.to_jsonb(r) AS row,"
						"              (SELECT h.after FROM decide.changes h"
						"                WHERE h.table_name OPERATOR(pg_catalog.=) '%s'"
						"                  AND h.key OPERATOR(pg_catalog.=)"
						"                      (r.%s COLLATE pg_catalog.\"default\")"
						"                ORDER BY h.id DESC LIMIT 1) AS last"
						"         FROM new_rows r) n"
						" WHERE n.last IS DISTINCT FROM n.row",
						history_insert("INSERT", table, "n.k, n.last, n.row"), key, table, key);
	if (TRIGGER_FIRED_BY_DELETE(event))
		return psprintf("%s FROM old_rows r",
						history_insert("DELETE", table,
									   psprintf("r.%s, pg_catalog.to_jsonb(r), NULL", key)));
	if (TRIGGER_FIRED_BY_TRUNCATE(event))
		return psprintf("%s FROM decide.%s r",
						history_insert("TRUNCATE", table,
									   psprintf("r.%s, pg_catalog.to_jsonb(r), NULL", key)),
						table);

	/*
	 * An update: the rows before and after are paired by their key.  A
	 * statement that changes a row's key records the old key with its row
	 * before, and the new key with its row after.
	 */
	return psprintf("%s FROM (SELECT o.%s AS k, pg_catalog.to_jsonb(o) AS row FROM old_rows o) b"
					" FULL JOIN (SELECT n.%s AS k, pg_catalog.to_jsonb(n) AS row FROM new_rows n) a"
					" ON a.k OPERATOR(pg_catalog.=) b.k"
					" WHERE b.row IS DISTINCT FROM a.row",
					history_insert("UPDATE", table, "coalesce(b.k, a.k), b.row, a.row"),
					key, key);
}

PG_FUNCTION_INFO_V1(decide_record_changes);
Datum
decide_record_changes(PG_FUNCTION_ARGS)
{
	TriggerData *trigger = (TriggerData *) fcinfo->context;
	Relation	rel;
	const char *table;
	const char *key;
	Oid			history;
	Oid			history_owner;
	Oid			save_user;
	int			save_sec;
	int			guc_level;
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	bool		chained;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(trigger->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("decide_record_changes() must be called as a statement trigger")));
	rel = trigger->tg_relation;
	table = RelationGetRelationName(rel);
	key = row_key(table);
	if (key == NULL || RelationGetNamespace(rel) != get_namespace_oid("decide", false))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("decide_record_changes() records changes of decide.policies and decide.entities only, not of \"%s\"",
						table)));
	history = get_relname_relid("changes", RelationGetNamespace(rel));
	chained = OidIsValid(get_relname_relid("changes_chain", RelationGetNamespace(rel)));
	if (!OidIsValid(history))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"decide.changes\" does not exist")));
	{
		Relation	history_rel = table_open(history, AccessShareLock);

		history_owner = history_rel->rd_rel->relowner;
		table_close(history_rel, AccessShareLock);
	}

	/* Who, before acting as the owner. */
	args[0] = CStringGetTextDatum(GetUserNameFromId(GetSessionUserId(), false));
	args[1] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_register_trigger_data(trigger) != SPI_OK_TD_REGISTER)
		elog(ERROR, "could not register the transition tables");
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(history_owner,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	/* As the owner, nothing of the caller's search_path is looked up. */
	guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/*
	 * A restore copies the history back with its ids, then the policies
	 * and entities, whose inserts are recorded too: their ids must follow
	 * the restored ones, whether or not the restore has set the sequence
	 * yet.
	 */
	if (SPI_execute("SELECT pg_catalog.setval('decide.changes_id_seq', m)"
					"  FROM (SELECT max(id) AS m FROM decide.changes) h,"
					"       decide.changes_id_seq s"
					" WHERE m > s.last_value OR (m = s.last_value AND NOT s.is_called)",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read decide.changes_id_seq");
	/* The epoch this transaction's changes make (once per transaction). */
	if (SPI_execute("SELECT decide.advance_epoch()", false, 0) != SPI_OK_SELECT ||
		SPI_execute_with_args(psprintf("%s RETURNING " CHANGES_CHAIN_COLUMNS,
									   history_query(table, key, trigger->tg_event)),
							  2, argtypes, args, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not record the changes of decide.%s", table);
	if (SPI_processed > 0 && chained)
		chain_recorded(SPI_tuptable, SPI_processed);
	AtEOXact_GUC(true, guc_level);
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	return PointerGetDatum(NULL);
}
