/*
 * decision_cache.c — L1 (per backend) and L2 (shared memory) decision caches.
 *
 * Both layers are the same structure: a set-associative table of fixed-size
 * slots, CACHE_WAYS slots per set, a key's set chosen by its hash.  A lookup
 * compares the full key (database, store, epoch, request bytes), never just
 * a hash, so two requests can share a decision only if they are the same
 * request under the same policy-set version.  When a set is full, the victim
 * is an expired entry or one of an older epoch of the same store, else the
 * least hit of the entries not referenced since the last sweep (if all
 * were, their flags are cleared and their hit counts halved, and the least
 * hit goes): recency and frequency both count, so a skewed workload keeps
 * its head cached.  Memory stays within the configured size and evictions
 * are counted.
 *
 * Freshness: keys carry the epoch, so an entry of another epoch is never
 * served; nothing is cached while the policy set includes the transaction's
 * own uncommitted change (its epoch number may be rolled back and reused);
 * decisions that evaluated a condition using $now expire after
 * decide.time_dependent_ttl.
 *
 * Locking rules (L2):
 *   - Sets are grouped into L2_LOCK_PARTITIONS partitions, one LWLock each
 *     (set number modulo the partition count), so concurrent backends rarely
 *     meet on one lock.
 *   - Lookups take the partition lock shared; they may set a slot's
 *     "referenced" flag and count its hits, which are atomics for that
 *     reason.
 *   - Stores and resets take it exclusive.
 *   - No lock is held across anything but copying a slot: no I/O, no
 *     allocation, no other lock.
 * L1 is backend-local and takes no locks.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "decision_cache.h"
#include "request_key.h"
#include "stats.h"

#define CACHE_WAYS 8
#define CACHE_SLOT_BYTES 320
#define L2_LOCK_PARTITIONS 128
#define L2_TRANCHE "decide_cache"

typedef struct CacheSlot
{
	uint64		hash;
	int64		epoch;
	int64		policy_id;
	TimestampTz expires;
	pg_uuid_t	store_id;
	Oid			database;
	uint16		key_len;		/* 0: empty */
	uint8		flags;
	pg_atomic_uint32 referenced;
	pg_atomic_uint32 hits;		/* lookups answered since filled: the worker warms hottest first */
	char		key[FLEXIBLE_ARRAY_MEMBER];
} CacheSlot;

#define SLOT_KEY_CAPACITY (CACHE_SLOT_BYTES - offsetof(CacheSlot, key))

#define FLAG_HAS_POLICY			0x01
#define FLAG_ALLOWED			0x02
#define FLAG_CONDITION_UNKNOWN	0x04

typedef struct CacheTable
{
	char	   *slots;
	uint32		n_sets;			/* 0: layer absent */
	LWLockPadded *locks;		/* NULL: backend-local */
	DecideCounter evictions;
	DecideGauge entries;
} CacheTable;

bool		decide_cache_enabled = true;
int			decide_time_dependent_ttl_ms = 1000;
static int	l1_cache_entries = 4096;
static int	shared_cache_size_mb = 128;

static CacheTable tables[CACHE_LAYERS] = {
	{NULL, 0, NULL, STAT_L1_EVICTIONS, GAUGE_L1_ENTRIES},
	{NULL, 0, NULL, STAT_L2_EVICTIONS, GAUGE_L2_ENTRIES},
};
static int	l1_built_for_entries = 0;
static bool l1_exit_callback_registered = false;

