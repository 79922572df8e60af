/*
 * policy_set.c — compiles decide.policies once per epoch into an image.
 *
 * Image.  A set is one block of memory that refers to itself by offsets
 * only (ImageHeader below): the policies, their order by id, their strings
 * and conditions, and the evaluator's own image.  It is built once per
 * server and epoch and shared by every backend (shared_sets.c); a set read
 * under the transaction's own change, or one that does not fit in shared
 * memory, is built in the backend instead.  A backend's PolicySet is a
 * small view of it.
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
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/jsonpath.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "condition.h"
#include "policy_set.h"
#include "shared_sets.h"
#include "worker_registry.h"
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
size_t
policy_set_char_len(const char *s, size_t remaining)
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
	/* Not before 0.7.0: listing says so (listing.c). */
	catalog.entity_links = get_relname_relid("entity_links", schema);
	catalog.entity_links_pkey = InvalidOid;
	if (OidIsValid(catalog.entity_links))
	{
		Relation	links = table_open(catalog.entity_links, AccessShareLock);

		catalog.entity_links_pkey = RelationGetPrimaryKeyIndex(links);
		table_close(links, AccessShareLock);
	}
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
enum_label(LabelCache *cache, Oid value)
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
	label = pstrdup(NameStr(((Form_pg_enum) GETSTRUCT(tuple))->enumlabel));
	ReleaseSysCache(tuple);
	if (cache->n < (int) lengthof(cache->oid))
	{
		cache->oid[cache->n] = value;
		cache->label[cache->n] = label;
		cache->n++;
	}
	return label;
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

/* The evaluator's view of a policy; the strings stay the set's. */
static void
def_from_info(const PolicySet *set, const PolicyInfo *info, DecPolicyDef *def)
{
	int			d;

	def->id = info->id;
	def->priority = info->priority;
	def->effect = info->effect;
	def->has_condition = info->condition_off != 0;
	for (d = 0; d < DEC_NDIMS; d++)
	{
		def->pattern[d].ptr = policy_pattern(set, info, d);
		def->pattern[d].len = strlen(def->pattern[d].ptr);
	}
}

