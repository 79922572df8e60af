/*
 * shared_sets.c — compiled policy sets kept once per server, in shared
 * memory, so that every backend reads the same copy instead of compiling
 * its own; and, in the same slots, images of decide.entities
 * (entity_images.c), which follow the same rules except that nobody waits
 * for one being built.
 *
 * A set is the image policy_set.c builds (it refers to itself by offsets
 * only), stored in a DSA area and named by its database and policy-set
 * version (a random UUID drawn with every epoch, so an older set is never
 * taken for a newer one).  The first backend that needs a version reserves
 * a slot for it and builds the image privately; the others wait on a
 * condition variable until it is published, or take over when the builder
 * died.  Backends pin the set they use and read it without locks; the last
 * to leave a set that a newer one of its database has replaced frees it.
 * A set that does not fit within decide.shared_policy_memory, or finds no
 * free slot, is compiled privately by each backend (counted in
 * shared_set_fallbacks).  Without shared_preload_libraries, or with the
 * setting at 0, every backend compiles its own, as before.
 *
 * Locking rules:
 *   - every field of every slot is read and written under the lock; a
 *     builder fills its image outside it, before publishing it under it;
 *   - a published image is never written again, and is freed only when no
 *     process pins it: readers use it without any lock;
 *   - nothing else is done while holding the lock but creating or freeing
 *     DSA memory.
 * A backend that exits (or fails) while building or pinning gives its slot
 * back (before_shmem_exit); a crash resets all shared memory anyway.
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/dsa.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "shared_sets.h"
#include "stats.h"

#define MAX_SHARED_SETS 64
#define SETS_TRANCHE "decide_policy_sets"
#define AREA_TRANCHE "decide_policy_set_area"
#define WAIT_POLL_MS 10

typedef enum SlotState
{
	SLOT_EMPTY,
	SLOT_BUILDING,				/* builder is compiling it */
	SLOT_READY,					/* image published */
	SLOT_TOO_LARGE				/* did not fit: backends compile it privately */
} SlotState;

typedef struct SetSlot
{
	SlotState	state;
	SharedSetKind kind;
	Oid			database;
	pg_uuid_t	version;
	int64		epoch;
	int			builder;		/* pid, while building */
	dsa_pointer image;
	Size		size;
	uint32		pins;
	uint64		published;		/* publication order: the oldest unused set goes first */
	TimestampTz built_at;
	double		build_ms;
} SetSlot;

typedef struct SharedSets
{
	LWLock	   *lock;
	ConditionVariable changed;	/* a slot was published or given up */
	int			area_tranche;
	dsa_handle	area_handle;	/* DSM_HANDLE_INVALID until first used */
	uint64		next_publication;
	uint64		bytes_in_use;
	SetSlot		slots[MAX_SHARED_SETS];
} SharedSets;

static SharedSets *sets = NULL;
static dsa_area *area = NULL;
static int	memory_limit_mb = 256;

/* This backend's pins per slot, and the slot it builds (-1: none). */
static uint32 my_pins[MAX_SHARED_SETS];
static int	my_building = -1;
static bool exit_callback_registered = false;

void
shared_sets_define_gucs(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("decide.shared_policy_memory",
							"Shared memory for compiled policy sets, read by every backend.",
							"0 makes every backend compile its own. Needs shared_preload_libraries.",
							&memory_limit_mb, 256, 0, 64 * 1024,
							PGC_POSTMASTER, GUC_UNIT_MB, NULL, NULL, NULL);
}

void
shared_sets_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(SharedSets)));
	RequestNamedLWLockTranche(SETS_TRANCHE, 1);
}

