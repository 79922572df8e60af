/*
 * stats.c — counters, gauges and the latency histogram, and the SQL
 * functions that show them: decide_stats() (behind the decide_stats view),
 * decide_metrics() (Prometheus text format) and decide_reset_stats().
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

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "audit_log.h"
#include "decision_cache.h"
#include "policy_set.h"
#include "redis_cache.h"
#include "stats.h"

/* Upper bounds of the latency buckets, in microseconds; +Inf follows. */
static const double latency_bounds_us[] = {
	1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
	1000, 2000, 5000, 10000, 50000, 100000, 1000000
};
#define LATENCY_BUCKETS (lengthof(latency_bounds_us) + 1)

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

/* A percentile from the histogram, interpolating within its bucket. */
static double
latency_percentile(const uint64 *counts, uint64 total, double fraction)
{
	double		target = fraction * total;
	double		seen = 0;
	int			b;

	if (total == 0)
		return 0;
	for (b = 0; b < (int) LATENCY_BUCKETS; b++)
	{
		double		lower = b == 0 ? 0 : latency_bounds_us[b - 1];
		double		upper;

		if (seen + counts[b] < target)
		{
			seen += counts[b];
			continue;
		}
		if (b == (int) lengthof(latency_bounds_us))
			return lower;		/* +Inf bucket: report its lower bound */
		upper = latency_bounds_us[b];
		return lower + (upper - lower) * ((target - seen) / Max(counts[b], 1));
	}
	return latency_bounds_us[lengthof(latency_bounds_us) - 1];
}

/* A consistent-enough copy of everything, for one report. */
typedef struct StatsSnapshot
{
	uint64		counters[STAT_COUNTERS];
	uint64		gauges[GAUGES];
	uint64		latency[LATENCY_BUCKETS];
	uint64		latency_count;
	uint64		latency_sum_ns;
	TimestampTz reset_time;
	uint64		capacity[CACHE_LAYERS];
	uint64		slot_bytes;
} StatsSnapshot;

static void
take_snapshot(StatsSnapshot *snap)
{
	uint64		bytes;
	int			i;
	int			layer;

	stats_flush();				/* this backend's own counts are in */
	for (i = 0; i < STAT_COUNTERS; i++)
		snap->counters[i] = pg_atomic_read_u64(&stats->counters[i]);
	for (i = 0; i < GAUGES; i++)
		snap->gauges[i] = pg_atomic_read_u64(&stats->gauges[i]);
	snap->latency_count = 0;
	for (i = 0; i < (int) LATENCY_BUCKETS; i++)
	{
		snap->latency[i] = pg_atomic_read_u64(&stats->latency[i]);
		snap->latency_count += snap->latency[i];
	}
	snap->latency_sum_ns = pg_atomic_read_u64(&stats->latency_sum_ns);
	snap->reset_time = (TimestampTz) pg_atomic_read_u64(&stats->reset_time);
	for (layer = 0; layer < CACHE_LAYERS; layer++)
		decision_cache_capacity(layer, &snap->capacity[layer], &bytes, &snap->slot_bytes);
}

static double
hit_ratio(uint64 hits, uint64 misses)
{
	return hits + misses == 0 ? 0 : (double) hits / (hits + misses);
}

