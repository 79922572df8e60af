/*
 * prop_cache_value.c — the codec of decisions cached in Redis
 * (src/core/cache_value.c): what Redis hands back is untrusted bytes.
 *
 * Input layout (every byte string is valid):
 *   bytes 0-7    key hash h1 (the key the value is read under)
 *   bytes 8-15   key hash h2 (another key)
 *   byte 16      flags of a value to encode (bit 0 has_policy, 1 allowed,
 *                2 condition_unknown)
 *   bytes 17-24  its policy id; bytes 25-32 its expiry
 *   byte 33      corruption mask (0 becomes 1)
 *   the rest     raw bytes, decoded as if Redis had returned them
 *
 * Properties:
 *   1. decoding raw bytes stays within them (a buffer of exactly their
 *      size), and whatever it accepts is canonical: it has 40 bytes,
 *      re-encodes to the very same bytes, never allows without naming a
 *      policy, and is refused under any other key;
 *   2. encode then decode gives the value back, under its key only; a
 *      value that allows without a policy is refused;
 *   3. any single corrupted byte of a valid encoding, or one byte more or
 *      less, is refused.
 */
#include "props.h"
#include "cache_value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t
read_u64(Reader *r)
{
	return rd_u64(r);
}

/* Decodes len bytes from a copy of exactly that size. */
static bool
decode_copy(const char *bytes, size_t len, uint64_t key_hash, CacheValue *value)
{
	char	   *copy = malloc(len ? len : 1);
	bool		ok;

	if (copy == NULL)
		abort();
	if (len)
		memcpy(copy, bytes, len);
	memset(value, 0x5A, sizeof(*value));
	ok = cache_value_decode(copy, len, key_hash, value);
	free(copy);
	return ok;
}

static bool
same_value(const CacheValue *a, const CacheValue *b)
{
	return a->has_policy == b->has_policy && a->allowed == b->allowed &&
		a->condition_unknown == b->condition_unknown &&
		a->policy_id == b->policy_id && a->expires == b->expires;
}

int
prop_cache_value(const uint8_t *data, size_t size)
{
	Reader		r = {data, size};
	uint64_t	h1 = read_u64(&r);
	uint64_t	h2 = read_u64(&r);
	uint8_t		flags = rd_u8(&r);
	CacheValue	v,
				got;
	uint8_t		mask;
	char		encoded[CACHE_VALUE_BYTES + 1];
	char		longer[CACHE_VALUE_BYTES + 1];
	bool		ok;
	size_t		i;
	int			failed = 0;

	memset(&v, 0, sizeof(v));
	v.has_policy = (flags & 1) != 0;
	v.allowed = (flags & 2) != 0;
	v.condition_unknown = (flags & 4) != 0;
	v.policy_id = (int64_t) read_u64(&r);
	v.expires = (int64_t) read_u64(&r);
	mask = rd_u8(&r);
	if (mask == 0)
		mask = 1;
	if (h2 == h1)
		h2 = ~h1;

	/* 1. raw bytes from "Redis" */
	if (decode_copy((const char *) r.p, r.n, h1, &got))
	{
		char		again[CACHE_VALUE_BYTES];

		if (r.n != CACHE_VALUE_BYTES)
		{
			fprintf(stderr, "cache_value: accepted %zu bytes\n", r.n);
			failed = 1;
		}
		else
		{
			cache_value_encode(&got, h1, again);
			if (memcmp(again, r.p, CACHE_VALUE_BYTES) != 0)
			{
				fprintf(stderr, "cache_value: accepted bytes do not re-encode to themselves\n");
				failed = 1;
			}
		}
		if (got.allowed && !got.has_policy)
		{
			fprintf(stderr, "cache_value: accepted an allow that names no policy\n");
			failed = 1;
		}
		if (decode_copy((const char *) r.p, r.n, h2, &got))
		{
			fprintf(stderr, "cache_value: accepted under another key\n");
			failed = 1;
		}
	}

	/* 2. round trip */
	memset(encoded, 0x77, sizeof(encoded));
	cache_value_encode(&v, h1, encoded);
	if ((unsigned char) encoded[CACHE_VALUE_BYTES] != 0x77)
	{
		fprintf(stderr, "cache_value: encode wrote past %d bytes\n", CACHE_VALUE_BYTES);
		failed = 1;
	}
	ok = decode_copy(encoded, CACHE_VALUE_BYTES, h1, &got);
	if (ok != !(v.allowed && !v.has_policy))
	{
		fprintf(stderr, "cache_value: a fresh encoding %s (has_policy %d allowed %d)\n",
				ok ? "accepted" : "refused", v.has_policy, v.allowed);
		failed = 1;
	}
	if (ok && !same_value(&v, &got))
	{
		fprintf(stderr, "cache_value: round trip changed the value\n");
		failed = 1;
	}
	if (decode_copy(encoded, CACHE_VALUE_BYTES, h2, &got))
	{
		fprintf(stderr, "cache_value: a value decoded under another key\n");
		failed = 1;
	}

	/* 3. corruption, truncation, extension */
	if (ok)
	{
		for (i = 0; i < CACHE_VALUE_BYTES; i++)
		{
			char		bad[CACHE_VALUE_BYTES];

			memcpy(bad, encoded, CACHE_VALUE_BYTES);
			bad[i] ^= (char) mask;
			if (decode_copy(bad, CACHE_VALUE_BYTES, h1, &got))
			{
				fprintf(stderr, "cache_value: byte %zu ^ 0x%02x accepted\n", i, mask);
				failed = 1;
			}
		}
		memcpy(longer, encoded, CACHE_VALUE_BYTES);
		longer[CACHE_VALUE_BYTES] = (char) mask;
		if (decode_copy(encoded, CACHE_VALUE_BYTES - 1, h1, &got) ||
			decode_copy(longer, CACHE_VALUE_BYTES + 1, h1, &got))
		{
			fprintf(stderr, "cache_value: a truncated or extended value accepted\n");
			failed = 1;
		}
	}

	if (failed)
	{
		fprintf(stderr, "  h1 %016llx h2 %016llx flags %u policy %lld expires %lld mask %02x\n",
				(unsigned long long) h1, (unsigned long long) h2, flags,
				(long long) v.policy_id, (long long) v.expires, mask);
		print_bytes("raw", (const char *) r.p, r.n, 64);
	}
	return failed;
}
