/*
 * hot_keys.c — a space-saving sketch of the most frequent requests.
 *
 * A set-associative table of counters: a key's set comes from its hash; a
 * key already there is counted; a new key takes a free way, or else replaces
 * the way with the smallest count and starts from that count plus one (the
 * space-saving rule: a newcomer may be overestimated, never a heavy hitter
 * lost).  One decision in HOT_SAMPLE is counted, so the cost per decision is
 * a counter increment most of the time.
 *
 * Locking rules: sets are spread over HOT_LOCKS partition locks (set number
 * modulo HOT_LOCKS); updates take theirs exclusive, hot_keys_top() and
 * hot_keys_decay() take each in turn.  Nothing else happens under them.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "hot_keys.h"

#define HOT_SETS 256
#define HOT_WAYS 8
#define HOT_LOCKS 16
#define HOT_SAMPLE 8
#define HOT_KEY_BYTES 260
#define HOT_TRANCHE "decide_hot_keys"

typedef struct HotEntry
{
	uint64		hash;
	Oid			database;
	uint32		count;			/* 0: free */
	uint32		len;
	char		key[HOT_KEY_BYTES];
} HotEntry;

typedef struct HotKeys
{
	LWLockPadded *locks;
	HotEntry	entries[HOT_SETS * HOT_WAYS];
} HotKeys;

static HotKeys *hot = NULL;
static uint32 calls = 0;

void
hot_keys_shmem_request(void)
{
	RequestAddinShmemSpace(sizeof(HotKeys));
	RequestNamedLWLockTranche(HOT_TRANCHE, HOT_LOCKS);
}

void
hot_keys_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	hot = ShmemInitStruct("decide hot keys", sizeof(HotKeys), &found);
	if (!found)
	{
		memset(hot, 0, sizeof(HotKeys));
		hot->locks = GetNamedLWLockTranche(HOT_TRANCHE);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
hot_keys_note(const DecisionKey *key)
{
	uint64		hash;
	uint32		set;
	HotEntry   *ways;
	HotEntry   *victim = NULL;
	LWLock	   *lock;
	int			w;

	if (hot == NULL || key->len > HOT_KEY_BYTES || ++calls % HOT_SAMPLE != 0)
		return;
	/* Not the cache hash: that one includes the epoch, this must not. */
	hash = hash_bytes_extended((const unsigned char *) key->bytes, key->len, MyDatabaseId);
	set = (uint32) (hash % HOT_SETS);
	ways = &hot->entries[set * HOT_WAYS];
	lock = &hot->locks[set % HOT_LOCKS].lock;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	for (w = 0; w < HOT_WAYS; w++)
	{
		HotEntry   *e = &ways[w];

		if (e->count > 0 && e->hash == hash && e->database == MyDatabaseId &&
			e->len == key->len && memcmp(e->key, key->bytes, key->len) == 0)
		{
			e->count++;
			LWLockRelease(lock);
			return;
		}
		if (victim == NULL || e->count < victim->count)
			victim = e;
	}
	victim->count = victim->count + 1;
	victim->hash = hash;
	victim->database = MyDatabaseId;
	victim->len = key->len;
	memcpy(victim->key, key->bytes, key->len);
	LWLockRelease(lock);
}

static int
compare_hot_desc(const void *a, const void *b)
{
	uint32		x = ((const HotKey *) a)->count;
	uint32		y = ((const HotKey *) b)->count;

	return (x < y) - (x > y);
}

int
hot_keys_top(Oid database, int max, HotKey **keys)
{
	HotKey	   *all;
	int			n = 0;
	int			partition;

	if (hot == NULL)
	{
		*keys = NULL;
		return 0;
	}
	all = palloc(sizeof(HotKey) * HOT_SETS * HOT_WAYS);
	for (partition = 0; partition < HOT_LOCKS; partition++)
	{
		int			set;

		LWLockAcquire(&hot->locks[partition].lock, LW_SHARED);
		for (set = partition; set < HOT_SETS; set += HOT_LOCKS)
		{
			int			w;

			for (w = 0; w < HOT_WAYS; w++)
			{
				HotEntry   *e = &hot->entries[set * HOT_WAYS + w];

				if (e->count == 0 || e->database != database)
					continue;
				all[n].count = e->count;
				all[n].len = e->len;
				all[n].bytes = palloc(e->len);
				memcpy(all[n].bytes, e->key, e->len);
				n++;
			}
		}
		LWLockRelease(&hot->locks[partition].lock);
	}
	qsort(all, n, sizeof(HotKey), compare_hot_desc);
	*keys = all;
	return Min(n, max);
}

void
hot_keys_decay(void)
{
	int			partition;

	if (hot == NULL)
		return;
	for (partition = 0; partition < HOT_LOCKS; partition++)
	{
		int			set;

		LWLockAcquire(&hot->locks[partition].lock, LW_EXCLUSIVE);
		for (set = partition; set < HOT_SETS; set += HOT_LOCKS)
		{
			int			w;

			for (w = 0; w < HOT_WAYS; w++)
				hot->entries[set * HOT_WAYS + w].count /= 2;
		}
		LWLockRelease(&hot->locks[partition].lock);
	}
}
