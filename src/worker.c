/*
 * worker.c — the decide background worker.
 *
 * One worker, registered at preload, connected to decide.database.  Every
 * decide.flush_interval (or when decide_flush() wakes it) it:
 *   - drains the decision log ring into decide.decisions, one transaction
 *     and one multi-row INSERT per batch, creating daily partitions as
 *     needed, and advances the ring only after the commit;
 *   - reports dropped log records in the server log, at most once a minute;
 *   - every decide.maintenance_interval: creates the next days' partitions,
 *     drops those older than decide.log_retention, and runs ANALYZE on
 *     decide's tables when they changed a lot (autovacuum never analyzes a
 *     partitioned parent);
 *   - when the epoch moved, recomputes the hottest requests (hot_keys.c)
 *     and then the recently used entries of L2 (within WARM_BUDGET_MS)
 *     under the new epoch, so the shared cache is warm again before callers
 *     ask; at start it warms from the most frequent recent logged requests.
 * On a hot standby it never writes: it warms, and with Redis configured it
 * forwards the standby's decision log to a Redis stream, which the
 * primary's worker reads into decide.decisions (exactly once: the stream
 * position is stored in the same transaction as the rows).
 *
 * SIGTERM (shutdown, or pg_terminate_backend) drains the ring before the
 * worker exits; it exits with status 1 so that the postmaster restarts it
 * after a failure or a termination (not during shutdown).
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "audit_log.h"
#include "decision.h"
#include "hot_keys.h"
#include "policy_set.h"
#include "redis_cache.h"
#include "request_key.h"
#include "stats.h"
#include "worker.h"

#define FLUSH_BUFFER_BYTES (1024 * 1024)
#define WARM_KEYS 1024
#define WARM_RECENT_KEYS 200000
#define WARM_AT_ONCE 20000		/* then the rest, after 2 s without a change */
#define WARM_REST_AFTER_MS 2000
#define WARM_SLICE_MS 50			/* warming between two looks at the log ring */
#define DROP_WARNING_INTERVAL_MS (60 * 1000)
#define ANALYZE_AFTER_ROWS 50000
#define SHUTDOWN_DRAIN_MS 5000

PGDLLEXPORT void decide_worker_main(Datum arg);

static volatile sig_atomic_t got_sigterm = false;
static bool flush_in_progress = false;
static SPIPlanPtr insert_plan = NULL;
static int64 rows_since_analyze = 0;
static int64 last_warmed_epoch = -1;

/*
 * The requests to recompute after a policy change, hottest first, worked
 * through in slices between flushes until done or the epoch moves again.
 */
typedef struct WarmPlan
{
	MemoryContext context;
	int64		epoch;			/* the epoch it warms for; -1: none */
	TimestampTz started;
	int			n;
	int			next;
	char	  **keys;
	uint32	   *lens;
} WarmPlan;

static WarmPlan warm_plan = {NULL, -1, 0, 0, 0, NULL, NULL};

/* In a backend: a change to policies or entities is in this transaction. */
static bool wake_worker_at_commit = false;

static void
on_xact_event(XactEvent event, void *arg)
{
	if (!wake_worker_at_commit)
		return;
	if (event == XACT_EVENT_COMMIT)
		audit_log_wake_worker();	/* after the commit is visible */
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
		wake_worker_at_commit = false;
}

void
worker_wake_at_commit(void)
{
	static bool registered = false;

	if (!registered)
	{
		RegisterXactCallback(on_xact_event, NULL);
		registered = true;
	}
	wake_worker_at_commit = true;
}
/* Partitions known to exist, for the decide.decisions with this oid. */
static Oid	known_partitions_of = InvalidOid;
static int32 known_partition_days[64];
static int	n_known_partition_days = 0;

void
worker_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "decide");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "decide_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "decide worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "decide worker");
	RegisterBackgroundWorker(&worker);
}

static void
handle_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sigterm = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static void
on_worker_exit(int code, Datum arg)
{
	if (flush_in_progress)
		stats_count(STAT_LOG_FLUSH_ERRORS, 1);
	audit_log_detach_worker();
	stats_gauge_set(GAUGE_WORKER_PID, 0);
}

/* Runs fn in a transaction with SPI and a snapshot. */
static void
in_transaction(void (*fn) (void *), void *arg)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	fn(arg);
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
}

