/*
 * bytes_table.c — dynahash tables keyed by byte strings (see
 * bytes_table.h): the key is a pointer and a length, hashed and compared by
 * the bytes it points to.
 */
#include "postgres.h"

#include "common/hashfn.h"

#include "bytes_table.h"

static uint32
bytes_key_hash(const void *key, Size keysize)
{
	const BytesKey *k = key;

	return hash_bytes((const unsigned char *) k->ptr, (int) k->len);
}

static int
bytes_key_match(const void *a, const void *b, Size keysize)
{
	const BytesKey *x = a;
	const BytesKey *y = b;

	if (x->len != y->len)
		return 1;
	return memcmp(x->ptr, y->ptr, x->len);
}

HTAB *
bytes_table_create(const char *name, Size entry_size, long expected, MemoryContext cxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(BytesKey);
	ctl.entrysize = entry_size;
	ctl.hash = bytes_key_hash;
	ctl.match = bytes_key_match;
	ctl.hcxt = cxt;
	return hash_create(name, expected, &ctl, HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}
