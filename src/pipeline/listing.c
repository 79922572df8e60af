/*
 * listing.c — authorized listing: every entity that a request with one part
 * left free allows (decide_resources: what an actor may act on;
 * decide_actors: who may act on a resource), in uid order, in keyset pages.
 *
 * Exact by construction: every candidate is decided in full, by the same
 * code as decide() (decision_evaluate_under), so a listing never disagrees
 * with a decision.  Fast by choosing few candidates: only an allow policy
 * can make a request allowed, and a policy matches an entity when the
 * entity or one of its ancestors matches its pattern.  So, among the
 * policies whose two other patterns match the request, the allow policies
 * reach, by their pattern in the free part:
 *   - all stars: every entity.  Candidates are read in uid order from the
 *     entities' primary key, starting where the page starts, and reading
 *     stops when the page is full;
 *   - a uid: that entity and its descendants; a glob: the uids it matches
 *     (entities, and parents that have no row) and their descendants.  The
 *     descendants are walked down decide.entity_links, then sorted.
 * A policy ranked below an unconditional deny whose free pattern is all
 * stars can never decide anything, and reaches nothing.
 *
 * Consistency: one listing reads under one policy set.  Entity rows and
 * links are read with a snapshot under which the epoch is the set's (as
 * entity_store.c does); when the epoch moves during a listing, it starts
 * over under the new set.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "decision.h"
#include "entity_store.h"
#include "listing.h"
#include "stats.h"

/* Where a listing reads: the set, and a snapshot that shows its epoch. */
typedef struct ListingScope
{
	const ListingRequest *request;
	const PolicySet *set;
	Snapshot	snapshot;
	Relation	entities;
	Relation	links;
} ListingScope;

/* What the allow policies that can decide reach in the free part. */
typedef struct Reach
{
	bool		everything;
	List	   *uids;			/* const char *: exact patterns */
	List	   *globs;			/* const char *: glob patterns */
} Reach;

/* An allowed entity, kept until the listing is known to be consistent. */
typedef struct ListedRow
{
	DecStr		uid;
	const char *policy;
} ListedRow;

/* The candidates of a listing by roots: seen uids, and those with rows. */
typedef struct Walk
{
	HTAB	   *seen;
	DecStr	   *queue;			/* uids whose children are still to be read */
	int			queued;
	int			queue_size;
	DecStr	   *candidates;
	int			n_candidates;
	int			candidates_size;
} Walk;

typedef struct SeenKey
{
	const char *ptr;
	uint32		len;
} SeenKey;

static uint32
seen_key_hash(const void *key, Size keysize)
{
	const SeenKey *k = key;

	return hash_bytes((const unsigned char *) k->ptr, (int) k->len);
}

static int
seen_key_match(const void *a, const void *b, Size keysize)
{
	const SeenKey *x = a;
	const SeenKey *y = b;

	if (x->len != y->len)
		return 1;
	return memcmp(x->ptr, y->ptr, x->len);
}

