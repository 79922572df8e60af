/*
 * worker_registry.c — where decide's background processes are: the
 * launcher's latch, and an entry per database that has, or is to have, a
 * worker (worker.c): its latch and PID while it runs, whether it found no
 * decide extension there, whether a backend decided there since the
 * launcher last looked, and until when workers must stay out (database DDL
 * that needs everyone gone).  Backends use it to wake their database's
 * worker; the launcher (launcher.c), to decide where to start one.
 *
 * Locking: one spinlock over the registry; every access is a few loads and
 * stores under it, no call out.  SetLatch on a latch whose owner has just
 * exited is harmless (the latch is in its PGPROC, which stays in shared
 * memory).
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "worker_registry.h"

typedef struct WorkerEntry
{
	Oid			database;		/* InvalidOid: a free entry */
	int			pid;			/* its worker; 0: none runs */
	Latch	   *latch;
	bool		without_decide; /* its last worker found no decide there */
	bool		wanted;			/* a backend decided there since the launcher looked */
	bool		log_analyzed;	/* its ANALYZE helper analyzed the log since the worker asked */
	TimestampTz away_until;		/* no worker before */
} WorkerEntry;

typedef struct WorkerRegistry
{
	slock_t		mutex;
	Latch	   *launcher_latch;
	int			n;
	WorkerEntry entries[FLEXIBLE_ARRAY_MEMBER];
} WorkerRegistry;

static WorkerRegistry *registry = NULL;
static bool wake_at_commit = false;
static bool note_decide_at_commit = false;

Size
worker_registry_shmem_size(int max_databases)
{
	return add_size(offsetof(WorkerRegistry, entries),
					mul_size(sizeof(WorkerEntry), max_databases));
}

