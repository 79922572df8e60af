/*
 * audit_log.c — the decision log rings: one per database that logs, in
 * shared memory.
 *
 * Each ring has two areas.  Deciding backends append records to a small
 * hot area, small so that the lines they write stay in the processors'
 * caches; the database's worker (worker_flush.c), woken by the record that
 * fills the hot area past half, moves the records into the larger staging
 * area, and every decide.flush_interval (sooner when the ring is half full,
 * or decide_flush() asks) inserts them from staging into its
 * decide.decisions in one transaction per batch, and only then advances
 * the read position, so a failed insert loses nothing.  The caller's path
 * does no table I/O and waits for room only when the hot area is full
 * while the worker is busy (a long batch, ANALYZE): then the appender moves
 * the records itself.  When staging is full too, the record is dropped and
 * counted, and the worker reports drops in the server log at most once a
 * minute.
 *
 * A database takes a ring with its first logged decision (or when its
 * worker starts), and tells the launcher (launcher.c) that it wants a
 * worker; it gives the ring back when its worker finds the extension gone,
 * or the launcher finds the database gone.  decide.max_databases rings
 * exist; a database that finds none free, or whose worker the launcher
 * could not start, has its decisions counted as not logged, with a WARNING
 * at most once a minute.
 *
 * What a crash can lose is what the rings held: at most
 * decide.log_buffer_size bytes per database, about decide.flush_interval
 * worth of decisions at the current rate.  A clean shutdown drains them.
 * On a hot standby, decisions are logged only when Redis is configured: the
 * standby's worker forwards them to the primary through it.
 *
 * Positions are byte counts that only grow, one sequence for both areas: a
 * record keeps its position when it moves (it sits at position % capacity
 * of each area).  [tail, staged) is in staging, [staged, head) in the hot
 * area.
 *
 * Locking rules:
 *   - which database a ring belongs to changes only under the claim lock,
 *     exclusive, and the ring's lock, exclusive, and only while the ring is
 *     empty or its database gone;
 *   - appenders hold the ring's lock shared, so deciding backends never
 *     wait for each other: each reserves its record's bytes by moving head
 *     with a compare-and-swap, copies the record in, and publishes it by
 *     writing its size word last, after a write barrier.  Hot bytes not yet
 *     published read as zero: a move stops at a record whose size word is
 *     still zero and takes it next time;
 *   - staged moves only in ring_move(), under the ring's lock, shared, and
 *     its move lock, exclusive (the worker, or an appender that found the
 *     hot area full), after the moved bytes are copied to staging and
 *     zeroed in the hot area;
 *   - tail moves only in audit_log_consume(), by the worker, after the
 *     records are in the table.  Staged bytes are never written until tail
 *     passes them, so the worker copies them out without a lock.  Positions
 *     never go back, so a ring's record positions are unique for the life
 *     of the shared memory, whoever holds it.
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
#include "worker_registry.h"

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

/* One of a ring's two areas of bytes. */
typedef struct RingArea
{
	Size		offset;			/* from the start of the block */
	Size		capacity;		/* a multiple of LOG_RECORD_ALIGN */
} RingArea;

typedef struct LogRing
{
	LWLock	   *lock;
	LWLock	   *move_lock;
	Oid			database;		/* InvalidOid: free */
	bool		no_worker;		/* the launcher could not start its worker */
	pg_atomic_uint64 head;		/* bytes ever reserved */
	pg_atomic_uint64 staged;	/* bytes ever moved out of the hot area */
	pg_atomic_uint64 tail;		/* bytes ever consumed */
	pg_atomic_uint64 dropped;	/* records dropped: the ring was full */
	pg_atomic_uint32 flush_requested;	/* by decide_flush() */
	uint64		reported_drops;
	RingArea	hot;
	RingArea	staging;
} LogRing;

typedef struct LogRings
{
	LWLock	   *claim_lock;
	TimestampTz created;		/* new after every restart, crash or not */
	TimestampTz warned_unlogged_at; /* the last "not logged" WARNING */
	int			n;
	LogRing		rings[FLEXIBLE_ARRAY_MEMBER];
} LogRings;

