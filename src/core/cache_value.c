/*
 * cache_value.c — encoding of decisions cached in Redis.
 *
 * Layout (40 bytes, little-endian):
 *   0  magic "DCV1"
 *   4  flags: 1 has_policy, 2 allowed, 4 condition_unknown (other bits 0)
 *   5  three zero bytes
 *   8  policy id
 *   16 expiry (TimestampTz microseconds; 0 none)
 *   24 hash of the key the value belongs to
 *   32 checksum: hash of bytes 0..31
 * Fixed-width little-endian fields make the format the same on every
 * server sharing the Redis, whatever their byte order.
 */
#include "cache_value.h"
#include "hash.h"

#include <string.h>

#define FLAG_HAS_POLICY		0x01
#define FLAG_ALLOWED		0x02
#define FLAG_CONDITION_UNKNOWN 0x04
#define KNOWN_FLAGS (FLAG_HAS_POLICY | FLAG_ALLOWED | FLAG_CONDITION_UNKNOWN)

static const char magic[4] = {'D', 'C', 'V', '1'};

uint64_t
cache_value_key_hash(const char *key, size_t key_len)
{
	return dec_fnv1a((const unsigned char *) key, key_len);
}

static void
put64(unsigned char *p, uint64_t v)
{
	int			i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char) (v >> (8 * i));
}

static uint64_t
get64(const unsigned char *p)
{
	uint64_t	v = 0;
	int			i;

	for (i = 0; i < 8; i++)
		v |= (uint64_t) p[i] << (8 * i);
	return v;
}

void
cache_value_encode(const CacheValue *value, uint64_t key_hash, char *out)
{
	unsigned char *p = (unsigned char *) out;

	memset(p, 0, CACHE_VALUE_BYTES);
	memcpy(p, magic, 4);
	p[4] = (value->has_policy ? FLAG_HAS_POLICY : 0) |
		(value->allowed ? FLAG_ALLOWED : 0) |
		(value->condition_unknown ? FLAG_CONDITION_UNKNOWN : 0);
	put64(p + 8, (uint64_t) value->policy_id);
	put64(p + 16, (uint64_t) value->expires);
	put64(p + 24, key_hash);
	put64(p + 32, dec_fnv1a(p, 32));
}

bool
cache_value_decode(const char *bytes, size_t len, uint64_t key_hash, CacheValue *value)
{
	const unsigned char *p = (const unsigned char *) bytes;

	if (len != CACHE_VALUE_BYTES || memcmp(p, magic, 4) != 0)
		return false;
	if ((p[4] & ~KNOWN_FLAGS) != 0 || p[5] != 0 || p[6] != 0 || p[7] != 0)
		return false;
	if (get64(p + 24) != key_hash || get64(p + 32) != dec_fnv1a(p, 32))
		return false;
	/* A denial names no policy only when none matched; an allow always does. */
	if ((p[4] & FLAG_ALLOWED) && !(p[4] & FLAG_HAS_POLICY))
		return false;
	value->has_policy = (p[4] & FLAG_HAS_POLICY) != 0;
	value->allowed = (p[4] & FLAG_ALLOWED) != 0;
	value->condition_unknown = (p[4] & FLAG_CONDITION_UNKNOWN) != 0;
	value->policy_id = (int64_t) get64(p + 8);
	value->expires = (int64_t) get64(p + 16);
	return true;
}
