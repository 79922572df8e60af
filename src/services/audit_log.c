/*
 * audit_log.c — the decision log ring.
 *
 * Deciding backends append records to a byte ring in shared memory; the
 * background worker (worker_flush.c) copies them out, inserts them into
 * decide.decisions in one transaction per batch, and only then advances the
 * read position, so a failed insert loses nothing.  The caller's path does
 * no table I/O and never waits for room: when the ring is full the record
 * is dropped and counted, and the worker reports drops in the server log at
 * most once a minute.
 *
 * What a crash can lose is what the ring held: at most
 * decide.log_buffer_size bytes, about decide.flush_interval worth of
 * decisions at the current rate.  A clean shutdown drains the ring.
 *
 * Only decisions made in the database named by decide.database are logged
 * (the worker writes there); others are counted as not logged.  On a hot
 * standby, decisions are logged only when Redis is configured: the
 * standby's worker forwards them to the primary through it.
 *
 * Locking rules:
 *   - head (write position) moves only under the ring lock, exclusive;
 *     appenders copy their record in while holding it (a few hundred bytes,
 *     no I/O, no other lock).
 *   - tail (read position) moves only in audit_log_consume(), by the worker,
 *     under the same lock.  The bytes between tail and head are never
 *     written while there, so the worker copies them out without the lock.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "audit_log.h"
#include "input.h"
#include "log_record.h"
#include "redis_client.h"
#include "stats.h"
#include "worker_latch.h"

#define LOG_TRANCHE "decide_log"
#define MAX_LOGGED_CONTEXT_BYTES 8192	/* jsonb; larger contexts are not logged */

typedef enum LogLevel
{
	LOG_NONE,
	LOG_DENY,
	LOG_ALL
} LogLevel;

static const struct config_enum_entry log_level_options[] = {
	{"none", LOG_NONE, false},
	{"deny", LOG_DENY, false},
	{"all", LOG_ALL, false},
	{NULL, 0, false}
};

typedef struct LogRing
{
	LWLock	   *lock;
	uint64		head;			/* bytes ever written */
	uint64		tail;			/* bytes ever consumed */
	Size		capacity;
	Oid			database;		/* set by the worker; InvalidOid before */
	uint64		reported_drops;
	TimestampTz created;		/* new after every restart, crash or not */
	char		data[FLEXIBLE_ARRAY_MEMBER];
} LogRing;

static int	log_level = LOG_ALL;
static double log_allow_sample_rate = 1.0;
static bool log_context = false;
static int	log_buffer_size_mb = 16;
char	   *decide_log_database = NULL;
int			decide_flush_interval_ms = 200;
int			decide_log_retention_min = 30 * 24 * 60;
int			decide_maintenance_interval_s = 60;

static LogRing *ring = NULL;

/* Per backend: is this the log database?  0 unknown, 1 yes, -1 no. */
static int	in_log_database = 0;

