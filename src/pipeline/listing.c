/*
 * listing.c — authorized listing: every entity that a request with one part
 * left free allows (decide_resources: what an actor may act on;
 * decide_actors: who may act on a resource), in uid order, in keyset pages.
 *
 * Plan.  With two parts of the request fixed, the policies that can decide
 * are those whose two other patterns match them; in rank order (priority,
 * deny first, id) the first whose free pattern matches the candidate (the
 * entity or an ancestor) and whose condition holds decides, as in the
 * evaluator (evaluator.h).  The plan keeps them with what is known before
 * any candidate is seen: a condition that does not read the free entity is
 * evaluated once (an allow it fails is dropped, a deny it passes becomes
 * unconditional); one that reads only some of the free entity's attribute
 * keys is evaluated once per distinct value of those keys; others once per
 * candidate.  An unconditional deny whose free pattern is all stars ends
 * the plan: nothing below it can decide.
 *
 * Candidates.  Only an allow can make a request allowed, so the candidates
 * are what the plan's allows reach through their free pattern:
 *   - all stars: every entity.  Entities are read in uid order from their
 *     primary key, from the page's start, until the page is full;
 *   - a uid: that entity and its descendants; a glob: the uids it matches
 *     (entities, and parents that have no row) and their descendants,
 *     walked down decide.entity_links.  The walked entities are then read
 *     one by one when they are few, else by a range read of the entities
 *     that keeps only them.
 * Each candidate is decided with the plan; the ancestor matches are worked
 * out once per distinct parents array.  sql/listing.sql checks, over random
 * hierarchies and policies, that listings equal what decide() allows.
 *
 * Consistency: one listing reads under one policy set, with a snapshot under
 * which the epoch is the set's (as entity_store.c does); when the epoch
 * moves during a listing, it starts over under the new set.
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "storage/bufmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "bytes_table.h"
#include "condition.h"
#include "entity_image.h"
#include "entity_images.h"
#include "entity_store.h"
#include "input.h"
#include "listing.h"
#include "listing_cache.h"
#include "stats.h"
#include "uid.h"

/* Columns of decide.entities and decide.entity_links (created in this order). */
#define ENTITY_UID 1
#define ENTITY_PARENTS 2
#define ENTITY_ATTRS 3
#define LINK_PARENT 1
#define LINK_CHILD 2

/* Walked candidates beyond this share of all entities: read the range. */
#define PROBE_SHARE 8

typedef enum FreeMatch
{
	FREE_UID,					/* the pattern is a uid */
	FREE_GLOB,
	FREE_ANY					/* only stars */
} FreeMatch;

typedef enum PlanCondition
{
	PLAN_ALWAYS,				/* no condition, or one known to hold */
	PLAN_BY_KEYS,				/* reads only some attribute keys of the free entity */
	PLAN_EACH					/* reads the free entity otherwise */
} PlanCondition;

typedef struct PlanPolicy
{
	const PolicyInfo *info;
	FreeMatch	match;
	DecStr		pattern;		/* in the free part */
	PlanCondition condition;
	ConditionEntityReads reads; /* PLAN_BY_KEYS */
} PlanPolicy;

typedef struct AncestorEntry
{
	BytesKey	key;			/* a parents array, as stored */
	uint64	   *matched;		/* bit i: some ancestor matches plan policy i */
} AncestorEntry;

/*
 * The last few values a condition by keys read, and its answers: most
 * attributes take few values, found here without hashing.
 */
#define RECENT_VALUES 4
#define RECENT_VALUE_BYTES 48

typedef struct RecentValues
{
	int			n;
	int			next;			/* the one to replace */
	uint32		len[RECENT_VALUES];
	char		bytes[RECENT_VALUES][RECENT_VALUE_BYTES];
	DecConditionResult result[RECENT_VALUES];
} RecentValues;

static void
remember_value(RecentValues *recent, const StringInfoData *key, DecConditionResult result)
{
	int			k = recent->n < RECENT_VALUES ? recent->n++ : recent->next;

	if (key->len > RECENT_VALUE_BYTES)
		return;
	recent->next = (k + 1) % RECENT_VALUES;
	recent->len[k] = key->len;
	memcpy(recent->bytes[k], key->data, key->len);
	recent->result[k] = result;
}

typedef struct MemoEntry
{
	BytesKey	key;			/* plan policy, then the values it reads */
	DecConditionResult result;
} MemoEntry;

typedef struct Listing
{
	const ListingRequest *request;
	const PolicySet *set;
	Snapshot	snapshot;
	Relation	entities;
	Relation	links;
	const void *image;			/* the entities' shared image, or NULL: the table */
	MemoryContext row_context;	/* reset for every candidate */

	PlanPolicy *plan;
	int			n_plan;
	int			plan_words;		/* of the ancestor bit sets */
	uint64	   *direct;			/* bit i: plan policy i may match a candidate's own uid */
	bool		reaches_everything;
	List	   *reach_uids;		/* const char *: allows' uid patterns */
	List	   *reach_globs;	/* const char *: allows' glob patterns */
	ConditionRequest fixed;		/* the bound parts, for conditions */
	HTAB	   *ancestors;
	HTAB	   *memo;
	StringInfoData memo_key;	/* reused for every lookup */
	uint8	  **by_attrs;		/* per plan policy, once needed: its condition's
								 * result + 1 per attrs_id of the image; 0:
								 * not known yet */
	RecentValues *recent_values;	/* per plan policy */

	ListingEmitFn emit;			/* the allowed, in uid order */
	void	   *emit_arg;
	int64		found;
	StringInfoData cached_rows; /* the same, for the listing cache */
	bool		time_dependent; /* a condition read $now: not cached */
} Listing;

/* One candidate, as read from decide.entities. */
typedef struct CandidateRow
{
	DecStr		uid;
	ArrayType  *parents;		/* read from the table; NULL: from the image */
	DecEntityView view;			/* read from the image */
	Jsonb	   *attrs;			/* NULL: {} */
	bool		from_image;		/* view is the image's (attrs_id 0 if no row) */
} CandidateRow;

static const char *const entity_names[DEC_NDIMS] = {"actor", NULL, "resource"};

static HTAB *
bytes_table(const char *name, Size entry_size)
{
	return bytes_table_create(name, entry_size, 256, CurrentMemoryContext);
}

static int
uid_compare(DecStr a, DecStr b)
{
	return dec_uid_compare(a.ptr, a.len, b.ptr, b.len);
}

