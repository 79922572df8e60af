/*
 * worker_warm.c — the worker's warming: right after the epoch moves, it
 * recomputes the hottest requests (hot_keys.c) and then the recently used
 * entries of L2 under the new epoch, so that the shared cache is warm again
 * before callers ask; at start it warms the most frequent requests of the
 * recent log.
 *
 * Warming must never hold the decision log back, whatever requests callers
 * made: it runs in slices of at most WARM_SLICE_MS plus one request, the
 * deadline checked before every request; a slice also ends as soon as a
 * quarter of the log ring waits to be written; each request may take at
 * most WARM_REQUEST_TIMEOUT_MS (then it is cancelled and counted in
 * warm_timeouts), and a request that took more than WARM_SLOW_MS, or
 * failed, is never warmed again by this worker.  $now of each request is
 * the time it is warmed.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "audit_log.h"
#include "decision.h"
#include "hot_keys.h"
#include "policy_set.h"
#include "request_key.h"
#include "stats.h"
#include "worker_common.h"
#include "worker_flush.h"
#include "worker_warm.h"

#define WARM_KEYS 1024
#define WARM_RECENT_KEYS 200000
#define WARM_AT_ONCE 20000		/* then the rest, after 2 s without a change */
#define WARM_REST_AFTER_MS 2000
#define WARM_SLICE_MS 50		/* warming between two looks at the log ring */
#define WARM_REQUEST_TIMEOUT_MS 20
#define WARM_SLOW_MS 5
#define WARM_SLOW_KEYS_MAX 100000
#define WARM_FROM_LOG_KEYS 1024

/*
 * The requests to recompute for an epoch, hottest first, worked through in
 * slices until done or the epoch moves again.
 */
typedef struct WarmPlan
{
	MemoryContext context;
	int64		epoch;			/* the epoch it warms for; -1: none */
	TimestampTz started;
	int			n;
	int			next;
	char	  **keys;			/* request_key encodings */
	uint32	   *lens;
} WarmPlan;

static WarmPlan warm_plan = {NULL, -1, 0, 0, 0, NULL, NULL};
static int64 last_warmed_epoch = -1;
static bool warmed_from_log = false;

/* Hashes of requests never to warm again: they were slow or failed. */
static HTAB *slow_requests = NULL;

/* The request being warmed (an index in the plan), -1 between requests. */
static int	request_in_progress = -1;
static TimeoutId request_timeout;
static volatile sig_atomic_t request_timed_out = false;

/*
 * The time limit of one request: raises a query cancel, which the next
 * CHECK_FOR_INTERRUPTS (the regex engine and the evaluator check often)
 * turns into an error.  Set in the handler, so no signal is left in flight.
 */
static void
handle_request_timeout(void)
{
	request_timed_out = true;
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
}

bool		decide_warm = true;

