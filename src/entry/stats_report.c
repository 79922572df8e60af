/*
 * stats_report.c — the SQL face of decide's statistics: decide_stats()
 * (behind the decide_stats view), decide_metrics() (Prometheus text
 * format) and decide_reset_stats().  The counters live in base/stats.c;
 * this file adds what the layers above know: cache capacities, the epoch,
 * the log ring and Redis.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "audit_log.h"
#include "decision_cache.h"
#include "policy_set.h"
#include "redis_client.h"
#include "shared_sets.h"
#include "stats.h"
#include "worker_registry.h"

/* A percentile from the histogram, interpolating within its bucket. */
static double
latency_percentile(const uint64 *counts, uint64 total, double fraction)
{
	double		target = fraction * total;
	double		seen = 0;
	int			b;

	if (total == 0)
		return 0;
	for (b = 0; b < (int) STATS_LATENCY_BUCKETS; b++)
	{
		double		lower = b == 0 ? 0 : stats_latency_bounds_us[b - 1];
		double		upper;

		if (seen + counts[b] < target)
		{
			seen += counts[b];
			continue;
		}
		if (b == (int) (STATS_LATENCY_BUCKETS - 1))
			return lower;		/* +Inf bucket: report its lower bound */
		upper = stats_latency_bounds_us[b];
		return lower + (upper - lower) * ((target - seen) / Max(counts[b], 1));
	}
	return stats_latency_bounds_us[(STATS_LATENCY_BUCKETS - 1) - 1];
}

/* A consistent-enough copy of everything, for one report. */
typedef struct StatsSnapshot
{
	StatsValues v;
	uint64		capacity[CACHE_LAYERS];
	uint64		slot_bytes;
} StatsSnapshot;

