/*
 * worker_latch.c — the worker's latch in shared memory, for backends to set.
 *
 * Locking: the pointer is written by the worker under a spinlock and read
 * under it; SetLatch on a latch whose owner has just exited is harmless
 * (the latch is in its PGPROC, which stays in shared memory).
 */
#include "postgres.h"

#include "access/xact.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"

#include "worker_latch.h"

typedef struct WorkerLatch
{
	slock_t		mutex;
	Latch	   *latch;
} WorkerLatch;

static WorkerLatch *shared = NULL;
static bool wake_at_commit = false;

Size
worker_latch_shmem_size(void)
{
	return sizeof(WorkerLatch);
}

void
worker_latch_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("decide worker latch", sizeof(WorkerLatch), &found);
	if (!found)
	{
		SpinLockInit(&shared->mutex);
		shared->latch = NULL;
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
set_latch_pointer(Latch *latch)
{
	SpinLockAcquire(&shared->mutex);
	shared->latch = latch;
	SpinLockRelease(&shared->mutex);
}

void
worker_latch_attach(Latch *latch)
{
	set_latch_pointer(latch);
}

void
worker_latch_detach(void)
{
	set_latch_pointer(NULL);
}

static Latch *
current_latch(void)
{
	Latch	   *latch;

	if (shared == NULL)
		return NULL;
	SpinLockAcquire(&shared->mutex);
	latch = shared->latch;
	SpinLockRelease(&shared->mutex);
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
	if (!wake_at_commit)
		return;
	if (event == XACT_EVENT_COMMIT)
		worker_wake();			/* after the commit is visible */
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
		wake_at_commit = false;
}

void
worker_wake_at_commit(void)
{
	static bool registered = false;

	if (!registered)
	{
		RegisterXactCallback(on_xact_event, NULL);
		registered = true;
	}
	wake_at_commit = true;
}
