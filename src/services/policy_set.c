/*
 * policy_set.c — loads decide.policies into the evaluator, once per epoch.
 *
 * Freshness.  Every change to policies or entities runs
 * decide.advance_epoch(), which bumps the epoch row and calls
 * decide.invalidate_policy_set(): a relcache invalidation of decide.epoch.
 * Invalidations are sent at commit (and only at commit), after the change is
 * visible to new snapshots, and are replayed from the commit record on hot
 * standbys.  Every backend processes them at the start of each transaction
 * and whenever policy_set_current() is called, then reloads.
 *
 * The tables are read with the latest snapshot, as the catalog caches do,
 * not the caller's: a reload triggered by an invalidation must see the
 * change that sent it even inside a statement that started earlier, or the
 * backend would settle on the old epoch.
 *
 * Carrying forward.  After a change, most cached decisions are still right:
 * only requests that a changed policy's patterns match can decide
 * differently.  On reload, the new set lists the policies that differ from
 * the previous set's (compared field by field, not by a hash), so that the
 * decision path can reuse an older epoch's cached decision for any other
 * request.  Only between committed sets of the same store whose entities
 * did not change (same entities version).
 *
 * The tables are read with the extension's own access path (heap and index
 * scans), not SQL: no search_path is involved and callers need no privilege
 * on the tables.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_enum.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "condition.h"
#include "policy_set.h"
#include "worker_latch.h"
#include "stats.h"

static PolicySet *current_set = NULL;
static uint64 next_generation = 1;

/*
 * Bumped by every relevant invalidation.  A set is current while the count
 * is what it was when the load began, so an invalidation processed during a
 * load (table_open accepts them) forces another.
 */
static uint64 invalidation_count = 0;
static uint64 current_set_invalidation_count = 0;
static DecideCatalog catalog;

/* More changed policies than this between two sets: do not carry forward. */
#define CARRY_MAX_CHANGED 1024

static void *
alloc_in_context(void *state, size_t size)
{
	return MemoryContextAllocExtended((MemoryContext) state, size, MCXT_ALLOC_HUGE);
}

DecAllocator
decide_allocator(MemoryContext context)
{
	DecAllocator a;

	a.alloc = alloc_in_context;
	a.state = context;
	return a;
}

static void
relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == catalog.epoch)
		invalidation_count++;
}

void
policy_set_init(void)
{
	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
}

void
policy_set_mark_stale(void)
{
	invalidation_count++;
}

/* Character length in the database encoding, for '?' in globs. */
static size_t
server_char_len(const char *s, size_t remaining)
{
	size_t		len = (size_t) pg_mblen(s);	/* reads the lead byte only */

	return len <= remaining ? len : remaining;
}

static void
lookup_catalog(void)
{
	Oid			schema = get_namespace_oid("decide", true);
	Relation	entities;

	if (!OidIsValid(schema) || !OidIsValid(get_relname_relid("epoch", schema)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"decide\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION decide.")));
	catalog.schema = schema;
	catalog.policies = get_relname_relid("policies", schema);
	catalog.entities = get_relname_relid("entities", schema);
	catalog.epoch = get_relname_relid("epoch", schema);
	entities = table_open(catalog.entities, AccessShareLock);
	catalog.entities_pkey = RelationGetPrimaryKeyIndex(entities);
	table_close(entities, AccessShareLock);
}

const DecideCatalog *
policy_set_catalog(void)
{
	return &catalog;
}

int64
policy_set_read_epoch(Snapshot snapshot, pg_uuid_t *store_id, pg_uuid_t *version,
					  pg_uuid_t *entities_version, bool *includes_own_changes)
{
	Relation	rel = table_open(catalog.epoch, AccessShareLock);
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	HeapTuple	tuple = heap_getnext(scan, ForwardScanDirection);
	TupleDesc	desc = RelationGetDescr(rel);
	bool		isnull;
	int64		epoch;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("decide.epoch has no row"),
				 errhint("Reinstall the extension: DROP EXTENSION decide; CREATE EXTENSION decide.")));
	epoch = DatumGetInt64(heap_getattr(tuple, get_attnum(catalog.epoch, "epoch"), desc, &isnull));
	if (store_id)
		*store_id = *DatumGetUUIDP(heap_getattr(tuple, get_attnum(catalog.epoch, "store_id"),
												desc, &isnull));
	if (version)
	{
		AttrNumber	att_version = get_attnum(catalog.epoch, "version");

		/* 0.4.0 added it; before the upgrade, the store id stands in. */
		if (att_version != InvalidAttrNumber)
			*version = *DatumGetUUIDP(heap_getattr(tuple, att_version, desc, &isnull));
		else
			*version = *DatumGetUUIDP(heap_getattr(tuple, get_attnum(catalog.epoch, "store_id"),
													desc, &isnull));
	}
	if (entities_version)
	{
		AttrNumber	att = get_attnum(catalog.epoch, "entities_version");

		/* 0.5.0 added it. */
		memset(entities_version, 0, sizeof(pg_uuid_t));
		if (att != InvalidAttrNumber)
			*entities_version = *DatumGetUUIDP(heap_getattr(tuple, att, desc, &isnull));
	}
	if (includes_own_changes)
		*includes_own_changes =
			TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(tuple->t_data));
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return epoch;
}