void
audit_log_define_gucs(void)
{
	DefineCustomEnumVariable("decide.log",
							 "Which decisions go to the decision log.",
							 "all, deny (denials only) or none.",
							 &log_level, LOG_ALL, log_level_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("decide.log_allow_sample_rate",
							 "Fraction of allowed decisions logged when decide.log = all.",
							 "Denials are always logged unless decide.log = none.",
							 &log_allow_sample_rate, 1.0, 0.0, 1.0,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("decide.log_context",
							 "Log each decision's request context (up to 8 kB).",
							 NULL,
							 &log_context, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("decide.flush_interval",
							"Longest time a logged decision waits in the ring.",
							NULL,
							&decide_flush_interval_ms, 200, 10, 60 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("decide.log_retention",
							"Age after which daily partitions of decide.decisions are dropped.",
							NULL,
							&decide_log_retention_min, 30 * 24 * 60, 24 * 60, INT_MAX / 2,
							PGC_SIGHUP, GUC_UNIT_MIN, NULL, NULL, NULL);
	DefineCustomIntVariable("decide.maintenance_interval",
							"How often the worker creates and drops partitions and analyzes tables.",
							NULL,
							&decide_maintenance_interval_s, 60, 1, 24 * 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	/*
	 * Settings that size shared memory or name the worker's database exist
	 * only when decide is preloaded: they cannot be created later.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("decide.log_buffer_size",
							"Shared memory ring that holds decisions until the worker writes them.",
							"Bounds what a crash can lose. Needs shared_preload_libraries.",
							&log_buffer_size_mb, 16, 1, 4096,
							PGC_POSTMASTER, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomStringVariable("decide.database",
							   "Database whose decisions the worker logs and whose cache it warms.",
							   NULL,
							   &decide_log_database, "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
}

static Size
ring_bytes(void)
{
	return (Size) log_buffer_size_mb * 1024 * 1024;
}

Size
audit_log_shmem_size(void)
{
	return add_size(offsetof(LogRing, data), ring_bytes());
}

void
audit_log_shmem_request(void)
{
	RequestAddinShmemSpace(audit_log_shmem_size());
	RequestNamedLWLockTranche(LOG_TRANCHE, 1);
}

void
audit_log_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ring = ShmemInitStruct("decide decision log", audit_log_shmem_size(), &found);
	if (!found)
	{
		ring->lock = &(GetNamedLWLockTranche(LOG_TRANCHE))->lock;
		ring->head = 0;
		ring->tail = 0;
		ring->capacity = ring_bytes();
		ring->database = InvalidOid;
		ring->reported_drops = 0;
		ring->created = GetCurrentTimestamp();
	}
	LWLockRelease(AddinShmemInitLock);
}

bool
audit_log_available(void)
{
	return ring != NULL;
}

/* Copies len bytes into the ring at a position, wrapping around its end. */
static void
ring_write(uint64 pos, const void *src, Size len)
{
	Size		offset = pos % ring->capacity;
	Size		first = Min(len, ring->capacity - offset);

	memcpy(ring->data + offset, src, first);
	if (first < len)
		memcpy(ring->data, (const char *) src + first, len - first);
}

static void
ring_read(uint64 pos, void *dst, Size len)
{
	Size		offset = pos % ring->capacity;
	Size		first = Min(len, ring->capacity - offset);

	memcpy(dst, ring->data + offset, first);
	if (first < len)
		memcpy((char *) dst + first, ring->data, len - first);
}

bool
audit_log_wanted(bool allowed)
{
	if (log_level == LOG_NONE)
		return false;
	if (allowed && (log_level == LOG_DENY ||
					(log_allow_sample_rate < 1.0 &&
					 pg_prng_double(&pg_global_prng_state) >= log_allow_sample_rate)))
		return false;
	/* A standby's worker forwards its log to the primary through Redis. */
	if (ring == NULL || (RecoveryInProgress() && !redis_client_configured()))
	{
		stats_count(STAT_LOG_NOT_LOGGED, 1);
		return false;
	}
	if (in_log_database == 0)
		in_log_database = get_database_oid(decide_log_database, true) == MyDatabaseId ? 1 : -1;
	if (in_log_database < 0)
	{
		stats_count(STAT_LOG_NOT_LOGGED, 1);
		return false;
	}
	return true;
}

/* Large enough for any record: uids, policy names and contexts are bounded. */
#define MAX_RECORD_BYTES \
	MAXALIGN(64 + 3 * DECIDE_MAX_UID_BYTES + LOG_MAX_POLICY_NAME_BYTES + \
			 LOG_MAX_RISK_LEVEL_BYTES + MAX_LOGGED_CONTEXT_BYTES)

void
audit_log_append(LogRecord *record)
{
	static char encoded[MAX_RECORD_BYTES];
	Size		size;
	bool		appended = false;

	record->decided_at = GetCurrentTimestamp();
	if (!log_context || record->context.len > MAX_LOGGED_CONTEXT_BYTES)
		record->context.len = 0;
	size = log_record_encode(record, encoded);

	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	if (ring->capacity - (ring->head - ring->tail) >= size)
	{
		ring_write(ring->head, encoded, size);
		ring->head += size;
		appended = true;
	}
	LWLockRelease(ring->lock);
	stats_count(appended ? STAT_LOG_ENQUEUED : STAT_LOG_DROPPED, 1);
}

void
audit_log_attach_worker(Oid database)
{
	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	ring->database = database;
	LWLockRelease(ring->lock);
}

Size
audit_log_peek(char *buf, Size bufsize, uint64 *start, uint64 *end)
{
	uint64		head;
	uint64		pos;
	Size		copied = 0;

	LWLockAcquire(ring->lock, LW_SHARED);
	head = ring->head;
	pos = ring->tail;
	LWLockRelease(ring->lock);
	*start = pos;

	/* [tail, head) is stable until we consume it: copy without the lock. */
	while (pos < head)
	{
		uint32		size;

		/* A record starts with its size (log_record.c). */
		ring_read(pos, &size, sizeof(size));
		if (copied + size > bufsize)
			break;
		ring_read(pos, buf + copied, size);
		copied += size;
		pos += size;
	}
	*end = pos;
	return copied;
}

void
audit_log_consume(uint64 end)
{
	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	Assert(end <= ring->head);
	ring->tail = end;
	LWLockRelease(ring->lock);
}

void
audit_log_wait_flushed(int timeout_ms)
{
	uint64		target;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	if (ring == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the decision log needs decide in shared_preload_libraries")));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("the decision log is written on the primary, not on a standby")));
	LWLockAcquire(ring->lock, LW_SHARED);
	target = ring->head;
	LWLockRelease(ring->lock);
	for (;;)
	{
		uint64		tail;

		LWLockAcquire(ring->lock, LW_SHARED);
		tail = ring->tail;
		LWLockRelease(ring->lock);
		if (tail >= target)
			return;
		worker_wake();
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("the decision log was not flushed within %d ms", timeout_ms),
					 errhint(worker_latch_attached() ?
							 "The worker is busy or failing; see the server log." :
							 "The decide background worker is not running.")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

uint64
audit_log_take_unreported_drops(void)
{
	uint64		dropped = pg_atomic_read_u64(&decide_counters[STAT_LOG_DROPPED]);
	uint64		unreported;

	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	/* A stats reset can move the counter back. */
	unreported = dropped > ring->reported_drops ? dropped - ring->reported_drops : 0;
	ring->reported_drops = dropped;
	LWLockRelease(ring->lock);
	return unreported;
}

uint64
audit_log_capacity(void)
{
	return ring ? ring->capacity : 0;
}

uint64
audit_log_pending_bytes(void)
{
	uint64		pending;

	if (ring == NULL)
		return 0;
	LWLockAcquire(ring->lock, LW_SHARED);
	pending = ring->head - ring->tail;
	LWLockRelease(ring->lock);
	return pending;
}

PG_FUNCTION_INFO_V1(decide_flush);
Datum
decide_flush(PG_FUNCTION_ARGS)
{
	audit_log_wait_flushed(30 * 1000);
	PG_RETURN_VOID();
}

TimestampTz
audit_log_created(void)
{
	return ring ? ring->created : 0;
}