void
warm_define_gucs(void)
{
	DefineCustomBoolVariable("decide.warm",
							 "Whether the workers recompute hot decisions after a policy change, and at start.",
							 "Off: callers fill the caches on demand.",
							 &decide_warm, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
}

void
warm_init(void)
{
	HASHCTL		ctl;

	request_timeout = RegisterTimeout(USER_TIMEOUT, handle_request_timeout);
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(uint64);
	slow_requests = hash_create("decide slow requests", 1024, &ctl, HASH_ELEM | HASH_BLOBS);
	warm_plan.context = AllocSetContextCreate(TopMemoryContext, "decide warm plan",
											  ALLOCSET_DEFAULT_SIZES);
}

static uint64
request_hash(const char *bytes, uint32 len)
{
	return hash_bytes_extended((const unsigned char *) bytes, len, 0);
}

static bool
is_slow(const char *bytes, uint32 len)
{
	uint64		hash = request_hash(bytes, len);

	return hash_search(slow_requests, &hash, HASH_FIND, NULL) != NULL;
}

static void
remember_slow(const char *bytes, uint32 len)
{
	uint64		hash = request_hash(bytes, len);

	/* Bounded: past the limit, start over rather than grow. */
	if (hash_get_num_entries(slow_requests) >= WARM_SLOW_KEYS_MAX)
	{
		HASH_SEQ_STATUS status;
		uint64	   *entry;

		hash_seq_init(&status, slow_requests);
		while ((entry = hash_seq_search(&status)) != NULL)
			hash_search(slow_requests, entry, HASH_REMOVE, NULL);
	}
	(void) hash_search(slow_requests, &hash, HASH_ENTER, NULL);
}

static void
reset_plan(void)
{
	MemoryContextReset(warm_plan.context);
	warm_plan.n = warm_plan.next = 0;
	warm_plan.epoch = -1;
	warm_plan.keys = NULL;
	warm_plan.lens = NULL;
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
		request.uid[d].ptr = pnstrdup(request.uid[d].ptr, request.uid[d].len);
	request.context = palloc(context_len);	/* aligned for jsonb */
	memcpy(request.context, context, context_len);
	decision_make(&request, &decision, true);
}

/* Warms plan entry i within the time limit; remembers it if slow. */
static void
warm_one(int i)
{
	TimestampTz started = GetCurrentTimestamp();

	request_in_progress = i;
	SetCurrentStatementStartTimestamp();	/* $now: the time it is warmed at */
	request_timed_out = false;
	enable_timeout_after(request_timeout, WARM_REQUEST_TIMEOUT_MS);
	warm_request(warm_plan.keys[i], warm_plan.lens[i]);
	disable_timeout(request_timeout, false);
	if (request_timed_out)
	{
		/* Fired after the last check for interrupts: nothing to cancel. */
		QueryCancelPending = false;
		request_timed_out = false;
	}
	request_in_progress = -1;
	if (TimestampDifferenceExceeds(started, GetCurrentTimestamp(), WARM_SLOW_MS))
		remember_slow(warm_plan.keys[i], warm_plan.lens[i]);
}

/*
 * Lists what to recompute under the current epoch: the hottest requests of
 * the sketch (those callers keep in L1, which L2 hit counts do not see),
 * then the L2 entries of older epochs, the most often hit first.
 */
static void
build_plan_after_change(const PolicySet *set)
{
	HotKey	   *hot;
	char	  **recent;
	uint32	   *recent_lens;
	int			n_hot;
	int			n_recent;
	int			i;
	DecisionKey current;
	MemoryContext old;

	reset_plan();
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

/* Ends a slice: time is up, or the log needs the worker. */
static bool
slice_is_over(TimestampTz deadline)
{
	return GetCurrentTimestamp() >= deadline ||
		audit_log_pending_bytes() > audit_log_capacity() / 4;
}

/* One slice, in a transaction (see warm_slice). */
static void
warm_in_transaction(void *arg)
{
	bool	   *pending = arg;
	PolicySet  *set;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), WARM_SLICE_MS);

	*pending = false;
	if (!worker_extension_installed())
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
	if (warm_plan.epoch != set->epoch)
	{
		if (set->epoch == last_warmed_epoch)
			return;
		build_plan_after_change(set);
	}
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
		if (slice_is_over(deadline))
		{
			*pending = true;
			return;
		}
		i = warm_plan.next++;	/* past it first: if it fails, it is skipped */
		if (is_slow(warm_plan.keys[i], warm_plan.lens[i]))
			continue;
		CHECK_FOR_INTERRUPTS();
		warm_one(i);
	}
	last_warmed_epoch = set->epoch;
	stats_gauge_set(GAUGE_LAST_WARM_US, (uint64) (GetCurrentTimestamp() - warm_plan.started));
	reset_plan();
}

/*
 * One slice of warming in a transaction of its own.  A request that fails
 * (its time limit, or an entity grown past the ancestor limit since it was
 * cached) must not take the worker, and the log flush with it, down: its
 * error is logged, the request remembered as never to warm again, and
 * warming goes on with the next one in the next slice.
 */