/* Enum labels seen during one load, so each is looked up once. */
typedef struct LabelCache
{
	Oid			oid[8];
	char	   *label[8];
	int			n;
} LabelCache;

static char *
enum_label(LabelCache *cache, Oid value, MemoryContext context)
{
	HeapTuple	tuple;
	char	   *label;
	int			i;

	for (i = 0; i < cache->n; i++)
		if (cache->oid[i] == value)
			return cache->label[i];
	tuple = SearchSysCache1(ENUMOID, ObjectIdGetDatum(value));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for enum value %u", value);
	label = MemoryContextStrdup(context, NameStr(((Form_pg_enum) GETSTRUCT(tuple))->enumlabel));
	ReleaseSysCache(tuple);
	if (cache->n < (int) lengthof(cache->oid))
	{
		cache->oid[cache->n] = value;
		cache->label[cache->n] = label;
		cache->n++;
	}
	return label;
}

static int
compare_policy_ids(const void *a, const void *b, void *arg)
{
	const PolicySet *set = arg;
	int64		x = set->policies[*(const uint32 *) a].id;
	int64		y = set->policies[*(const uint32 *) b].id;

	return (x > y) - (x < y);
}

const PolicyInfo *
policy_set_find(const PolicySet *set, int64 id)
{
	uint32		low = 0;
	uint32		high = set->n_policies;

	while (low < high)
	{
		uint32		mid = low + (high - low) / 2;
		int64		mid_id = set->policies[set->by_id[mid]].id;

		if (mid_id == id)
			return &set->policies[set->by_id[mid]];
		if (mid_id < id)
			low = mid + 1;
		else
			high = mid;
	}
	return NULL;
}

static char *
text_in_context(Datum value, MemoryContext context)
{
	text	   *t = DatumGetTextPP(value);

	return MemoryContextStrdup(context, text_to_cstring(t));
}

/* The evaluator's view of a policy; the strings stay the policy's. */
static void
def_from_info(const PolicyInfo *info, DecPolicyDef *def)
{
	int			d;

	def->id = info->id;
	def->priority = info->priority;
	def->effect = info->effect;
	def->has_condition = info->condition != NULL;
	for (d = 0; d < DEC_NDIMS; d++)
	{
		def->pattern[d].ptr = info->pattern[d];
		def->pattern[d].len = strlen(info->pattern[d]);
	}
}

static bool
same_policy(const PolicyInfo *a, const PolicyInfo *b)
{
	int			d;

	if (strcmp(a->name, b->name) != 0 || a->effect != b->effect ||
		a->priority != b->priority || strcmp(a->risk_level, b->risk_level) != 0)
		return false;
	for (d = 0; d < DEC_NDIMS; d++)
		if (strcmp(a->pattern[d], b->pattern[d]) != 0)
			return false;
	if (a->condition == NULL || b->condition == NULL)
		return a->condition == b->condition;
	return VARSIZE(a->condition) == VARSIZE(b->condition) &&
		memcmp(a->condition, b->condition, VARSIZE(a->condition)) == 0;
}

bool
policy_set_entities_shareable(const PolicySet *set)
{
	static const pg_uuid_t unknown_version;

	return !set->includes_own_changes &&
		memcmp(&set->entities_version, &unknown_version, sizeof(pg_uuid_t)) != 0;
}

/* Compiles policies with the server's character semantics. */
static DecPolicySet *
compile(const DecPolicyDef *defs, uint32 n, const DecAllocator *set_allocator,
		const DecAllocator *scratch_allocator)
{
	DecPolicySet *compiled = dec_compile(defs, n, server_char_len, set_allocator,
										 scratch_allocator);

	if (compiled == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the active policies are too large to compile"),
				 errdetail("Their compiled index would exceed 4 GB (%u policies).", n),
				 errhint("Deactivate or remove policies.")));
	return compiled;
}

/*
 * Lists what differs between the previous set and a fresh one (see the
 * header comment), or leaves fresh->carry_from_epoch at -1.
 */
