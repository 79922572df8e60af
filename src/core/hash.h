/*
 * hash.h — the byte-string hash of the pure core: 64-bit FNV-1a.  Cheap,
 * stable across processes and builds (Redis values carry it), and good
 * enough for open-addressing tables over uids.
 */
#ifndef DECIDE_HASH_H
#define DECIDE_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t
dec_fnv1a(const void *bytes, size_t len)
{
	const unsigned char *p = bytes;
	uint64_t	h = 0xcbf29ce484222325ULL;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

#endif							/* DECIDE_HASH_H */