static int
uid_qsort_compare(const void *a, const void *b)
{
	return uid_compare(*(const DecStr *) a, *(const DecStr *) b);
}

static bool
starts_with(DecStr s, DecStr prefix)
{
	return s.len >= prefix.len && memcmp(s.ptr, prefix.ptr, prefix.len) == 0;
}

/* Is the uid within the page's bounds: the prefix, after the cursor? */
static bool
within_bounds(const ListingRequest *request, DecStr uid)
{
	return starts_with(uid, request->prefix) &&
		(!request->has_after || uid_compare(uid, request->after) > 0);
}

static bool
page_full(const Listing *listing)
{
	return listing->request->page_size >= 0 && listing->found >= listing->request->page_size;
}

static DecStr
copy_str(const char *ptr, uint32 len)
{
	DecStr		s = {pnstrdup(ptr, len), len};

	return s;
}

/*
 * One index scan on a text key (the index's first column), in its order,
 * started again for each key it is given (index_rescan): the probes of a
 * listing, one per entity or parent, do not each set up a scan of their
 * own.
 */
typedef struct KeyScan
{
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData key;
} KeyScan;

static void
key_scan_open(KeyScan *ks, Relation heap, Oid index, Snapshot snapshot)
{
	ks->index = index_open(index, AccessShareLock);
	ks->slot = table_slot_create(heap, NULL);
	ks->scan = index_beginscan(heap, ks->index, snapshot, 1, 0);
}

/* Rows whose key equals the given one (exact), or is at least it (the
 * caller stops where its range ends). */
static void
key_scan_start(KeyScan *ks, DecStr key, bool exact)
{
	ScanKeyInit(&ks->key, 1, exact ? BTEqualStrategyNumber : BTGreaterEqualStrategyNumber,
				exact ? F_TEXTEQ : F_TEXT_GE,
				PointerGetDatum(cstring_to_text_with_len(key.ptr, key.len)));
	index_rescan(ks->scan, &ks->key, 1, NULL, 0);
}

/* The next row, valid until the next call; NULL at the end. */
static HeapTuple
key_scan_next(KeyScan *ks)
{
	bool		should_free;

	if (!index_getnext_slot(ks->scan, ForwardScanDirection, ks->slot))
		return NULL;
	return ExecFetchSlotHeapTuple(ks->slot, false, &should_free);
}

static void
key_scan_close(KeyScan *ks)
{
	index_endscan(ks->scan);
	ExecDropSingleTupleTableSlot(ks->slot);
	index_close(ks->index, AccessShareLock);
}

/* ---- the plan ---- */

static bool
pattern_is_all_stars(const char *pattern)
{
	for (; *pattern; pattern++)
		if (*pattern != '*')
			return false;
	return true;
}

/*
 * Could the policy's free pattern match a uid that starts with the prefix?
 * Every match starts with the pattern's literal bytes, so not unless one of
 * the two starts with the other.
 */
static bool
pattern_may_match_prefix(const PlanPolicy *policy, DecStr prefix)
{
	size_t		literal = policy->match == FREE_UID ? policy->pattern.len :
		dec_glob_literal_prefix(policy->pattern.ptr, policy->pattern.len);
	size_t		common = Min(literal, prefix.len);

	if (policy->match == FREE_UID && literal < prefix.len)
		return false;
	return memcmp(policy->pattern.ptr, prefix.ptr, common) == 0;
}

/*
 * Builds the plan from the policies whose two bound patterns match.  False
 * if the epoch moved.
 */