PG_FUNCTION_INFO_V1(decide_stats);
Datum
decide_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	StatsSnapshot s;
	Datum		values[64];
	bool		nulls[64] = {0};
	uint64		hits;
	int			n = 0;
	PolicySet  *set;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "decide_stats() must return a composite type");
	set = policy_set_current();
	take_snapshot(&s);
	/* Answered without evaluating policies: a hit in any layer, or carried forward. */
	hits = s.counters[STAT_L1_HITS] + s.counters[STAT_L2_HITS] + s.counters[STAT_L3_HITS] +
		s.counters[STAT_CARRIED_FORWARD];

	values[n++] = BoolGetDatum(stats_shared);
	values[n++] = BoolGetDatum(decision_cache_shared_available());
	values[n++] = Int64GetDatum(s.counters[STAT_DECISIONS]);
	values[n++] = Int64GetDatum(s.counters[STAT_ALLOWS]);
	values[n++] = Int64GetDatum(s.counters[STAT_DECISIONS] - s.counters[STAT_ALLOWS]);
	values[n++] = Float8GetDatum(hit_ratio(hits, s.counters[STAT_DECISIONS] - hits));
	values[n++] = Int64GetDatum(s.counters[STAT_L1_HITS]);
	values[n++] = Int64GetDatum(s.counters[STAT_L1_MISSES]);
	values[n++] = Int64GetDatum(s.counters[STAT_L1_EVICTIONS]);
	values[n++] = Int64GetDatum(s.gauges[GAUGE_L1_ENTRIES]);
	values[n++] = Int64GetDatum(s.gauges[GAUGE_L1_ENTRIES] * s.slot_bytes);
	values[n++] = Int64GetDatum(s.capacity[CACHE_L1]);
	values[n++] = Int64GetDatum(s.counters[STAT_L2_HITS]);
	values[n++] = Int64GetDatum(s.counters[STAT_L2_MISSES]);
	values[n++] = Float8GetDatum(hit_ratio(s.counters[STAT_L2_HITS], s.counters[STAT_L2_MISSES]));
	values[n++] = Int64GetDatum(s.counters[STAT_L2_EVICTIONS]);
	values[n++] = Int64GetDatum(s.gauges[GAUGE_L2_ENTRIES]);
	values[n++] = Int64GetDatum(s.gauges[GAUGE_L2_ENTRIES] * s.slot_bytes);
	values[n++] = Int64GetDatum(s.capacity[CACHE_L2]);
	values[n++] = Int64GetDatum(s.counters[STAT_UNCACHED]);
	values[n++] = Int64GetDatum(s.counters[STAT_CONDITION_FAILURES]);
	values[n++] = Int64GetDatum(set->epoch);
	values[n++] = Int64GetDatum(s.counters[STAT_POLICY_RELOADS]);
	values[n++] = Float8GetDatum(s.gauges[GAUGE_LAST_RELOAD_US] / 1000.0);
	values[n++] = Int64GetDatum(s.gauges[GAUGE_LAST_RELOAD_POLICIES]);
	values[n++] = Float8GetDatum(latency_percentile(s.latency, s.latency_count, 0.50));
	values[n++] = Float8GetDatum(latency_percentile(s.latency, s.latency_count, 0.95));
	values[n++] = Float8GetDatum(latency_percentile(s.latency, s.latency_count, 0.99));
	values[n++] = TimestampTzGetDatum(s.reset_time);
	/* 0.3.0: the decision log and the worker */
	values[n++] = Int64GetDatum(s.counters[STAT_LOG_ENQUEUED]);
	values[n++] = Int64GetDatum(s.counters[STAT_LOG_FLUSHED]);
	values[n++] = Int64GetDatum(s.counters[STAT_LOG_DROPPED]);
	values[n++] = Int64GetDatum(s.counters[STAT_LOG_NOT_LOGGED]);
	values[n++] = Int64GetDatum(s.counters[STAT_LOG_FLUSH_ERRORS]);
	values[n++] = Int64GetDatum(audit_log_pending_bytes());
	nulls[n] = s.gauges[GAUGE_WORKER_PID] == 0;
	values[n++] = Int32GetDatum((int32) s.gauges[GAUGE_WORKER_PID]);
	values[n++] = BoolGetDatum(s.gauges[GAUGE_WORKER_ON_STANDBY] != 0);
	nulls[n] = s.gauges[GAUGE_LAST_FLUSH] == 0;
	values[n++] = TimestampTzGetDatum((TimestampTz) s.gauges[GAUGE_LAST_FLUSH]);
	values[n++] = Int64GetDatum(s.counters[STAT_WARMED]);
	values[n++] = Float8GetDatum(s.gauges[GAUGE_LAST_WARM_US] / 1000.0);
	/* 0.4.0: Redis (L3) */
	values[n++] = BoolGetDatum(redis_cache_configured());
	values[n++] = Int64GetDatum(s.counters[STAT_L3_HITS]);
	values[n++] = Int64GetDatum(s.counters[STAT_L3_MISSES]);
	values[n++] = Int64GetDatum(s.counters[STAT_REDIS_ERRORS]);
	values[n++] = Int64GetDatum(s.counters[STAT_REDIS_GARBAGE]);
	values[n++] = Int64GetDatum(s.counters[STAT_REDIS_SKIPPED]);
	values[n++] = Int64GetDatum(s.counters[STAT_REDIS_BREAKER_OPENS]);
	values[n++] = Int64GetDatum(s.counters[STAT_LOG_FORWARDED]);
	values[n++] = Int64GetDatum(s.counters[STAT_LOG_RECEIVED]);
	/* 0.5.0 */
	values[n++] = Int64GetDatum(s.counters[STAT_ENTITY_FETCHES]);
	values[n++] = Int64GetDatum(s.counters[STAT_CARRIED_FORWARD]);
	/* 0.7.0 */
	values[n++] = Int64GetDatum(s.counters[STAT_WARM_TIMEOUTS]);

	/*
	 * Columns are only ever appended: an older SQL definition of the
	 * function (library upgraded, extension not yet) reads a prefix.
	 */
	Assert(n >= desc->natts && n <= (int) lengthof(values));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

