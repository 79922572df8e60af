/*
 * entity_store.c — per-backend cache of entities and their ancestor sets.
 *
 * An entity not cached yet is found in the shared image of its entities
 * version when there is one (entity_images.c), else fetched through the
 * primary key index, one at a time.  Rows (parents, attrs) and
 * the ancestor sets computed from them are cached in a hash table that lives
 * for one policy-set generation (any entity change moves the epoch, which
 * reloads the set) and is emptied when it outgrows decide.entity_cache_size
 * entries.  A uid with no row is cached too, as an entity with no parents.
 *
 * Consistency: rows are read with the latest snapshot, after checking that
 * the epoch under that same snapshot is still the policy set's.  If it is
 * not, the resolver reports it and the caller reloads, so a decision never
 * mixes entities of one epoch with policies of another.  An image holds the
 * rows of exactly the set's entities version.
 *
 * Ancestor sets are computed breadth-first with a visited list, so a cycle
 * (which the write-time checks refuse) still terminates, and their size is
 * capped at DECIDE_MAX_ANCESTORS.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "entity_image.h"
#include "entity_images.h"
#include "entity_store.h"
#include "stats.h"

int			decide_entity_cache_size = 100000;

/*
 * An entity and what its row holds, in one allocation in entity_context:
 * the struct, then parents, then attrs, then the characters of uid and of
 * each parent (each NUL-terminated).  It stays where it is while cached
 * (the hash table below moves its slots, never the entries).
 */
typedef struct EntityEntry
{
	DecStr		uid;			/* points into this allocation, or into the image */
	uint32		n_parents;
	DecStr	   *parents;
	Jsonb	   *attrs;			/* NULL: {} (no row, or empty) */
	DecStr	   *closure;		/* NULL until first needed */
	uint32		n_closure;
} EntityEntry;

/*
 * A slot of the entity cache (simplehash: open addressing, in one array):
 * 16 bytes, the entry and its uid's hash.
 */
typedef struct EntitySlot
{
	EntityEntry *entry;
	uint32		hash;
	char		status;
} EntitySlot;