static bool
build_plan(Listing *listing)
{
	const ListingRequest *request = listing->request;
	const PolicySet *set = listing->set;
	DecDim		free_dim = request->free_dim;
	const char *free_entity = entity_names[free_dim];
	DecStr		bound_uids[2];
	int			bound_dims[2];
	EntityInfo	bound[2];
	DecRequest	partial;
	uint32		n = dec_policy_count(set->compiled);
	uint32		rank;
	int			b = 0;
	int			d;

	for (d = 0; d < DEC_NDIMS; d++)
		if (d != (int) free_dim)
		{
			bound_dims[b] = d;
			bound_uids[b++] = request->uid[d];
		}
	if (!entity_store_resolve(set, bound_uids, 2, bound))
		return false;
	memset(&partial, 0, sizeof(partial));
	for (b = 0; b < 2; b++)
		partial.dim[bound_dims[b]] = bound[b].closure;

	/* The bound parts of the condition document (attrs copied: the entity
	 * cache may be emptied while the listing runs). */
	memset(&listing->fixed, 0, sizeof(listing->fixed));
	listing->fixed.actor = request->uid[DEC_ACTOR];
	listing->fixed.action = request->uid[DEC_ACTION];
	listing->fixed.resource = request->uid[DEC_RESOURCE];
	listing->fixed.context = request->context;
	for (b = 0; b < 2; b++)
	{
		Jsonb	   *attrs = bound[b].attrs ? palloc(VARSIZE(bound[b].attrs)) : NULL;

		if (attrs)
			memcpy(attrs, bound[b].attrs, VARSIZE(bound[b].attrs));
		if (bound_dims[b] == DEC_ACTOR)
			listing->fixed.actor_attrs = attrs;
		else if (bound_dims[b] == DEC_RESOURCE)
			listing->fixed.resource_attrs = attrs;
	}

	listing->plan = palloc(sizeof(PlanPolicy) * Max(n, 1));
	listing->n_plan = 0;
	for (rank = 0; rank < n; rank++)
	{
		uint32		index = dec_policy_at_rank(set->compiled, rank);
		const PolicyInfo *info = &set->policies[index];
		PlanPolicy *policy = &listing->plan[listing->n_plan];
		const char *pattern = policy_pattern(set, info, free_dim);
		bool		matched[DEC_NDIMS];
		JsonPath   *condition = policy_condition(set, info);

		if ((rank & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		dec_match_patterns(set->compiled, index, &partial, matched);
		if (!matched[bound_dims[0]] || !matched[bound_dims[1]])
			continue;

		policy->info = info;
		policy->pattern.ptr = pattern;
		policy->pattern.len = strlen(pattern);
		policy->match = pattern_is_all_stars(pattern) ? FREE_ANY :
			dec_is_glob(pattern, policy->pattern.len) ? FREE_GLOB : FREE_UID;
		policy->condition = PLAN_ALWAYS;
		if (condition)
		{
			condition_entity_reads(condition, free_entity, &policy->reads);
			if (policy->reads.use == CONDITION_IGNORES_ENTITY)
			{
				ConditionRequest document = listing->fixed;
				DecConditionResult result;

				/* The free entity is not read: any stands in for it. */
				document.resource_attrs = free_dim == DEC_RESOURCE ? NULL : document.resource_attrs;
				document.actor_attrs = free_dim == DEC_ACTOR ? NULL : document.actor_attrs;
				result = condition_evaluate(condition, info->condition_traits, &document);
				if (info->condition_traits.uses_now)
					listing->time_dependent = true;
				if (result == DEC_COND_UNKNOWN)
					stats_count(STAT_CONDITION_FAILURES, 1);
				/* An allow decides only when it holds; a deny unless it is false. */
				if (info->effect == DEC_ALLOW ? result != DEC_COND_TRUE : result == DEC_COND_FALSE)
					continue;
			}
			else
				policy->condition = policy->reads.use == CONDITION_READS_ATTR_KEYS ?
					PLAN_BY_KEYS : PLAN_EACH;
		}
		listing->n_plan++;

		if (info->effect == DEC_DENY)
		{
			if (policy->match == FREE_ANY && policy->condition == PLAN_ALWAYS)
				break;			/* it decides every candidate it outranks */
			continue;
		}
		if (policy->match == FREE_ANY)
			listing->reaches_everything = true;
		else if (policy->match == FREE_GLOB)
			listing->reach_globs = lappend(listing->reach_globs, (void *) pattern);
		else
			listing->reach_uids = lappend(listing->reach_uids, (void *) pattern);
	}
	listing->plan_words = (listing->n_plan + 63) / 64;
	listing->direct = palloc0(sizeof(uint64) * Max(listing->plan_words, 1));
	for (rank = 0; rank < (uint32) listing->n_plan; rank++)
		if (pattern_may_match_prefix(&listing->plan[rank], request->prefix))
			listing->direct[rank / 64] |= UINT64CONST(1) << (rank % 64);
	listing->ancestors = bytes_table("decide listing ancestors", sizeof(AncestorEntry));
	listing->memo = bytes_table("decide listing conditions", sizeof(MemoEntry));
	initStringInfo(&listing->memo_key);
	listing->recent_values = palloc0(sizeof(RecentValues) * Max(listing->n_plan, 1));
	return true;
}

static bool
free_pattern_matches(const PlanPolicy *policy, DecStr uid)
{
	switch (policy->match)
	{
		case FREE_ANY:
			return true;
		case FREE_UID:
			return uid.len == policy->pattern.len && memcmp(uid.ptr, policy->pattern.ptr, uid.len) == 0;
		default:
			return dec_glob_match(policy->pattern.ptr, policy->pattern.len, uid.ptr, uid.len,
								  policy_set_char_len);
	}
}

/* Which plan policies some uid of the closure (ancestors) matches: a bit set. */
static uint64 *
closure_matches(const Listing *listing, const DecStr *closure, int n_closure,
				MemoryContext context)
{
	uint64	   *matched = MemoryContextAllocZero(context,
												 sizeof(uint64) * Max(listing->plan_words, 1));
	int			i;
	int			p;

	for (i = 0; i < listing->n_plan; i++)
	{
		const PlanPolicy *policy = &listing->plan[i];

		if (policy->match == FREE_ANY)
			continue;
		for (p = 0; p < n_closure; p++)
			if (free_pattern_matches(policy, closure[p]))
			{
				matched[i / 64] |= UINT64CONST(1) << (i % 64);
				break;
			}
	}
	return matched;
}

/*
 * Which plan policies some ancestor of a candidate matches, worked out once
 * per distinct parent list (the parents array as stored, or the image's
 * name for the list).  NULL if the epoch moved.
 */
static const uint64 *
ancestor_matches(Listing *listing, const CandidateRow *row)
{
	DecStr		uid = row->uid;
	BytesKey	key;
	AncestorEntry *entry;
	bool		found;
	int			n;
	DecStr	   *uids;
	EntityInfo *infos;
	DecStr	   *closure;
	int			n_closure = 0;
	uint64	   *matched;
	int			i;
	int			p;

	if (row->parents)
	{
		key.ptr = VARDATA(row->parents);
		key.len = VARSIZE(row->parents) - VARHDRSZ;
	}
	else
	{
		key.ptr = (const char *) &row->view.parents_id;
		key.len = sizeof(row->view.parents_id);
	}
	entry = hash_search(listing->ancestors, &key, HASH_FIND, NULL);
	if (entry)
		return entry->matched;

	if (row->parents)
	{
		Datum	   *elems;
		bool	   *nulls;

		deconstruct_array(row->parents, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		uids = palloc(sizeof(DecStr) * Max(n, 1));
		for (i = 0; i < n; i++)
			uids[i] = decide_text_str(DatumGetTextPP(elems[i]));
	}
	else
	{
		n = row->view.n_parents;
		uids = palloc(sizeof(DecStr) * Max(n, 1));
		for (i = 0; i < n; i++)
			uids[i] = dec_entity_image_parent(listing->image, &row->view, i);
	}
	infos = palloc(sizeof(EntityInfo) * Max(n, 1));
	if (n > 0 && !entity_store_resolve(listing->set, uids, n, infos))
		return NULL;

	/* The union of the parents' closures: the entity's ancestors. */
	closure = palloc(sizeof(DecStr) * DECIDE_MAX_ANCESTORS);
	for (p = 0; p < n; p++)
	{
		uint32		a;

		for (a = 0; a < infos[p].closure.count; a++)
		{
			DecStr		ancestor = infos[p].closure.uids[a];
			int			seen;

			for (seen = 0; seen < n_closure; seen++)
				if (closure[seen].len == ancestor.len &&
					memcmp(closure[seen].ptr, ancestor.ptr, ancestor.len) == 0)
					break;
			if (seen < n_closure)
				continue;
			if (n_closure == DECIDE_MAX_ANCESTORS - 1)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("entity \"%.*s\" has more than %d ancestors",
								(int) uid.len, uid.ptr, DECIDE_MAX_ANCESTORS - 1),
						 errhint("Flatten the hierarchy in decide.entities.")));
			closure[n_closure++] = ancestor;
		}
	}

	matched = closure_matches(listing, closure, n_closure, GetMemoryChunkContext(listing->plan));
	{
		char	   *owned = MemoryContextAlloc(GetMemoryChunkContext(listing->plan), key.len);

		memcpy(owned, key.ptr, key.len);
		key.ptr = owned;
	}
	entry = hash_search(listing->ancestors, &key, HASH_ENTER, &found);
	entry->key = key;
	entry->matched = matched;
	return matched;
}

/* A plan policy's condition on one candidate, remembered by what it reads. */
static DecConditionResult
condition_by_keys(Listing *listing, int i, const CandidateRow *row, ConditionRequest *document)
{
	const PlanPolicy *policy = &listing->plan[i];
	JsonPath   *condition = policy_condition(listing->set, policy->info);
	StringInfo	key = &listing->memo_key;
	MemoEntry  *entry = NULL;
	DecConditionResult result;
	bool		found;

	if (policy->condition == PLAN_BY_KEYS)
	{
		RecentValues *recent = &listing->recent_values[i];
		int			k;

		resetStringInfo(key);
		appendBinaryStringInfo(key, (char *) &i, sizeof(i));
		condition_append_reads(key, &policy->reads, row->attrs);
		for (k = 0; k < recent->n; k++)
			if (recent->len[k] == key->len && memcmp(recent->bytes[k], key->data, key->len) == 0)
				return recent->result[k];
		entry = hash_search(listing->memo, &(BytesKey) {key->data, key->len}, HASH_FIND, NULL);
		if (entry)
		{
			remember_value(recent, key, entry->result);
			return entry->result;
		}
	}
	result = condition_evaluate(condition, policy->info->condition_traits, document);
	if (policy->info->condition_traits.uses_now)
		listing->time_dependent = true;
	if (result == DEC_COND_UNKNOWN)
		stats_count(STAT_CONDITION_FAILURES, 1);
	if (policy->condition == PLAN_BY_KEYS)
	{
		BytesKey	owned;

		owned.ptr = MemoryContextAlloc(GetMemoryChunkContext(listing->plan), key->len);
		owned.len = key->len;
		memcpy((char *) owned.ptr, key->data, key->len);
		entry = hash_search(listing->memo, &owned, HASH_ENTER, &found);
		entry->key = owned;
		entry->result = result;
		remember_value(&listing->recent_values[i], key, result);
	}
	return result;
}

/*
 * The same, first looked up by the image's attributes: candidates with the
 * same attributes share them there (attrs_id), and a condition that reads
 * only attribute keys answers them alike.
 */
static DecConditionResult
candidate_condition(Listing *listing, int i, const CandidateRow *row, ConditionRequest *document)
{
	uint8	   *known;

	if (listing->plan[i].condition != PLAN_BY_KEYS || !row->from_image)
		return condition_by_keys(listing, i, row, document);
	if (listing->by_attrs == NULL)
		listing->by_attrs = MemoryContextAllocZero(GetMemoryChunkContext(listing->plan),
												   sizeof(uint8 *) * listing->n_plan);
	known = listing->by_attrs[i];
	if (known == NULL)
		known = listing->by_attrs[i] =
			MemoryContextAllocZero(GetMemoryChunkContext(listing->plan),
								   dec_entity_image_attrs_count(listing->image) + 1);
	if (known[row->view.attrs_id] == 0)
		known[row->view.attrs_id] = 1 + condition_by_keys(listing, i, row, document);
	return known[row->view.attrs_id] - 1;
}

/*
 * The plan policy that decides a candidate whose ancestors match the plan
 * policies in the bit set, or NULL: none does (denied).  Only policies that
 * an ancestor matches, or that may match the candidate's own uid, are
 * looked at, in rank order.
 */
static const PolicyInfo *
plan_decide(Listing *listing, const CandidateRow *row, const uint64 *ancestors)
{
	ConditionRequest document = listing->fixed;
	int			w;

	if (listing->request->free_dim == DEC_RESOURCE)
	{
		document.resource = row->uid;
		document.resource_attrs = row->attrs;
	}
	else
	{
		document.actor = row->uid;
		document.actor_attrs = row->attrs;
	}
	for (w = 0; w < listing->plan_words; w++)
	{
		uint64		bits = ancestors[w] | listing->direct[w];

		while (bits != 0)
		{
			int			i = w * 64 + pg_rightmost_one_pos64(bits);
			const PlanPolicy *policy = &listing->plan[i];
			DecConditionResult result = DEC_COND_TRUE;

			bits &= bits - 1;
			if (!(ancestors[w] & (UINT64CONST(1) << (i % 64))) &&
				!free_pattern_matches(policy, row->uid))
				continue;
			if (policy->condition != PLAN_ALWAYS)
				result = candidate_condition(listing, i, row, &document);
			if (result == DEC_COND_TRUE ||
				(result == DEC_COND_UNKNOWN && policy->info->effect == DEC_DENY))
				return policy->info;
		}
	}
	return NULL;
}

/*
 * Decides one candidate with the plan and keeps it if allowed.  False if
 * the epoch moved.
 */
static bool
decide_candidate(Listing *listing, const CandidateRow *row)
{
	const uint64 *ancestors;
	MemoryContext caller = MemoryContextSwitchTo(listing->row_context);
	const PolicyInfo *decided = NULL;

	stats_count(STAT_LISTING_CANDIDATES, 1);
	ancestors = ancestor_matches(listing, row);
	if (ancestors == NULL)
	{
		MemoryContextSwitchTo(caller);
		MemoryContextReset(listing->row_context);
		return false;
	}
	decided = plan_decide(listing, row, ancestors);
	if (decided && decided->effect == DEC_ALLOW)
	{
		listing->emit(row->uid, policy_name(listing->set, decided), listing->emit_arg);
		listing_cache_append_row(&listing->cached_rows, row->uid, decided->id);
		listing->found++;
	}
	MemoryContextSwitchTo(caller);
	/* the row itself may live here (detoasted): only now is it done with */
	MemoryContextReset(listing->row_context);
	return true;
}

/* Decides the candidate in an entity row.  False if the epoch moved. */
static bool
decide_row(Listing *listing, HeapTuple tuple)
{
	TupleDesc	desc = RelationGetDescr(listing->entities);
	CandidateRow row;
	bool		isnull;
	Datum		value;
	bool		ok;
	MemoryContext caller = MemoryContextSwitchTo(listing->row_context);

	row.uid = decide_text_str(DatumGetTextPP(heap_getattr(tuple, ENTITY_UID, desc, &isnull)));
	row.parents = DatumGetArrayTypeP(heap_getattr(tuple, ENTITY_PARENTS, desc, &isnull));
	Assert(row.parents != NULL);
	value = heap_getattr(tuple, ENTITY_ATTRS, desc, &isnull);
	row.attrs = isnull ? NULL : DatumGetJsonbP(value);
	row.from_image = false;
	if (row.attrs && JsonContainerSize(&row.attrs->root) == 0)
		row.attrs = NULL;
	MemoryContextSwitchTo(caller);
	ok = decide_candidate(listing, &row);
	return ok;
}

/* Decides the candidate at a place of the image.  False if the epoch moved. */
static bool
decide_image_row(Listing *listing, const DecEntityView *view)
{
	CandidateRow row;

	row.uid = view->uid;
	row.parents = NULL;
	row.view = *view;
	row.attrs = (Jsonb *) view->attrs;
	row.from_image = true;
	return decide_candidate(listing, &row);
}

/* ---- candidates ---- */

/* The entities in uid order from the page's start, until the page is full. */
static bool
list_range(Listing *listing)
{
	const ListingRequest *request = listing->request;
	DecStr		start = request->prefix;
	KeyScan		entities;
	HeapTuple	tuple;
	bool		ok = true;

	if (request->has_after && uid_compare(request->after, start) > 0)
		start = request->after;
	if (listing->image)
	{
		uint32		count = dec_entity_image_count(listing->image);
		uint32		i;

		for (i = dec_entity_image_lower_bound(listing->image, start.ptr, start.len);
			 i < count && !page_full(listing); i++)
		{
			DecEntityView view;

			if ((i & 255) == 0)
				CHECK_FOR_INTERRUPTS();
			dec_entity_image_at(listing->image, i, &view);
			if (!starts_with(view.uid, request->prefix))
				break;
			if (within_bounds(request, view.uid) && !decide_image_row(listing, &view))
				return false;
		}
		return true;
	}
	key_scan_open(&entities, listing->entities, policy_set_catalog()->entities_pkey,
				  listing->snapshot);
	key_scan_start(&entities, start, false);
	while (!page_full(listing) && (tuple = key_scan_next(&entities)) != NULL)
	{
		bool		isnull;
		DecStr		uid = decide_text_str(DatumGetTextPP(heap_getattr(tuple, ENTITY_UID,
																RelationGetDescr(listing->entities),
																&isnull)));

		CHECK_FOR_INTERRUPTS();
		if (!starts_with(uid, request->prefix))
			break;
		if (!within_bounds(request, uid))
			continue;
		if (!decide_row(listing, tuple))
		{
			ok = false;
			break;
		}
	}
	key_scan_close(&entities);
	return ok;
}

/* The uids reached from the plan's allows: roots, then what is under them. */
typedef struct Walk
{
	HTAB	   *seen;			/* every uid reached */
	DecStr	   *queue;			/* uids whose children are still to be read */
	int			queued;
	int			queue_size;
	DecStr	   *rows;			/* those that are entities */
	int			n_rows;
	int			rows_size;
} Walk;

static void
walk_add(Walk *walk, DecStr uid, bool is_row)
{
	BytesKey	key = {uid.ptr, uid.len};
	bool		found;

	(void) hash_search(walk->seen, &key, HASH_ENTER, &found);
	if (found)
		return;
	if (walk->queued == walk->queue_size)
	{
		walk->queue_size *= 2;
		walk->queue = repalloc_huge(walk->queue, sizeof(DecStr) * walk->queue_size);
	}
	walk->queue[walk->queued++] = uid;
	if (!is_row)
		return;
	if (walk->n_rows == walk->rows_size)
	{
		walk->rows_size *= 2;
		walk->rows = repalloc_huge(walk->rows, sizeof(DecStr) * walk->rows_size);
	}
	walk->rows[walk->n_rows++] = uid;
}

/*
 * The roots a glob reaches: the entities it matches, then the parents that
 * have no row (one probe per distinct parent: the links of a parent are
 * skipped by starting again after it).  False when they are more than
 * limit entities.
 */
static bool
walk_glob_roots(const Listing *listing, Walk *walk, const char *glob, double limit)
{
	const DecideCatalog *catalog = policy_set_catalog();
	size_t		glob_len = strlen(glob);
	DecStr		literal = {glob, (uint32) dec_glob_literal_prefix(glob, glob_len)};
	TupleDesc	desc = RelationGetDescr(listing->entities);
	HeapTuple	tuple;
	KeyScan		scan;
	DecStr		from = literal;

	if (listing->image)
	{
		uint32		count = dec_entity_image_count(listing->image);
		uint32		i;

		for (i = dec_entity_image_lower_bound(listing->image, literal.ptr, literal.len);
			 i < count && walk->n_rows <= limit; i++)
		{
			DecEntityView view;

			if ((i & 255) == 0)
				CHECK_FOR_INTERRUPTS();
			dec_entity_image_at(listing->image, i, &view);
			if (!starts_with(view.uid, literal))
				break;
			if (dec_glob_match(glob, glob_len, view.uid.ptr, view.uid.len, policy_set_char_len))
				walk_add(walk, view.uid, true);
		}
	}
	else
	{
		key_scan_open(&scan, listing->entities, catalog->entities_pkey, listing->snapshot);
		key_scan_start(&scan, literal, false);
		while (walk->n_rows <= limit && (tuple = key_scan_next(&scan)) != NULL)
		{
			bool		isnull;
			DecStr		uid = decide_text_str(DatumGetTextPP(heap_getattr(tuple, ENTITY_UID, desc, &isnull)));

			CHECK_FOR_INTERRUPTS();
			if (!starts_with(uid, literal))
				break;
			if (dec_glob_match(glob, glob_len, uid.ptr, uid.len, policy_set_char_len))
				walk_add(walk, copy_str(uid.ptr, uid.len), true);
		}
		key_scan_close(&scan);
	}
	if (walk->n_rows > limit)
		return false;

	key_scan_open(&scan, listing->links, catalog->entity_links_pkey, listing->snapshot);
	for (;;)
	{
		bool		isnull;
		DecStr		parent;
		char	   *after_parent;

		CHECK_FOR_INTERRUPTS();
		key_scan_start(&scan, from, false);
		tuple = key_scan_next(&scan);
		if (tuple == NULL)
			break;
		parent = decide_text_str(DatumGetTextPP(heap_getattr(tuple, LINK_PARENT,
													  RelationGetDescr(listing->links), &isnull)));
		if (!starts_with(parent, literal))
			break;
		parent = copy_str(parent.ptr, parent.len);
		if (dec_glob_match(glob, glob_len, parent.ptr, parent.len, policy_set_char_len))
			walk_add(walk, parent, false);
		/* The least key after every link of this parent: uids have no control characters. */
		after_parent = palloc(parent.len + 2);
		memcpy(after_parent, parent.ptr, parent.len);
		after_parent[parent.len] = '\x01';
		after_parent[parent.len + 1] = '\0';
		from.ptr = after_parent;
		from.len = parent.len + 1;
	}
	key_scan_close(&scan);
	return true;
}

static bool
entity_exists(const Listing *listing, DecStr uid)
{
	DecEntityView view;
	KeyScan		scan;
	bool		exists;

	if (listing->image)
		return dec_entity_image_find(listing->image, uid.ptr, uid.len, &view);
	key_scan_open(&scan, listing->entities, policy_set_catalog()->entities_pkey,
				  listing->snapshot);
	key_scan_start(&scan, uid, true);
	exists = key_scan_next(&scan) != NULL;
	key_scan_close(&scan);
	return exists;
}

/*
 * Walks down from the roots, until more than limit entities are reached:
 * false then (the caller reads the range instead).
 */
static bool
walk_down(const Listing *listing, Walk *walk, double limit)
{
	TupleDesc	desc = RelationGetDescr(listing->links);
	KeyScan		links;
	int			next;

	key_scan_open(&links, listing->links, policy_set_catalog()->entity_links_pkey,
				  listing->snapshot);
	for (next = 0; next < walk->queued && walk->n_rows <= limit; next++)
	{
		HeapTuple	tuple;

		CHECK_FOR_INTERRUPTS();
		key_scan_start(&links, walk->queue[next], true);
		while (walk->n_rows <= limit && (tuple = key_scan_next(&links)) != NULL)
		{
			bool		isnull;
			text	   *child = DatumGetTextPP(heap_getattr(tuple, LINK_CHILD, desc, &isnull));

			walk_add(walk, copy_str(VARDATA_ANY(child), VARSIZE_ANY_EXHDR(child)), true);
		}
	}
	key_scan_close(&links);
	return walk->n_rows <= limit;
}

/* Reads the entity rows of sorted uids one by one, deciding each. */
static bool
list_walked_rows(Listing *listing, const Walk *walk)
{
	KeyScan		entities;
	bool		ok = true;
	int			i;

	if (listing->image)
	{
		for (i = 0; i < walk->n_rows && ok && !page_full(listing); i++)
		{
			DecEntityView view;

			CHECK_FOR_INTERRUPTS();
			if (within_bounds(listing->request, walk->rows[i]) &&
				dec_entity_image_find(listing->image, walk->rows[i].ptr, walk->rows[i].len, &view))
				ok = decide_image_row(listing, &view);
		}
		return ok;
	}
	key_scan_open(&entities, listing->entities, policy_set_catalog()->entities_pkey,
				  listing->snapshot);
	for (i = 0; i < walk->n_rows && ok && !page_full(listing); i++)
	{
		HeapTuple	tuple;

		CHECK_FOR_INTERRUPTS();
		if (!within_bounds(listing->request, walk->rows[i]))
			continue;
		key_scan_start(&entities, walk->rows[i], true);
		if ((tuple = key_scan_next(&entities)) != NULL)
			ok = decide_row(listing, tuple);
	}
	key_scan_close(&entities);
	return ok;
}

/*
 * The entities the plan's uids and globs reach, and their descendants: when
 * they are few, read one by one; when they are many (an eighth of all
 * entities, or fewer for a page), by reading the range instead, where the
 * plan leaves those it does not reach denied.
 */
static bool
list_reached(Listing *listing)
{
	Walk		walk;
	ListCell   *cell;
	double		entities = listing->entities->rd_rel->reltuples;
	double		limit;

	/* Never analyzed: about 50 entity rows a page. */
	if (entities < 0)
		entities = 50.0 * RelationGetNumberOfBlocks(listing->entities);
	limit = entities / PROBE_SHARE;

	/*
	 * A page of p rows read from a range where the reached are R of N
	 * entities takes about p * N / R rows; the walk takes R.  Past
	 * sqrt(p * N) walked, the range is the cheaper.
	 */
	if (listing->request->page_size >= 0)
		limit = Min(limit, sqrt((double) Max(listing->request->page_size, 1) * entities));
	memset(&walk, 0, sizeof(walk));
	walk.seen = bytes_table("decide listing walk", sizeof(BytesKey));
	walk.queue_size = walk.rows_size = 256;
	walk.queue = palloc(sizeof(DecStr) * walk.queue_size);
	walk.rows = palloc(sizeof(DecStr) * walk.rows_size);
	foreach(cell, listing->reach_uids)
	{
		const char *uid = lfirst(cell);
		DecStr		root = {uid, (uint32) strlen(uid)};

		walk_add(&walk, root, entity_exists(listing, root));
	}
	foreach(cell, listing->reach_globs)
		if (!walk_glob_roots(listing, &walk, lfirst(cell), limit))
			break;
	if (walk.n_rows > limit || !walk_down(listing, &walk, limit))
	{
		hash_destroy(walk.seen);
		return list_range(listing);
	}
	qsort(walk.rows, walk.n_rows, sizeof(DecStr), uid_qsort_compare);
	return list_walked_rows(listing, &walk);
}

/* ---- a listing ---- */

static bool
open_listing(Listing *listing)
{
	const DecideCatalog *catalog = policy_set_catalog();

	if (!OidIsValid(catalog->entity_links))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("listing needs the decide 0.7.0 schema in this database"),
				 errhint("Run ALTER EXTENSION decide UPDATE.")));
	listing->snapshot = RegisterSnapshot(GetLatestSnapshot());
	if (policy_set_read_epoch(listing->snapshot, NULL, NULL, NULL, NULL) != listing->set->epoch)
	{
		UnregisterSnapshot(listing->snapshot);
		policy_set_mark_stale();
		return false;
	}
	listing->entities = table_open(catalog->entities, AccessShareLock);
	listing->links = table_open(catalog->entity_links, AccessShareLock);
	return true;
}

