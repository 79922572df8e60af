/*
 * worker_common.c — what the background worker's jobs share: running a
 * step in a transaction of its own, and finding decide in its database.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "policy_set.h"
#include "worker_common.h"

void
worker_in_transaction(void (*fn) (void *), void *arg)
{
	MemoryContext caller = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	fn(arg);
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
}

void
worker_pin_session(void)
{
	SetConfigOption("lock_timeout", "500", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * The schema decide, if the decide extension created it; InvalidOid if
 * not.  The worker runs SQL in it as a superuser, so a schema of that name
 * that another role created in a database without decide must not count.
 */
static Oid
decide_schema(void)
{
	Oid			extension = get_extension_oid("decide", true);
	Oid			schema;

	if (!OidIsValid(extension))
		return InvalidOid;
	schema = get_namespace_oid("decide", true);
	if (!OidIsValid(schema) || getExtensionOfObject(NamespaceRelationId, schema) != extension)
		return InvalidOid;
	return schema;
}

bool
worker_decide_table_exists(const char *name)
{
	return OidIsValid(worker_decide_relation(name));
}

Oid
worker_decide_relation(const char *name)
{
	Oid			schema = decide_schema();

	return OidIsValid(schema) ? get_relname_relid(name, schema) : InvalidOid;
}

bool
worker_extension_installed(void)
{
	return worker_decide_table_exists("decisions");
}

typedef struct StoreLookup
{
	bool		found;
	pg_uuid_t	store_id;
} StoreLookup;

static void
lookup_store(void *arg)
{
	StoreLookup *lookup = arg;

	lookup->found = worker_extension_installed();
	if (lookup->found)
		lookup->store_id = policy_set_current()->store_id;
}

bool
worker_store_id(pg_uuid_t *store_id)
{
	StoreLookup lookup;

	worker_in_transaction(lookup_store, &lookup);
	if (lookup.found)
		*store_id = lookup.store_id;
	return lookup.found;
}