void
warm_slice(bool *pending)
{
	MemoryContext context = CurrentMemoryContext;

	PG_TRY();
	{
		worker_in_transaction(warm_in_transaction, pending);
	}
	PG_CATCH();
	{
		bool		timed_out = request_timed_out;

		MemoryContextSwitchTo(context);
		disable_timeout(request_timeout, false);
		request_timed_out = false;
		if (timed_out)
		{
			stats_count(STAT_WARM_TIMEOUTS, 1);
			FlushErrorState();
		}
		else
		{
			EmitErrorReport();
			FlushErrorState();
		}
		AbortCurrentTransaction();
		MemoryContextSwitchTo(context);
		if (request_in_progress >= 0)
			remember_slow(warm_plan.keys[request_in_progress],
						  warm_plan.lens[request_in_progress]);
		request_in_progress = -1;
		*pending = warm_plan.next < warm_plan.n;
	}
	PG_END_TRY();
}

typedef struct LogPlan
{
	int			n;
	char	  **keys;
	uint32	   *lens;
	int64		epoch;
} LogPlan;

/* The most frequent requests of the last minutes of the log, encoded. */
static void
read_log_requests(void *arg)
{
	LogPlan    *plan = arg;
	MemoryContext old;
	uint64		i;

	plan->n = 0;
	if (!worker_extension_installed())
		return;
	/* From 0.7.0 on, only the chunks of the last ten minutes are decoded. */
	if (SPI_execute(psprintf("SELECT actor, action, resource, coalesce(context, '{}')"
							 " FROM (SELECT actor, action, resource, context FROM %s"
							 "        ORDER BY decided_at DESC LIMIT 100000) recent"
							 " GROUP BY 1, 2, 3, 4 ORDER BY count(*) DESC LIMIT "
							 CppAsString2(WARM_FROM_LOG_KEYS),
							 strcmp(log_partitioned_table(), "decision_chunks") == 0 ?
							 "decide.decisions_between(now() - interval '10 minutes', 'infinity')" :
							 "decide.decisions WHERE decided_at > now() - interval '10 minutes'"),
					true, 0) != SPI_OK_SELECT)
		return;
	plan->epoch = policy_set_current()->epoch;
	old = MemoryContextSwitchTo(warm_plan.context);
	plan->keys = palloc(sizeof(char *) * (SPI_processed + 1));
	plan->lens = palloc(sizeof(uint32) * (SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		DecStr		uids[DEC_NDIMS];
		Jsonb	   *context;
		bool		isnull;
		int			d;
		size_t		len;

		for (d = 0; d < DEC_NDIMS; d++)
		{
			text	   *uid = DatumGetTextPP(SPI_getbinval(tuple, desc, d + 1, &isnull));

			uids[d].ptr = VARDATA_ANY(uid);
			uids[d].len = VARSIZE_ANY_EXHDR(uid);
		}
		context = DatumGetJsonbP(SPI_getbinval(tuple, desc, 4, &isnull));
		len = request_key_size(uids, VARSIZE(context));
		plan->keys[plan->n] = palloc(len);
		request_key_encode(uids, context, VARSIZE(context), plan->keys[plan->n]);
		plan->lens[plan->n] = len;
		plan->n++;
	}
	MemoryContextSwitchTo(old);
}

void
warm_plan_from_log(void)
{
	LogPlan		plan;

	if (warmed_from_log || warm_plan.epoch != -1)
		return;
	warmed_from_log = true;
	reset_plan();
	memset(&plan, 0, sizeof(plan));
	worker_in_transaction(read_log_requests, &plan);
	if (plan.n == 0)
		return;
	warm_plan.keys = plan.keys;
	warm_plan.lens = plan.lens;
	warm_plan.n = plan.n;
	warm_plan.epoch = plan.epoch;
	warm_plan.started = GetCurrentTimestamp();
}