static void
close_listing(Listing *listing)
{
	table_close(listing->links, AccessShareLock);
	table_close(listing->entities, AccessShareLock);
	UnregisterSnapshot(listing->snapshot);
}

/* One attempt under the current set; false if the epoch moved. */
static bool
list_once(Listing *listing)
{
	bool		ok;

	listing->set = policy_set_current();
	listing->row_context = AllocSetContextCreate(CurrentMemoryContext, "decide listing row",
												 ALLOCSET_DEFAULT_SIZES);
	if (!open_listing(listing))
		return false;
	listing->image = entity_images_get(listing->set);
	ok = build_plan(listing);
	if (ok && listing->reaches_everything)
		ok = list_range(listing);
	else if (ok && (listing->reach_uids != NIL || listing->reach_globs != NIL))
		ok = list_reached(listing);
	close_listing(listing);
	return ok;
}

/* The listing cache's key of a request: every part of it. */
static void
request_key(const ListingRequest *request, StringInfo key)
{
	int32		free_dim = request->free_dim;
	int			d;

	initStringInfo(key);
	appendBinaryStringInfo(key, (char *) &free_dim, sizeof(free_dim));
	for (d = 0; d < DEC_NDIMS; d++)
		if (d != free_dim)
		{
			appendBinaryStringInfo(key, (char *) &request->uid[d].len, sizeof(uint32));
			appendBinaryStringInfo(key, request->uid[d].ptr, request->uid[d].len);
		}
	appendBinaryStringInfo(key, (char *) &request->prefix.len, sizeof(uint32));
	appendBinaryStringInfo(key, request->prefix.ptr, request->prefix.len);
	appendBinaryStringInfo(key, (char *) &request->page_size, sizeof(request->page_size));
	appendStringInfoChar(key, request->has_after ? 'a' : '-');
	if (request->has_after)
	{
		appendBinaryStringInfo(key, (char *) &request->after.len, sizeof(uint32));
		appendBinaryStringInfo(key, request->after.ptr, request->after.len);
	}
	appendBinaryStringInfo(key, (char *) request->context, VARSIZE(request->context));
}