static void
prepare_carry_forward(const PolicySet *previous, PolicySet *fresh)
{
	MemoryContext scratch_context;
	MemoryContext old_context;
	DecAllocator set_allocator;
	DecAllocator scratch_allocator;
	DecPolicyDef *defs;
	uint32		n = 0;
	uint32		i = 0;
	uint32		j = 0;

	fresh->carry_from_epoch = -1;
	fresh->changed = NULL;
	fresh->n_changed = 0;
	if (previous == NULL ||
		!policy_set_entities_shareable(previous) || !policy_set_entities_shareable(fresh) ||
		previous->epoch >= fresh->epoch ||
		memcmp(&previous->store_id, &fresh->store_id, sizeof(pg_uuid_t)) != 0 ||
		memcmp(&previous->entities_version, &fresh->entities_version, sizeof(pg_uuid_t)) != 0)
		return;

	scratch_context = AllocSetContextCreate(CurrentMemoryContext, "decide carry forward",
											ALLOCSET_DEFAULT_SIZES);
	old_context = MemoryContextSwitchTo(scratch_context);
	defs = palloc(sizeof(DecPolicyDef) * (CARRY_MAX_CHANGED + 2));
	while (i < previous->n_policies || j < fresh->n_policies)
	{
		const PolicyInfo *a = i < previous->n_policies ?
			&previous->policies[previous->by_id[i]] : NULL;
		const PolicyInfo *b = j < fresh->n_policies ?
			&fresh->policies[fresh->by_id[j]] : NULL;

		if (a && (b == NULL || a->id < b->id))
		{
			def_from_info(a, &defs[n++]);	/* deleted or deactivated */
			i++;
		}
		else if (b && (a == NULL || b->id < a->id))
		{
			def_from_info(b, &defs[n++]);	/* new or activated */
			j++;
		}
		else
		{
			if (!same_policy(a, b))
			{
				def_from_info(a, &defs[n++]);
				def_from_info(b, &defs[n++]);
			}
			i++;
			j++;
		}
		if (n > CARRY_MAX_CHANGED)
		{
			MemoryContextSwitchTo(old_context);
			MemoryContextDelete(scratch_context);
			return;
		}
	}
	if (n > 0)
	{
		uint32		k;

		/* Matching by pattern is all that counts; ids only order ties. */
		for (k = 0; k < n; k++)
		{
			defs[k].id = k;
			defs[k].has_condition = false;
		}
		set_allocator = decide_allocator(fresh->context);
		scratch_allocator = decide_allocator(scratch_context);
		fresh->changed = compile(defs, n, &set_allocator, &scratch_allocator);
	}
	fresh->n_changed = n;
	fresh->carry_from_epoch = previous->epoch;
	MemoryContextSwitchTo(old_context);
	MemoryContextDelete(scratch_context);
}