/*
 * The hot area: a quarter of a ring, at most 2 MB.  Measured with two
 * saturated clients, appending to a 16 MB ring cost the callers about 10%
 * of their rate, to a 2 MB one about 1%: what costs is streaming through
 * memory the caches do not hold.
 */
#define HOT_AREA_MAX_BYTES (2 * 1024 * 1024)

#define UNLOGGED_WARNING_INTERVAL_MS (60 * 1000)

static int	log_level = LOG_ALL;
static double log_allow_sample_rate = 1.0;
static bool log_context = false;
static int	log_buffer_size_mb = 16;
static int	max_databases = 4;
int			decide_flush_interval_ms = 1000;
int			decide_log_retention_min = 30 * 24 * 60;
int			decide_maintenance_interval_s = 60;

static LogRings *rings = NULL;

/* This backend's database's ring, as last found (checked under its lock). */
static LogRing *my_ring = NULL;

/* The worker's ring; NULL: none (no ring was free). */
static LogRing *worker_ring = NULL;

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
							&decide_flush_interval_ms, 1000, 10, 60 * 1000,
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
							"Shared memory ring of each database that holds decisions until its worker writes them.",
							"Bounds what a crash can lose. Needs shared_preload_libraries.",
							&log_buffer_size_mb, 16, 1, 4096,
							PGC_POSTMASTER, GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("decide.max_databases",
							"Databases that may log decisions and have a worker at once.",
							"Each takes decide.log_buffer_size of shared memory and a background worker.",
							&max_databases, 4, 1, 64,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
}

int
audit_log_max_databases(void)
{
	return max_databases;
}

static Size
ring_bytes(void)
{
	return (Size) log_buffer_size_mb * 1024 * 1024;
}

static Size
hot_area_bytes(void)
{
	return Min(ring_bytes() / 4, HOT_AREA_MAX_BYTES);
}

static Size
header_bytes(void)
{
	return MAXALIGN(add_size(offsetof(LogRings, rings), mul_size(sizeof(LogRing), max_databases)));
}

Size
audit_log_shmem_size(void)
{
	return add_size(header_bytes(), mul_size(ring_bytes(), max_databases));
}

void
audit_log_shmem_request(void)
{
	RequestAddinShmemSpace(audit_log_shmem_size());
	RequestNamedLWLockTranche(LOG_TRANCHE, 2 * max_databases + 1);
}

void
audit_log_shmem_startup(void)
{
	bool		found;
	int			i;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	rings = ShmemInitStruct("decide decision log", audit_log_shmem_size(), &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche(LOG_TRANCHE);

		rings->claim_lock = &locks[0].lock;
		rings->created = GetCurrentTimestamp();
		rings->warned_unlogged_at = 0;
		rings->n = max_databases;
		for (i = 0; i < max_databases; i++)
		{
			LogRing    *ring = &rings->rings[i];
			Size		start = header_bytes() + (Size) i * ring_bytes();

			memset(ring, 0, sizeof(LogRing));
			ring->lock = &locks[2 * i + 1].lock;
			ring->move_lock = &locks[2 * i + 2].lock;
			ring->database = InvalidOid;
			pg_atomic_init_u64(&ring->head, 0);
			pg_atomic_init_u64(&ring->staged, 0);
			pg_atomic_init_u64(&ring->tail, 0);
			pg_atomic_init_u64(&ring->dropped, 0);
			pg_atomic_init_u32(&ring->flush_requested, 0);
			ring->hot.offset = start;
			ring->hot.capacity = hot_area_bytes();
			ring->staging.offset = start + ring->hot.capacity;
			ring->staging.capacity = ring_bytes() - ring->hot.capacity;
		}

		/*
		 * Unpublished bytes must read as zero (see the locking rules).
		 * Zeroing here also maps the rings' pages now, not one page fault
		 * at a time in the deciding backends.
		 */
		memset((char *) rings + header_bytes(), 0, mul_size(ring_bytes(), max_databases));
	}
	LWLockRelease(AddinShmemInitLock);
}

