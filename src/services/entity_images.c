/*
 * entity_images.c — decide.entities once per entities version in shared
 * memory, so that a backend finds an entity it has not seen yet without an
 * index probe.
 *
 * An image (src/core/entity_image.c) holds every row of decide.entities as
 * committed under one entities version (decide.epoch.entities_version, drawn
 * anew by every statement that changes entities), in a slot of
 * shared_sets.c.  The first backend that needs entities under a version
 * builds it from one sequential read of the table, under a snapshot whose
 * entities version is that one, and publishes it; others go on with index
 * probes meanwhile (they never wait for it) and attach once it is there.
 * An image is not built again within nine times the last build's duration
 * (building takes at most a tenth of the time while entities keep
 * changing), nor when it would take more than a quarter of
 * decide.shared_policy_memory.  Under the transaction's own uncommitted
 * changes, entities come from the table, as without preloading.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/bufmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "entity_image.h"
#include "entity_images.h"
#include "shared_sets.h"

#define RETRY_MS 1000

bool		entity_images_may_build = true;

/* The image this backend has pinned, and the version it is of. */
static const char *pinned_image = NULL;
static int	pinned_slot = -1;
static pg_uuid_t pinned_version;

/* A version with no image for now, and when to ask again. */
static pg_uuid_t unavailable_version;
static TimestampTz retry_at = 0;

static DecStr
copy_text(text *value)
{
	uint32		len = VARSIZE_ANY_EXHDR(value);
	DecStr		s = {pnstrdup(VARDATA_ANY(value), len), len};

	return s;
}

/*
 * Adds a row of decide.entities (uid, parents, attrs: its first three
 * columns) to a growing array, copying what it points to.
 */
static void
add_row(HeapTuple tuple, TupleDesc desc, DecEntityRow **rows, uint32 *n, uint32 *capacity)
{
	DecEntityRow *row;
	bool		isnull;
	Datum		value;

	if (*n == *capacity)
	{
		*capacity *= 2;
		*rows = repalloc_huge(*rows, sizeof(DecEntityRow) * *capacity);
	}
	row = &(*rows)[(*n)++];
	memset(row, 0, sizeof(*row));
	row->uid = copy_text(DatumGetTextPP(heap_getattr(tuple, 1, desc, &isnull)));
	value = heap_getattr(tuple, 2, desc, &isnull);
	if (!isnull)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			count;
		int			i;
		DecStr	   *parents;

		deconstruct_array(DatumGetArrayTypeP(value), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &count);
		parents = palloc(sizeof(DecStr) * Max(count, 1));
		for (i = 0; i < count; i++)
			if (!nulls[i])
				parents[row->n_parents++] = copy_text(DatumGetTextPP(elems[i]));
		row->parents = parents;
	}
	value = heap_getattr(tuple, 3, desc, &isnull);
	if (!isnull)
	{
		Jsonb	   *attrs = DatumGetJsonbP(value);

		if (JsonContainerSize(&attrs->root) > 0)
		{
			char	   *copy = palloc(VARSIZE(attrs));

			memcpy(copy, attrs, VARSIZE(attrs));
			row->attrs = copy;
			row->attrs_len = VARSIZE(attrs);
		}
	}
}

/*
 * Reads every entity row under a snapshot of the set's entities version and
 * builds the image in the current memory context.  NULL when the entities
 * changed since the set was read, or the image would be too large.
 */