/* decide installed here?  (Checked in a transaction.) */
static bool
extension_installed(void)
{
	return OidIsValid(get_namespace_oid("decide", true)) &&
		OidIsValid(get_relname_relid("decisions", get_namespace_oid("decide", true)));
}

/* UTC day number (days since 2000-01-01) of a timestamp. */
static int32
day_of(TimestampTz t)
{
	return (int32) (t >= 0 ? t / USECS_PER_DAY : (t - USECS_PER_DAY + 1) / USECS_PER_DAY);
}

static char *
day_label(int32 day, const char *format)
{
	int			year,
				month,
				mday;

	j2date(day + POSTGRES_EPOCH_JDATE, &year, &month, &mday);
	return psprintf(format, year, month, mday);
}

static bool
log_partition_function_exists(void)
{
	Oid			argtypes[1] = {DATEOID};

	return OidIsValid(LookupFuncName(list_make2(makeString("decide"),
												makeString("create_log_partition")),
									 1, argtypes, true));
}

/*
 * Makes sure the partition of one UTC day exists.  decide.create_log_partition()
 * (0.6.0) creates it with its indexes; a schema not yet updated to 0.6.0
 * has the indexes on the parent instead, which a plain PARTITION OF copies.
 */
static void
ensure_partition(int32 day)
{
	int			i;
	Oid			decisions = get_relname_relid("decisions", get_namespace_oid("decide", false));
	Oid			argtypes[1] = {DATEOID};
	Datum		args[1];

	if (!OidIsValid(decisions))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"decide.decisions\" does not exist"),
				 errhint("The decide extension in database \"%s\" is incomplete: DROP EXTENSION decide; CREATE EXTENSION decide.",
						 decide_log_database)));

	/* The extension was dropped and created again: forget what we knew. */
	if (decisions != known_partitions_of)
	{
		n_known_partition_days = 0;
		known_partitions_of = decisions;
	}
	for (i = 0; i < n_known_partition_days; i++)
		if (known_partition_days[i] == day)
			return;
	args[0] = DateADTGetDatum(day);	/* both count days from 2000-01-01 */

	/*
	 * Lock the parent first: an ALTER EXTENSION UPDATE that is moving its
	 * indexes holds it until it commits, and the lock is only granted
	 * after that, so the function is looked up in the schema this
	 * partition will be created in (without it, a 0.5.0-style partition
	 * created right after the update commits would have no index at all).
	 */
	LockRelationOid(decisions, RowExclusiveLock);
	if (log_partition_function_exists())
	{
		if (SPI_execute_with_args("SELECT decide.create_log_partition($1)", 1, argtypes, args,
								  NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not create a partition of decide.decisions");
	}
	else if (SPI_execute(psprintf("CREATE TABLE IF NOT EXISTS decide.%s PARTITION OF decide.decisions "
								  "FOR VALUES FROM ('%s 00:00:00+00') TO ('%s 00:00:00+00')",
								  day_label(day, "decisions_%04d%02d%02d"),
								  day_label(day, "%04d-%02d-%02d"),
								  day_label(day + 1, "%04d-%02d-%02d")),
						 false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create a partition of decide.decisions");
	if (n_known_partition_days == lengthof(known_partition_days))
		n_known_partition_days = 0;
	known_partition_days[n_known_partition_days++] = day;
}

typedef struct FlushBatch
{
	char	   *buf;
	Size		len;
	int			count;
} FlushBatch;

static Datum
text_datum(DecStr s)
{
	return PointerGetDatum(cstring_to_text_with_len(s.ptr, s.len));
}

static void
insert_batch(void *arg)
{
	FlushBatch *batch = arg;
	int			n = batch->count;
	Datum	   *columns[11];
	bool	   *nulls[11];
	Datum		values[11];
	static const Oid element_types[11] = {
		TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID,
		TEXTOID, INT8OID, TEXTOID, JSONBOID
	};
	Size		pos = 0;
	int32		first_day = PG_INT32_MAX;
	int32		last_day = PG_INT32_MIN;
	int			i;
	int			c;

	for (c = 0; c < 11; c++)
	{
		columns[c] = palloc(sizeof(Datum) * n);
		nulls[c] = palloc0(sizeof(bool) * n);
	}
	for (i = 0; i < n; i++)
	{
		LoggedDecision d;
		char	   *policy;

		pos += audit_log_decode(batch->buf + pos, batch->len - pos, &d);
		policy = d.policy.ptr ? pnstrdup(d.policy.ptr, d.policy.len) : NULL;
		first_day = Min(first_day, day_of(d.decided_at));
		last_day = Max(last_day, day_of(d.decided_at));
		columns[0][i] = TimestampTzGetDatum(d.decided_at);
		columns[1][i] = text_datum(d.actor);
		columns[2][i] = text_datum(d.action);
		columns[3][i] = text_datum(d.resource);
		columns[4][i] = BoolGetDatum(d.allowed);
		columns[5][i] = policy ? CStringGetTextDatum(policy) : (Datum) 0;
		nulls[5][i] = policy == NULL;
		columns[6][i] = text_datum(d.risk_level);
		nulls[6][i] = policy == NULL;
		columns[7][i] = CStringGetTextDatum(decision_reason(d.allowed, policy, d.priority,
															d.condition_unknown));
		columns[8][i] = Int64GetDatum(d.epoch);
		columns[9][i] = CStringGetTextDatum(d.source);
		if (d.context.len > 0)
		{
			char	   *context = palloc(d.context.len);

			memcpy(context, d.context.ptr, d.context.len);
			columns[10][i] = PointerGetDatum(context);
		}
		else
			nulls[10][i] = true;
	}
	for (c = 0; c < 11; c++)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;
		int			dims[1] = {n};
		int			lbs[1] = {1};

		get_typlenbyvalalign(element_types[c], &typlen, &typbyval, &typalign);
		values[c] = PointerGetDatum(construct_md_array(columns[c], nulls[c], 1, dims, lbs,
													   element_types[c], typlen, typbyval,
													   typalign));
	}
	for (i = first_day; i <= last_day; i++)
		ensure_partition(i);

	if (insert_plan == NULL)
	{
		Oid			argtypes[11] = {
			TIMESTAMPTZARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, BOOLARRAYOID,
			TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID,
			JSONBARRAYOID
		};
		SPIPlanPtr	plan = SPI_prepare(
									   "INSERT INTO decide.decisions (decided_at, actor, action, resource, allowed, effect,"
									   " policy, risk_level, reason, epoch, source, context)"
									   " SELECT t, a, b, c, ok, CASE WHEN ok THEN 'allow' ELSE 'deny' END::decide.effect,"
									   " p, r::decide.risk_level, why, e, s, ctx"
									   " FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
									   " AS u(t, a, b, c, ok, p, r, why, e, s, ctx)",
									   11, argtypes);

		if (plan == NULL)
			elog(ERROR, "could not prepare the decision log insert: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		insert_plan = plan;
	}
	if (SPI_execute_plan(insert_plan, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into decide.decisions");
}

/* Writes one batch; false when the ring was empty. */
static bool
flush_once(char *buf)
{
	FlushBatch	batch;
	uint64		start;
	uint64		end;
	Size		pos = 0;

	batch.buf = buf;
	batch.len = audit_log_peek(buf, FLUSH_BUFFER_BYTES, &start, &end);
	if (batch.len == 0)
		return false;
	batch.count = 0;
	while (pos < batch.len)
	{
		LoggedDecision d;

		pos += audit_log_decode(buf + pos, batch.len - pos, &d);
		batch.count++;
	}
	/*
	 * If it fails, the worker exits (counting the error on the way out) and
	 * restarts, and the records are still in the ring.
	 */
	flush_in_progress = true;
	in_transaction(insert_batch, &batch);
	flush_in_progress = false;

	/* Counted before the ring moves: decide_flush() returns when it does. */
	stats_count(STAT_LOG_FLUSHED, batch.count);
	stats_gauge_set(GAUGE_LAST_FLUSH, (uint64) GetCurrentTimestamp());
	stats_flush();
	audit_log_consume(end);
	rows_since_analyze += batch.count;
	return true;
}

static void
flush_all(char *buf)
{
	while (flush_once(buf))
		CHECK_FOR_INTERRUPTS();
}

/* The policy store's id, read in a transaction; false if not installed. */
typedef struct StoreLookup
{
	bool		found;
	pg_uuid_t	store_id;
} StoreLookup;

static void
lookup_store(void *arg)
{
	StoreLookup *lookup = arg;

	lookup->found = extension_installed();
	if (lookup->found)
		lookup->store_id = policy_set_current()->store_id;
}

/*
 * On a standby with Redis: sends one batch of the ring to this standby's
 * stream; the ring is consumed only once Redis has it.
 */
static bool
forward_once(char *buf, const pg_uuid_t *store_id, const char *stream)
{
	uint64		start;
	uint64		end;
	Size		len = audit_log_peek(buf, FLUSH_BUFFER_BYTES, &start, &end);
	const char **records;
	size_t	   *lens;
	uint64	   *positions;
	Size		pos = 0;
	int			n = 0;

	if (len == 0)
		return false;
	records = palloc(sizeof(char *) * (len / MAXALIGN(1) + 1));
	lens = palloc(sizeof(size_t) * (len / MAXALIGN(1) + 1));
	positions = palloc(sizeof(uint64) * (len / MAXALIGN(1) + 1));
	while (pos < len)
	{
		LoggedDecision d;
		Size		size = audit_log_decode(buf + pos, len - pos, &d);

		records[n] = buf + pos;
		lens[n] = size;
		pos += size;
		positions[n] = start + pos;
		n++;
	}
	if (!redis_log_forward(store_id, stream, records, lens, positions, n))
		return false;			/* stays in the ring; retried next cycle */
	audit_log_consume(end);
	stats_count(STAT_LOG_FORWARDED, n);
	stats_gauge_set(GAUGE_LAST_FLUSH, (uint64) GetCurrentTimestamp());
	return true;
}

typedef struct ReceivedBatch
{
	FlushBatch	batch;
	const char *stream;
	const char *last_id;
	char	   *position;		/* read back by read_position */
} ReceivedBatch;

static void
read_position(void *arg)
{
	ReceivedBatch *received = arg;
	Datum		stream = CStringGetTextDatum(received->stream);
	Oid			type = TEXTOID;

	received->position = NULL;
	if (SPI_execute_with_args("SELECT last_id FROM decide.log_stream_positions WHERE stream = $1",
							  1, &type, &stream, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		received->position = MemoryContextStrdup(TopMemoryContext,
												 SPI_getvalue(SPI_tuptable->vals[0],
															  SPI_tuptable->tupdesc, 1));
}

/* Inserts received records and advances the stream position, atomically. */
static void
insert_received(void *arg)
{
	ReceivedBatch *received = arg;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(received->stream),
	CStringGetTextDatum(received->last_id)};

	if (received->batch.count > 0)
		insert_batch(&received->batch);
	if (SPI_execute_with_args("INSERT INTO decide.log_stream_positions (stream, last_id) VALUES ($1, $2)"
							  " ON CONFLICT (stream) DO UPDATE SET last_id = excluded.last_id,"
							  " updated_at = now()",
							  2, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the position in a standby's log stream");
}

/* On the primary with Redis: writes what standbys forwarded. */
static void
receive_from_standbys(const pg_uuid_t *store_id)
{
	char	  **streams;
	int			n = redis_log_streams(store_id, &streams);
	int			s;

	for (s = 0; s < n; s++)
	{
		ReceivedBatch received;
		char	   *position;

		received.stream = streams[s];
		in_transaction(read_position, &received);
		position = received.position ? received.position : "0-0";
		for (;;)
		{
			StringInfoData records;
			char	   *last_id;
			int			count;

			initStringInfo(&records);
			count = redis_log_read(streams[s], position, 1000, &records, &last_id);
			if (count < 0 || last_id == NULL)
				break;
			received.batch.buf = records.data;
			received.batch.len = records.len;
			received.batch.count = count;
			received.last_id = last_id;
			in_transaction(insert_received, &received);
			redis_log_trim(streams[s], last_id);
			stats_count(STAT_LOG_RECEIVED, count);
			position = last_id;
			CHECK_FOR_INTERRUPTS();
		}
	}
}

static void
maintain(void *arg)
{
	int32		today = day_of(GetCurrentTimestamp());
	int32		oldest_kept = day_of(GetCurrentTimestamp() -
									 (TimestampTz) decide_log_retention_min * USECS_PER_MINUTE);
	uint64		i;
	int32		day;

	if (!extension_installed())
		return;
	for (day = today; day <= today + 2; day++)
		ensure_partition(day);

	/* Partitions whose whole day is older than the retention. */
	if (SPI_execute("SELECT c.relname::text FROM pg_catalog.pg_inherits i"
					" JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid"
					" WHERE i.inhparent = 'decide.decisions'::regclass"
					" AND c.relname ~ '^decisions_[0-9]{8}$'", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the partitions of decide.decisions");
	{
		uint64		n = SPI_processed;
		char	  **names = palloc(sizeof(char *) * (n + 1));

		/* Copy the names first: each DROP replaces SPI_tuptable. */
		for (i = 0; i < n; i++)
			names[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		for (i = 0; i < n; i++)
		{
			int			year,
						month,
						mday;

			if (sscanf(names[i], "decisions_%4d%2d%2d", &year, &month, &mday) != 3)
				continue;
			day = date2j(year, month, mday) - POSTGRES_EPOCH_JDATE;
			if (day >= oldest_kept)
				continue;
			SPI_execute(psprintf("DROP TABLE decide.%s", quote_identifier(names[i])), false, 0);
			n_known_partition_days = 0;
			ereport(LOG, (errmsg("decide dropped partition decide.%s (older than decide.log_retention)",
								 names[i])));
		}
	}

	if (rows_since_analyze >= ANALYZE_AFTER_ROWS)
	{
		SPI_execute("ANALYZE decide.decisions", false, 0);
		rows_since_analyze = 0;
	}
	/* Policies and entities: when a tenth of their rows changed. */
	if (SPI_execute("SELECT pg_catalog.format('%I.%I', schemaname, relname) FROM pg_catalog.pg_stat_user_tables"
					" WHERE schemaname = 'decide' AND relname IN ('policies', 'entities')"
					" AND n_mod_since_analyze > 1000 + n_live_tup / 10", true, 0) == SPI_OK_SELECT)
	{
		uint64		n = SPI_processed;
		char	  **names = palloc(sizeof(char *) * (n + 1));

		for (i = 0; i < n; i++)
			names[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		for (i = 0; i < n; i++)
			SPI_execute(psprintf("ANALYZE %s", names[i]), false, 0);
	}
}

/* Decides one encoded request as warming (fills L2, logs nothing). */
static void
warm_request(const char *bytes, uint32 len)
{
	DecisionRequest request;
	Decision	decision;
	const char *context;
	size_t		context_len;
	int			d;

	if (!request_key_decode(bytes, len, request.uid, &context, &context_len) ||
		context_len < VARHDRSZ)
		return;
	for (d = 0; d < DEC_NDIMS; d++)
	{
		char	   *copy = pnstrdup(request.uid[d].ptr, request.uid[d].len);

		request.uid[d].ptr = copy;
	}
	request.context = palloc(context_len);	/* aligned for jsonb */
	memcpy(request.context, context, context_len);
	decision_make(&request, &decision, true);
}

/*
 * Lists what to recompute under the current epoch: the hottest requests of
 * the sketch (those callers keep in L1, which L2 hit counts do not see),
 * then the L2 entries of older epochs, the most often hit first.
 */
static void
build_warm_plan(const PolicySet *set)
{
	HotKey	   *hot;
	char	  **recent;
	uint32	   *recent_lens;
	int			n_hot;
	int			n_recent;
	int			i;
	DecisionKey current;
	MemoryContext old;

	if (warm_plan.context == NULL)
		warm_plan.context = AllocSetContextCreate(TopMemoryContext, "decide warm plan",
												  ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(warm_plan.context);
	warm_plan.n = warm_plan.next = 0;	/* until the new list is complete */
	warm_plan.epoch = -1;
	old = MemoryContextSwitchTo(warm_plan.context);
	n_hot = hot_keys_top(MyDatabaseId, WARM_KEYS, &hot);
	current.database = MyDatabaseId;
	current.epoch = set->epoch;
	current.store_id = set->store_id;
	n_recent = decision_cache_recent_keys(&current, WARM_RECENT_KEYS, &recent, &recent_lens);
	warm_plan.keys = palloc(sizeof(char *) * (n_hot + n_recent + 1));
	warm_plan.lens = palloc(sizeof(uint32) * (n_hot + n_recent + 1));
	for (i = 0; i < n_hot; i++)
	{
		warm_plan.keys[i] = hot[i].bytes;
		warm_plan.lens[i] = hot[i].len;
	}
	memcpy(warm_plan.keys + n_hot, recent, sizeof(char *) * n_recent);
	memcpy(warm_plan.lens + n_hot, recent_lens, sizeof(uint32) * n_recent);
	MemoryContextSwitchTo(old);
	warm_plan.n = n_hot + n_recent;
	warm_plan.epoch = set->epoch;
	warm_plan.started = GetCurrentTimestamp();
	hot_keys_decay();
}

/*
 * One slice of warming.  Sets *pending when requests are left, so that the
 * main loop comes back at once instead of sleeping.
 */
static void
warm_hot_keys(void *arg)
{
	bool	   *pending = arg;
	PolicySet  *set;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), WARM_SLICE_MS);

	*pending = false;
	if (!extension_installed())
		return;
	set = policy_set_current();
	/*
	 * Woken by a committing change, the worker can get here before that
	 * backend has sent its invalidation: ask the table itself.
	 */
	{
		Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());

		if (policy_set_read_epoch(snapshot, NULL, NULL, NULL, NULL) != set->epoch)
		{
			policy_set_mark_stale();
			set = policy_set_current();
		}
		UnregisterSnapshot(snapshot);
	}
	if (set->epoch == last_warmed_epoch)
		return;
	if (warm_plan.epoch != set->epoch)
		build_warm_plan(set);
	while (warm_plan.next < warm_plan.n)
	{
		int			i;

		/*
		 * Backends carry most of their misses forward themselves, cheaply,
		 * so only the head of the list is worth doing at once; the rest
		 * (for new backends, which have no earlier set to carry from) waits
		 * until the epoch has stood still for WARM_REST_AFTER_MS, so that a
		 * policy changed every second does not keep the worker busy.  Not
		 * pending meanwhile: the loop sleeps its usual interval.
		 */
		if (warm_plan.next == WARM_AT_ONCE &&
			!TimestampDifferenceExceeds(warm_plan.started, GetCurrentTimestamp(),
										WARM_REST_AFTER_MS))
			return;
		i = warm_plan.next++;	/* past it first: if it fails, it is skipped */
		CHECK_FOR_INTERRUPTS();
		warm_request(warm_plan.keys[i], warm_plan.lens[i]);
		if (warm_plan.next % 64 == 0 && GetCurrentTimestamp() >= deadline)
		{
			*pending = warm_plan.next < warm_plan.n;
			return;
		}
	}
	last_warmed_epoch = set->epoch;
	MemoryContextReset(warm_plan.context);
	warm_plan.n = warm_plan.next = 0;
	stats_gauge_set(GAUGE_LAST_WARM_US, (uint64) (GetCurrentTimestamp() - warm_plan.started));
}

/*
 * One slice of warming in a transaction of its own.  A stored request that
 * no longer decides (an entity grown past the ancestor limit since, say)
 * must not take the worker, and the log flush with it, down: its error is
 * logged, the request skipped, and warming goes on with the next one.
 */
static void
warm_guarded(bool *pending)
{
	MemoryContext context = CurrentMemoryContext;

	PG_TRY();
	{
		in_transaction(warm_hot_keys, pending);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(context);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		*pending = warm_plan.next < warm_plan.n;
	}
	PG_END_TRY();
}

/* At start: the most frequent requests of the last minutes of the log. */
static void
warm_from_log(void *arg)
{
	uint64		i;

	if (!extension_installed())
		return;
	if (SPI_execute("SELECT actor, action, resource, coalesce(context, '{}')"
					" FROM (SELECT actor, action, resource, context FROM decide.decisions"
					"        WHERE decided_at > now() - interval '10 minutes'"
					"        ORDER BY decided_at DESC LIMIT 100000) recent"
					" GROUP BY 1, 2, 3, 4 ORDER BY count(*) DESC LIMIT 1024", true, 0) != SPI_OK_SELECT)
		return;
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		DecisionRequest request;
		Decision	decision;
		bool		isnull;
		int			d;

		for (d = 0; d < DEC_NDIMS; d++)
		{
			text	   *uid = DatumGetTextPP(SPI_getbinval(tuple, desc, d + 1, &isnull));

			request.uid[d].ptr = VARDATA_ANY(uid);
			request.uid[d].len = VARSIZE_ANY_EXHDR(uid);
		}
		request.context = DatumGetJsonbP(SPI_getbinval(tuple, desc, 4, &isnull));
		decision_make(&request, &decision, true);
	}
	last_warmed_epoch = policy_set_current()->epoch;
}

static void
report_drops(TimestampTz *last_warning)
{
	TimestampTz now = GetCurrentTimestamp();
	uint64		dropped;

	if (!TimestampDifferenceExceeds(*last_warning, now, DROP_WARNING_INTERVAL_MS))
		return;
	dropped = audit_log_take_unreported_drops();
	if (dropped == 0)
		return;
	ereport(WARNING,
			(errmsg("decide dropped " UINT64_FORMAT " decisions from the log: the ring was full",
					dropped),
			 errhint("Raise decide.log_buffer_size, lower decide.flush_interval, or log less "
					 "(decide.log, decide.log_allow_sample_rate).")));
	*last_warning = now;
}

void
decide_worker_main(Datum arg)
{
	char	   *buf;
	TimestampTz last_maintenance = 0;
	TimestampTz last_drop_warning = 0;
	bool		warmed_from_log = false;
	bool		warming_pending = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, handle_sigterm);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(decide_log_database, NULL, 0);
	pgstat_report_appname("decide worker");

	/*
	 * Give way to DDL such as DROP EXTENSION: rather than risk a deadlock
	 * with it, the worker times out, exits and is restarted.
	 */
	SetConfigOption("lock_timeout", "500", PGC_SUSET, PGC_S_OVERRIDE);
	/* The worker runs SQL as a superuser: nothing may be found by name
	 * in a schema others can create objects in. */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);

	audit_log_attach_worker(MyLatch, MyDatabaseId);
	before_shmem_exit(on_worker_exit, (Datum) 0);
	stats_gauge_set(GAUGE_WORKER_PID, MyProcPid);
	buf = MemoryContextAlloc(TopMemoryContext, FLUSH_BUFFER_BYTES);
	ereport(LOG, (errmsg("decide worker started for database \"%s\"", decide_log_database)));

	while (!got_sigterm)
	{
		bool		standby;

		/* While warming is under way, only a glance at the latch. */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 warming_pending ? 0 : decide_flush_interval_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		standby = RecoveryInProgress();
		stats_gauge_set(GAUGE_WORKER_ON_STANDBY, standby ? 1 : 0);
		if (redis_cache_configured())
		{
			StoreLookup store;

			in_transaction(lookup_store, &store);
			if (store.found && standby)
			{
				char	   *stream = redis_log_stream_name(&store.store_id);

				while (forward_once(buf, &store.store_id, stream))
					CHECK_FOR_INTERRUPTS();
			}
			else if (store.found)
				receive_from_standbys(&store.store_id);
		}
		report_drops(&last_drop_warning);
		if (!standby)
			flush_all(buf);

		/*
		 * Warming after a policy change comes before maintenance: callers
		 * miss until it is done, while partitions, retention and ANALYZE
		 * (which can take a second on a large log) lose nothing by waiting
		 * for a loop without warming to do.
		 */
		warm_guarded(&warming_pending);
		if (!standby && !warming_pending)
		{
			if (TimestampDifferenceExceeds(last_maintenance, GetCurrentTimestamp(),
										   decide_maintenance_interval_s * 1000))
			{
				in_transaction(maintain, NULL);
				last_maintenance = GetCurrentTimestamp();
			}
			if (!warmed_from_log)
			{
				in_transaction(warm_from_log, NULL);
				warmed_from_log = true;
			}
		}
		stats_flush();
	}

	/*
	 * Shutdown or termination: drain what backends appended, including what
	 * they append while exiting, until the ring stays empty a moment: into
	 * the table on a primary, into Redis on a standby.
	 */
	if (RecoveryInProgress() && redis_cache_configured())
	{
		StoreLookup store;
		TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   SHUTDOWN_DRAIN_MS);

		in_transaction(lookup_store, &store);
		if (store.found)
		{
			char	   *stream = redis_log_stream_name(&store.store_id);

			while (forward_once(buf, &store.store_id, stream) &&
				   GetCurrentTimestamp() < deadline)
				;
		}
	}
	else if (!RecoveryInProgress())
	{
		TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   SHUTDOWN_DRAIN_MS);
		int			quiet_rounds = 0;

		while (quiet_rounds < 5 && GetCurrentTimestamp() < deadline)
		{
			if (flush_once(buf))
				quiet_rounds = 0;
			else
			{
				quiet_rounds++;
				pg_usleep(20 * 1000L);
			}
		}
	}
	proc_exit(1);
}
