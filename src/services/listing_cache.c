/*
 * listing_cache.c — this backend's cache of listings: the rows
 * decide_resources() or decide_actors() returned for a request, under one
 * policy-set version.
 *
 * A listing depends on the policies, the entities, the request and, through
 * conditions that read $now, the time.  The key is the whole request; the
 * cache holds one policy-set version at a time and is emptied when the
 * version moves, which every change to policies or entities does, so no
 * listing outlives the state it was computed from (exact invalidation, as
 * for decisions).  The caller does not store listings computed under its
 * transaction's own uncommitted changes or from conditions that read $now.
 * At most decide.listing_cache_size bytes of rows; when a listing does not
 * fit, the cache is emptied first.  Off with decide.cache.
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "bytes_table.h"
#include "decision_cache.h"
#include "listing_cache.h"

int			decide_listing_cache_kb = 16 * 1024;

typedef struct ListingEntry
{
	BytesKey	key;			/* points into cache_context */
	StringInfoData rows;		/* data in cache_context */
} ListingEntry;

static MemoryContext cache_context = NULL;
static HTAB *cache = NULL;
static pg_uuid_t cache_version;
static Size cache_bytes = 0;

void
listing_cache_define_gucs(void)
{
	DefineCustomIntVariable("decide.listing_cache_size",
							"Memory each backend may use for cached listings (decide_resources, decide_actors).",
							"0 turns the listing cache off.",
							&decide_listing_cache_kb,
							16 * 1024, 0, MAX_KILOBYTES,
							PGC_SUSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
}

void
listing_cache_reset(void)
{
	if (cache_context == NULL)
		cache_context = AllocSetContextCreate(TopMemoryContext, "decide listing cache",
											  ALLOCSET_DEFAULT_SIZES);
	cache = NULL;
	MemoryContextReset(cache_context);
	cache = bytes_table_create("decide listing cache", sizeof(ListingEntry), 64, cache_context);
	memset(&cache_version, 0, sizeof(cache_version));
	cache_bytes = 0;
}

/* Whether the cache may serve this set; empties it for a new version. */
static bool
cache_for(const PolicySet *set)
{
	if (!decide_cache_enabled || decide_listing_cache_kb == 0 || set->includes_own_changes)
		return false;
	if (cache == NULL || memcmp(&cache_version, &set->version, sizeof(pg_uuid_t)) != 0)
	{
		listing_cache_reset();
		cache_version = set->version;
	}
	return true;
}

const StringInfoData *
listing_cache_lookup(const PolicySet *set, const StringInfoData *key)
{
	BytesKey	k = {key->data, (uint32) key->len};
	ListingEntry *entry;

	if (!cache_for(set))
		return NULL;
	entry = hash_search(cache, &k, HASH_FIND, NULL);
	return entry ? &entry->rows : NULL;
}

void
listing_cache_store(const PolicySet *set, const StringInfoData *key, const StringInfoData *rows)
{
	Size		bytes = (Size) key->len + rows->len + sizeof(ListingEntry);
	BytesKey	k;
	ListingEntry *entry;
	bool		found;
	pg_uuid_t	version;

	if (!cache_for(set) || bytes > (Size) decide_listing_cache_kb * 1024)
		return;
	k.ptr = key->data;
	k.len = key->len;
	if (hash_search(cache, &k, HASH_FIND, NULL) != NULL)
		return;
	if (cache_bytes + bytes > (Size) decide_listing_cache_kb * 1024)
	{
		version = cache_version;
		listing_cache_reset();
		cache_version = version;
	}
	k.ptr = MemoryContextAlloc(cache_context, key->len);
	memcpy((char *) k.ptr, key->data, key->len);
	entry = hash_search(cache, &k, HASH_ENTER, &found);
	entry->key = k;
	entry->rows.data = MemoryContextAlloc(cache_context, rows->len + 1);
	memcpy(entry->rows.data, rows->data, rows->len + 1);
	entry->rows.len = entry->rows.maxlen = rows->len;
	entry->rows.cursor = 0;
	cache_bytes += bytes;
}

void
listing_cache_append_row(StringInfo rows, DecStr uid, int64 policy_id)
{
	appendBinaryStringInfo(rows, (char *) &policy_id, sizeof(policy_id));
	appendBinaryStringInfo(rows, (char *) &uid.len, sizeof(uid.len));
	appendBinaryStringInfo(rows, uid.ptr, uid.len);
}

bool
listing_cache_next_row(const StringInfoData *rows, int *offset, DecStr *uid, int64 *policy_id)
{
	if (*offset >= rows->len)
		return false;
	memcpy(policy_id, rows->data + *offset, sizeof(*policy_id));
	memcpy(&uid->len, rows->data + *offset + sizeof(*policy_id), sizeof(uid->len));
	uid->ptr = rows->data + *offset + sizeof(*policy_id) + sizeof(uid->len);
	*offset += sizeof(*policy_id) + sizeof(uid->len) + uid->len;
	return true;
}