/* Emits a cached listing; false if a policy it names is gone (a bug). */
static bool
emit_cached(const PolicySet *set, const StringInfoData *rows, ListingEmitFn emit, void *arg)
{
	int			offset = 0;
	DecStr		uid;
	int64		policy_id;

	while (listing_cache_next_row(rows, &offset, &uid, &policy_id))
	{
		const PolicyInfo *policy = policy_set_find(set, policy_id);

		if (policy == NULL)
			return false;
		emit(uid, policy_name(set, policy), arg);
	}
	return true;
}

void
listing_run(const ListingRequest *request, ListingEmitFn emit, ListingDiscardFn discard,
			void *arg)
{
	MemoryContext listing_context = AllocSetContextCreate(CurrentMemoryContext,
														  "decide listing",
														  ALLOCSET_DEFAULT_SIZES);
	MemoryContext caller = MemoryContextSwitchTo(listing_context);
	StringInfoData key;
	const StringInfoData *cached;
	const PolicySet *set = policy_set_current();
	Listing		listing;
	int			attempt;

	stats_count(STAT_LISTINGS, 1);
	request_key(request, &key);
	cached = listing_cache_lookup(set, &key);
	if (cached)
	{
		if (emit_cached(set, cached, emit, arg))
		{
			stats_count(STAT_LISTING_CACHE_HITS, 1);
			MemoryContextSwitchTo(caller);
			MemoryContextDelete(listing_context);
			return;
		}
		discard(arg);
		listing_cache_reset();
	}
	for (attempt = 0;; attempt++)
	{
		memset(&listing, 0, sizeof(listing));
		listing.request = request;
		listing.emit = emit;
		listing.emit_arg = arg;
		initStringInfo(&listing.cached_rows);
		if (list_once(&listing))
			break;
		/* The epoch moved: what was listed under the old one goes. */
		discard(arg);
		MemoryContextReset(listing_context);
		request_key(request, &key);
		if (attempt == 100)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("policies and entities kept changing during the listing"),
					 errhint("Retry the request.")));
	}
	if (!listing.time_dependent)
		listing_cache_store(listing.set, &key, &listing.cached_rows);
	MemoryContextSwitchTo(caller);
	MemoryContextDelete(listing_context);
}