void
worker_registry_shmem_startup(int max_databases)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	registry = ShmemInitStruct("decide worker registry",
							   worker_registry_shmem_size(max_databases), &found);
	if (!found)
	{
		SpinLockInit(&registry->mutex);
		registry->launcher_latch = NULL;
		registry->n = max_databases;
		memset(registry->entries, 0, sizeof(WorkerEntry) * max_databases);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* The database's entry, or with claim a free one for it; NULL: none.  Under the mutex. */
static WorkerEntry *
entry_of(Oid database, bool claim)
{
	WorkerEntry *free_entry = NULL;
	int			i;

	for (i = 0; i < registry->n; i++)
	{
		WorkerEntry *entry = &registry->entries[i];

		if (entry->database == database)
			return entry;
		if (free_entry == NULL && entry->database == InvalidOid)
			free_entry = entry;
	}
	if (!claim || free_entry == NULL)
		return NULL;
	memset(free_entry, 0, sizeof(WorkerEntry));
	free_entry->database = database;
	return free_entry;
}

void
worker_registry_attach_launcher(Latch *latch)
{
	SpinLockAcquire(&registry->mutex);
	registry->launcher_latch = latch;
	SpinLockRelease(&registry->mutex);
}

void
worker_wake_launcher(void)
{
	Latch	   *latch;

	if (registry == NULL)
		return;
	SpinLockAcquire(&registry->mutex);
	latch = registry->launcher_latch;
	SpinLockRelease(&registry->mutex);
	if (latch)
		SetLatch(latch);
}

bool
worker_registry_attach(Oid database, Latch *latch)
{
	WorkerEntry *entry;
	bool		attached = false;

	SpinLockAcquire(&registry->mutex);
	entry = entry_of(database, true);
	if (entry && entry->pid == 0)
	{
		entry->pid = MyProcPid;
		entry->latch = latch;
		entry->without_decide = false;
		attached = true;
	}
	SpinLockRelease(&registry->mutex);
	return attached;
}

void
worker_registry_detach(Oid database, bool without_decide)
{
	WorkerEntry *entry;

	SpinLockAcquire(&registry->mutex);
	entry = entry_of(database, false);
	if (entry && entry->pid == MyProcPid)
	{
		entry->pid = 0;
		entry->latch = NULL;
		entry->without_decide = without_decide;
	}
	SpinLockRelease(&registry->mutex);
}

int
worker_registry_pid(Oid database)
{
	WorkerEntry *entry;
	int			pid = 0;

	if (registry == NULL)
		return 0;
	SpinLockAcquire(&registry->mutex);
	entry = entry_of(database, false);
	if (entry)
		pid = entry->pid;
	SpinLockRelease(&registry->mutex);
	return pid;
}

void
worker_registry_note_log_analyzed(Oid database)
{
	WorkerEntry *entry;

	SpinLockAcquire(&registry->mutex);
	entry = entry_of(database, false);
	if (entry)
		entry->log_analyzed = true;
	SpinLockRelease(&registry->mutex);
}

bool
worker_registry_take_log_analyzed(Oid database)
{
	WorkerEntry *entry;
	bool		analyzed = false;

	SpinLockAcquire(&registry->mutex);
	entry = entry_of(database, false);
	if (entry)
	{
		analyzed = entry->log_analyzed;
		entry->log_analyzed = false;
	}
	SpinLockRelease(&registry->mutex);
	return analyzed;
}

/* The latch of this database's worker; NULL: none runs. */
static Latch *
current_latch(void)
{
	WorkerEntry *entry;
	Latch	   *latch = NULL;

	if (registry == NULL)
		return NULL;
	SpinLockAcquire(&registry->mutex);
	entry = entry_of(MyDatabaseId, false);
	if (entry && entry->pid != 0)
		latch = entry->latch;
	SpinLockRelease(&registry->mutex);
	return latch;
}

bool
worker_latch_attached(void)
{
	return current_latch() != NULL;
}

void
worker_wake(void)
{
	Latch	   *latch = current_latch();

	if (latch)
		SetLatch(latch);
}

static void
on_xact_event(XactEvent event, void *arg)
{
	if (!wake_at_commit && !note_decide_at_commit)
		return;
	if (event == XACT_EVENT_COMMIT)
	{
		/* after the commit is visible */
		if (wake_at_commit)
			worker_wake();
		if (note_decide_at_commit)
			worker_registry_note_decide(MyDatabaseId);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
		wake_at_commit = note_decide_at_commit = false;
}

static void
register_xact_callback(void)
{
	static bool registered = false;

	if (!registered)
	{
		RegisterXactCallback(on_xact_event, NULL);
		registered = true;
	}
}

void
worker_wake_at_commit(void)
{
	register_xact_callback();
	wake_at_commit = true;
}

void
worker_registry_note_decide_at_commit(void)
{
	register_xact_callback();
	note_decide_at_commit = true;
}

void
worker_registry_note_decide(Oid database)
{
	WorkerEntry *entry;
	bool		wake = false;

	if (registry == NULL)
		return;
	SpinLockAcquire(&registry->mutex);
	entry = entry_of(database, true);
	if (entry && entry->pid == 0 && !entry->wanted)
	{
		entry->wanted = true;
		wake = true;
	}
	SpinLockRelease(&registry->mutex);
	if (wake)
		worker_wake_launcher();
}

int
worker_registry_keep_away(Oid database, TimestampTz until)
{
	WorkerEntry *entry;
	int			pid = 0;

	if (registry == NULL)
		return 0;
	SpinLockAcquire(&registry->mutex);
	entry = entry_of(database, true);
	if (entry)
	{
		entry->away_until = until;
		pid = entry->pid;
	}
	SpinLockRelease(&registry->mutex);
	return pid;
}

int
worker_registry_take_wanted(Oid *databases, int max)
{
	int			n = 0;
	int			i;

	SpinLockAcquire(&registry->mutex);
	for (i = 0; i < registry->n && n < max; i++)
	{
		WorkerEntry *entry = &registry->entries[i];

		if (entry->database != InvalidOid && entry->wanted)
		{
			entry->wanted = false;
			databases[n++] = entry->database;
		}
	}
	SpinLockRelease(&registry->mutex);
	return n;
}

bool
worker_registry_kept_away(Oid database, TimestampTz now)
{
	WorkerEntry *entry;
	bool		away = false;

	SpinLockAcquire(&registry->mutex);
	entry = entry_of(database, false);
	if (entry)
		away = now < entry->away_until;
	SpinLockRelease(&registry->mutex);
	return away;
}

bool
worker_registry_stopped(Oid database)
{
	WorkerEntry *entry;
	bool		without_decide = false;
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&registry->mutex);
	entry = entry_of(database, false);
	if (entry)
	{
		without_decide = entry->without_decide;
		entry->without_decide = false;
		if (entry->pid == 0 && !entry->wanted && now >= entry->away_until)
			entry->database = InvalidOid;
	}
	SpinLockRelease(&registry->mutex);
	return without_decide;
}

void
worker_registry_forget(Oid database)
{
	WorkerEntry *entry;

	SpinLockAcquire(&registry->mutex);
	entry = entry_of(database, false);
	if (entry && entry->pid == 0)
		entry->database = InvalidOid;
	SpinLockRelease(&registry->mutex);
}