static void
take_snapshot(StatsSnapshot *snap)
{
	uint64		bytes;
	int			layer;

	stats_read(&snap->v);
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
	SharedSetReport shared;
	Datum		values[64];
	bool		nulls[64] = {0};
	uint64		hits;
	int			n = 0;
	PolicySet  *set;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "decide_stats() must return a composite type");
	set = policy_set_current();
	take_snapshot(&s);
	shared_sets_report(SHARED_POLICY_SET, &set->version, &shared);
	/* Answered without evaluating policies: a hit in any layer, or carried forward. */
	hits = s.v.counters[STAT_L1_HITS] + s.v.counters[STAT_L2_HITS] + s.v.counters[STAT_L3_HITS] +
		s.v.counters[STAT_CARRIED_FORWARD];

	values[n++] = BoolGetDatum(stats_are_shared());
	values[n++] = BoolGetDatum(decision_cache_shared_available());
	values[n++] = Int64GetDatum(s.v.counters[STAT_DECISIONS]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_ALLOWS]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_DECISIONS] - s.v.counters[STAT_ALLOWS]);
	values[n++] = Float8GetDatum(hit_ratio(hits, s.v.counters[STAT_DECISIONS] - hits));
	values[n++] = Int64GetDatum(s.v.counters[STAT_L1_HITS]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_L1_MISSES]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_L1_EVICTIONS]);
	values[n++] = Int64GetDatum(s.v.gauges[GAUGE_L1_ENTRIES]);
	values[n++] = Int64GetDatum(s.v.gauges[GAUGE_L1_ENTRIES] * s.slot_bytes);
	values[n++] = Int64GetDatum(s.capacity[CACHE_L1]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_L2_HITS]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_L2_MISSES]);
	values[n++] = Float8GetDatum(hit_ratio(s.v.counters[STAT_L2_HITS], s.v.counters[STAT_L2_MISSES]));
	values[n++] = Int64GetDatum(s.v.counters[STAT_L2_EVICTIONS]);
	values[n++] = Int64GetDatum(s.v.gauges[GAUGE_L2_ENTRIES]);
	values[n++] = Int64GetDatum(s.v.gauges[GAUGE_L2_ENTRIES] * s.slot_bytes);
	values[n++] = Int64GetDatum(s.capacity[CACHE_L2]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_UNCACHED]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_CONDITION_FAILURES]);
	values[n++] = Int64GetDatum(set->epoch);
	values[n++] = Int64GetDatum(s.v.counters[STAT_POLICY_RELOADS]);
	values[n++] = Float8GetDatum(s.v.gauges[GAUGE_LAST_RELOAD_US] / 1000.0);
	values[n++] = Int64GetDatum(s.v.gauges[GAUGE_LAST_RELOAD_POLICIES]);
	values[n++] = Float8GetDatum(latency_percentile(s.v.latency, s.v.latency_count, 0.50));
	values[n++] = Float8GetDatum(latency_percentile(s.v.latency, s.v.latency_count, 0.95));
	values[n++] = Float8GetDatum(latency_percentile(s.v.latency, s.v.latency_count, 0.99));
	values[n++] = TimestampTzGetDatum(s.v.reset_time);
	/* 0.3.0: the decision log and the worker */
	values[n++] = Int64GetDatum(s.v.counters[STAT_LOG_ENQUEUED]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_LOG_FLUSHED]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_LOG_DROPPED]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_LOG_NOT_LOGGED]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_LOG_FLUSH_ERRORS]);
	values[n++] = Int64GetDatum(audit_log_pending_bytes());
	nulls[n] = worker_registry_pid(MyDatabaseId) == 0;
	values[n++] = Int32GetDatum(worker_registry_pid(MyDatabaseId));
	values[n++] = BoolGetDatum(s.v.gauges[GAUGE_WORKER_ON_STANDBY] != 0);
	nulls[n] = s.v.gauges[GAUGE_LAST_FLUSH] == 0;
	values[n++] = TimestampTzGetDatum((TimestampTz) s.v.gauges[GAUGE_LAST_FLUSH]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_WARMED]);
	values[n++] = Float8GetDatum(s.v.gauges[GAUGE_LAST_WARM_US] / 1000.0);
	/* 0.4.0: Redis (L3) */
	values[n++] = BoolGetDatum(redis_client_configured());
	values[n++] = Int64GetDatum(s.v.counters[STAT_L3_HITS]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_L3_MISSES]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_REDIS_ERRORS]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_REDIS_GARBAGE]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_REDIS_SKIPPED]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_REDIS_BREAKER_OPENS]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_LOG_FORWARDED]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_LOG_RECEIVED]);
	/* 0.5.0 */
	values[n++] = Int64GetDatum(s.v.counters[STAT_ENTITY_FETCHES]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_CARRIED_FORWARD]);
	/* 0.7.0 */
	values[n++] = Int64GetDatum(s.v.counters[STAT_WARM_TIMEOUTS]);
	nulls[n] = !shared.present;
	values[n++] = Int64GetDatum(shared.epoch);
	nulls[n] = !shared.present;
	values[n++] = Int64GetDatum(shared.bytes);
	nulls[n] = !shared.present;
	values[n++] = TimestampTzGetDatum(shared.built_at);
	nulls[n] = !shared.present;
	values[n++] = Float8GetDatum(shared.build_ms);
	values[n++] = Int64GetDatum(s.v.counters[STAT_SHARED_SET_BUILDS]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_SHARED_SET_FALLBACKS]);
	values[n++] = Int64GetDatum(shared.bytes_in_use);
	values[n++] = Int64GetDatum(s.v.counters[STAT_LISTINGS]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_LISTING_CANDIDATES]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_LISTING_CACHE_HITS]);
	values[n++] = Int64GetDatum(s.v.counters[STAT_ENTITY_IMAGE_BUILDS]);

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
	stats_reset_counters();
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
				 s.v.counters[STAT_DECISIONS]);
	metric_value(&out, "decide_allowed_total", "counter", "Decisions that allowed the request.",
				 s.v.counters[STAT_ALLOWS]);
	metric_layers(&out, "decide_cache_hits_total", "counter", "Decisions served by a cache layer.",
				  s.v.counters[STAT_L1_HITS], s.v.counters[STAT_L2_HITS], l2);
	metric_layers(&out, "decide_cache_misses_total", "counter", "Cache lookups that found nothing.",
				  s.v.counters[STAT_L1_MISSES], s.v.counters[STAT_L2_MISSES], l2);
	metric_layers(&out, "decide_cache_evictions_total", "counter", "Entries evicted to make room.",
				  s.v.counters[STAT_L1_EVICTIONS], s.v.counters[STAT_L2_EVICTIONS], l2);
	metric_layers(&out, "decide_cache_entries", "gauge", "Entries in a cache layer (L1: all backends).",
				  s.v.gauges[GAUGE_L1_ENTRIES], s.v.gauges[GAUGE_L2_ENTRIES], l2);
	metric_layers(&out, "decide_cache_bytes", "gauge", "Bytes used by the entries of a cache layer.",
				  s.v.gauges[GAUGE_L1_ENTRIES] * s.slot_bytes,
				  s.v.gauges[GAUGE_L2_ENTRIES] * s.slot_bytes, l2);
	metric_value(&out, "decide_uncached_total", "counter",
				 "Decisions that bypassed the caches (caching off, own uncommitted changes, oversized key).",
				 s.v.counters[STAT_UNCACHED]);
	metric_value(&out, "decide_condition_failures_total", "counter",
				 "Policy conditions that could not be evaluated and failed closed.",
				 s.v.counters[STAT_CONDITION_FAILURES]);
	metric_value(&out, "decide_policy_reloads_total", "counter", "Policy-set loads.",
				 s.v.counters[STAT_POLICY_RELOADS]);
	appendStringInfo(&out, "# HELP decide_policy_reload_seconds Duration of the last policy-set load.\n"
					 "# TYPE decide_policy_reload_seconds gauge\n"
					 "decide_policy_reload_seconds %.6f\n", s.v.gauges[GAUGE_LAST_RELOAD_US] / 1e6);
	metric_value(&out, "decide_epoch", "gauge", "Policy-set version of this database.",
				 (uint64) set->epoch);
	metric_value(&out, "decide_shared_memory", "gauge",
				 "1 when statistics cover the whole server, 0 when only this backend.",
				 stats_are_shared() ? 1 : 0);

	appendStringInfoString(&out, "# HELP decide_decision_duration_seconds Time to answer one decision, "
						   "cache lookups included.\n"
						   "# TYPE decide_decision_duration_seconds histogram\n");
	for (b = 0; b < (int) STATS_LATENCY_BUCKETS; b++)
	{
		cumulative += s.v.latency[b];
		if (b < (int) (STATS_LATENCY_BUCKETS - 1))
			appendStringInfo(&out, "decide_decision_duration_seconds_bucket{le=\"%g\"} " UINT64_FORMAT "\n",
							 stats_latency_bounds_us[b] / 1e6, cumulative);
		else
			appendStringInfo(&out, "decide_decision_duration_seconds_bucket{le=\"+Inf\"} " UINT64_FORMAT "\n",
							 cumulative);
	}
	appendStringInfo(&out, "decide_decision_duration_seconds_sum %.9f\n", s.v.latency_sum_ns / 1e9);
	appendStringInfo(&out, "decide_decision_duration_seconds_count " UINT64_FORMAT "\n", s.v.latency_count);

	{
		MetricSample log_outcomes[] = {
			{"enqueued", s.v.counters[STAT_LOG_ENQUEUED]},
			{"flushed", s.v.counters[STAT_LOG_FLUSHED]},
			{"dropped", s.v.counters[STAT_LOG_DROPPED]},
			{"not_logged", s.v.counters[STAT_LOG_NOT_LOGGED]},
			{"forwarded", s.v.counters[STAT_LOG_FORWARDED]},
			{"received", s.v.counters[STAT_LOG_RECEIVED]},
		};
		MetricSample redis_lookups[] = {
			{"hit", s.v.counters[STAT_L3_HITS]},
			{"miss", s.v.counters[STAT_L3_MISSES]},
		};
		MetricSample redis_failures[] = {
			{"error", s.v.counters[STAT_REDIS_ERRORS]},
			{"garbage", s.v.counters[STAT_REDIS_GARBAGE]},
			{"skipped", s.v.counters[STAT_REDIS_SKIPPED]},
			{"breaker_open", s.v.counters[STAT_REDIS_BREAKER_OPENS]},
		};

		metric(&out, "decide_log_records_total", "counter",
			   "Decision log records by outcome: enqueued in the ring, flushed to the table, "
			   "dropped (ring full), not_logged (another database, or a standby without Redis), "
			   "forwarded (standby to Redis), received (primary from standbys).",
			   "outcome", log_outcomes, lengthof(log_outcomes));
		metric_value(&out, "decide_log_flush_errors_total", "counter",
					 "Failed decision log flushes.", s.v.counters[STAT_LOG_FLUSH_ERRORS]);
		metric_value(&out, "decide_log_pending_bytes", "gauge",
					 "Decision log bytes not yet written.", audit_log_pending_bytes());
		metric_value(&out, "decide_worker_up", "gauge",
					 "1 when this database's background worker runs.",
					 worker_registry_pid(MyDatabaseId) != 0 ? 1 : 0);
		metric(&out, "decide_redis_lookups_total", "counter",
			   "Redis (L3) lookups by result: hit, miss.",
			   "result", redis_lookups, lengthof(redis_lookups));
		metric(&out, "decide_redis_failures_total", "counter",
			   "Redis trouble by kind: error (connect, timeout, error reply), garbage (value failed "
			   "its checks), skipped (breaker open), breaker_open (times it opened).",
			   "kind", redis_failures, lengthof(redis_failures));
		metric_value(&out, "decide_warmed_total", "counter",
					 "Decisions the worker computed ahead after a policy change.",
					 s.v.counters[STAT_WARMED]);
		metric_value(&out, "decide_shared_set_builds_total", "counter",
					 "Policy sets compiled and published in shared memory.",
					 s.v.counters[STAT_SHARED_SET_BUILDS]);
		metric_value(&out, "decide_shared_set_fallbacks_total", "counter",
					 "Private compiles of a policy set that did not fit in shared memory or found no slot.",
					 s.v.counters[STAT_SHARED_SET_FALLBACKS]);
		{
			SharedSetReport shared;

			shared_sets_report(SHARED_POLICY_SET, &set->version, &shared);
			metric_value(&out, "decide_shared_sets_bytes", "gauge",
						 "Shared memory held by the compiled policy sets of the server.",
						 shared.bytes_in_use);
		}
		metric_value(&out, "decide_warm_timeouts_total", "counter",
					 "Requests the worker stopped warming at their time limit (never warmed again).",
					 s.v.counters[STAT_WARM_TIMEOUTS]);
	}
	metric_value(&out, "decide_entity_fetches_total", "counter",
				 "Entity rows looked up in decide.entities (entity cache misses).",
				 s.v.counters[STAT_ENTITY_FETCHES]);
	metric_value(&out, "decide_listings_total", "counter",
				 "Calls of decide_resources() and decide_actors().",
				 s.v.counters[STAT_LISTINGS]);
	metric_value(&out, "decide_listing_candidates_total", "counter",
				 "Entities that listings decided (candidates their policies reach).",
				 s.v.counters[STAT_LISTING_CANDIDATES]);
	metric_value(&out, "decide_listing_cache_hits_total", "counter",
				 "Listings answered from the listing cache.",
				 s.v.counters[STAT_LISTING_CACHE_HITS]);
	metric_value(&out, "decide_entity_image_builds_total", "counter",
				 "Images of decide.entities built and published in shared memory.",
				 s.v.counters[STAT_ENTITY_IMAGE_BUILDS]);
	metric_value(&out, "decide_carried_forward_total", "counter",
				 "Cache misses answered by an older epoch's cached decision that no policy "
				 "change since touches.",
				 s.v.counters[STAT_CARRIED_FORWARD]);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}