bool
audit_log_available(void)
{
	return rings != NULL;
}

static char *
area_data(const RingArea *area)
{
	return (char *) rings + area->offset;
}

/* Copies len bytes into an area at a position, wrapping around its end. */
static void
area_write(const RingArea *area, uint64 pos, const void *src, Size len)
{
	Size		offset = pos % area->capacity;
	Size		first = Min(len, area->capacity - offset);

	memcpy(area_data(area) + offset, src, first);
	if (first < len)
		memcpy(area_data(area), (const char *) src + first, len - first);
}

static void
area_read(const RingArea *area, uint64 pos, void *dst, Size len)
{
	Size		offset = pos % area->capacity;
	Size		first = Min(len, area->capacity - offset);

	memcpy(dst, area_data(area) + offset, first);
	if (first < len)
		memcpy((char *) dst + first, area_data(area), len - first);
}

static void
area_zero(const RingArea *area, uint64 pos, Size len)
{
	Size		offset = pos % area->capacity;
	Size		first = Min(len, area->capacity - offset);

	memset(area_data(area) + offset, 0, first);
	if (first < len)
		memset(area_data(area), 0, len - first);
}

/*
 * The size word of the record at a position: in the hot area, zero while
 * its appender is still copying it in.  Records are LOG_RECORD_ALIGN-aligned
 * and capacities multiples of it, so the word never wraps.
 */
static volatile uint32 *
area_size_word(const RingArea *area, uint64 pos)
{
	StaticAssertStmt(LOG_RECORD_ALIGN % sizeof(uint32) == 0, "size word alignment");
	return (volatile uint32 *) (area_data(area) + pos % area->capacity);
}

/*
 * Moves the hot area's published records into staging, as far as staging
 * has room; called with the ring's lock shared and its move lock
 * exclusive.
 */
static void
ring_move_locked(LogRing *ring)
{
	uint64		staged = pg_atomic_read_u64(&ring->staged);
	uint64		head = pg_atomic_read_u64(&ring->head);
	uint64		tail = pg_atomic_read_u64(&ring->tail);
	uint64		end = staged;
	uint64		pos;

	while (end < head)
	{
		uint32		size = *area_size_word(&ring->hot, end);

		if (size == 0 || end + size - tail > ring->staging.capacity)
			break;				/* still being copied in, or staging full */
		end += size;
	}
	if (end == staged)
		return;
	/* The size words read above published the bytes read below. */
	pg_read_barrier();
	for (pos = staged; pos < end;)
	{
		Size		len = Min(end - pos,
							  Min(ring->hot.capacity - pos % ring->hot.capacity,
								  ring->staging.capacity - pos % ring->staging.capacity));

		area_write(&ring->staging, pos, area_data(&ring->hot) + pos % ring->hot.capacity, len);
		pos += len;
	}
	area_zero(&ring->hot, staged, end - staged);
	/* Whoever sees the new position sees the copy and the zeroes. */
	pg_write_barrier();
	pg_atomic_write_u64(&ring->staged, end);
}

/*
 * Moves the hot area's records into staging, or waits for whoever is
 * moving them; called with the ring's lock shared.
 */
static void
ring_move(LogRing *ring)
{
	if (LWLockAcquireOrWait(ring->move_lock, LW_EXCLUSIVE))
	{
		ring_move_locked(ring);
		LWLockRelease(ring->move_lock);
	}
}

/*
 * Drops the ring's records, counting them; called with its lock exclusive,
 * when no appender is copying one in and nobody is moving.
 */
static void
ring_drop_all(LogRing *ring)
{
	uint64		pos = pg_atomic_read_u64(&ring->tail);
	uint64		staged = pg_atomic_read_u64(&ring->staged);
	uint64		head = pg_atomic_read_u64(&ring->head);

	/* Staging holds whole records up to staged, the hot area after it. */
	while (pos < head)
	{
		uint32		size = *area_size_word(pos < staged ? &ring->staging : &ring->hot, pos);

		if (size == 0)
			break;
		stats_count(STAT_LOG_DROPPED, 1);
		pos += size;
	}
	area_zero(&ring->hot, staged, pos - staged);
	pg_write_barrier();
	pg_atomic_write_u64(&ring->staged, pos);
	pg_atomic_write_u64(&ring->tail, pos);
}

