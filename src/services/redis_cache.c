/*
 * redis_cache.c — L3: decisions shared between servers through Redis
 * (the connection is redis_client.c's).
 *
 * Redis never changes an answer and never raises an error to the caller:
 * every failure, timeout, error reply or malformed value is counted and
 * treated as a miss, and the layers below answer.  Keys are
 *   <prefix>v1:<policy-set version, hex>:<epoch>:<request encoding, hex>
 * where the version is a random UUID drawn with every epoch (decide.epoch),
 * so servers share entries exactly when their policy sets are the same
 * commit, whatever copies of databases or clusters exist; values
 * are checked by cache_value.c (bound to their key, checksummed).  Every key
 * gets a TTL.
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "cache_value.h"
#include "redis_cache.h"
#include "redis_client.h"
#include "stats.h"

#define REDIS_MAX_KEY_BYTES 4096

static int	redis_ttl_s = 3600;

void
redis_cache_define_gucs(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("decide.redis_ttl",
							"Expiry of decisions stored in Redis.",
							NULL, &redis_ttl_s, 3600, 1, 30 * 24 * 3600,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
}

/* Appends bytes as lowercase hex. */
static void
append_hex(StringInfo buf, const void *bytes, Size len)
{
	enlargeStringInfo(buf, len * 2);
	buf->len += hex_encode(bytes, len, buf->data + buf->len);
	buf->data[buf->len] = '\0';
}

/*
 * The Redis key of a decision key; palloc'd.  Printable, so operators can
 * inspect it with redis-cli; fixed-width hex fields keep it injective.
 */
static char *
redis_key(const DecisionKey *key, size_t *len)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%sv1:", redis_client_prefix());
	append_hex(&buf, key->version.data, UUID_LEN);
	appendStringInfo(&buf, ":" INT64_FORMAT ":", key->epoch);
	append_hex(&buf, key->bytes, key->len);
	*len = buf.len;
	return buf.data;
}

bool
redis_cache_fits(const DecisionKey *key)
{
	return redis_client_configured() && key->len <= REDIS_MAX_KEY_BYTES;
}

RedisLookup
redis_cache_get(const DecisionKey *key, CachedDecision *decision)
{
	redisContext *c;
	redisReply *reply;
	size_t		key_len;
	char	   *rkey;
	bool		found = false;
	CacheValue	value;

	if (!redis_cache_fits(key) || (c = redis_client_connection()) == NULL)
		return REDIS_NOT_ASKED;
	rkey = redis_key(key, &key_len);
	reply = redisCommand(c, "GET %b", rkey, key_len);
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
	{
		/* Timeout, lost connection, or an error such as NOAUTH. */
		if (reply)
			freeReplyObject(reply);
		redis_client_failed();
	}
	else
	{
		redis_client_succeeded();
		if (reply->type == REDIS_REPLY_STRING &&
			cache_value_decode(reply->str, reply->len,
							   cache_value_key_hash(rkey, key_len), &value))
		{
			decision->has_policy = value.has_policy;
			decision->allowed = value.allowed;
			decision->condition_unknown = value.condition_unknown;
			decision->policy_id = value.policy_id;
			decision->expires = value.expires;
			found = decision->expires == 0 || decision->expires > GetCurrentTimestamp();
		}
		else if (reply->type != REDIS_REPLY_NIL)
			stats_count(STAT_REDIS_GARBAGE, 1);
		freeReplyObject(reply);
	}
	pfree(rkey);
	CHECK_FOR_INTERRUPTS();
	return found ? REDIS_HIT : REDIS_MISS;
}

void
redis_cache_put(const DecisionKey *key, const CachedDecision *decision)
{
	redisContext *c;
	redisReply *reply;
	size_t		key_len;
	char	   *rkey;
	char		bytes[CACHE_VALUE_BYTES];
	CacheValue	value;
	long long	ttl_ms = (long long) redis_ttl_s * 1000;

	if (!redis_cache_fits(key) || (c = redis_client_connection()) == NULL)
		return;
	if (decision->expires != 0)
	{
		long long	left_ms = (decision->expires - GetCurrentTimestamp()) / 1000;

		if (left_ms <= 0)
			return;				/* expired already: nothing to share */
		ttl_ms = Min(ttl_ms, left_ms);
	}
	rkey = redis_key(key, &key_len);
	value.has_policy = decision->has_policy;
	value.allowed = decision->allowed;
	value.condition_unknown = decision->condition_unknown;
	value.policy_id = decision->policy_id;
	value.expires = decision->expires;
	cache_value_encode(&value, cache_value_key_hash(rkey, key_len), bytes);
	reply = redisCommand(c, "SET %b %b PX %lld", rkey, key_len, bytes, (size_t) CACHE_VALUE_BYTES,
						 ttl_ms);
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
	{
		if (reply)
			freeReplyObject(reply);
		redis_client_failed();
	}
	else
	{
		freeReplyObject(reply);
		redis_client_succeeded();
	}
	pfree(rkey);
	CHECK_FOR_INTERRUPTS();
}

