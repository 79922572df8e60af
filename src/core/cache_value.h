/*
 * cache_value.h — the compact, self-checking encoding of a cached decision
 * stored outside the server (Redis).
 *
 * Pure C, so it can be fuzzed alone.  A value read back is trusted only if
 * it has the right size, magic and version, is bound to the key it was
 * read under (a hash of the full key is inside), and carries a valid
 * checksum; anything else is rejected and counted by the caller.
 */
#ifndef DECIDE_CACHE_VALUE_H
#define DECIDE_CACHE_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_VALUE_BYTES 40

typedef struct CacheValue
{
	bool		has_policy;
	bool		allowed;
	bool		condition_unknown;
	int64_t		policy_id;
	int64_t		expires;		/* TimestampTz; 0: none */
} CacheValue;

/* A 64-bit hash of the key bytes (FNV-1a); binds values to keys. */
extern uint64_t cache_value_key_hash(const char *key, size_t key_len);

/* Encodes into out (CACHE_VALUE_BYTES bytes). */
extern void cache_value_encode(const CacheValue *value, uint64_t key_hash, char *out);

/* False if bytes are not a valid value for this key. */
extern bool cache_value_decode(const char *bytes, size_t len, uint64_t key_hash,
							   CacheValue *value);

#endif							/* DECIDE_CACHE_VALUE_H */