/*
 * The ring of a database, or with claim a free one for it (the launcher is
 * then told the database wants a worker); NULL: none.
 */
static LogRing *
ring_of(Oid database, bool claim)
{
	LogRing    *found = NULL;
	LogRing    *free_ring = NULL;
	bool		claimed = false;
	int			i;

	LWLockAcquire(rings->claim_lock, claim ? LW_EXCLUSIVE : LW_SHARED);
	for (i = 0; i < rings->n && found == NULL; i++)
	{
		LogRing    *ring = &rings->rings[i];

		if (ring->database == database)
			found = ring;
		else if (free_ring == NULL && ring->database == InvalidOid)
			free_ring = ring;
	}
	if (found == NULL && claim && free_ring != NULL)
	{
		LWLockAcquire(free_ring->lock, LW_EXCLUSIVE);
		free_ring->database = database;
		free_ring->no_worker = false;
		/* Emptied when given back; positions go on. */
		Assert(pg_atomic_read_u64(&free_ring->tail) == pg_atomic_read_u64(&free_ring->head));
		LWLockRelease(free_ring->lock);
		found = free_ring;
		claimed = true;
	}
	LWLockRelease(rings->claim_lock);
	if (claimed && database == MyDatabaseId)
		worker_registry_note_decide(database);
	return found;
}

/* A WARNING that decisions are not logged, at most once a minute server-wide. */
static void
warn_unlogged(const char *why, const char *hint)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		warn = false;

	LWLockAcquire(rings->claim_lock, LW_EXCLUSIVE);
	if (TimestampDifferenceExceeds(rings->warned_unlogged_at, now, UNLOGGED_WARNING_INTERVAL_MS))
	{
		rings->warned_unlogged_at = now;
		warn = true;
	}
	LWLockRelease(rings->claim_lock);
	if (warn)
		ereport(WARNING,
				(errmsg("decisions in database \"%s\" are not logged: %s",
						get_database_name(MyDatabaseId), why),
				 errhint("%s", hint)));
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
	if (rings == NULL || (RecoveryInProgress() && !redis_client_configured()))
	{
		stats_count(STAT_LOG_NOT_LOGGED, 1);
		return false;
	}
	if (my_ring == NULL || my_ring->database != MyDatabaseId)
		my_ring = ring_of(MyDatabaseId, true);
	if (my_ring == NULL)
	{
		stats_count(STAT_LOG_NOT_LOGGED, 1);
		warn_unlogged("every decision log ring is taken by another database",
					  "Raise decide.max_databases (a restart).");
		return false;
	}
	if (my_ring->no_worker)
	{
		stats_count(STAT_LOG_NOT_LOGGED, 1);
		warn_unlogged("no background worker could be started for it",
					  "Raise max_worker_processes (a restart).");
		return false;
	}
	return true;
}

/* Does adding size bytes to used bytes reach threshold? */
static inline bool
crosses(uint64 used, Size size, Size threshold)
{
	return used < threshold && used + size >= threshold;
}

/* Large enough for any record: uids, policy names and contexts are bounded. */
#define MAX_RECORD_BYTES \
	MAXALIGN(64 + 3 * DECIDE_MAX_UID_BYTES + LOG_MAX_POLICY_NAME_BYTES + \
			 LOG_MAX_RISK_LEVEL_BYTES + MAX_LOGGED_CONTEXT_BYTES)