void
decision_cache_define_gucs(void)
{
	DefineCustomBoolVariable("decide.cache",
							 "Serve and store decisions in the decision caches.",
							 "Off bypasses every layer (L1, L2, Redis), for debugging.",
							 &decide_cache_enabled,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("decide.l1_cache_entries",
							"Decisions each backend caches (L1).",
							NULL,
							&l1_cache_entries,
							4096, 0, 1024 * 1024,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("decide.time_dependent_ttl",
							"How long a decision that depended on $now may be served from cache.",
							"0 never caches such decisions.",
							&decide_time_dependent_ttl_ms,
							1000, 0, 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	/* Sizes shared memory: exists only when preloaded. */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("decide.shared_cache_size",
								"Shared memory for the decision cache shared by all backends (L2).",
								"0 disables the shared layer. Needs shared_preload_libraries.",
								&shared_cache_size_mb,
								128, 0, 64 * 1024,
								PGC_POSTMASTER, GUC_UNIT_MB,
								NULL, NULL, NULL);
}

static inline CacheSlot *
slot_at(const CacheTable *table, uint32 set, int way)
{
	return (CacheSlot *) (table->slots +
						  ((Size) set * CACHE_WAYS + way) * CACHE_SLOT_BYTES);
}

static void
clear_slots(CacheTable *table, uint32 first_set, uint32 step)
{
	uint32		set;
	int			way;
	int64		cleared = 0;

	for (set = first_set; set < table->n_sets; set += step)
		for (way = 0; way < CACHE_WAYS; way++)
		{
			CacheSlot  *slot = slot_at(table, set, way);

			if (slot->key_len != 0)
				cleared++;
			slot->key_len = 0;
			pg_atomic_init_u32(&slot->referenced, 0);
			pg_atomic_init_u32(&slot->hits, 0);
		}
	stats_gauge_add(table->entries, -cleared);
}

static Size
shared_table_bytes(void)
{
	Size		sets = ((Size) shared_cache_size_mb * 1024 * 1024) /
		(CACHE_WAYS * CACHE_SLOT_BYTES);

	return sets * CACHE_WAYS * CACHE_SLOT_BYTES;
}

void
decision_cache_shmem_request(void)
{
	RequestAddinShmemSpace(shared_table_bytes());
	RequestNamedLWLockTranche(L2_TRANCHE, L2_LOCK_PARTITIONS);
}

void
decision_cache_shmem_startup(void)
{
	CacheTable *table = &tables[CACHE_L2];
	Size		bytes = shared_table_bytes();
	bool		found;

	if (bytes == 0)
		return;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	table->slots = ShmemInitStruct("decide decision cache", bytes, &found);
	table->n_sets = bytes / (CACHE_WAYS * CACHE_SLOT_BYTES);
	table->locks = GetNamedLWLockTranche(L2_TRANCHE);
	if (!found)
	{
		memset(table->slots, 0, bytes);
		clear_slots(table, 0, 1);
	}
	LWLockRelease(AddinShmemInitLock);
}

bool
decision_cache_shared_available(void)
{
	return tables[CACHE_L2].n_sets > 0;
}

/* This backend's L1 entries leave the summed gauge when it exits. */
static void
l1_on_exit(int code, Datum arg)
{
	CacheTable *table = &tables[CACHE_L1];

	if (table->n_sets > 0)
		clear_slots(table, 0, 1);
}

/* Creates or resizes L1 to decide.l1_cache_entries. */
static void
prepare_l1(void)
{
	CacheTable *table = &tables[CACHE_L1];
	uint32		sets = (l1_cache_entries + CACHE_WAYS - 1) / CACHE_WAYS;

	if (l1_built_for_entries == l1_cache_entries && table->n_sets == sets)
		return;
	if (table->slots)
	{
		clear_slots(table, 0, 1);
		pfree(table->slots);
		table->slots = NULL;
		table->n_sets = 0;
	}
	if (sets > 0)
	{
		table->slots = MemoryContextAllocHuge(TopMemoryContext,
											  (Size) sets * CACHE_WAYS * CACHE_SLOT_BYTES);
		table->n_sets = sets;
		clear_slots(table, 0, 1);
	}
	l1_built_for_entries = l1_cache_entries;
	if (!l1_exit_callback_registered)
	{
		before_shmem_exit(l1_on_exit, (Datum) 0);
		l1_exit_callback_registered = true;
	}
}

static CacheTable *
table_for(CacheLayer layer)
{
	if (layer == CACHE_L1)
		prepare_l1();
	return &tables[layer];
}

/*
 * The hash of a key: its request bytes under its database and store, not
 * its epoch, so that a request's entries of every epoch fall in the same
 * set: a newer one (carried forward, or decided again) replaces the older
 * in place rather than pushing out another request's.
 */
static uint64
decision_key_hash(const DecisionKey *key)
{
	uint64		hash = hash_bytes_extended((const unsigned char *) key->bytes, key->len,
										   (uint64) key->database << 32);

	return hash_combine64(hash, hash_bytes_extended(key->store_id.data, UUID_LEN, 0));
}

void
decision_key_build(const PolicySet *set, const DecStr *uids, Jsonb *context, DecisionKey *key)
{
	key->len = request_key_size(uids, VARSIZE(context));
	key->bytes = palloc(key->len);
	request_key_encode(uids, context, VARSIZE(context), key->bytes);
	key->database = MyDatabaseId;
	key->epoch = set->epoch;
	key->store_id = set->store_id;
	key->version = set->version;
	key->hash = decision_key_hash(key);
}

void
decision_key_for_epoch(const DecisionKey *key, int64 epoch, DecisionKey *out)
{
	*out = *key;				/* the hash does not depend on the epoch */
	out->epoch = epoch;
	memset(&out->version, 0, sizeof(pg_uuid_t));	/* not for Redis */
}

bool
decision_cache_fits(CacheLayer layer, const DecisionKey *key)
{
	return key->len <= SLOT_KEY_CAPACITY && table_for(layer)->n_sets > 0;
}

/* The slot holds key's request (database, store, bytes), under any epoch. */
static inline bool
slot_holds_request(const CacheSlot *slot, const DecisionKey *key)
{
	return slot->key_len == key->len &&
		slot->hash == key->hash &&
		slot->database == key->database &&
		memcmp(&slot->store_id, &key->store_id, sizeof(pg_uuid_t)) == 0 &&
		memcmp(slot->key, key->bytes, key->len) == 0;
}

static inline bool
slot_holds(const CacheSlot *slot, const DecisionKey *key)
{
	return slot->epoch == key->epoch && slot_holds_request(slot, key);
}

static inline LWLock *
lock_for(const CacheTable *table, uint32 set)
{
	return table->locks ? &table->locks[set % L2_LOCK_PARTITIONS].lock : NULL;
}

bool
decision_cache_lookup(CacheLayer layer, const DecisionKey *key, CachedDecision *decision)
{
	CacheTable *table = table_for(layer);
	uint32		set;
	LWLock	   *lock;
	bool		found = false;
	int			way;

	if (table->n_sets == 0 || key->len > SLOT_KEY_CAPACITY)
		return false;
	set = (uint32) (key->hash % table->n_sets);
	lock = lock_for(table, set);
	if (lock)
		LWLockAcquire(lock, LW_SHARED);
	for (way = 0; way < CACHE_WAYS; way++)
	{
		CacheSlot  *slot = slot_at(table, set, way);

		if (!slot_holds(slot, key))
			continue;
		decision->has_policy = (slot->flags & FLAG_HAS_POLICY) != 0;
		decision->allowed = (slot->flags & FLAG_ALLOWED) != 0;
		decision->condition_unknown = (slot->flags & FLAG_CONDITION_UNKNOWN) != 0;
		decision->policy_id = slot->policy_id;
		decision->expires = slot->expires;
		if (pg_atomic_read_u32(&slot->referenced) == 0)
			pg_atomic_write_u32(&slot->referenced, 1);
		if (pg_atomic_read_u32(&slot->hits) < PG_UINT32_MAX / 2)
			pg_atomic_fetch_add_u32(&slot->hits, 1);
		found = true;
		break;
	}
	if (lock)
		LWLockRelease(lock);
	if (found && decision->expires != 0 && decision->expires <= GetCurrentTimestamp())
		found = false;
	return found;
}

/*
 * The slot a new entry takes: the same request's entry of an older epoch;
 * else an empty one; else an expired one or one of an older epoch of the
 * same store; else the least hit one not referenced since the last sweep;
 * else, after a sweep, the least hit one.
 */
static CacheSlot *
choose_victim(CacheTable *table, uint32 set, const DecisionKey *key, bool *evicting,
			  bool *replacing_older)
{
	TimestampTz now = 0;
	int			way;

	*evicting = false;
	*replacing_older = false;
	for (way = 0; way < CACHE_WAYS; way++)
	{
		CacheSlot  *slot = slot_at(table, set, way);

		/* the same request under an older epoch of the same store */
		if (slot->epoch < key->epoch && slot_holds_request(slot, key))
		{
			*replacing_older = true;
			return slot;
		}
	}
	for (way = 0; way < CACHE_WAYS; way++)
		if (slot_at(table, set, way)->key_len == 0)
			return slot_at(table, set, way);
	*evicting = true;	/* from here on, every candidate is occupied */
	for (way = 0; way < CACHE_WAYS; way++)
	{
		CacheSlot  *slot = slot_at(table, set, way);

		if (slot->database == key->database && slot->epoch < key->epoch &&
			memcmp(&slot->store_id, &key->store_id, sizeof(pg_uuid_t)) == 0)
			return slot;
		if (slot->expires != 0)
		{
			if (now == 0)
				now = GetCurrentTimestamp();
			if (slot->expires <= now)
				return slot;
		}
	}
	{
		CacheSlot  *victim = NULL;
		uint32		victim_hits = PG_UINT32_MAX;

		for (way = 0; way < CACHE_WAYS; way++)
		{
			CacheSlot  *slot = slot_at(table, set, way);
			uint32		hits = pg_atomic_read_u32(&slot->hits);

			if (pg_atomic_read_u32(&slot->referenced) == 0 && hits < victim_hits)
			{
				victim = slot;
				victim_hits = hits;
			}
		}
		if (victim)
			return victim;

		/*
		 * Every entry was used since the last sweep: clear their flags, age
		 * their counts (halved, so that once-hot entries give way in time)
		 * and take the least used.
		 */
		for (way = 0; way < CACHE_WAYS; way++)
		{
			CacheSlot  *slot = slot_at(table, set, way);
			uint32		hits = pg_atomic_read_u32(&slot->hits);

			pg_atomic_write_u32(&slot->referenced, 0);
			pg_atomic_write_u32(&slot->hits, hits / 2);
			if (victim == NULL || hits < victim_hits)
			{
				victim = slot;
				victim_hits = hits;
			}
		}
		return victim;
	}
}

void
decision_cache_store(CacheLayer layer, const DecisionKey *key, const CachedDecision *decision)
{
	CacheTable *table = table_for(layer);
	uint32		set;
	LWLock	   *lock;
	CacheSlot  *slot = NULL;
	bool		filling = false;	/* a new entry, not an update */
	bool		evicting = false;
	bool		replacing_older = false;	/* its own entry of an older epoch */
	int			way;

	if (table->n_sets == 0 || key->len > SLOT_KEY_CAPACITY)
		return;
	set = (uint32) (key->hash % table->n_sets);
	lock = lock_for(table, set);
	if (lock)
		LWLockAcquire(lock, LW_EXCLUSIVE);
	for (way = 0; way < CACHE_WAYS && slot == NULL; way++)
		if (slot_holds(slot_at(table, set, way), key))
			slot = slot_at(table, set, way);
	if (slot == NULL)
	{
		slot = choose_victim(table, set, key, &evicting, &replacing_older);
		filling = !replacing_older;
		slot->hash = key->hash;
		slot->epoch = key->epoch;
		slot->database = key->database;
		slot->store_id = key->store_id;
		slot->key_len = (uint16) key->len;
		memcpy(slot->key, key->bytes, key->len);
		if (!replacing_older)	/* the same request keeps its count */
			pg_atomic_write_u32(&slot->hits, 0);
	}
	slot->flags = (decision->has_policy ? FLAG_HAS_POLICY : 0) |
		(decision->allowed ? FLAG_ALLOWED : 0) |
		(decision->condition_unknown ? FLAG_CONDITION_UNKNOWN : 0);
	slot->policy_id = decision->policy_id;
	slot->expires = decision->expires;
	pg_atomic_write_u32(&slot->referenced, 1);
	if (lock)
		LWLockRelease(lock);
	if (evicting)
		stats_count(table->evictions, 1);
	else if (filling)
		stats_gauge_add(table->entries, 1);
}

void
decision_cache_reset(CacheLayer layer)
{
	CacheTable *table = table_for(layer);
	int			partition;

	if (table->n_sets == 0)
		return;
	if (table->locks == NULL)
	{
		clear_slots(table, 0, 1);
		return;
	}
	for (partition = 0; partition < L2_LOCK_PARTITIONS; partition++)
	{
		LWLockAcquire(&table->locks[partition].lock, LW_EXCLUSIVE);
		clear_slots(table, partition, L2_LOCK_PARTITIONS);
		LWLockRelease(&table->locks[partition].lock);
	}
}

void
decision_cache_capacity(CacheLayer layer, uint64 *entries, uint64 *bytes, uint64 *slot_bytes)
{
	const CacheTable *table = layer == CACHE_L1 ? table_for(layer) : &tables[layer];

	*entries = (uint64) table->n_sets * CACHE_WAYS;
	*bytes = *entries * CACHE_SLOT_BYTES;
	*slot_bytes = CACHE_SLOT_BYTES;
}

/* An L2 entry of an older epoch of current's store, used since the last sweep. */
static bool
slot_is_recent(CacheSlot *slot, const DecisionKey *current)
{
	return slot->key_len != 0 && slot->database == current->database &&
		slot->epoch < current->epoch &&
		memcmp(&slot->store_id, &current->store_id, sizeof(pg_uuid_t)) == 0 &&
		(pg_atomic_read_u32(&slot->referenced) != 0 || pg_atomic_read_u32(&slot->hits) != 0);
}

static int
compare_u64_asc(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

static int
compare_hits_desc(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Keys of L2 entries of an older epoch of this database's policy store that
 * were used recently: what callers will ask for again right after a policy
 * change.  At most max keys, the most often hit first, copied into palloc'd
 * memory; the worker recomputes them under the new epoch.  Two passes, so
 * that memory is bounded by max: the first finds how many hits the max-th
 * hottest entry has, the second copies the entries with at least that many.
 */
int
decision_cache_recent_keys(const DecisionKey *current, int max, char ***keys, uint32 **lens)
{
	CacheTable *table = &tables[CACHE_L2];
	uint32	   *hits;
	uint32	   *kept_hits;
	uint32		threshold = 0;
	int			candidates = 0;
	int			n = 0;
	int			pass;
	uint64	   *pairs;
	char	  **unsorted_keys;
	uint32	   *unsorted_lens;
	int			i;

	*keys = palloc(sizeof(char *) * Max(max, 1));
	*lens = palloc(sizeof(uint32) * Max(max, 1));
	if (table->n_sets == 0 || max <= 0)
		return 0;
	hits = MemoryContextAllocHuge(CurrentMemoryContext,
								  sizeof(uint32) * table->n_sets * CACHE_WAYS);
	unsorted_keys = palloc(sizeof(char *) * max);
	unsorted_lens = palloc(sizeof(uint32) * max);
	kept_hits = palloc(sizeof(uint32) * max);
	for (pass = 0; pass < 2; pass++)
	{
		int			partition;

		for (partition = 0; partition < L2_LOCK_PARTITIONS && n < max; partition++)
		{
			uint32		set;

			LWLockAcquire(&table->locks[partition].lock, LW_SHARED);
			for (set = partition; set < table->n_sets && n < max; set += L2_LOCK_PARTITIONS)
			{
				int			way;

				for (way = 0; way < CACHE_WAYS && n < max; way++)
				{
					CacheSlot  *slot = slot_at(table, set, way);
					uint32		slot_hits;

					if (!slot_is_recent(slot, current))
						continue;
					slot_hits = pg_atomic_read_u32(&slot->hits);
					if (pass == 0)
					{
						hits[candidates++] = slot_hits;
						continue;
					}
					if (slot_hits < threshold)
						continue;
					unsorted_keys[n] = palloc(slot->key_len);
					memcpy(unsorted_keys[n], slot->key, slot->key_len);
					unsorted_lens[n] = slot->key_len;
					kept_hits[n] = slot_hits;
					n++;
				}
			}
			LWLockRelease(&table->locks[partition].lock);
		}
		if (pass == 0)
		{
			if (candidates == 0)
				break;
			qsort(hits, candidates, sizeof(uint32), compare_hits_desc);
			threshold = hits[Min(candidates, max) - 1];
		}
	}
	pfree(hits);

	/* Hottest first: sort (fewest-hits-inverted, index) pairs. */
	pairs = palloc(sizeof(uint64) * Max(n, 1));
	for (i = 0; i < n; i++)
		pairs[i] = ((uint64) (PG_UINT32_MAX - kept_hits[i]) << 32) | (uint32) i;
	qsort(pairs, n, sizeof(uint64), compare_u64_asc);
	for (i = 0; i < n; i++)
	{
		int			from = (int) (pairs[i] & PG_UINT32_MAX);

		(*keys)[i] = unsorted_keys[from];
		(*lens)[i] = unsorted_lens[from];
	}
	pfree(pairs);
	pfree(unsorted_keys);
	pfree(unsorted_lens);
	pfree(kept_hits);
	return n;
}
