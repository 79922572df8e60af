/*
 * stats.h — decide's counters, gauges and latency histogram (the store;
 * entry/stats_report.c shows them).
 *
 * With shared_preload_libraries they live in shared memory and cover the
 * whole server; without, in backend memory and cover this backend only
 * (decide_stats says which).
 */
#ifndef DECIDE_STATS_H
#define DECIDE_STATS_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "port/atomics.h"

typedef enum DecideCounter
{
	STAT_DECISIONS,
	STAT_ALLOWS,
	STAT_L1_HITS,
	STAT_L1_MISSES,
	STAT_L1_EVICTIONS,
	STAT_L2_HITS,
	STAT_L2_MISSES,
	STAT_L2_EVICTIONS,
	STAT_UNCACHED,				/* not looked up: caching off, own changes, key too long */
	STAT_CONDITION_FAILURES,	/* conditions that failed closed */
	STAT_POLICY_RELOADS,
	STAT_LOG_ENQUEUED,
	STAT_LOG_DROPPED,			/* ring full */
	STAT_LOG_NOT_LOGGED,		/* standby, other database, no preload */
	STAT_LOG_FLUSHED,
	STAT_LOG_FLUSH_ERRORS,
	STAT_WARMED,				/* decisions computed ahead by the worker */
	STAT_L3_HITS,
	STAT_L3_MISSES,
	STAT_REDIS_ERRORS,			/* connect, timeout, error reply */
	STAT_REDIS_GARBAGE,			/* values that failed their checks */
	STAT_REDIS_SKIPPED,			/* lookups skipped: breaker open */
	STAT_REDIS_BREAKER_OPENS,
	STAT_LOG_FORWARDED,			/* standby: sent to Redis */
	STAT_LOG_RECEIVED,			/* primary: written from standbys' streams */
	STAT_ENTITY_FETCHES,		/* entity rows looked up in decide.entities */
	STAT_CARRIED_FORWARD,		/* misses answered by an older epoch's entry that no change touches */
	STAT_WARM_TIMEOUTS,			/* requests the worker stopped warming at their time limit */
	STAT_SHARED_SET_BUILDS,		/* policy sets compiled and published in shared memory */
	STAT_SHARED_SET_FALLBACKS,	/* private compiles: a set did not fit, or no slot was free */
	STAT_LISTINGS,				/* decide_resources() and decide_actors() calls */
	STAT_LISTING_CANDIDATES,	/* entities a listing decided */
	STAT_LISTING_CACHE_HITS,	/* listings answered from the listing cache */
	STAT_ENTITY_IMAGE_BUILDS,	/* images of decide.entities built and published in shared memory */
	STAT_COUNTERS
} DecideCounter;

typedef enum DecideGauge
{
	GAUGE_L1_ENTRIES,			/* summed over backends */
	GAUGE_L2_ENTRIES,
	GAUGE_LAST_RELOAD_US,
	GAUGE_LAST_RELOAD_POLICIES,
	GAUGE_WORKER_ON_STANDBY,
	GAUGE_LAST_FLUSH,			/* TimestampTz */
	GAUGE_LAST_WARM_US,
	GAUGES
} DecideGauge;

extern pg_atomic_uint64 *decide_counters;
extern pg_atomic_uint64 *decide_gauges;

/*
 * Counters are summed in backend memory and added to the shared block in
 * batches (stats_flush), so that backends deciding in parallel do not
 * fight over the same cache lines on every call.
 */
extern uint64 decide_pending_counters[STAT_COUNTERS];

static inline void
stats_count(DecideCounter counter, uint64 n)
{
	decide_pending_counters[counter] += n;
}

static inline void
stats_gauge_add(DecideGauge gauge, int64 delta)
{
	pg_atomic_fetch_add_u64(&decide_gauges[gauge], (uint64) delta);
}

static inline void
stats_gauge_set(DecideGauge gauge, uint64 value)
{
	pg_atomic_write_u64(&decide_gauges[gauge], value);
}

/*
 * Records the duration of one decision; flushes what this backend has
 * pending every few dozen decisions or every 100 ms.
 */
extern void stats_record_latency(uint64 nanoseconds);

/* Adds this backend's pending counts to the shared block now. */
extern void stats_flush(void);

/* The latency histogram: upper bounds in microseconds, then +Inf. */
#define STATS_LATENCY_BUCKETS 25
extern const double stats_latency_bounds_us[STATS_LATENCY_BUCKETS - 1];

/* Everything at once, for a report (this backend's pending counts added first). */
typedef struct StatsValues
{
	uint64		counters[STAT_COUNTERS];
	uint64		gauges[GAUGES];
	uint64		latency[STATS_LATENCY_BUCKETS];
	uint64		latency_count;
	uint64		latency_sum_ns;
	TimestampTz reset_time;
} StatsValues;

extern void stats_read(StatsValues *out);

/* Zeroes the counters and the histogram (not the gauges). */
extern void stats_reset_counters(void);

/* From _PG_init; the shmem functions only when preloaded. */
extern void stats_init_local(void);
extern Size stats_shmem_size(void);
extern void stats_shmem_startup(void);
extern bool stats_are_shared(void);

#endif							/* DECIDE_STATS_H */
