/*
 * redis_cache.c — L3: decisions shared between servers through Redis.
 *
 * Off unless decide.redis_url is set.  Each backend keeps one connection,
 * opened on first use and after any failure, with connect and command
 * timeouts (hiredis' redisSetTimeout bounds every read and write, so a hung
 * Redis costs at most the timeout, after which a query cancel is honoured).
 * A per-backend circuit breaker skips Redis for decide.redis_breaker_cooldown
 * after decide.redis_breaker_failures consecutive failures, then lets one
 * request probe it.
 *
 * Redis never changes an answer and never raises an error to the caller:
 * every failure, timeout, error reply or malformed value is counted and
 * treated as a miss, and the layers below answer.  Keys are
 *   <prefix>v1:<policy-set version, hex>:<epoch>:<request encoding, hex>
 * where the version is a random UUID drawn with every epoch (decide.epoch),
 * so servers share entries exactly when their policy sets are the same
 * commit, whatever copies of databases or clusters exist; values
 * are checked by cache_value.c (bound to their key, checksummed).  Every key
 * gets a TTL.  No lock is held while talking to Redis.
 */
#include "postgres.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "audit_log.h"
#include "cache_value.h"
#include "redis_cache.h"
#include "stats.h"

#define REDIS_MAX_KEY_BYTES 4096

typedef struct RedisTarget
{
	bool		unix_socket;
	char		host[256];		/* or socket path */
	int			port;
	char		password[256];
	int			database;
} RedisTarget;

static char *redis_url = NULL;
static int	connect_timeout_ms = 100;
static int	command_timeout_ms = 50;
static int	breaker_failures = 3;
static int	breaker_cooldown_ms = 1000;
static int	redis_ttl_s = 3600;
static char *redis_prefix = NULL;

static RedisTarget target;
static bool target_valid = false;
static uint64 target_generation = 0;	/* bumped when the URL changes */

static redisContext *connection = NULL;
static uint64 connection_generation = 0;
static int	consecutive_failures = 0;
static TimestampTz breaker_open_until = 0;

/* Parses redis://[:password@]host[:port][/db] or unix:///path. */
static bool
parse_redis_url(const char *url, RedisTarget *out, char **problem)
{
	const char *p;

	memset(out, 0, sizeof(*out));
	out->port = 6379;
	if (strncmp(url, "unix://", 7) == 0)
	{
		p = url + 7;
		if (*p != '/' || strlen(p) >= sizeof(out->host))
		{
			*problem = "A unix:// URL needs an absolute socket path";
			return false;
		}
		out->unix_socket = true;
		strlcpy(out->host, p, sizeof(out->host));
		return true;
	}
	if (strncmp(url, "redis://", 8) != 0)
	{
		*problem = "The URL must start with redis:// or unix://";
		return false;
	}
	p = url + 8;
	if (*p == ':')
	{
		const char *at = strrchr(p, '@');

		if (at == NULL || at - p - 1 >= (long) sizeof(out->password))
		{
			*problem = "A password must be followed by @host";
			return false;
		}
		memcpy(out->password, p + 1, at - p - 1);
		p = at + 1;
	}
	{
		size_t		host_len = strcspn(p, ":/");

		if (host_len == 0 || host_len >= sizeof(out->host))
		{
			*problem = "The URL has no host";
			return false;
		}
		memcpy(out->host, p, host_len);
		p += host_len;
	}
	if (*p == ':')
	{
		char	   *end;
		long		port = strtol(p + 1, &end, 10);

		if (end == p + 1 || port < 1 || port > 65535)
		{
			*problem = "The port must be a number from 1 to 65535";
			return false;
		}
		out->port = (int) port;
		p = end;
	}
	if (*p == '/')
	{
		char	   *end;
		long		db = strtol(p + 1, &end, 10);

		if (end == p + 1 || *end != '\0' || db < 0 || db > 1000000)
		{
			*problem = "The database must be a non-negative number";
			return false;
		}
		out->database = (int) db;
		p = end;
	}
	if (*p != '\0')
	{
		*problem = "Unexpected characters after the host";
		return false;
	}
	return true;
}