void
audit_log_append(LogRecord *record)
{
	static char encoded[MAX_RECORD_BYTES];
	LogRing    *ring = my_ring;
	Size		size;
	bool		appended = false;
	bool		given_back = false;
	bool		wake_worker = false;
	int			attempt;

	Assert(ring != NULL);
	record->decided_at = GetCurrentTimestamp();
	if (!log_context || record->context.len > MAX_LOGGED_CONTEXT_BYTES)
		record->context.len = 0;
	size = log_record_encode(record, encoded);

	LWLockAcquire(ring->lock, LW_SHARED);
	if (ring->database != MyDatabaseId)
		given_back = true;		/* since audit_log_wanted() */
	else
	{
		const RingArea *hot = &ring->hot;
		uint64		head = pg_atomic_read_u64(&ring->head);
		uint64		staged = 0;

		/*
		 * Reserve [head, head + size) in the hot area.  When it is full the
		 * worker is busy: move its records to staging (or wait for whoever
		 * is moving them) and try once more.
		 */
		for (attempt = 0; attempt < 2 && !appended; attempt++)
		{
			if (attempt > 0)
			{
				ring_move(ring);
				head = pg_atomic_read_u64(&ring->head);
			}
			for (;;)
			{
				staged = pg_atomic_read_u64(&ring->staged);
				if (hot->capacity - (head - staged) < size)
					break;
				if (pg_atomic_compare_exchange_u64(&ring->head, &head, head + size))
				{
					appended = true;
					break;
				}
			}
		}
		if (appended)
		{
			uint32		size_word;

			/* The body first; the size word, last, publishes it. */
			memcpy(&size_word, encoded, sizeof(size_word));
			area_write(hot, head + sizeof(size_word), encoded + sizeof(size_word),
					   size - sizeof(size_word));
			pg_write_barrier();
			*area_size_word(hot, head) = size_word;
			/*
			 * The record that fills the hot area past half wakes the worker
			 * to move it; the one that fills the ring past half, to write.
			 */
			wake_worker = crosses(head - staged, size, hot->capacity / 2) ||
				crosses(head - pg_atomic_read_u64(&ring->tail), size, ring_bytes() / 2);
		}
		else
			pg_atomic_fetch_add_u64(&ring->dropped, 1);
	}
	LWLockRelease(ring->lock);
	if (wake_worker)
		worker_wake();
	if (given_back)
	{
		my_ring = NULL;
		stats_count(STAT_LOG_NOT_LOGGED, 1);
		return;
	}
	stats_count(appended ? STAT_LOG_ENQUEUED : STAT_LOG_DROPPED, 1);
}

bool
audit_log_attach_worker(Oid database)
{
	worker_ring = ring_of(database, true);
	if (worker_ring)
	{
		LWLockAcquire(worker_ring->lock, LW_EXCLUSIVE);
		worker_ring->no_worker = false;
		LWLockRelease(worker_ring->lock);
	}
	return worker_ring != NULL;
}

void
audit_log_release(Oid database)
{
	int			i;

	LWLockAcquire(rings->claim_lock, LW_EXCLUSIVE);
	for (i = 0; i < rings->n; i++)
	{
		LogRing    *ring = &rings->rings[i];

		if (ring->database != database)
			continue;
		/* No appender holds it now: every reserved record is published. */
		LWLockAcquire(ring->lock, LW_EXCLUSIVE);
		/* What it still holds has no table to go to: dropped. */
		ring_drop_all(ring);
		ring->database = InvalidOid;
		ring->no_worker = false;
		LWLockRelease(ring->lock);
	}
	LWLockRelease(rings->claim_lock);
	if (worker_ring && database == MyDatabaseId)
		worker_ring = NULL;
}

void
audit_log_set_no_worker(Oid database, bool no_worker)
{
	LogRing    *ring = ring_of(database, false);

	if (ring == NULL)
		return;
	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	if (ring->database == database)
		ring->no_worker = no_worker;
	LWLockRelease(ring->lock);
}

int
audit_log_databases(Oid *databases, int max)
{
	int			n = 0;
	int			i;

	LWLockAcquire(rings->claim_lock, LW_SHARED);
	for (i = 0; i < rings->n && n < max; i++)
		if (rings->rings[i].database != InvalidOid)
			databases[n++] = rings->rings[i].database;
	LWLockRelease(rings->claim_lock);
	return n;
}

