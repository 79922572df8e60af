/*
 * stats.c — the store of decide's counters, gauges and latency histogram,
 * which every layer above counts into; entry/stats_report.c shows them.
 *
 * Every value is an atomic.  Counters and the histogram are summed in
 * backend memory and added in batches (every 64 decisions or 100 ms, at
 * exit, and before this backend reads the statistics), so the decision
 * path touches no shared cache line; gauges are written directly.
 * With shared_preload_libraries the block lives in shared memory; without,
 * the same block lives in backend memory, so the code is the same and the
 * view says which it is (shared_memory = false: this backend only).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "stats.h"

const double stats_latency_bounds_us[STATS_LATENCY_BUCKETS - 1] = {
	1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
	1000, 2000, 5000, 10000, 50000, 100000, 1000000
};
#define LATENCY_BUCKETS STATS_LATENCY_BUCKETS
#define latency_bounds_us stats_latency_bounds_us

typedef struct DecideStats
{
	pg_atomic_uint64 counters[STAT_COUNTERS];
	pg_atomic_uint64 gauges[GAUGES];
	pg_atomic_uint64 latency[LATENCY_BUCKETS];
	pg_atomic_uint64 latency_sum_ns;
	pg_atomic_uint64 reset_time;	/* TimestampTz */
} DecideStats;

static DecideStats local_stats;
static DecideStats *stats = NULL;
static bool stats_shared = false;

pg_atomic_uint64 *decide_counters = NULL;
pg_atomic_uint64 *decide_gauges = NULL;
uint64		decide_pending_counters[STAT_COUNTERS];

#define FLUSH_EVERY_DECISIONS 64
#define FLUSH_EVERY_MS 100

static uint64 pending_latency[LATENCY_BUCKETS];
static uint64 pending_latency_sum_ns = 0;
static int	pending_decisions = 0;
static TimestampTz last_flush = 0;
static bool exit_flush_registered = false;

static void
stats_clear(DecideStats *s, bool gauges_too)
{
	int			i;

	for (i = 0; i < STAT_COUNTERS; i++)
		pg_atomic_write_u64(&s->counters[i], 0);
	if (gauges_too)
		for (i = 0; i < GAUGES; i++)
			pg_atomic_write_u64(&s->gauges[i], 0);
	for (i = 0; i < (int) LATENCY_BUCKETS; i++)
		pg_atomic_write_u64(&s->latency[i], 0);
	pg_atomic_write_u64(&s->latency_sum_ns, 0);
	pg_atomic_write_u64(&s->reset_time, (uint64) GetCurrentTimestamp());
}

static void
stats_init_block(DecideStats *s)
{
	int			i;

	for (i = 0; i < STAT_COUNTERS; i++)
		pg_atomic_init_u64(&s->counters[i], 0);
	for (i = 0; i < GAUGES; i++)
		pg_atomic_init_u64(&s->gauges[i], 0);
	for (i = 0; i < (int) LATENCY_BUCKETS; i++)
		pg_atomic_init_u64(&s->latency[i], 0);
	pg_atomic_init_u64(&s->latency_sum_ns, 0);
	pg_atomic_init_u64(&s->reset_time, (uint64) GetCurrentTimestamp());
}

static void
use_block(DecideStats *s, bool shared)
{
	stats = s;
	stats_shared = shared;
	decide_counters = s->counters;
	decide_gauges = s->gauges;
}

void
stats_init_local(void)
{
	stats_init_block(&local_stats);
	use_block(&local_stats, false);
}

Size
stats_shmem_size(void)
{
	return sizeof(DecideStats);
}

void
stats_shmem_startup(void)
{
	bool		found;
	DecideStats *s;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	s = ShmemInitStruct("decide stats", sizeof(DecideStats), &found);
	if (!found)
		stats_init_block(s);
	LWLockRelease(AddinShmemInitLock);
	use_block(s, true);
}

bool
stats_are_shared(void)
{
	return stats_shared;
}

void
stats_flush(void)
{
	int			i;

	for (i = 0; i < STAT_COUNTERS; i++)
		if (decide_pending_counters[i] != 0)
		{
			pg_atomic_fetch_add_u64(&stats->counters[i], decide_pending_counters[i]);
			decide_pending_counters[i] = 0;
		}
	for (i = 0; i < (int) LATENCY_BUCKETS; i++)
		if (pending_latency[i] != 0)
		{
			pg_atomic_fetch_add_u64(&stats->latency[i], pending_latency[i]);
			pending_latency[i] = 0;
		}
	if (pending_latency_sum_ns != 0)
	{
		pg_atomic_fetch_add_u64(&stats->latency_sum_ns, pending_latency_sum_ns);
		pending_latency_sum_ns = 0;
	}
	pending_decisions = 0;
}

static void
flush_at_exit(int code, Datum arg)
{
	stats_flush();
}

void
stats_record_latency(uint64 nanoseconds)
{
	double		us = nanoseconds / 1000.0;
	int			bucket = 0;
	TimestampTz now;

	while (bucket < (int) lengthof(latency_bounds_us) && us > latency_bounds_us[bucket])
		bucket++;
	pending_latency[bucket]++;
	pending_latency_sum_ns += nanoseconds;
	if (++pending_decisions < FLUSH_EVERY_DECISIONS)
	{
		now = GetCurrentTimestamp();
		if (!TimestampDifferenceExceeds(last_flush, now, FLUSH_EVERY_MS))
			return;
		last_flush = now;
	}
	if (!exit_flush_registered)
	{
		before_shmem_exit(flush_at_exit, (Datum) 0);
		exit_flush_registered = true;
	}
	stats_flush();
}

void
stats_read(StatsValues *out)
{
	int			i;

	stats_flush();				/* this backend's own counts are in */
	for (i = 0; i < STAT_COUNTERS; i++)
		out->counters[i] = pg_atomic_read_u64(&stats->counters[i]);
	for (i = 0; i < GAUGES; i++)
		out->gauges[i] = pg_atomic_read_u64(&stats->gauges[i]);
	out->latency_count = 0;
	for (i = 0; i < STATS_LATENCY_BUCKETS; i++)
	{
		out->latency[i] = pg_atomic_read_u64(&stats->latency[i]);
		out->latency_count += out->latency[i];
	}
	out->latency_sum_ns = pg_atomic_read_u64(&stats->latency_sum_ns);
	out->reset_time = (TimestampTz) pg_atomic_read_u64(&stats->reset_time);
}

void
stats_reset_counters(void)
{
	stats_flush();
	stats_clear(stats, false);
}
