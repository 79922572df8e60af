/*
 * log_stream.c — the transport of hot standbys' decision logs through
 * Redis streams (the connection is redis_client.c's; the worker decides
 * what goes in and checks what comes out, worker_standby.c).
 *
 * A standby appends its log's entries to a stream of its own, registered
 * in a set per policy store; the primary reads every registered stream.
 * Entry ids are "1-<ring position>": increasing within the stream, and the
 * same on a retry after a failure between XADD and consuming the ring,
 * where Redis refuses the repeat; so an entry reaches the stream once.
 * Nothing here trusts what Redis returns: entries are handed over as bytes.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/builtins.h"

#include "audit_log.h"
#include "log_stream.h"
#include "redis_client.h"

/* The store id in lowercase hex, as every key of the store names it. */
static char *
store_hex(const pg_uuid_t *store_id)
{
	char	   *out = palloc(UUID_LEN * 2 + 1);

	out[hex_encode((const char *) store_id->data, UUID_LEN, out)] = '\0';
	return out;
}

char *
log_stream_registry(const pg_uuid_t *store_id)
{
	return psprintf("%slogstreams:%s", redis_client_prefix(), store_hex(store_id));
}

char *
log_stream_prefix(const pg_uuid_t *store_id)
{
	return psprintf("%slog:%s:", redis_client_prefix(), store_hex(store_id));
}

char *
log_stream_name(const pg_uuid_t *store_id)
{
	/*
	 * One per lifetime of the standby's shared memory (ring positions, and
	 * so entry ids, restart with it): the ring's creation time and the
	 * postmaster's pid.
	 */
	return psprintf("%s" INT64_FORMAT ".%d", log_stream_prefix(store_id),
					(int64) audit_log_created(), (int) PostmasterPid);
}

bool
log_stream_forward(const pg_uuid_t *store_id, const char *stream, const char *const *records,
				  const size_t *lens, const uint64 *positions, int n)
{
	redisContext *c;
	char	   *registry = log_stream_registry(store_id);
	bool		ok = true;
	int			i;

	if ((c = redis_client_connection()) == NULL)
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
		redis_client_succeeded();
	else
		redis_client_failed();
	return ok;
}

int
log_stream_list(const pg_uuid_t *store_id, char ***streams)
{
	redisContext *c;
	redisReply *reply;
	int			n = 0;
	size_t		i;

	*streams = NULL;
	if ((c = redis_client_connection()) == NULL)
		return 0;
	reply = redisCommand(c, "SMEMBERS %s", log_stream_registry(store_id));
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
	{
		if (reply)
			freeReplyObject(reply);
		redis_client_failed();
		return 0;
	}
	redis_client_succeeded();
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
log_stream_read(const char *stream, const char *after_id, int max, LogStreamEntry **entries)
{
	redisContext *c;
	redisReply *reply;
	int			n = 0;
	size_t		i;

	*entries = NULL;
	if ((c = redis_client_connection()) == NULL)
		return -1;
	reply = redisCommand(c, "XRANGE %s (%s + COUNT %d", stream, after_id, max);
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
	{
		if (reply)
			freeReplyObject(reply);
		redis_client_failed();
		return -1;
	}
	redis_client_succeeded();
	*entries = palloc0(sizeof(LogStreamEntry) * (reply->elements + 1));
	for (i = 0; i < reply->elements; i++)
	{
		redisReply *entry = reply->element[i];
		redisReply *fields;
		LogStreamEntry *out = &(*entries)[n];

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
log_stream_trim(const char *stream, const char *upto_id)
{
	redisContext *c;
	redisReply *reply;

	if ((c = redis_client_connection()) == NULL)
		return;
	reply = redisCommand(c, "XTRIM %s MINID %s", stream, upto_id);
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		redis_client_failed();
	else
		redis_client_succeeded();
	if (reply)
		freeReplyObject(reply);
}