uint64
audit_log_move(void)
{
	LogRing    *ring = worker_ring;

	if (ring == NULL)
		return 0;
	LWLockAcquire(ring->lock, LW_SHARED);
	if (ring->database == MyDatabaseId)
		ring_move(ring);
	LWLockRelease(ring->lock);
	return pg_atomic_read_u64(&ring->staged);
}

uint64
audit_log_consumed(void)
{
	return worker_ring ? pg_atomic_read_u64(&worker_ring->tail) : 0;
}

bool
audit_log_flush_wanted(void)
{
	LogRing    *ring = worker_ring;

	if (ring == NULL)
		return false;
	if (pg_atomic_exchange_u32(&ring->flush_requested, 0) != 0)
		return true;
	return pg_atomic_read_u64(&ring->head) - pg_atomic_read_u64(&ring->tail) >= ring_bytes() / 2;
}

Size
audit_log_peek(char *buf, Size bufsize, uint64 *start, uint64 *end)
{
	LogRing    *ring = worker_ring;
	uint64		staged;
	uint64		pos;
	Size		copied = 0;

	if (ring == NULL)
	{
		*start = *end = 0;
		return 0;
	}
	(void) audit_log_move();
	pos = pg_atomic_read_u64(&ring->tail);
	staged = pg_atomic_read_u64(&ring->staged);
	/* The position read above published the bytes read below. */
	pg_read_barrier();
	*start = pos;
	while (pos < staged)
	{
		/* A record starts with its size (log_record.c). */
		uint32		size = *area_size_word(&ring->staging, pos);

		if (copied + size > bufsize)
			break;
		area_read(&ring->staging, pos, buf + copied, size);
		copied += size;
		pos += size;
	}
	*end = pos;
	return copied;
}

void
audit_log_consume(uint64 end)
{
	LogRing    *ring = worker_ring;

	if (ring == NULL)
		return;
	Assert(end >= pg_atomic_read_u64(&ring->tail) && end <= pg_atomic_read_u64(&ring->staged));
	/* The bytes were read before the move lets a mover write them again. */
	pg_memory_barrier();
	pg_atomic_write_u64(&ring->tail, end);
}

void
audit_log_wait_flushed(int timeout_ms)
{
	uint64		target;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	LogRing    *ring;

	if (rings == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the decision log needs decide in shared_preload_libraries")));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("the decision log is written on the primary, not on a standby")));
	ring = ring_of(MyDatabaseId, false);
	if (ring == NULL)
		return;					/* nothing was logged here */
	target = pg_atomic_read_u64(&ring->head);
	for (;;)
	{
		uint64		tail;
		Oid			database;

		LWLockAcquire(ring->lock, LW_SHARED);
		tail = pg_atomic_read_u64(&ring->tail);
		database = ring->database;
		LWLockRelease(ring->lock);
		if (tail >= target || database != MyDatabaseId)
			return;
		pg_atomic_write_u32(&ring->flush_requested, 1);
		worker_wake();
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("the decision log was not flushed within %d ms", timeout_ms),
					 errhint(worker_latch_attached() ?
							 "The worker is busy or failing; see the server log." :
							 "The decide background worker of this database is not running.")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

uint64
audit_log_take_unreported_drops(void)
{
	LogRing    *ring = worker_ring;
	uint64		unreported;
	uint64		dropped;

	if (ring == NULL)
		return 0;
	/* Only the ring's worker reads and moves reported_drops. */
	dropped = pg_atomic_read_u64(&ring->dropped);
	unreported = dropped - ring->reported_drops;
	ring->reported_drops = dropped;
	return unreported;
}

uint64
audit_log_capacity(void)
{
	return rings ? ring_bytes() : 0;
}

uint64
audit_log_pending_bytes(void)
{
	LogRing    *ring;
	uint64		pending = 0;

	if (rings == NULL)
		return 0;
	ring = worker_ring ? worker_ring : ring_of(MyDatabaseId, false);
	if (ring == NULL)
		return 0;
	LWLockAcquire(ring->lock, LW_SHARED);
	if (ring->database == MyDatabaseId)
		pending = pg_atomic_read_u64(&ring->head) - pg_atomic_read_u64(&ring->tail);
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
	return rings ? rings->created : 0;
}