static bool
check_redis_url(char **newval, void **extra, GucSource source)
{
	RedisTarget parsed;
	char	   *problem = NULL;

	if (*newval == NULL || **newval == '\0')
		return true;
	if (!parse_redis_url(*newval, &parsed, &problem))
	{
		GUC_check_errdetail("%s.", problem);
		GUC_check_errhint("Use redis://[:password@]host[:port][/db] or unix:///path/to/socket.");
		return false;
	}
	return true;
}

static void
assign_redis_url(const char *newval, void *extra)
{
	char	   *problem;

	target_valid = newval != NULL && *newval != '\0' &&
		parse_redis_url(newval, &target, &problem);
	target_generation++;
}

void
redis_cache_define_gucs(void)
{
	/*
	 * Like L2, the shared layer needs decide preloaded: without it decide
	 * answers from L1 only and these settings do not exist.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomStringVariable("decide.redis_url",
							   "Redis shared by servers as a third cache layer; empty: off.",
							   "redis://[:password@]host[:port][/db] or unix:///path.",
							   &redis_url, "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY,
							   check_redis_url, assign_redis_url, NULL);
	DefineCustomIntVariable("decide.redis_connect_timeout",
							"Longest wait to connect to Redis.",
							NULL, &connect_timeout_ms, 100, 1, 60 * 1000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("decide.redis_command_timeout",
							"Longest wait for one Redis command.",
							NULL, &command_timeout_ms, 50, 1, 60 * 1000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("decide.redis_breaker_failures",
							"Consecutive Redis failures that open the circuit breaker.",
							NULL, &breaker_failures, 3, 1, 1000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("decide.redis_breaker_cooldown",
							"How long an open circuit breaker skips Redis before probing it.",
							NULL, &breaker_cooldown_ms, 1000, 1, 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("decide.redis_ttl",
							"Expiry of decisions stored in Redis.",
							NULL, &redis_ttl_s, 3600, 1, 30 * 24 * 3600,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("decide.redis_prefix",
							   "Prefix of decide's keys in Redis.",
							   NULL, &redis_prefix, "decide:",
							   PGC_SUSET, 0, NULL, NULL, NULL);
}

bool
redis_cache_configured(void)
{
	return target_valid;
}

static struct timeval
ms_to_timeval(int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

static void
disconnect(void)
{
	if (connection)
		redisFree(connection);
	connection = NULL;
}

static void
record_failure(void)
{
	disconnect();
	stats_count(STAT_REDIS_ERRORS, 1);
	if (++consecutive_failures >= breaker_failures)
	{
		breaker_open_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														 breaker_cooldown_ms);
		stats_count(STAT_REDIS_BREAKER_OPENS, 1);
	}
}

static void
record_success(void)
{
	consecutive_failures = 0;
	breaker_open_until = 0;
}

/* A status-or-string reply to a setup command (AUTH, SELECT) is success. */
static bool
run_setup_command(const char *format, const char *arg)
{
	redisReply *reply = redisCommand(connection, format, arg);
	bool		ok = reply != NULL && reply->type == REDIS_REPLY_STATUS;

	if (reply)
		freeReplyObject(reply);
	return ok;
}

/* An open connection, or NULL (breaker open or connecting failed). */
static redisContext *
get_connection(void)
{
	if (breaker_open_until != 0 && GetCurrentTimestamp() < breaker_open_until)
	{
		stats_count(STAT_REDIS_SKIPPED, 1);
		return NULL;
	}
	if (connection && connection_generation != target_generation)
		disconnect();
	if (connection)
		return connection;

	connection = target.unix_socket ?
		redisConnectUnixWithTimeout(target.host, ms_to_timeval(connect_timeout_ms)) :
		redisConnectWithTimeout(target.host, target.port, ms_to_timeval(connect_timeout_ms));
	connection_generation = target_generation;
	if (connection == NULL || connection->err ||
		redisSetTimeout(connection, ms_to_timeval(command_timeout_ms)) != REDIS_OK)
	{
		record_failure();
		return NULL;
	}
	if (target.password[0] && !run_setup_command("AUTH %s", target.password))
	{
		record_failure();
		return NULL;
	}
	if (target.database != 0)
	{
		char		db[16];

		snprintf(db, sizeof(db), "%d", target.database);
		if (!run_setup_command("SELECT %s", db))
		{
			record_failure();
			return NULL;
		}
	}
	return connection;
}

/*
 * The Redis key of a decision key; palloc'd.  Printable, so operators can
 * inspect it with redis-cli; fixed-width hex fields keep it injective.
 */
static char *
redis_key(const DecisionKey *key, size_t *len)
{
	static const char hex[] = "0123456789abcdef";
	StringInfoData buf;
	uint32		i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%sv1:", redis_prefix);
	for (i = 0; i < UUID_LEN; i++)
	{
		appendStringInfoChar(&buf, hex[key->version.data[i] >> 4]);
		appendStringInfoChar(&buf, hex[key->version.data[i] & 15]);
	}
	appendStringInfo(&buf, ":" INT64_FORMAT ":", key->epoch);
	for (i = 0; i < key->len; i++)
	{
		unsigned char c = (unsigned char) key->bytes[i];

		appendStringInfoChar(&buf, hex[c >> 4]);
		appendStringInfoChar(&buf, hex[c & 15]);
	}
	*len = buf.len;
	return buf.data;
}

bool
redis_cache_fits(const DecisionKey *key)
{
	return target_valid && key->len <= REDIS_MAX_KEY_BYTES;
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

	if (!redis_cache_fits(key) || (c = get_connection()) == NULL)
		return REDIS_NOT_ASKED;
	rkey = redis_key(key, &key_len);
	reply = redisCommand(c, "GET %b", rkey, key_len);
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
	{
		/* Timeout, lost connection, or an error such as NOAUTH. */
		if (reply)
			freeReplyObject(reply);
		record_failure();
	}
	else
	{
		record_success();
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

	if (!redis_cache_fits(key) || (c = get_connection()) == NULL)
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
		record_failure();
	}
	else
	{
		freeReplyObject(reply);
		record_success();
	}
	pfree(rkey);
	CHECK_FOR_INTERRUPTS();
}

/*
 * Decision-log forwarding from hot standbys (worker.c): a standby's worker
 * appends its log records to a Redis stream of its own, registered in a
 * set per policy store; the primary's worker reads every registered stream
 * and writes the records into decide.decisions.
 *
 * Entry ids are "1-<ring position>": increasing within the stream, and
 * the same on a retry after a failure between XADD and consuming the ring,
 * where Redis refuses the repeat; so a record reaches the stream once.
 */

static char *
store_hex(const pg_uuid_t *store_id)
{
	static const char hex[] = "0123456789abcdef";
	char	   *out = palloc(UUID_LEN * 2 + 1);
	int			i;

	for (i = 0; i < UUID_LEN; i++)
	{
		out[2 * i] = hex[store_id->data[i] >> 4];
		out[2 * i + 1] = hex[store_id->data[i] & 15];
	}
	out[UUID_LEN * 2] = '\0';
	return out;
}

char *
redis_log_registry(const pg_uuid_t *store_id)
{
	return psprintf("%slogstreams:%s", redis_prefix, store_hex(store_id));
}

char *
redis_log_stream_prefix(const pg_uuid_t *store_id)
{
	return psprintf("%slog:%s:", redis_prefix, store_hex(store_id));
}

char *
redis_log_stream_name(const pg_uuid_t *store_id)
{
	/*
	 * One per lifetime of the standby's shared memory (ring positions, and
	 * so entry ids, restart with it): the ring's creation time and the
	 * postmaster's pid.
	 */
	return psprintf("%s" INT64_FORMAT ".%d", redis_log_stream_prefix(store_id),
					(int64) audit_log_created(), (int) PostmasterPid);
}

bool
redis_log_forward(const pg_uuid_t *store_id, const char *stream, const char *const *records,
				  const size_t *lens, const uint64 *positions, int n)
{
	redisContext *c;
	char	   *registry = redis_log_registry(store_id);
	bool		ok = true;
	int			i;

	if (!target_valid || (c = get_connection()) == NULL)
		return false;
	redisAppendCommand(c, "SADD %s %s", registry, stream);
	for (i = 0; i < n; i++)
		redisAppendCommand(c, "XADD %s 1-" UINT64_FORMAT " r %b", stream, positions[i],
						   records[i], lens[i]);
	for (i = 0; i <= n; i++)
	{
		redisReply *reply = NULL;

		if (redisGetReply(c, (void **) &reply) != REDIS_OK || reply == NULL)
		{
			ok = false;
			break;
		}
		/* A repeat after a retry is refused: it is already there. */
		if (reply->type == REDIS_REPLY_ERROR &&
			strstr(reply->str, "equal or smaller") == NULL)
			ok = false;
		freeReplyObject(reply);
	}
	if (ok)
		record_success();
	else
		record_failure();
	return ok;
}

int
redis_log_streams(const pg_uuid_t *store_id, char ***streams)
{
	redisContext *c;
	redisReply *reply;
	int			n = 0;
	size_t		i;

	*streams = NULL;
	if (!target_valid || (c = get_connection()) == NULL)
		return 0;
	reply = redisCommand(c, "SMEMBERS %s", redis_log_registry(store_id));
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
	{
		if (reply)
			freeReplyObject(reply);
		record_failure();
		return 0;
	}
	record_success();
	*streams = palloc(sizeof(char *) * (reply->elements + 1));
	for (i = 0; i < reply->elements; i++)
		if (reply->element[i]->type == REDIS_REPLY_STRING)
			(*streams)[n++] = pnstrdup(reply->element[i]->str, reply->element[i]->len);
	freeReplyObject(reply);
	return n;
}

/* A stream entry id as Redis writes them: <ms>-<seq>. */
static bool
entry_id_is_valid(const char *id, size_t len)
{
	size_t		i;
	int			dashes = 0;

	if (len == 0 || len > 41 || id[0] == '-' || id[len - 1] == '-')
		return false;
	for (i = 0; i < len; i++)
	{
		if (id[i] == '-')
			dashes++;
		else if (id[i] < '0' || id[i] > '9')
			return false;
	}
	return dashes == 1;
}

int
redis_log_read(const char *stream, const char *after_id, int max, RedisLogEntry **entries)
{
	redisContext *c;
	redisReply *reply;
	int			n = 0;
	size_t		i;

	*entries = NULL;
	if (!target_valid || (c = get_connection()) == NULL)
		return -1;
	reply = redisCommand(c, "XRANGE %s (%s + COUNT %d", stream, after_id, max);
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
	{
		if (reply)
			freeReplyObject(reply);
		record_failure();
		return -1;
	}
	record_success();
	*entries = palloc0(sizeof(RedisLogEntry) * (reply->elements + 1));
	for (i = 0; i < reply->elements; i++)
	{
		redisReply *entry = reply->element[i];
		redisReply *fields;
		RedisLogEntry *out = &(*entries)[n];

		/* [id, [field, value]]; without a usable id, the stream cannot be read on. */
		if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
			entry->element[0]->type != REDIS_REPLY_STRING ||
			!entry_id_is_valid(entry->element[0]->str, entry->element[0]->len))
			break;
		out->id = pnstrdup(entry->element[0]->str, entry->element[0]->len);
		fields = entry->element[1];
		if (fields->type == REDIS_REPLY_ARRAY && fields->elements == 2 &&
			fields->element[1]->type == REDIS_REPLY_STRING)
		{
			char	   *bytes = palloc(fields->element[1]->len + 1);

			memcpy(bytes, fields->element[1]->str, fields->element[1]->len);
			out->bytes = bytes;
			out->len = fields->element[1]->len;
		}
		n++;
	}
	freeReplyObject(reply);
	return n;
}

void
redis_log_trim(const char *stream, const char *upto_id)
{
	redisContext *c;
	redisReply *reply;

	if (!target_valid || (c = get_connection()) == NULL)
		return;
	reply = redisCommand(c, "XTRIM %s MINID %s", stream, upto_id);
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		record_failure();
	else
		record_success();
	if (reply)
		freeReplyObject(reply);
}