PG_FUNCTION_INFO_V1(decide_reset_stats);
Datum
decide_reset_stats(PG_FUNCTION_ARGS)
{
	stats_flush();
	stats_clear(stats, false);
	PG_RETURN_VOID();
}

/* One sample of a metric family: its label value (NULL: unlabelled). */
typedef struct MetricSample
{
	const char *label;
	uint64		value;
} MetricSample;

/*
 * Writes a metric family: HELP and TYPE lines, then one line per sample,
 * labelled label_key="label" when the family has a label.
 */
static void
metric(StringInfo out, const char *name, const char *type, const char *help,
	   const char *label_key, const MetricSample *samples, int n)
{
	int			i;

	appendStringInfo(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (i = 0; i < n; i++)
	{
		if (label_key)
			appendStringInfo(out, "%s{%s=\"%s\"} " UINT64_FORMAT "\n",
							 name, label_key, samples[i].label, samples[i].value);
		else
			appendStringInfo(out, "%s " UINT64_FORMAT "\n", name, samples[i].value);
	}
}

static void
metric_value(StringInfo out, const char *name, const char *type, const char *help, uint64 value)
{
	MetricSample sample = {NULL, value};

	metric(out, name, type, help, NULL, &sample, 1);
}

/* A per-layer family: l1 always, l2 when shared memory has it. */
static void
metric_layers(StringInfo out, const char *name, const char *type, const char *help,
			  uint64 l1, uint64 l2, bool l2_present)
{
	MetricSample samples[2] = {{"l1", l1}, {"l2", l2}};

	metric(out, name, type, help, "layer", samples, l2_present ? 2 : 1);
}

PG_FUNCTION_INFO_V1(decide_metrics);
Datum
decide_metrics(PG_FUNCTION_ARGS)
{
	StatsSnapshot s;
	StringInfoData out;
	bool		l2 = decision_cache_shared_available();
	uint64		cumulative = 0;
	PolicySet  *set = policy_set_current();
	int			b;

	take_snapshot(&s);
	initStringInfo(&out);
	metric_value(&out, "decide_decisions_total", "counter", "Decisions made.",
				 s.counters[STAT_DECISIONS]);
	metric_value(&out, "decide_allowed_total", "counter", "Decisions that allowed the request.",
				 s.counters[STAT_ALLOWS]);
	metric_layers(&out, "decide_cache_hits_total", "counter", "Decisions served by a cache layer.",
				  s.counters[STAT_L1_HITS], s.counters[STAT_L2_HITS], l2);
	metric_layers(&out, "decide_cache_misses_total", "counter", "Cache lookups that found nothing.",
				  s.counters[STAT_L1_MISSES], s.counters[STAT_L2_MISSES], l2);
	metric_layers(&out, "decide_cache_evictions_total", "counter", "Entries evicted to make room.",
				  s.counters[STAT_L1_EVICTIONS], s.counters[STAT_L2_EVICTIONS], l2);
	metric_layers(&out, "decide_cache_entries", "gauge", "Entries in a cache layer (L1: all backends).",
				  s.gauges[GAUGE_L1_ENTRIES], s.gauges[GAUGE_L2_ENTRIES], l2);
	metric_layers(&out, "decide_cache_bytes", "gauge", "Bytes used by the entries of a cache layer.",
				  s.gauges[GAUGE_L1_ENTRIES] * s.slot_bytes,
				  s.gauges[GAUGE_L2_ENTRIES] * s.slot_bytes, l2);
	metric_value(&out, "decide_uncached_total", "counter",
				 "Decisions that bypassed the caches (caching off, own uncommitted changes, oversized key).",
				 s.counters[STAT_UNCACHED]);
	metric_value(&out, "decide_condition_failures_total", "counter",
				 "Policy conditions that could not be evaluated and failed closed.",
				 s.counters[STAT_CONDITION_FAILURES]);
	metric_value(&out, "decide_policy_reloads_total", "counter", "Policy-set loads.",
				 s.counters[STAT_POLICY_RELOADS]);
	appendStringInfo(&out, "# HELP decide_policy_reload_seconds Duration of the last policy-set load.\n"
					 "# TYPE decide_policy_reload_seconds gauge\n"
					 "decide_policy_reload_seconds %.6f\n", s.gauges[GAUGE_LAST_RELOAD_US] / 1e6);
	metric_value(&out, "decide_epoch", "gauge", "Policy-set version of this database.",
				 (uint64) set->epoch);
	metric_value(&out, "decide_shared_memory", "gauge",
				 "1 when statistics cover the whole server, 0 when only this backend.",
				 stats_shared ? 1 : 0);

	appendStringInfoString(&out, "# HELP decide_decision_duration_seconds Time to answer one decision, "
						   "cache lookups included.\n"
						   "# TYPE decide_decision_duration_seconds histogram\n");
	for (b = 0; b < (int) LATENCY_BUCKETS; b++)
	{
		cumulative += s.latency[b];
		if (b < (int) lengthof(latency_bounds_us))
			appendStringInfo(&out, "decide_decision_duration_seconds_bucket{le=\"%g\"} " UINT64_FORMAT "\n",
							 latency_bounds_us[b] / 1e6, cumulative);
		else
			appendStringInfo(&out, "decide_decision_duration_seconds_bucket{le=\"+Inf\"} " UINT64_FORMAT "\n",
							 cumulative);
	}
	appendStringInfo(&out, "decide_decision_duration_seconds_sum %.9f\n", s.latency_sum_ns / 1e9);
	appendStringInfo(&out, "decide_decision_duration_seconds_count " UINT64_FORMAT "\n", s.latency_count);

	{
		MetricSample log_outcomes[] = {
			{"enqueued", s.counters[STAT_LOG_ENQUEUED]},
			{"flushed", s.counters[STAT_LOG_FLUSHED]},
			{"dropped", s.counters[STAT_LOG_DROPPED]},
			{"not_logged", s.counters[STAT_LOG_NOT_LOGGED]},
			{"forwarded", s.counters[STAT_LOG_FORWARDED]},
			{"received", s.counters[STAT_LOG_RECEIVED]},
		};
		MetricSample redis_lookups[] = {
			{"hit", s.counters[STAT_L3_HITS]},
			{"miss", s.counters[STAT_L3_MISSES]},
		};
		MetricSample redis_failures[] = {
			{"error", s.counters[STAT_REDIS_ERRORS]},
			{"garbage", s.counters[STAT_REDIS_GARBAGE]},
			{"skipped", s.counters[STAT_REDIS_SKIPPED]},
			{"breaker_open", s.counters[STAT_REDIS_BREAKER_OPENS]},
		};

		metric(&out, "decide_log_records_total", "counter",
			   "Decision log records by outcome: enqueued in the ring, flushed to the table, "
			   "dropped (ring full), not_logged (another database, or a standby without Redis), "
			   "forwarded (standby to Redis), received (primary from standbys).",
			   "outcome", log_outcomes, lengthof(log_outcomes));
		metric_value(&out, "decide_log_flush_errors_total", "counter",
					 "Failed decision log flushes.", s.counters[STAT_LOG_FLUSH_ERRORS]);
		metric_value(&out, "decide_log_pending_bytes", "gauge",
					 "Decision log bytes not yet written.", audit_log_pending_bytes());
		metric_value(&out, "decide_worker_up", "gauge", "1 when the background worker runs.",
					 s.gauges[GAUGE_WORKER_PID] != 0 ? 1 : 0);
		metric(&out, "decide_redis_lookups_total", "counter",
			   "Redis (L3) lookups by result: hit, miss.",
			   "result", redis_lookups, lengthof(redis_lookups));
		metric(&out, "decide_redis_failures_total", "counter",
			   "Redis trouble by kind: error (connect, timeout, error reply), garbage (value failed "
			   "its checks), skipped (breaker open), breaker_open (times it opened).",
			   "kind", redis_failures, lengthof(redis_failures));
		metric_value(&out, "decide_warmed_total", "counter",
					 "Decisions the worker computed ahead after a policy change.",
					 s.counters[STAT_WARMED]);
		metric_value(&out, "decide_warm_timeouts_total", "counter",
					 "Requests the worker stopped warming at their time limit (never warmed again).",
					 s.counters[STAT_WARM_TIMEOUTS]);
	}
	metric_value(&out, "decide_entity_fetches_total", "counter",
				 "Entity rows looked up in decide.entities (entity cache misses).",
				 s.counters[STAT_ENTITY_FETCHES]);
	metric_value(&out, "decide_carried_forward_total", "counter",
				 "Cache misses answered by an older epoch's cached decision that no policy "
				 "change since touches.",
				 s.counters[STAT_CARRIED_FORWARD]);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}