/* ---- one candidate at a time (decide_row_allowed) ---- */

/* Recent parents lists and their ancestor matches, by the image's id. */
#define RECENT_PARENTS 256

struct ListingCheck
{
	MemoryContext context;		/* the check's, for its whole life */
	MemoryContext plan_context; /* the plan and its request: reset on rebuild */
	const PolicySet *set;		/* the plan's, and its epoch */
	int64		epoch;
	TimestampTz now;			/* the statement's time, if a condition read $now */
	ListingRequest request;		/* the plan's, copied */
	Listing		listing;
	const uint64 *no_ancestors; /* all zero: an entity without parents or row */
	const struct NumberIndex *numbers;	/* of the plan's image and prefix, once needed */
	uint64		numbers_generation; /* valid while the index is still this one */
	uint32		recent_ids[RECENT_PARENTS];
	const uint64 *recent[RECENT_PARENTS];
};

/* Equal bytes; inline, for the short strings compared on every row. */
static inline bool
same_bytes(const char *a, const char *b, uint32 len)
{
	uint32		i = 0;

	for (; i + 8 <= len; i += 8)
	{
		uint64		x;
		uint64		y;

		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y)
			return false;
	}
	for (; i < len; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

static inline bool
same_str(DecStr a, DecStr b)
{
	return a.len == b.len && same_bytes(a.ptr, b.ptr, a.len);
}

bool
listing_check_same_request(const ListingCheck *check, const ListingRequest *request)
{
	int			d;

	if (check == NULL || check->request.free_dim != request->free_dim ||
		!same_str(check->request.prefix, request->prefix) ||
		VARSIZE(check->request.context) != VARSIZE(request->context) ||
		!same_bytes((const char *) check->request.context, (const char *) request->context,
					VARSIZE(request->context)))
		return false;
	for (d = 0; d < DEC_NDIMS; d++)
		if (d != (int) request->free_dim && !same_str(check->request.uid[d], request->uid[d]))
			return false;
	return true;
}

/* Is the plan still that of the policy set (and of the statement's time)? */
static bool
plan_current(const ListingCheck *check, const PolicySet *set)
{
	return check->set == set && check->epoch == set->epoch &&
		(!check->listing.time_dependent || check->now == GetCurrentStatementStartTimestamp());
}

/* Builds the plan of a request under the current policy set. */
static void
plan_check(ListingCheck *check, const ListingRequest *request)
{
	MemoryContext caller;
	int			d;
	int			attempt;

	for (attempt = 0;; attempt++)
	{
		MemoryContextReset(check->plan_context);
		caller = MemoryContextSwitchTo(check->plan_context);
		check->request = *request;
		for (d = 0; d < DEC_NDIMS; d++)
			if (d != (int) request->free_dim)
				check->request.uid[d] = copy_str(request->uid[d].ptr, request->uid[d].len);
		check->request.prefix = copy_str(request->prefix.ptr, request->prefix.len);
		check->request.context = palloc(VARSIZE(request->context));
		memcpy(check->request.context, request->context, VARSIZE(request->context));
		check->request.has_after = false;
		check->request.page_size = -1;

		memset(&check->listing, 0, sizeof(check->listing));
		check->listing.request = &check->request;
		check->listing.set = policy_set_current();
		check->listing.row_context = AllocSetContextCreate(check->plan_context,
														   "decide listing row",
														   ALLOCSET_SMALL_SIZES);
		check->set = check->listing.set;
		check->epoch = check->set->epoch;
		check->now = GetCurrentStatementStartTimestamp();
		if (build_plan(&check->listing))
			break;
		MemoryContextSwitchTo(caller);
		if (attempt == 100)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("policies and entities kept changing during the check"),
					 errhint("Retry the request.")));
	}
	check->no_ancestors = palloc0(sizeof(uint64) * Max(check->listing.plan_words, 1));
	check->numbers = NULL;
	memset(check->recent, 0, sizeof(check->recent));
	MemoryContextSwitchTo(caller);
}