static PolicySet *
load_policy_set(void)
{
	MemoryContext set_context;
	MemoryContext old_context;
	MemoryContext scratch_context;
	PolicySet  *set;
	Snapshot	snapshot;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	AttrNumber	att_id,
				att_name,
				att_effect,
				att_priority,
				att_actor,
				att_action,
				att_resource,
				att_condition,
				att_risk,
				att_active;
	uint32		capacity = 64;
	DecPolicyDef *defs;
	LabelCache	labels = {0};
	DecAllocator set_allocator;
	DecAllocator scratch_allocator;
	instr_time	start;
	instr_time	duration;
	uint32		i;

	INSTR_TIME_SET_CURRENT(start);
	lookup_catalog();

	/*
	 * Built under the caller's context, so an error mid-way frees it with the
	 * transaction; re-parented to TopMemoryContext once complete.
	 */
	set_context = AllocSetContextCreate(CurrentMemoryContext, "decide policy set",
										ALLOCSET_DEFAULT_SIZES);
	scratch_context = AllocSetContextCreate(CurrentMemoryContext, "decide policy set load",
											ALLOCSET_DEFAULT_SIZES);
	old_context = MemoryContextSwitchTo(scratch_context);
	set = MemoryContextAllocZero(set_context, sizeof(PolicySet));
	set->context = set_context;
	set->generation = next_generation++;
	set->policies = MemoryContextAllocExtended(set_context, sizeof(PolicyInfo) * capacity,
											   MCXT_ALLOC_HUGE);
	defs = palloc_extended(sizeof(DecPolicyDef) * capacity, MCXT_ALLOC_HUGE);

	snapshot = RegisterSnapshot(GetLatestSnapshot());
	set->epoch = policy_set_read_epoch(snapshot, &set->store_id, &set->version,
									   &set->entities_version, &set->includes_own_changes);

	rel = table_open(catalog.policies, AccessShareLock);
	desc = RelationGetDescr(rel);
	att_id = get_attnum(catalog.policies, "id");
	att_name = get_attnum(catalog.policies, "name");
	att_effect = get_attnum(catalog.policies, "effect");
	att_priority = get_attnum(catalog.policies, "priority");
	att_actor = get_attnum(catalog.policies, "actor");
	att_action = get_attnum(catalog.policies, "action");
	att_resource = get_attnum(catalog.policies, "resource");
	att_condition = get_attnum(catalog.policies, "condition");
	att_risk = get_attnum(catalog.policies, "risk_level");
	att_active = get_attnum(catalog.policies, "active");
	values = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);

	scan = table_beginscan(rel, snapshot, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		PolicyInfo *info;
		DecPolicyDef *def;

		CHECK_FOR_INTERRUPTS();
		heap_deform_tuple(tuple, desc, values, nulls);
		if (!DatumGetBool(values[att_active - 1]))
			continue;
		if (set->n_policies == capacity)
		{
			capacity *= 2;
			set->policies = repalloc_huge(set->policies, sizeof(PolicyInfo) * capacity);
			defs = repalloc_huge(defs, sizeof(DecPolicyDef) * capacity);
		}
		info = &set->policies[set->n_policies];
		def = &defs[set->n_policies];
		info->id = DatumGetInt64(values[att_id - 1]);
		info->name = text_in_context(values[att_name - 1], set_context);
		info->effect = strcmp(enum_label(&labels, DatumGetObjectId(values[att_effect - 1]),
										 set_context), "deny") == 0 ? DEC_DENY : DEC_ALLOW;
		info->priority = DatumGetInt32(values[att_priority - 1]);
		info->risk_level = enum_label(&labels, DatumGetObjectId(values[att_risk - 1]), set_context);
		info->pattern[DEC_ACTOR] = text_in_context(values[att_actor - 1], set_context);
		info->pattern[DEC_ACTION] = text_in_context(values[att_action - 1], set_context);
		info->pattern[DEC_RESOURCE] = text_in_context(values[att_resource - 1], set_context);
		info->condition = NULL;
		memset(&info->condition_traits, 0, sizeof(info->condition_traits));
		if (!nulls[att_condition - 1])
		{
			JsonPath   *condition = DatumGetJsonPathP(values[att_condition - 1]);

			info->condition = MemoryContextAlloc(set_context, VARSIZE(condition));
			memcpy(info->condition, condition, VARSIZE(condition));
			info->condition_traits = condition_traits(info->condition);
		}

		def_from_info(info, def);
		set->n_policies++;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	UnregisterSnapshot(snapshot);

	set_allocator = decide_allocator(set_context);
	scratch_allocator = decide_allocator(scratch_context);
	set->compiled = compile(defs, set->n_policies, &set_allocator, &scratch_allocator);

	set->by_id = MemoryContextAllocExtended(set_context,
											sizeof(uint32) * Max(set->n_policies, 1),
											MCXT_ALLOC_HUGE);
	for (i = 0; i < set->n_policies; i++)
		set->by_id[i] = i;
	qsort_arg(set->by_id, set->n_policies, sizeof(uint32), compare_policy_ids, set);

	MemoryContextSwitchTo(old_context);
	MemoryContextDelete(scratch_context);
	MemoryContextSetParent(set_context, TopMemoryContext);

	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	set->load_ms = INSTR_TIME_GET_MILLISEC(duration);
	stats_count(STAT_POLICY_RELOADS, 1);
	stats_gauge_set(GAUGE_LAST_RELOAD_US, (uint64) (INSTR_TIME_GET_DOUBLE(duration) * 1e6));
	stats_gauge_set(GAUGE_LAST_RELOAD_POLICIES, set->n_policies);
	return set;
}

PolicySet *
policy_set_current(void)
{
	AcceptInvalidationMessages();
	if (current_set == NULL || current_set_invalidation_count != invalidation_count)
	{
		uint64		count_at_start = invalidation_count;
		PolicySet  *fresh = load_policy_set();

		prepare_carry_forward(current_set, fresh);
		if (current_set)
			MemoryContextDelete(current_set->context);
		current_set = fresh;
		current_set_invalidation_count = count_at_start;
	}
	return current_set;
}

PG_FUNCTION_INFO_V1(decide_invalidate_policy_set);
Datum
decide_invalidate_policy_set(PG_FUNCTION_ARGS)
{
	lookup_catalog();
	CacheInvalidateRelcacheByRelid(catalog.epoch);
	worker_wake_at_commit();
	PG_RETURN_VOID();
}