static bool
same_policy(const PolicySet *set_a, const PolicyInfo *a, const PolicySet *set_b,
			const PolicyInfo *b)
{
	JsonPath   *condition_a = policy_condition(set_a, a);
	JsonPath   *condition_b = policy_condition(set_b, b);
	int			d;

	if (strcmp(policy_name(set_a, a), policy_name(set_b, b)) != 0 || a->effect != b->effect ||
		a->priority != b->priority ||
		strcmp(policy_risk_level(set_a, a), policy_risk_level(set_b, b)) != 0)
		return false;
	for (d = 0; d < DEC_NDIMS; d++)
		if (strcmp(policy_pattern(set_a, a, d), policy_pattern(set_b, b, d)) != 0)
			return false;
	if (condition_a == NULL || condition_b == NULL)
		return condition_a == condition_b;
	return VARSIZE(condition_a) == VARSIZE(condition_b) &&
		memcmp(condition_a, condition_b, VARSIZE(condition_a)) == 0;
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
	DecPolicySet *compiled = dec_compile(defs, n, policy_set_char_len, set_allocator,
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
			def_from_info(previous, a, &defs[n++]);	/* deleted or deactivated */
			i++;
		}
		else if (b && (a == NULL || b->id < a->id))
		{
			def_from_info(fresh, b, &defs[n++]);	/* new or activated */
			j++;
		}
		else
		{
			if (!same_policy(previous, a, fresh, b))
			{
				def_from_info(previous, a, &defs[n++]);
				def_from_info(fresh, b, &defs[n++]);
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

/*
 * A set's image: one block that refers to itself by offsets, so that it can
 * live in shared memory mapped anywhere (shared_sets.c) or in the backend.
 *   ImageHeader, PolicyInfo[n], by_id uint32[n], the strings and conditions
 *   (names, risk levels, patterns NUL-terminated; jsonpath values aligned),
 *   then the evaluator's own image.
 */
typedef struct ImageHeader
{
	uint32		magic;
	uint32		n_policies;
	uint64		size;
	uint64		policies_off;
	uint64		by_id_off;
	uint64		compiled_off;
} ImageHeader;

#define IMAGE_MAGIC 0x44505331	/* "DPS1" */

/* One policy as read from the table, before the image is laid out. */
typedef struct ReadPolicy
{
	int64		id;
	int32		priority;
	DecEffect	effect;
	char	   *name;
	char	   *risk_level;
	char	   *pattern[DEC_NDIMS];
	JsonPath   *condition;
} ReadPolicy;

static int
compare_read_ids(const void *a, const void *b, void *arg)
{
	const ReadPolicy *policies = arg;
	int64		x = policies[*(const uint32 *) a].id;
	int64		y = policies[*(const uint32 *) b].id;

	return (x > y) - (x < y);
}

/* The columns of decide.policies that a set is compiled from. */
typedef enum PolicyColumn
{
	PC_ID,
	PC_NAME,
	PC_EFFECT,
	PC_PRIORITY,
	PC_ACTOR,
	PC_ACTION,
	PC_RESOURCE,
	PC_CONDITION,
	PC_RISK_LEVEL,
	PC_ACTIVE,
	POLICY_COLUMNS
} PolicyColumn;

static const char *const policy_column_names[POLICY_COLUMNS] = {
	"id", "name", "effect", "priority", "actor", "action", "resource", "condition",
	"risk_level", "active"
};

/* Where each column is in a tuple descriptor of decide.policies' row type. */
static void
find_policy_columns(TupleDesc desc, AttrNumber *attnums)
{
	int			c;
	int			a;

	for (c = 0; c < POLICY_COLUMNS; c++)
	{
		attnums[c] = InvalidAttrNumber;
		for (a = 0; a < desc->natts; a++)
			if (!TupleDescAttr(desc, a)->attisdropped &&
				strcmp(NameStr(TupleDescAttr(desc, a)->attname), policy_column_names[c]) == 0)
				attnums[c] = a + 1;
		if (attnums[c] == InvalidAttrNumber)
			elog(ERROR, "decide.policies has no column %s", policy_column_names[c]);
	}
}

/*
 * Adds one policy row to a growing array, if it is active; rows come from
 * the table or from decide_policies_at(), which returns the table's rows.
 */
static void
add_read_policy(HeapTuple tuple, TupleDesc desc, const AttrNumber *attnums, Datum *values,
				bool *nulls, LabelCache *labels, ReadPolicy **policies, uint32 *n,
				uint32 *capacity)
{
	ReadPolicy *p;
	int			d;

#define VALUE(column) (values[attnums[column] - 1])
	heap_deform_tuple(tuple, desc, values, nulls);
	if (!DatumGetBool(VALUE(PC_ACTIVE)))
		return;
	if (*n == *capacity)
	{
		*capacity *= 2;
		*policies = repalloc_huge(*policies, sizeof(ReadPolicy) * *capacity);
	}
	p = &(*policies)[(*n)++];
	p->id = DatumGetInt64(VALUE(PC_ID));
	p->name = TextDatumGetCString(VALUE(PC_NAME));
	p->effect = strcmp(enum_label(labels, DatumGetObjectId(VALUE(PC_EFFECT))),
					   "deny") == 0 ? DEC_DENY : DEC_ALLOW;
	p->priority = DatumGetInt32(VALUE(PC_PRIORITY));
	p->risk_level = enum_label(labels, DatumGetObjectId(VALUE(PC_RISK_LEVEL)));
	for (d = 0; d < DEC_NDIMS; d++)
		p->pattern[d] = TextDatumGetCString(VALUE(PC_ACTOR + d));
	p->condition = nulls[attnums[PC_CONDITION] - 1] ? NULL :
		DatumGetJsonPathPCopy(VALUE(PC_CONDITION));
#undef VALUE
}

/*
 * Reads the active policies (in the current context): under a snapshot
 * from the table, or, with no snapshot, as they were at an epoch, from
 * decide_policies_at() in functions_schema (through SPI, connected by the
 * caller).
 */
static ReadPolicy *
read_policies(Snapshot snapshot, int64 as_of_epoch, Oid functions_schema, uint32 *count)
{
	uint32		capacity = 64;
	uint32		n = 0;
	ReadPolicy *policies = palloc_extended(sizeof(ReadPolicy) * capacity, MCXT_ALLOC_HUGE);
	LabelCache	labels = {0};
	AttrNumber	attnums[POLICY_COLUMNS];
	Datum	   *values;
	bool	   *nulls;

	if (snapshot != NULL)
	{
		Relation	rel = table_open(catalog.policies, AccessShareLock);
		TupleDesc	desc = RelationGetDescr(rel);
		TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
		HeapTuple	tuple;

		find_policy_columns(desc, attnums);
		values = palloc(sizeof(Datum) * desc->natts);
		nulls = palloc(sizeof(bool) * desc->natts);
		while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
		{
			CHECK_FOR_INTERRUPTS();
			add_read_policy(tuple, desc, attnums, values, nulls, &labels, &policies, &n,
							&capacity);
		}
		table_endscan(scan);
		table_close(rel, AccessShareLock);
	}
	else
	{
		Oid			argtypes[1] = {INT8OID};
		Datum		args[1] = {Int64GetDatum(as_of_epoch)};
		TupleDesc	desc;
		uint64		i;

		if (SPI_execute_with_args(psprintf("SELECT * FROM %s.decide_policies_at($1)",
										   quote_identifier(get_namespace_name(functions_schema))),
								  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the policies as of epoch " INT64_FORMAT, as_of_epoch);
		desc = SPI_tuptable->tupdesc;
		find_policy_columns(desc, attnums);
		values = palloc(sizeof(Datum) * desc->natts);
		nulls = palloc(sizeof(bool) * desc->natts);
		for (i = 0; i < SPI_processed; i++)
		{
			CHECK_FOR_INTERRUPTS();
			add_read_policy(SPI_tuptable->vals[i], desc, attnums, values, nulls, &labels,
							&policies, &n, &capacity);
		}
	}
	*count = n;
	return policies;
}

static Size
add_bytes(Size *size, Size bytes, Size align)
{
	Size		off = TYPEALIGN(align, *size);

	*size = off + bytes;
	return off;
}

/*
 * Builds the image of the active policies under a snapshot, in the current
 * memory context; scratch work goes to a context of its own.
 */
static char *
build_image(Snapshot snapshot, int64 as_of_epoch, Oid functions_schema, Size *size_out)
{
	MemoryContext target = CurrentMemoryContext;
	MemoryContext scratch_context = AllocSetContextCreate(CurrentMemoryContext,
														  "decide policy set load",
														  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(scratch_context);
	uint32		n;
	ReadPolicy *read = read_policies(snapshot, as_of_epoch, functions_schema, &n);
	DecPolicyDef *defs = palloc_extended(sizeof(DecPolicyDef) * Max(n, 1), MCXT_ALLOC_HUGE);
	uint32	   *by_id = palloc_extended(sizeof(uint32) * Max(n, 1), MCXT_ALLOC_HUGE);
	DecAllocator scratch = decide_allocator(scratch_context);
	DecPolicySet *compiled;
	const void *compiled_image;
	size_t		compiled_size;
	Size		size = sizeof(ImageHeader);
	Size		policies_off;
	Size		by_id_off;
	Size		strings_off;
	Size		compiled_off;
	Size		at;
	ImageHeader *header;
	PolicyInfo *infos;
	char	   *image;
	uint32		i;
	int			d;

	for (i = 0; i < n; i++)
	{
		defs[i].id = read[i].id;
		defs[i].priority = read[i].priority;
		defs[i].effect = read[i].effect;
		defs[i].has_condition = read[i].condition != NULL;
		for (d = 0; d < DEC_NDIMS; d++)
		{
			defs[i].pattern[d].ptr = read[i].pattern[d];
			defs[i].pattern[d].len = strlen(read[i].pattern[d]);
		}
		by_id[i] = i;
	}
	compiled = compile(defs, n, &scratch, &scratch);
	compiled_image = dec_policy_set_image(compiled, &compiled_size);
	qsort_arg(by_id, n, sizeof(uint32), compare_read_ids, read);

	policies_off = add_bytes(&size, sizeof(PolicyInfo) * (Size) n, MAXIMUM_ALIGNOF);
	by_id_off = add_bytes(&size, sizeof(uint32) * (Size) n, MAXIMUM_ALIGNOF);
	strings_off = add_bytes(&size, 0, MAXIMUM_ALIGNOF);
	for (i = 0; i < n; i++)
	{
		(void) add_bytes(&size, strlen(read[i].name) + 1, 1);
		(void) add_bytes(&size, strlen(read[i].risk_level) + 1, 1);
		for (d = 0; d < DEC_NDIMS; d++)
			(void) add_bytes(&size, strlen(read[i].pattern[d]) + 1, 1);
		if (read[i].condition)
			(void) add_bytes(&size, VARSIZE(read[i].condition), MAXIMUM_ALIGNOF);
	}
	compiled_off = add_bytes(&size, compiled_size, MAXIMUM_ALIGNOF);
	if (size > PG_UINT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the active policies are too large to compile"),
				 errdetail("Their compiled set would exceed 4 GB (%u policies).", n)));

	image = MemoryContextAllocExtended(target, size, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	header = (ImageHeader *) image;
	header->magic = IMAGE_MAGIC;
	header->n_policies = n;
	header->size = size;
	header->policies_off = policies_off;
	header->by_id_off = by_id_off;
	header->compiled_off = compiled_off;
	infos = (PolicyInfo *) (image + policies_off);
	at = strings_off;
	for (i = 0; i < n; i++)
	{
		PolicyInfo *info = &infos[i];
		Size		len;

#define PUT_STRING(field, str) \
		(len = strlen(str) + 1, memcpy(image + at, (str), len), (field) = (uint32) at, at += len)

		info->id = read[i].id;
		info->priority = read[i].priority;
		info->effect = read[i].effect;
		PUT_STRING(info->name_off, read[i].name);
		PUT_STRING(info->risk_level_off, read[i].risk_level);
		for (d = 0; d < DEC_NDIMS; d++)
			PUT_STRING(info->pattern_off[d], read[i].pattern[d]);
#undef PUT_STRING
		if (read[i].condition)
		{
			at = MAXALIGN(at);
			memcpy(image + at, read[i].condition, VARSIZE(read[i].condition));
			info->condition_off = (uint32) at;
			info->condition_traits = condition_traits(read[i].condition);
			at += VARSIZE(read[i].condition);
		}
	}
	Assert(at <= compiled_off);
	memcpy(image + by_id_off, by_id, sizeof(uint32) * n);
	memcpy(image + compiled_off, compiled_image, compiled_size);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(scratch_context);
	*size_out = size;
	return image;
}

/* Points a set at an image (its own, or shared). */
static void
open_image(PolicySet *set, const char *image)
{
	const ImageHeader *header = (const ImageHeader *) image;
	DecAllocator allocator = decide_allocator(set->context);

	Assert(header->magic == IMAGE_MAGIC);
	set->image = image;
	set->n_policies = header->n_policies;
	set->policies = (const PolicyInfo *) (image + header->policies_off);
	set->by_id = (const uint32 *) (image + header->by_id_off);
	set->compiled = dec_policy_set_open(image + header->compiled_off, policy_set_char_len, &allocator);
}

/* Builds the set's image in its own context. */
static void
build_private(PolicySet *set, Snapshot snapshot)
{
	MemoryContext old = MemoryContextSwitchTo(set->context);
	Size		size;

	open_image(set, build_image(snapshot, -1, InvalidOid, &size));
	MemoryContextSwitchTo(old);
}

/*
 * Takes the shared set of this version, building and publishing it if no
 * process has; false when it must stay private (then nothing is set).
 */
static bool
attach_shared(PolicySet *set, Snapshot snapshot, instr_time start)
{
	const char *image;
	int			slot;

	switch (shared_sets_acquire(SHARED_POLICY_SET, &set->version, set->epoch, &image, &slot))
	{
		case SHARED_SET_FOUND:
			break;
		case SHARED_SET_UNAVAILABLE:
			return false;
		case SHARED_SET_BUILD:
			{
				MemoryContext build_context = AllocSetContextCreate(CurrentMemoryContext,
																	"decide policy set build",
																	ALLOCSET_DEFAULT_SIZES);
				MemoryContext old = MemoryContextSwitchTo(build_context);
				char	   *built = NULL;
				Size		size;
				instr_time	duration;
				bool		published;

				PG_TRY();
				{
					built = build_image(snapshot, -1, InvalidOid, &size);
				}
				PG_CATCH();
				{
					shared_sets_abandon(slot);
					PG_RE_THROW();
				}
				PG_END_TRY();
				INSTR_TIME_SET_CURRENT(duration);
				INSTR_TIME_SUBTRACT(duration, start);
				published = shared_sets_publish(slot, built, size,
												 INSTR_TIME_GET_MILLISEC(duration), &image);
				MemoryContextSwitchTo(old);
				if (!published)
				{
					/* Too large to share: keep this private copy. */
					MemoryContextSetParent(build_context, set->context);
					open_image(set, built);
					return true;
				}
				MemoryContextDelete(build_context);
				break;
			}
	}
	set->shared_slot = slot;
	open_image(set, image);
	return true;
}

static PolicySet *
load_policy_set(void)
{
	MemoryContext set_context;
	PolicySet  *set;
	Snapshot	snapshot;
	instr_time	start;
	instr_time	duration;

	INSTR_TIME_SET_CURRENT(start);
	lookup_catalog();

	/*
	 * Built under the caller's context, so an error mid-way frees it with the
	 * transaction; re-parented to TopMemoryContext once complete.
	 */
	set_context = AllocSetContextCreate(CurrentMemoryContext, "decide policy set",
										ALLOCSET_DEFAULT_SIZES);
	set = MemoryContextAllocZero(set_context, sizeof(PolicySet));
	set->context = set_context;
	set->shared_slot = -1;
	set->generation = next_generation++;

	/* The epoch row and the policies are read under one snapshot. */
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	set->epoch = policy_set_read_epoch(snapshot, &set->store_id, &set->version,
									   &set->entities_version, &set->includes_own_changes);
	/* A set read under this transaction's own change is never shared. */
	if (set->includes_own_changes || !attach_shared(set, snapshot, start))
		build_private(set, snapshot);
	UnregisterSnapshot(snapshot);
	MemoryContextSetParent(set_context, TopMemoryContext);

	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	set->load_ms = INSTR_TIME_GET_MILLISEC(duration);
	stats_count(STAT_POLICY_RELOADS, 1);
	stats_gauge_set(GAUGE_LAST_RELOAD_US, (uint64) (INSTR_TIME_GET_DOUBLE(duration) * 1e6));
	stats_gauge_set(GAUGE_LAST_RELOAD_POLICIES, set->n_policies);
	return set;
}

/* Lets go of a set: its pin in shared memory, and its memory. */
static void
free_policy_set(PolicySet *set)
{
	if (set->shared_slot >= 0)
		shared_sets_release(set->shared_slot);
	MemoryContextDelete(set->context);
}

/*
 * The policies as they were at an epoch, compiled into a set of this
 * backend's own: never shared, never current, not cached (as if read under
 * the caller's own change).  Its entities are the caller's to attach
 * (as_of_entities).  The caller is connected to SPI and names the schema of
 * the extension's functions; errors for an epoch outside the history come
 * from decide_policies_at().
 */
PolicySet *
policy_set_as_of(int64 epoch, Oid functions_schema)
{
	PolicySet  *current = policy_set_current();
	MemoryContext set_context = AllocSetContextCreate(CurrentMemoryContext,
													  "decide policy set as of an epoch",
													  ALLOCSET_DEFAULT_SIZES);
	PolicySet  *set = MemoryContextAllocZero(set_context, sizeof(PolicySet));
	MemoryContext old;
	Size		size;

	set->context = set_context;
	set->shared_slot = -1;
	set->generation = next_generation++;
	set->epoch = epoch;
	set->store_id = current->store_id;
	set->includes_own_changes = true;
	set->carry_from_epoch = -1;
	old = MemoryContextSwitchTo(set_context);
	open_image(set, build_image(NULL, epoch, functions_schema, &size));
	MemoryContextSwitchTo(old);
	return set;
}

void
policy_set_free(PolicySet *set)
{
	Assert(set != current_set);
	free_policy_set(set);
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
			free_policy_set(current_set);
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
