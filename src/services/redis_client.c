/*
 * redis_client.c — decide's connection to Redis, shared by the L3 cache
 * (redis_cache.c) and the standbys' log streams (log_stream.c): the
 * settings decide.redis_url and its timeouts and breaker, one connection
 * per backend, the circuit breaker, and the key prefix.
 *
 * Off unless decide.redis_url is set.  Each backend keeps one connection,
 * opened on first use and after any failure, with connect and command
 * timeouts (hiredis' redisSetTimeout bounds every read and write, so a hung
 * Redis costs at most the timeout, after which a query cancel is honoured).
 * A per-backend circuit breaker skips Redis for decide.redis_breaker_cooldown
 * after decide.redis_breaker_failures consecutive failures, then lets one
 * request probe it.  No lock is held while talking to Redis.
 */
#include "postgres.h"

#include <sys/time.h>

#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "redis_client.h"
#include "stats.h"

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
redis_client_define_gucs(void)
{
	/*
	 * Like L2, Redis needs decide preloaded: without it decide answers from
	 * L1 only and these settings do not exist.
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
	DefineCustomStringVariable("decide.redis_prefix",
							   "Prefix of decide's keys in Redis.",
							   NULL, &redis_prefix, "decide:",
							   PGC_SUSET, 0, NULL, NULL, NULL);
}

bool
redis_client_configured(void)
{
	return target_valid;
}

const char *
redis_client_prefix(void)
{
	return redis_prefix;
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

void
redis_client_failed(void)
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

void
redis_client_succeeded(void)
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

redisContext *
redis_client_connection(void)
{
	if (!target_valid)
		return NULL;
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
		redis_client_failed();
		return NULL;
	}
	if (target.password[0] && !run_setup_command("AUTH %s", target.password))
	{
		redis_client_failed();
		return NULL;
	}
	if (target.database != 0)
	{
		char		db[16];

		snprintf(db, sizeof(db), "%d", target.database);
		if (!run_setup_command("SELECT %s", db))
		{
			redis_client_failed();
			return NULL;
		}
	}
	return connection;
}