/* uid order: the bytes, as the uid columns' collation "C" orders them. */
static int
uid_compare(DecStr a, DecStr b)
{
	int			c = memcmp(a.ptr, b.ptr, Min(a.len, b.len));

	if (c != 0)
		return c;
	return (a.len > b.len) - (a.len < b.len);
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
pattern_is_all_stars(const char *pattern)
{
	for (; *pattern; pattern++)
		if (*pattern != '*')
			return false;
	return true;
}

static DecStr
copy_str(const char *ptr, uint32 len)
{
	char	   *copy = palloc(len + 1);
	DecStr		s;

	memcpy(copy, ptr, len);
	copy[len] = '\0';
	s.ptr = copy;
	s.len = len;
	return s;
}

/* A text column of a row, copied. */
static DecStr
text_column(HeapTuple tuple, TupleDesc desc, AttrNumber att)
{
	bool		isnull;
	text	   *value = DatumGetTextPP(heap_getattr(tuple, att, desc, &isnull));

	Assert(!isnull);
	return copy_str(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
}

/*
 * A scan of an index on a text column, in its order: the rows whose key
 * equals the given one (exact), or is at least it (the caller stops where
 * its range ends).
 */
static SysScanDesc
begin_key_scan(Relation rel, Oid index, AttrNumber att, Snapshot snapshot, DecStr key,
			   bool exact, ScanKeyData *scankey)
{
	ScanKeyInit(scankey, att, exact ? BTEqualStrategyNumber : BTGreaterEqualStrategyNumber,
				exact ? F_TEXTEQ : F_TEXT_GE,
				PointerGetDatum(cstring_to_text_with_len(key.ptr, key.len)));
	return systable_beginscan(rel, index, true, snapshot, 1, scankey);
}

static bool
open_scope(ListingScope *scope)
{
	const DecideCatalog *catalog = policy_set_catalog();

	if (!OidIsValid(catalog->entity_links))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("listing needs the decide 0.7.0 schema in this database"),
				 errhint("Run ALTER EXTENSION decide UPDATE.")));
	scope->snapshot = RegisterSnapshot(GetLatestSnapshot());
	if (policy_set_read_epoch(scope->snapshot, NULL, NULL, NULL, NULL) != scope->set->epoch)
	{
		UnregisterSnapshot(scope->snapshot);
		policy_set_mark_stale();
		return false;
	}
	scope->entities = table_open(catalog->entities, AccessShareLock);
	scope->links = table_open(catalog->entity_links, AccessShareLock);
	return true;
}

static void
close_scope(ListingScope *scope)
{
	table_close(scope->links, AccessShareLock);
	table_close(scope->entities, AccessShareLock);
	UnregisterSnapshot(scope->snapshot);
}

/*
 * Which allow policies can decide, and what they reach in the free part.
 * False if the epoch moved.
 */