#define SH_PREFIX entity_tab
#define SH_ELEMENT_TYPE EntitySlot
#define SH_KEY_TYPE EntityEntry *
#define SH_KEY entry
#define SH_HASH_KEY(tb, k) hash_bytes((const unsigned char *) (k)->uid.ptr, (int) (k)->uid.len)
#define SH_EQUAL(tb, a, b) \
	((a)->uid.len == (b)->uid.len && memcmp((a)->uid.ptr, (b)->uid.ptr, (a)->uid.len) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * Relations, snapshot and one index scan for fetching rows, opened on the
 * first miss of a resolve and closed at its end: each further miss of the
 * same resolve only rescans (a new scan would open the index, lock it and
 * allocate the ~27 kB of btree scan state again).
 */
typedef struct FetchScope
{
	bool		open;
	Relation	rel;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	Snapshot	snapshot;
	ScanKeyData key;			/* uid = probe, on the index's first column */
} FetchScope;

/*
 * Column numbers of parents and attrs in decide.entities, looked up once
 * per relation and checked against its descriptor on each use (an ALTER
 * could move them).
 */
static Oid	attnums_relid = InvalidOid;
static AttrNumber att_parents;
static AttrNumber att_attrs;

/* The probe's uid as text, reused (grown when too small) across probes. */
static text *probe = NULL;
static Size probe_capacity = 0;

static MemoryContext entity_context = NULL;
static entity_tab_hash *entity_cache = NULL;

/* The shared image of this resolve's entities version, or NULL (entity_images.c). */
static const void *entity_image = NULL;
static uint64 entity_cache_generation = 0;

/*
 * The entities version the cache was filled under; all zeros when it must
 * not outlive its policy set (version unknown, or filled under this
 * transaction's own changes, which may roll back).
 */
static pg_uuid_t entity_cache_version;

/*
 * Entries and ancestor sets are carved out of blocks of entity_context in
 * turn (they are only ever freed all together, by a reset), without the
 * chunk header and the rounding up to a power of two of each palloc: a new
 * backend fills the cache from fresh memory, a page fault every 4 kB.
 */
#define ENTITY_BLOCK_SIZE (64 * 1024)
static char *block_free = NULL;
static char *block_end = NULL;

static void *
entity_alloc(Size size)
{
	char	   *p;

	size = MAXALIGN(size);
	if ((Size) (block_end - block_free) < size)
	{
		Size		block = Max(size, ENTITY_BLOCK_SIZE);

		block_free = MemoryContextAlloc(entity_context, block);
		block_end = block_free + block;
	}
	p = block_free;
	block_free += size;
	return p;
}

void
entity_store_define_gucs(void)
{
	DefineCustomIntVariable("decide.entity_cache_size",
							"Entities (with their ancestor sets) each backend keeps cached.",
							"When full, the cache is emptied and refilled on demand.",
							&decide_entity_cache_size,
							100000, 16, INT_MAX / 2,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}

/* Makes sure the cache belongs to this policy set and has room. */
static void
prepare_cache(const PolicySet *set)
{
	bool		reusable = policy_set_entities_shareable(set);

	if (entity_cache != NULL &&
		entity_cache->members < (uint32) decide_entity_cache_size &&
		(entity_cache_generation == set->generation ||
		 (reusable &&
		  memcmp(&entity_cache_version, &set->entities_version, sizeof(pg_uuid_t)) == 0)))
	{
		entity_cache_generation = set->generation;
		return;
	}

	if (entity_context == NULL)
		entity_context = AllocSetContextCreate(TopMemoryContext, "decide entity cache",
											   ALLOCSET_DEFAULT_SIZES);
	entity_cache = NULL;
	MemoryContextReset(entity_context);
	block_free = block_end = NULL;

	entity_cache = entity_tab_create(entity_context, 1024, NULL);
	entity_cache_generation = set->generation;
	if (reusable)
		entity_cache_version = set->entities_version;
	else
		memset(&entity_cache_version, 0, sizeof(pg_uuid_t));
}

/*
 * The snapshot under which the epoch was last checked for this set: while
 * no transaction has completed since (PostgreSQL counts completions, and a
 * snapshot records the count it was taken at), a newer snapshot sees the
 * same rows, so the check need not read the epoch row again.
 */
static uint64 checked_generation = 0;
static uint64 checked_completion_count = 0;

/* Whether attnum is still the live column called name of rel. */
static bool
attnum_is(Relation rel, AttrNumber attnum, const char *name)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Form_pg_attribute att;

	if (attnums_relid != RelationGetRelid(rel) || attnum < 1 || attnum > desc->natts)
		return false;
	att = TupleDescAttr(desc, attnum - 1);
	return !att->attisdropped && strcmp(NameStr(att->attname), name) == 0;
}

static bool
open_scope(FetchScope *scope, const PolicySet *set)
{
	const DecideCatalog *catalog = policy_set_catalog();

	scope->snapshot = RegisterSnapshot(GetLatestSnapshot());
	if (set->includes_own_changes || checked_generation != set->generation ||
		checked_completion_count != scope->snapshot->snapXactCompletionCount)
	{
		if (policy_set_read_epoch(scope->snapshot, NULL, NULL, NULL, NULL) != set->epoch)
		{
			UnregisterSnapshot(scope->snapshot);
			policy_set_mark_stale();
			checked_generation = 0;
			return false;
		}
		checked_generation = set->includes_own_changes ? 0 : set->generation;
		checked_completion_count = scope->snapshot->snapXactCompletionCount;
	}
	scope->rel = table_open(catalog->entities, AccessShareLock);
	scope->index = index_open(catalog->entities_pkey, AccessShareLock);
	if (!attnum_is(scope->rel, att_parents, "parents") ||
		!attnum_is(scope->rel, att_attrs, "attrs"))
	{
		attnums_relid = InvalidOid;
		att_parents = get_attnum(catalog->entities, "parents");
		att_attrs = get_attnum(catalog->entities, "attrs");
		if (att_parents == InvalidAttrNumber || att_attrs == InvalidAttrNumber)
			elog(ERROR, "decide.entities has no column parents or attrs");
		attnums_relid = catalog->entities;
	}
	scope->slot = table_slot_create(scope->rel, NULL);
	scope->scan = index_beginscan(scope->rel, scope->index, scope->snapshot, 1, 0);
	/* as systable_beginscan does: the key is on the index's column 1 */
	ScanKeyInit(&scope->key, 1, BTEqualStrategyNumber, F_TEXTEQ, (Datum) 0);
	scope->key.sk_collation = scope->index->rd_indcollation[0];
	scope->open = true;
	return true;
}

static void
close_scope(FetchScope *scope)
{
	if (!scope->open)
		return;
	index_endscan(scope->scan);
	ExecDropSingleTupleTableSlot(scope->slot);
	index_close(scope->index, AccessShareLock);
	table_close(scope->rel, AccessShareLock);
	UnregisterSnapshot(scope->snapshot);
	scope->open = false;
}

/* Makes the probe text hold uid. */
static void
set_probe(DecStr uid)
{
	Size		need = VARHDRSZ + uid.len;

	if (need > probe_capacity)
	{
		Size		capacity = Max(need, 256);

		if (probe != NULL)
			pfree(probe);
		probe = MemoryContextAlloc(TopMemoryContext, capacity);
		probe_capacity = capacity;
	}
	SET_VARSIZE(probe, need);
	memcpy(VARDATA(probe), uid.ptr, uid.len);
}

/* Copies len bytes and a NUL to *cursor, and moves it on. */
static DecStr
place_string(char **cursor, const char *ptr, uint32 len)
{
	DecStr		s;

	memcpy(*cursor, ptr, len);
	(*cursor)[len] = '\0';
	s.ptr = *cursor;
	s.len = len;
	*cursor += len + 1;
	return s;
}

/*
 * Finds an entity, fetching its row on a miss.  Returns NULL only when the
 * epoch moved (the scope could not be opened).
 */
static EntityEntry *
lookup_entity(FetchScope *scope, const PolicySet *set, DecStr uid)
{
	uint32		hash = hash_bytes((const unsigned char *) uid.ptr, (int) uid.len);
	EntitySlot *slot;
	EntityEntry probe_entry;
	EntityEntry *entry;
	bool		found;
	DecStr	   *parents = NULL;
	uint32		n_parents = 0;
	Jsonb	   *attrs = NULL;
	Size		chars = uid.len + 1;
	Size		size;
	char	   *cursor;
	uint32		i;

	probe_entry.uid = uid;
	slot = entity_tab_lookup_hash(entity_cache, &probe_entry, hash);
	if (slot)
		return slot->entry;

	stats_count(STAT_ENTITY_FETCHES, 1);
	if (entity_image != NULL)
	{
		/* Every row of this entities version is there: not found, no row. */
		DecEntityView view;

		if (dec_entity_image_find(entity_image, uid.ptr, uid.len, &view))
		{
			/*
			 * Read where it lies: the cache is emptied when the entities
			 * version changes, before the image of the old one is let go.
			 */
			size = MAXALIGN(sizeof(EntityEntry)) + sizeof(DecStr) * view.n_parents;
			entry = entity_alloc(size);
			entry->uid = view.uid;
			entry->n_parents = view.n_parents;
			entry->parents = view.n_parents > 0 ?
				(DecStr *) ((char *) entry + MAXALIGN(sizeof(EntityEntry))) : NULL;
			for (i = 0; i < view.n_parents; i++)
				entry->parents[i] = dec_entity_image_parent(entity_image, &view, i);
			entry->attrs = (Jsonb *) view.attrs;
			entry->closure = NULL;
			entry->n_closure = 0;
			slot = entity_tab_insert_hash(entity_cache, entry, hash, &found);
			Assert(!found);
			return entry;
		}
		goto keep;
	}

	if (!scope->open && !open_scope(scope, set))
		return NULL;

	set_probe(uid);
	scope->key.sk_argument = PointerGetDatum(probe);
	index_rescan(scope->scan, &scope->key, 1, NULL, 0);
	if (index_getnext_slot(scope->scan, ForwardScanDirection, scope->slot))
	{
		bool		isnull;
		Datum		value;

		value = slot_getattr(scope->slot, att_parents, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			bool	   *elem_nulls;
			int			n_elems;
			int			e;

			deconstruct_array(DatumGetArrayTypeP(value), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &elem_nulls, &n_elems);
			parents = palloc(sizeof(DecStr) * Max(n_elems, 1));
			for (e = 0; e < n_elems; e++)
				if (!elem_nulls[e])
				{
					const char *parent = DatumGetPointer(elems[e]);

					parents[n_parents].ptr = VARDATA_ANY(parent);
					parents[n_parents].len = VARSIZE_ANY_EXHDR(parent);
					chars += parents[n_parents++].len + 1;
				}
		}
		value = slot_getattr(scope->slot, att_attrs, &isnull);
		if (!isnull)
		{
			attrs = DatumGetJsonbP(value);
			if (JsonContainerSize(&attrs->root) == 0)
				attrs = NULL;
		}
	}

keep:
	/* everything the cache keeps of this entity, in one allocation */
	size = MAXALIGN(sizeof(EntityEntry)) + MAXALIGN(sizeof(DecStr) * n_parents) +
		(attrs ? MAXALIGN(VARSIZE(attrs)) : 0) + chars;
	cursor = entity_alloc(size);
	entry = (EntityEntry *) cursor;
	cursor += MAXALIGN(sizeof(EntityEntry));
	entry->parents = n_parents > 0 ? (DecStr *) cursor : NULL;
	cursor += MAXALIGN(sizeof(DecStr) * n_parents);
	if (attrs)
	{
		memcpy(cursor, attrs, VARSIZE(attrs));
		entry->attrs = (Jsonb *) cursor;
		cursor += MAXALIGN(VARSIZE(attrs));
	}
	else
		entry->attrs = NULL;
	entry->n_parents = n_parents;
	for (i = 0; i < n_parents; i++)
		entry->parents[i] = place_string(&cursor, parents[i].ptr, parents[i].len);
	uid = place_string(&cursor, uid.ptr, uid.len);
	Assert(cursor == (char *) entry + size);
	if (scope->open && !TTS_EMPTY(scope->slot))
		ExecClearTuple(scope->slot);
	entry->uid = uid;
	entry->closure = NULL;
	entry->n_closure = 0;

	slot = entity_tab_insert_hash(entity_cache, entry, hash, &found);
	Assert(!found);
	return entry;
}

/* Room for an ancestor set being computed (compute_closure). */
static DecStr *closure_scratch = NULL;

/* Breadth-first ancestor set of an entity, cached on its entry. */
static bool
compute_closure(FetchScope *scope, const PolicySet *set, EntityEntry *entry)
{
	DecStr	   *closure;
	uint32		n = 1;
	uint32		i;

	/* kept per backend: 16 kB, which palloc would malloc and free each time */
	if (closure_scratch == NULL)
		closure_scratch = MemoryContextAlloc(TopMemoryContext,
											 sizeof(DecStr) * DECIDE_MAX_ANCESTORS);
	closure = closure_scratch;
	closure[0] = entry->uid;
	for (i = 0; i < n; i++)
	{
		EntityEntry *node = i == 0 ? entry : lookup_entity(scope, set, closure[i]);
		uint32		p;

		if (node == NULL)
			return false;
		for (p = 0; p < node->n_parents; p++)
		{
			const DecStr *parent = &node->parents[p];
			uint32		seen;

			for (seen = 0; seen < n; seen++)
				if (closure[seen].len == parent->len &&
					memcmp(closure[seen].ptr, parent->ptr, parent->len) == 0)
					break;
			if (seen < n)
				continue;
			if (n == DECIDE_MAX_ANCESTORS)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("entity \"%.*s\" has more than %d ancestors",
								(int) entry->uid.len, entry->uid.ptr, DECIDE_MAX_ANCESTORS - 1),
						 errhint("Flatten the hierarchy in decide.entities.")));
			closure[n++] = *parent;
		}
	}
	entry->closure = entity_alloc(sizeof(DecStr) * n);
	memcpy(entry->closure, closure, sizeof(DecStr) * n);
	entry->n_closure = n;
	return true;
}

bool
entity_store_resolve(const PolicySet *set, const DecStr *uids, int n, EntityInfo *out)
{
	FetchScope	scope = {0};
	bool		ok = true;
	int			i;

	prepare_cache(set);
	entity_image = entity_images_get(set);
	for (i = 0; i < n && ok; i++)
	{
		EntityEntry *entry = lookup_entity(&scope, set, uids[i]);

		ok = entry != NULL && (entry->closure != NULL || compute_closure(&scope, set, entry));
		if (ok)
		{
			out[i].closure.uids = entry->closure;
			out[i].closure.count = entry->n_closure;
			out[i].attrs = entry->attrs;
		}
	}
	close_scope(&scope);
	return ok;
}
