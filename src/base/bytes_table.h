/*
 * bytes_table.h — dynahash tables keyed by byte strings (uids, request
 * keys, the values a condition reads): an entry starts with its BytesKey,
 * whose bytes the caller keeps alive as long as the entry.
 */
#ifndef DECIDE_BYTES_TABLE_H
#define DECIDE_BYTES_TABLE_H

#include "postgres.h"

#include "utils/hsearch.h"

typedef struct BytesKey
{
	const char *ptr;
	uint32		len;
} BytesKey;

/* A table of entries of entry_size bytes, each starting with a BytesKey, in cxt. */
extern HTAB *bytes_table_create(const char *name, Size entry_size, long expected,
								MemoryContext cxt);

#endif							/* DECIDE_BYTES_TABLE_H */