static bool
find_reach(const ListingScope *scope, Reach *reach)
{
	const ListingRequest *request = scope->request;
	const PolicySet *set = scope->set;
	DecStr		bound_uids[2];
	int			bound_dims[2];
	EntityInfo	bound[2];
	DecRequest	partial;
	uint32		n;
	uint32		rank;
	int			d;
	int			b = 0;

	for (d = 0; d < DEC_NDIMS; d++)
		if (d != (int) request->free_dim)
		{
			bound_dims[b] = d;
			bound_uids[b++] = request->uid[d];
		}
	if (!entity_store_resolve(set, bound_uids, 2, bound))
		return false;
	memset(&partial, 0, sizeof(partial));
	for (b = 0; b < 2; b++)
		partial.dim[bound_dims[b]] = bound[b].closure;

	memset(reach, 0, sizeof(*reach));
	n = dec_policy_count(set->compiled);
	for (rank = 0; rank < n; rank++)
	{
		uint32		index = dec_policy_at_rank(set->compiled, rank);
		const PolicyInfo *policy = &set->policies[index];
		const char *pattern = policy_pattern(set, policy, request->free_dim);
		bool		matched[DEC_NDIMS];

		if ((rank & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		dec_match_patterns(set->compiled, index, &partial, matched);
		if (!matched[bound_dims[0]] || !matched[bound_dims[1]])
			continue;
		if (policy->effect == DEC_DENY)
		{
			/* It decides every candidate it outranks: none reaches further. */
			if (pattern_is_all_stars(pattern) && policy->condition_off == 0)
				break;
			continue;
		}
		if (pattern_is_all_stars(pattern))
		{
			reach->everything = true;
			break;
		}
		if (dec_is_glob(pattern, strlen(pattern)))
			reach->globs = lappend(reach->globs, (void *) pattern);
		else
			reach->uids = lappend(reach->uids, (void *) pattern);
	}
	return true;
}

/*
 * Decides one candidate; appends it to *rows when allowed.  False if the
 * epoch moved.
 */
static bool
decide_candidate(const ListingScope *scope, DecStr uid, List **rows, int64 *found)
{
	const ListingRequest *request = scope->request;
	DecisionRequest decision_request;
	Decision	decision;
	bool		time_dependent;
	int			d;

	for (d = 0; d < DEC_NDIMS; d++)
		decision_request.uid[d] = request->uid[d];
	decision_request.uid[request->free_dim] = uid;
	decision_request.context = request->context;
	if (!decision_evaluate_under(scope->set, &decision_request, &decision, &time_dependent))
		return false;
	stats_count(STAT_LISTING_CANDIDATES, 1);
	if (decision.allowed)
	{
		ListedRow  *row = palloc(sizeof(ListedRow));

		row->uid = uid;
		row->policy = policy_name(scope->set, decision.policy);
		*rows = lappend(*rows, row);
		(*found)++;
	}
	return true;
}

static bool
page_full(const ListingRequest *request, int64 found)
{
	return request->page_size >= 0 && found >= request->page_size;
}

/*
 * Everything is reached: the entities in uid order from the page's start,
 * until the page is full.
 */
static bool
list_everything(const ListingScope *scope, List **rows)
{
	const ListingRequest *request = scope->request;
	const DecideCatalog *catalog = policy_set_catalog();
	TupleDesc	desc = RelationGetDescr(scope->entities);
	DecStr		start = request->prefix;
	ScanKeyData scankey;
	SysScanDesc scan;
	HeapTuple	tuple;
	int64		found = 0;
	bool		ok = true;

	if (request->has_after && uid_compare(request->after, start) > 0)
		start = request->after;
	scan = begin_key_scan(scope->entities, catalog->entities_pkey, 1, scope->snapshot, start,
						  false, &scankey);
	while (!page_full(request, found) && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		DecStr		uid = text_column(tuple, desc, 1);

		CHECK_FOR_INTERRUPTS();
		if (!starts_with(uid, request->prefix))
			break;
		if (!within_bounds(request, uid))
			continue;
		if (!decide_candidate(scope, uid, rows, &found))
		{
			ok = false;
			break;
		}
	}
	systable_endscan(scan);
	return ok;
}

/* Notes a uid reached; a row is a candidate, and every uid is walked down. */
static void
walk_add(Walk *walk, DecStr uid, bool is_row)
{
	SeenKey		key = {uid.ptr, uid.len};
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
	if (walk->n_candidates == walk->candidates_size)
	{
		walk->candidates_size *= 2;
		walk->candidates = repalloc_huge(walk->candidates, sizeof(DecStr) * walk->candidates_size);
	}
	walk->candidates[walk->n_candidates++] = uid;
}

/* The roots a glob reaches: entities it matches, then parents with no row. */
static void
walk_glob_roots(const ListingScope *scope, Walk *walk, const char *glob)
{
	const DecideCatalog *catalog = policy_set_catalog();
	size_t		glob_len = strlen(glob);
	DecStr		literal = {glob, (uint32) dec_glob_literal_prefix(glob, glob_len)};
	ScanKeyData scankey;
	SysScanDesc scan;
	HeapTuple	tuple;
	int			pass;

	for (pass = 0; pass < 2; pass++)
	{
		Relation	rel = pass == 0 ? scope->entities : scope->links;
		TupleDesc	desc = RelationGetDescr(rel);
		DecStr		last = {NULL, 0};

		scan = begin_key_scan(rel, pass == 0 ? catalog->entities_pkey : catalog->entity_links_pkey,
							  1, scope->snapshot, literal, false, &scankey);
		while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		{
			DecStr		uid = text_column(tuple, desc, 1);

			CHECK_FOR_INTERRUPTS();
			if (!starts_with(uid, literal))
				break;
			/* links come by parent: one look at each */
			if (last.ptr && uid_compare(uid, last) == 0)
				continue;
			last = uid;
			if (dec_glob_match(glob, glob_len, uid.ptr, uid.len, policy_set_char_len))
				walk_add(walk, uid, pass == 0);
		}
		systable_endscan(scan);
	}
}

/* Does decide.entities have a row with this uid? */
static bool
entity_exists(const ListingScope *scope, DecStr uid)
{
	ScanKeyData scankey;
	SysScanDesc scan = begin_key_scan(scope->entities, policy_set_catalog()->entities_pkey, 1,
									  scope->snapshot, uid, true, &scankey);
	bool		exists = HeapTupleIsValid(systable_getnext(scan));

	systable_endscan(scan);
	return exists;
}

/* Walks down from every root to collect the candidates. */
static void
walk_down(const ListingScope *scope, Walk *walk)
{
	const DecideCatalog *catalog = policy_set_catalog();
	TupleDesc	desc = RelationGetDescr(scope->links);
	int			next;

	for (next = 0; next < walk->queued; next++)
	{
		ScanKeyData scankey;
		SysScanDesc scan = begin_key_scan(scope->links, catalog->entity_links_pkey, 1,
										  scope->snapshot, walk->queue[next], true, &scankey);
		HeapTuple	tuple;

		CHECK_FOR_INTERRUPTS();
		while (HeapTupleIsValid(tuple = systable_getnext(scan)))
			walk_add(walk, text_column(tuple, desc, 2), true);
		systable_endscan(scan);
	}
}

/*
 * The entities some policy reaches through its uid or glob: the roots and
 * their descendants, decided in uid order until the page is full.
 */
static bool
list_reached(const ListingScope *scope, const Reach *reach, List **rows)
{
	const ListingRequest *request = scope->request;
	Walk		walk;
	HASHCTL		ctl;
	ListCell   *cell;
	int64		found = 0;
	int			i;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(SeenKey);
	ctl.entrysize = sizeof(SeenKey);
	ctl.hash = seen_key_hash;
	ctl.match = seen_key_match;
	ctl.hcxt = CurrentMemoryContext;
	memset(&walk, 0, sizeof(walk));
	walk.seen = hash_create("decide listing", 1024, &ctl,
							HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	walk.queue_size = walk.candidates_size = 256;
	walk.queue = palloc(sizeof(DecStr) * walk.queue_size);
	walk.candidates = palloc(sizeof(DecStr) * walk.candidates_size);

	foreach(cell, reach->uids)
	{
		const char *uid = lfirst(cell);
		DecStr		root = {uid, (uint32) strlen(uid)};

		walk_add(&walk, root, entity_exists(scope, root));
	}
	foreach(cell, reach->globs)
		walk_glob_roots(scope, &walk, lfirst(cell));
	walk_down(scope, &walk);

	qsort(walk.candidates, walk.n_candidates, sizeof(DecStr), uid_qsort_compare);
	for (i = 0; i < walk.n_candidates && !page_full(request, found); i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (!within_bounds(request, walk.candidates[i]))
			continue;
		if (!decide_candidate(scope, walk.candidates[i], rows, &found))
			return false;
	}
	return true;
}

/* One attempt under the current set; false if the epoch moved. */
static bool
list_once(const ListingRequest *request, List **rows)
{
	ListingScope scope;
	Reach		reach;
	bool		ok;

	scope.request = request;
	scope.set = policy_set_current();
	*rows = NIL;
	if (!open_scope(&scope))
		return false;
	ok = find_reach(&scope, &reach);
	if (ok && reach.everything)
		ok = list_everything(&scope, rows);
	else if (ok && (reach.uids != NIL || reach.globs != NIL))
		ok = list_reached(&scope, &reach, rows);
	close_scope(&scope);
	return ok;
}

void
listing_run(const ListingRequest *request, ListingEmitFn emit, void *arg)
{
	MemoryContext listing_context = AllocSetContextCreate(CurrentMemoryContext,
														  "decide listing",
														  ALLOCSET_DEFAULT_SIZES);
	MemoryContext caller = MemoryContextSwitchTo(listing_context);
	List	   *rows;
	ListCell   *cell;
	int			attempt;

	stats_count(STAT_LISTINGS, 1);
	for (attempt = 0; !list_once(request, &rows); attempt++)
	{
		MemoryContextReset(listing_context);
		if (attempt == 100)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("policies and entities kept changing during the listing"),
					 errhint("Retry the request.")));
	}
	MemoryContextSwitchTo(caller);
	foreach(cell, rows)
	{
		ListedRow  *row = lfirst(cell);

		emit(row->uid, row->policy, arg);
	}
	MemoryContextDelete(listing_context);
}