/*
 * The number index (dec_entity_image_number_index) of one image and prefix,
 * kept between queries: a new query of the same table finds it built.
 */
typedef struct NumberIndex
{
	MemoryContext context;
	pg_uuid_t	entities_version;	/* the image's */
	char	   *prefix;
	uint32		prefix_len;
	uint32	   *places;			/* NULL: the uids do not suit one */
	int64		first;
	uint64		n;
	uint64		generation;		/* counts the builds */
} NumberIndex;

static NumberIndex number_index;

static const NumberIndex *
number_index_of(const PolicySet *set, const void *image, DecStr prefix)
{
	NumberIndex *index = &number_index;
	DecAllocator allocator;

	if (index->context != NULL &&
		memcmp(&index->entities_version, &set->entities_version, sizeof(pg_uuid_t)) == 0 &&
		index->prefix_len == prefix.len && memcmp(index->prefix, prefix.ptr, prefix.len) == 0)
		return index;
	if (index->context == NULL)
		index->context = AllocSetContextCreate(TopMemoryContext, "decide number index",
											   ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(index->context);
	index->generation++;
	index->entities_version = set->entities_version;
	index->prefix = MemoryContextAlloc(index->context, prefix.len + 1);
	memcpy(index->prefix, prefix.ptr, prefix.len);
	index->prefix_len = prefix.len;
	allocator = decide_allocator(index->context);
	index->places = dec_entity_image_number_index(image, prefix.ptr, prefix.len, &allocator,
												  &index->first, &index->n);
	return index;
}

/*
 * Finds the candidate's entity in the image: by its number when its uid is
 * the prefix and a number and the image's uids of that prefix suit a
 * number index, else by its uid.
 */
static bool
image_find(ListingCheck *check, const void *image, DecStr uid, const int64 *number,
		   DecEntityView *view)
{
	if (number)
	{
		const NumberIndex *index = check->numbers;

		/* one index is kept per backend: another check may have replaced it */
		if (index == NULL || index->generation != check->numbers_generation)
		{
			index = check->numbers = number_index_of(check->set, image, check->request.prefix);
			check->numbers_generation = index->generation;
		}

		if (index->places)
		{
			uint64		offset = (uint64) *number - (uint64) index->first;

			if (offset >= index->n || index->places[offset] == 0)
				return false;
			dec_entity_image_at(image, index->places[offset] - 1, view);
			return true;
		}
	}
	return dec_entity_image_find(image, uid.ptr, uid.len, view);
}

/*
 * The ancestor matches of a candidate, from the entities' image (its row,
 * or none) or from the entity cache.  NULL if the epoch moved.
 */
static const uint64 *
check_ancestors(ListingCheck *check, CandidateRow *row, const int64 *number)
{
	Listing    *listing = &check->listing;
	const void *image = entity_images_get(listing->set);
	EntityInfo	info;

	row->parents = NULL;
	if (image)
	{
		uint32		slot;

		listing->image = image;
		if (!image_find(check, image, row->uid, number, &row->view))
		{
			memset(&row->view, 0, sizeof(row->view));
			row->attrs = NULL;
			row->from_image = true;
			return check->no_ancestors;
		}
		row->attrs = (Jsonb *) row->view.attrs;
		row->from_image = true;
		if (row->view.n_parents == 0)
			return check->no_ancestors;
		slot = row->view.parents_id % RECENT_PARENTS;
		if (check->recent[slot] == NULL || check->recent_ids[slot] != row->view.parents_id)
		{
			const uint64 *matched = ancestor_matches(listing, row);

			if (matched == NULL)
				return NULL;
			check->recent_ids[slot] = row->view.parents_id;
			check->recent[slot] = matched;
		}
		return check->recent[slot];
	}

	/* No image (the transaction's own changes, or none yet): the entity cache. */
	listing->image = NULL;
	if (!entity_store_resolve(listing->set, &row->uid, 1, &info))
		return NULL;
	row->attrs = info.attrs;
	row->from_image = false;
	/* The closure starts with the entity itself, matched on its own. */
	return closure_matches(listing, info.closure.uids + 1, info.closure.count - 1,
						   CurrentMemoryContext);
}

bool
listing_check(ListingCheck **state, MemoryContext context, const ListingRequest *request,
			  bool same_request, DecStr uid, const int64 *number)
{
	ListingCheck *check = *state;
	const PolicySet *set = policy_set_current();
	const PolicyInfo *decided;
	const uint64 *ancestors;
	CandidateRow row;
	MemoryContext caller;

	if (check == NULL)
	{
		check = MemoryContextAllocZero(context, sizeof(ListingCheck));
		check->context = context;
		check->plan_context = AllocSetContextCreate(context, "decide listing check",
													ALLOCSET_DEFAULT_SIZES);
		*state = check;
		plan_check(check, request);
	}
	else if (!same_request || !plan_current(check, set))
		plan_check(check, request);

	stats_count(STAT_LISTING_CANDIDATES, 1);
	caller = MemoryContextSwitchTo(check->listing.row_context);
	row.uid = uid;
	while ((ancestors = check_ancestors(check, &row, number)) == NULL)
	{
		/* The epoch moved: plan again under the new set. */
		MemoryContextSwitchTo(caller);
		plan_check(check, request);
		MemoryContextSwitchTo(check->listing.row_context);
	}
	decided = plan_decide(&check->listing, &row, ancestors);
	MemoryContextSwitchTo(caller);
	MemoryContextReset(check->listing.row_context);
	return decided != NULL && decided->effect == DEC_ALLOW;
}