static char *
build_image(const PolicySet *set, Size *size)
{
	const DecideCatalog *catalog = policy_set_catalog();
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	pg_uuid_t	entities_version;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	TupleDesc	desc;
	DecEntityRow *rows;
	uint32		n = 0;
	uint32		capacity = 1024;
	DecAllocator allocator;
	char	   *image = NULL;

	(void) policy_set_read_epoch(snapshot, NULL, NULL, &entities_version, NULL);
	if (memcmp(&entities_version, &set->entities_version, sizeof(pg_uuid_t)) != 0)
	{
		UnregisterSnapshot(snapshot);
		return NULL;
	}
	rel = table_open(catalog->entities, AccessShareLock);
	/* An image takes about half the table's pages: do not read for nothing. */
	if ((double) RelationGetNumberOfBlocks(rel) * BLCKSZ > shared_sets_memory_limit() / 2.0)
	{
		table_close(rel, AccessShareLock);
		UnregisterSnapshot(snapshot);
		return NULL;
	}
	desc = RelationGetDescr(rel);
	rows = palloc(sizeof(DecEntityRow) * capacity);
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		if ((n & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		add_row(tuple, desc, &rows, &n, &capacity);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	UnregisterSnapshot(snapshot);

	allocator = decide_allocator(CurrentMemoryContext);
	image = dec_entity_image_build(rows, n, &allocator, size);
	if (image != NULL && *size > shared_sets_memory_limit() / 4)
		image = NULL;
	return image;
}

static void
release_pinned(void)
{
	if (pinned_slot >= 0)
		shared_sets_release(pinned_slot);
	pinned_slot = -1;
	pinned_image = NULL;
}

/* Builds and publishes the image of the set's entities version; NULL: none. */
static const char *
build_and_publish(const PolicySet *set, int slot)
{
	MemoryContext build_context = AllocSetContextCreate(CurrentMemoryContext,
														"decide entity image build",
														ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(build_context);
	const char *shared = NULL;
	char	   *built = NULL;
	Size		size = 0;
	instr_time	start;
	instr_time	duration;

	INSTR_TIME_SET_CURRENT(start);
	PG_TRY();
	{
		built = build_image(set, &size);
	}
	PG_CATCH();
	{
		shared_sets_abandon(slot);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	if (built == NULL)
		shared_sets_give_up(slot);
	else
	{
		INSTR_TIME_SET_CURRENT(duration);
		INSTR_TIME_SUBTRACT(duration, start);
		if (!shared_sets_publish(slot, built, size, INSTR_TIME_GET_MILLISEC(duration), &shared))
			shared = NULL;
	}
	MemoryContextDelete(build_context);
	return shared;
}

const void *
entity_images_as_of(int64 epoch, Oid functions_schema, MemoryContext context)
{
	MemoryContext scratch = AllocSetContextCreate(CurrentMemoryContext,
												  "decide entities as of an epoch",
												  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(scratch);
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(epoch)};
	uint32		capacity = 1024;
	uint32		n = 0;
	DecEntityRow *rows = palloc(sizeof(DecEntityRow) * capacity);
	DecAllocator allocator = decide_allocator(context);
	void	   *image;
	size_t		size;
	uint64		i;

	if (SPI_execute_with_args(psprintf("SELECT uid, parents, attrs FROM %s.decide_entities_at($1)",
									   quote_identifier(get_namespace_name(functions_schema))),
							  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the entities as of epoch " INT64_FORMAT, epoch);
	for (i = 0; i < SPI_processed; i++)
	{
		if ((i & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		add_row(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, &rows, &n, &capacity);
	}
	image = dec_entity_image_build(rows, n, &allocator, &size);
	if (image == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the entities as of epoch " INT64_FORMAT " are too large to load", epoch),
				 errdetail("Their image would exceed 4 GB (%u entities).", n)));
	MemoryContextSwitchTo(old);
	MemoryContextDelete(scratch);
	return image;
}

const void *
entity_images_get(const PolicySet *set)
{
	const char *image = NULL;
	int			slot = -1;

	if (set->as_of_entities)
		return set->as_of_entities;

	if (!policy_set_entities_shareable(set))
		return NULL;
	if (pinned_image && memcmp(&pinned_version, &set->entities_version, sizeof(pg_uuid_t)) == 0)
		return pinned_image;
	if (memcmp(&unavailable_version, &set->entities_version, sizeof(pg_uuid_t)) == 0 &&
		GetCurrentTimestamp() < retry_at)
		return NULL;

	release_pinned();
	switch (shared_sets_acquire(SHARED_ENTITY_IMAGE, &set->entities_version, set->epoch,
								&image, &slot))
	{
		case SHARED_SET_FOUND:
			break;
		case SHARED_SET_BUILD:
			if (entity_images_may_build)
				image = build_and_publish(set, slot);
			else
				shared_sets_abandon(slot);
			break;
		case SHARED_SET_UNAVAILABLE:
			image = NULL;
			break;
	}
	if (image == NULL)
	{
		unavailable_version = set->entities_version;
		retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RETRY_MS);
		return NULL;
	}
	pinned_image = image;
	pinned_slot = slot;
	pinned_version = set->entities_version;
	return pinned_image;
}