void
shared_sets_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	sets = ShmemInitStruct("decide policy sets", sizeof(SharedSets), &found);
	if (!found)
	{
		memset(sets, 0, sizeof(SharedSets));
		sets->lock = &(GetNamedLWLockTranche(SETS_TRANCHE))->lock;
		ConditionVariableInit(&sets->changed);
		sets->area_tranche = LWLockNewTrancheId();
		sets->area_handle = DSM_HANDLE_INVALID;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Maps the area, creating it on first use (the lock held exclusive). */
static void
attach_area(void)
{
	MemoryContext old;

	if (area != NULL)
		return;
	LWLockRegisterTranche(sets->area_tranche, AREA_TRANCHE);
	old = MemoryContextSwitchTo(TopMemoryContext);
	if (sets->area_handle == DSM_HANDLE_INVALID)
	{
		area = dsa_create(sets->area_tranche);
		dsa_set_size_limit(area, (size_t) memory_limit_mb * 1024 * 1024);
		dsa_pin(area);			/* outlives every backend */
		sets->area_handle = dsa_get_handle(area);
	}
	else
		area = dsa_attach(sets->area_handle);
	dsa_pin_mapping(area);		/* for this backend's lifetime, not a resource owner's */
	MemoryContextSwitchTo(old);
}

static void
free_slot(SetSlot *slot)
{
	if (slot->state == SLOT_READY)
	{
		dsa_free(area, slot->image);
		sets->bytes_in_use -= slot->size;
	}
	memset(slot, 0, sizeof(SetSlot));
	slot->state = SLOT_EMPTY;
}

/*
 * Is a set of a later epoch of the same database published?  (By epoch, not
 * by publication: a slow builder may publish an older epoch last.)
 */
static bool
superseded(const SetSlot *slot)
{
	int			i;

	for (i = 0; i < MAX_SHARED_SETS; i++)
	{
		const SetSlot *other = &sets->slots[i];

		if (other->state == SLOT_READY && other->database == slot->database &&
			other->kind == slot->kind && other->epoch > slot->epoch)
			return true;
	}
	return false;
}

/* Frees the sets nobody uses that a newer one replaces (lock held). */
static void
free_superseded(void)
{
	int			i;

	for (i = 0; i < MAX_SHARED_SETS; i++)
	{
		SetSlot    *slot = &sets->slots[i];

		if ((slot->state == SLOT_READY || slot->state == SLOT_TOO_LARGE) &&
			slot->pins == 0 && superseded(slot))
			free_slot(slot);
	}
}

/* An empty slot, else the oldest one nobody uses (freed); -1: none. */
static int
take_slot(void)
{
	int			victim = -1;
	int			i;

	for (i = 0; i < MAX_SHARED_SETS; i++)
	{
		SetSlot    *slot = &sets->slots[i];

		if (slot->state == SLOT_EMPTY)
			return i;
		if ((slot->state == SLOT_READY || slot->state == SLOT_TOO_LARGE) && slot->pins == 0 &&
			(victim < 0 || slot->published < sets->slots[victim].published))
			victim = i;
	}
	if (victim >= 0)
		free_slot(&sets->slots[victim]);
	return victim;
}

static int
find_slot(Oid database, SharedSetKind kind, const pg_uuid_t *version)
{
	int			i;

	for (i = 0; i < MAX_SHARED_SETS; i++)
	{
		SetSlot    *slot = &sets->slots[i];

		if (slot->state != SLOT_EMPTY && slot->database == database && slot->kind == kind &&
			memcmp(&slot->version, version, sizeof(pg_uuid_t)) == 0)
			return i;
	}
	return -1;
}

/*
 * Was an entity image of this database built so recently that building
 * another now would spend more than a tenth of the time building?
 */
static bool
built_recently(Oid database)
{
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	for (i = 0; i < MAX_SHARED_SETS; i++)
	{
		SetSlot    *slot = &sets->slots[i];

		if ((slot->state == SLOT_READY || slot->state == SLOT_TOO_LARGE) &&
			slot->kind == SHARED_ENTITY_IMAGE && slot->database == database &&
			!TimestampDifferenceExceeds(slot->built_at, now, (int) (slot->build_ms * 9)))
			return true;
	}
	return false;
}

static bool
process_alive(int pid)
{
	return kill(pid, 0) == 0 || errno != ESRCH;
}

/* At exit, or after an error: give back what this backend holds. */
static void
release_all(int code, Datum arg)
{
	int			i;

	if (sets == NULL)
		return;
	/* Exiting from an error raised while holding the lock: it is ours already. */
	if (!LWLockHeldByMe(sets->lock))
		LWLockAcquire(sets->lock, LW_EXCLUSIVE);
	for (i = 0; i < MAX_SHARED_SETS; i++)
	{
		SetSlot    *slot = &sets->slots[i];

		if (my_pins[i] > 0)
		{
			slot->pins -= Min(slot->pins, my_pins[i]);
			my_pins[i] = 0;
		}
		if (slot->state == SLOT_BUILDING && slot->builder == MyProcPid)
			slot->state = SLOT_EMPTY;
	}
	my_building = -1;
	LWLockRelease(sets->lock);
	ConditionVariableBroadcast(&sets->changed);
}

SharedSetLookup
shared_sets_acquire(SharedSetKind kind, const pg_uuid_t *version, int64 epoch,
					const char **image, int *slot_out)
{
	SharedSetLookup result;

	if (sets == NULL || memory_limit_mb == 0)
		return SHARED_SET_UNAVAILABLE;
	if (!exit_callback_registered)
	{
		before_shmem_exit(release_all, (Datum) 0);
		exit_callback_registered = true;
	}

	ConditionVariablePrepareToSleep(&sets->changed);
	for (;;)
	{
		int			i;
		SetSlot    *slot;

		LWLockAcquire(sets->lock, LW_EXCLUSIVE);
		attach_area();
		i = find_slot(MyDatabaseId, kind, version);
		if (i < 0)
		{
			if (kind == SHARED_ENTITY_IMAGE && built_recently(MyDatabaseId))
			{
				LWLockRelease(sets->lock);
				result = SHARED_SET_UNAVAILABLE;
				break;
			}
			i = take_slot();
			if (i < 0)
			{
				LWLockRelease(sets->lock);
				if (kind == SHARED_POLICY_SET)
					stats_count(STAT_SHARED_SET_FALLBACKS, 1);
				result = SHARED_SET_UNAVAILABLE;
				break;
			}
			slot = &sets->slots[i];
			slot->state = SLOT_BUILDING;
			slot->kind = kind;
			slot->database = MyDatabaseId;
			slot->version = *version;
			slot->epoch = epoch;
			slot->builder = MyProcPid;
			LWLockRelease(sets->lock);
			my_building = *slot_out = i;
			result = SHARED_SET_BUILD;
			break;
		}
		slot = &sets->slots[i];
		if (slot->state == SLOT_READY)
		{
			slot->pins++;
			my_pins[i]++;
			*image = dsa_get_address(area, slot->image);
			LWLockRelease(sets->lock);
			*slot_out = i;
			result = SHARED_SET_FOUND;
			break;
		}
		if (slot->state == SLOT_TOO_LARGE)
		{
			LWLockRelease(sets->lock);
			if (kind == SHARED_POLICY_SET)
				stats_count(STAT_SHARED_SET_FALLBACKS, 1);
			result = SHARED_SET_UNAVAILABLE;
			break;
		}
		if (!process_alive(slot->builder))
		{
			/* The builder died without giving the slot back: build it. */
			slot->builder = MyProcPid;
			LWLockRelease(sets->lock);
			my_building = *slot_out = i;
			result = SHARED_SET_BUILD;
			break;
		}
		LWLockRelease(sets->lock);
		if (kind == SHARED_ENTITY_IMAGE)
		{
			/* Decisions go on with index probes meanwhile. */
			result = SHARED_SET_UNAVAILABLE;
			break;
		}
		(void) ConditionVariableTimedSleep(&sets->changed, WAIT_POLL_MS, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	return result;
}

bool
shared_sets_publish(int i, const char *image, Size size, double build_ms,
					const char **shared_image)
{
	SetSlot    *slot = &sets->slots[i];
	dsa_pointer copy;

	Assert(my_building == i);
	copy = dsa_allocate_extended(area, size, DSA_ALLOC_HUGE | DSA_ALLOC_NO_OOM);
	if (!DsaPointerIsValid(copy))
	{
		/* Make room from sets nobody uses any more, and try once more. */
		LWLockAcquire(sets->lock, LW_EXCLUSIVE);
		free_superseded();
		LWLockRelease(sets->lock);
		copy = dsa_allocate_extended(area, size, DSA_ALLOC_HUGE | DSA_ALLOC_NO_OOM);
	}
	if (DsaPointerIsValid(copy))
		memcpy(dsa_get_address(area, copy), image, size);

	LWLockAcquire(sets->lock, LW_EXCLUSIVE);
	my_building = -1;
	if (!DsaPointerIsValid(copy))
	{
		slot->state = SLOT_TOO_LARGE;
		slot->published = ++sets->next_publication;
		slot->built_at = GetCurrentTimestamp();
		slot->build_ms = build_ms;
		LWLockRelease(sets->lock);
		ConditionVariableBroadcast(&sets->changed);
		if (slot->kind == SHARED_POLICY_SET)
			stats_count(STAT_SHARED_SET_FALLBACKS, 1);
		return false;
	}
	slot->state = SLOT_READY;
	slot->image = copy;
	slot->size = size;
	slot->pins = 1;
	my_pins[i]++;
	slot->published = ++sets->next_publication;
	slot->built_at = GetCurrentTimestamp();
	slot->build_ms = build_ms;
	sets->bytes_in_use += size;
	free_superseded();
	*shared_image = dsa_get_address(area, copy);
	LWLockRelease(sets->lock);
	ConditionVariableBroadcast(&sets->changed);
	stats_count(slot->kind == SHARED_POLICY_SET ? STAT_SHARED_SET_BUILDS : STAT_ENTITY_IMAGE_BUILDS, 1);
	return true;
}

void
shared_sets_abandon(int i)
{
	SetSlot    *slot = &sets->slots[i];

	LWLockAcquire(sets->lock, LW_EXCLUSIVE);
	if (slot->state == SLOT_BUILDING && slot->builder == MyProcPid)
		slot->state = SLOT_EMPTY;
	my_building = -1;
	LWLockRelease(sets->lock);
	ConditionVariableBroadcast(&sets->changed);
}

Size
shared_sets_memory_limit(void)
{
	return sets == NULL ? 0 : (Size) memory_limit_mb * 1024 * 1024;
}

void
shared_sets_give_up(int i)
{
	SetSlot    *slot = &sets->slots[i];

	LWLockAcquire(sets->lock, LW_EXCLUSIVE);
	if (slot->state == SLOT_BUILDING && slot->builder == MyProcPid)
	{
		slot->state = SLOT_TOO_LARGE;
		slot->published = ++sets->next_publication;
		slot->built_at = GetCurrentTimestamp();
	}
	my_building = -1;
	LWLockRelease(sets->lock);
	ConditionVariableBroadcast(&sets->changed);
}

void
shared_sets_release(int i)
{
	SetSlot    *slot = &sets->slots[i];

	LWLockAcquire(sets->lock, LW_EXCLUSIVE);
	if (my_pins[i] > 0)
	{
		my_pins[i]--;
		slot->pins--;
	}
	if (slot->pins == 0 && slot->state == SLOT_READY && superseded(slot))
		free_slot(slot);
	LWLockRelease(sets->lock);
}

void
shared_sets_report(SharedSetKind kind, const pg_uuid_t *version, SharedSetReport *report)
{
	int			i;

	memset(report, 0, sizeof(*report));
	if (sets == NULL)
		return;
	LWLockAcquire(sets->lock, LW_SHARED);
	i = find_slot(MyDatabaseId, kind, version);
	if (i >= 0 && sets->slots[i].state == SLOT_READY)
	{
		const SetSlot *slot = &sets->slots[i];

		report->present = true;
		report->epoch = slot->epoch;
		report->bytes = slot->size;
		report->built_at = slot->built_at;
		report->build_ms = slot->build_ms;
	}
	report->bytes_in_use = sets->bytes_in_use;
	LWLockRelease(sets->lock);
}
