/*
 * worker_standby.c — the decision log of hot standbys, through Redis.
 *
 * A standby's worker forwards its ring to a Redis stream of its own
 * (registered in a set per policy store), each record as a stream entry
 * (log_record.h) whose context is JSON text.  The primary's worker reads
 * every registered stream and writes the entries into the decision log,
 * with the stream's position, in one transaction: exactly once.
 *
 * Whatever comes from Redis is untrusted.  An entry is written only when
 * log_record.c has checked every byte of it and this file the rest (text
 * valid in the database encoding, a risk level that is a label of its
 * type, a time within the log's retention and no more than a day ahead);
 * any other entry is skipped, counted in redis_garbage, and reported in
 * the server log at most once a minute.  Receiving runs after the local
 * flush, within a time budget, and an error while receiving is reported
 * and retried later: nothing from Redis can stop the primary's own log.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "audit_log.h"
#include "log_stream.h"
#include "redis_client.h"
#include "stats.h"
#include "worker_common.h"
#include "worker_flush.h"
#include "worker_standby.h"

#define READ_AT_ONCE 1000
#define REPORT_INTERVAL_MS (60 * 1000)
#define MAX_STREAM_NAME_BYTES 512
#define ALLOWED_CLOCK_SKEW_US USECS_PER_DAY

/* Skipped entries not yet reported, and the first of them. */
static uint64 garbage_unreported = 0;
static char first_garbage[512];
static TimestampTz last_garbage_report = 0;
static TimestampTz last_error_report = 0;

static void
note_garbage(const char *stream, const char *id, const char *why)
{
	stats_count(STAT_REDIS_GARBAGE, 1);
	if (garbage_unreported++ == 0)
		snprintf(first_garbage, sizeof(first_garbage), "entry %s of stream \"%s\": %s",
				 id ? id : "(none)", stream ? stream : "(a name that is not decide's)", why);
}

void
standby_report_garbage(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (garbage_unreported == 0 ||
		!TimestampDifferenceExceeds(last_garbage_report, now, REPORT_INTERVAL_MS))
		return;
	ereport(WARNING,
			(errmsg("decide skipped " UINT64_FORMAT " malformed entries of standbys' decision log streams in Redis",
					garbage_unreported),
			 errdetail("The first was %s.", first_garbage),
			 errhint("Only decide's hot standbys should write to these keys: check who can reach decide.redis_url.")));
	garbage_unreported = 0;
	last_garbage_report = now;
}

/*
 * On a standby: sends one batch of the ring to this standby's stream; the
 * ring is consumed only once Redis has it.
 */
static bool
forward_batch(char *buf, const pg_uuid_t *store_id)
{
	char	   *stream = log_stream_name(store_id);
	uint64		start;
	uint64		end;
	Size		len = audit_log_peek(buf, FORWARD_BATCH_BYTES, &start, &end);
	int			max = log_record_count(buf, len);
	const char **entries;
	size_t	   *lens;
	uint64	   *positions;
	Size		pos = 0;
	int			n = 0;

	if (len == 0)
		return false;
	entries = palloc(sizeof(char *) * max);
	lens = palloc(sizeof(size_t) * max);
	positions = palloc(sizeof(uint64) * max);
	while (pos < len)
	{
		LogRecord	record;
		char	   *entry;

		pos += log_record_decode(buf + pos, len - pos, &record);
		if (record.context.len > 0)
		{
			Jsonb	   *context = palloc(record.context.len);	/* aligned */

			memcpy(context, record.context.ptr, record.context.len);
			record.context.ptr = JsonbToCString(NULL, &context->root, VARSIZE(context));
			record.context.len = strlen(record.context.ptr);
		}
		record.context_format = LOG_CONTEXT_JSON_TEXT;
		entry = palloc(log_stream_entry_size(&record));
		lens[n] = log_stream_entry_encode(&record, entry);
		entries[n] = entry;
		positions[n] = start + pos;
		n++;
	}
	if (!log_stream_forward(store_id, stream, entries, lens, positions, n))
		return false;			/* stays in the ring; retried next turn */
	audit_log_consume(end);
	stats_count(STAT_LOG_FORWARDED, n);
	stats_gauge_set(GAUGE_LAST_FLUSH, (uint64) GetCurrentTimestamp());
	return true;
}

/*
 * Memory for one batch: a child of the caller's context, emptied before the
 * next batch and deleted after the last, so that nothing a batch allocated
 * outlives it (a backlog is sent in many batches within one turn).
 */
static MemoryContext
batch_context_create(void)
{
	return AllocSetContextCreate(CurrentMemoryContext, "decide log batch",
								 ALLOCSET_DEFAULT_SIZES);
}

bool
standby_forward_once(char *buf, const pg_uuid_t *store_id)
{
	MemoryContext batch_context = batch_context_create();
	MemoryContext caller = MemoryContextSwitchTo(batch_context);
	bool		sent = forward_batch(buf, store_id);

	MemoryContextSwitchTo(caller);
	MemoryContextDelete(batch_context);
	return sent;
}

typedef struct Skipped
{
	const char *id;
	const char *why;
} Skipped;

/* One read of a stream, written in one transaction with its position. */
typedef struct StreamBatch
{
	MemoryContext keep;			/* where results outlive the transaction */
	const char *stream;
	LogStreamEntry *entries;
	int			n;
	const char *last_id;
	char	   *position;		/* read_position's result */
	int			written;
	Skipped    *skipped;
	int			n_skipped;
} StreamBatch;

static void
read_position(void *arg)
{
	StreamBatch *batch = arg;
	Datum		stream = CStringGetTextDatum(batch->stream);
	Oid			type = TEXTOID;

	batch->position = NULL;
	if (SPI_execute_with_args("SELECT last_id FROM decide.log_stream_positions WHERE stream = $1",
							  1, &type, &stream, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		batch->position = MemoryContextStrdup(batch->keep,
											  SPI_getvalue(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc, 1));
}

static bool
fits_encoding(DecStr s)
{
	return s.len == 0 || pg_verifymbstr(s.ptr, s.len, true);
}

static bool
risk_label_exists(Oid risk_type, DecStr label)
{
	char		name[NAMEDATALEN];

	if (label.len >= NAMEDATALEN)
		return false;
	memcpy(name, label.ptr, label.len);
	name[label.len] = '\0';
	return SearchSysCacheExists2(ENUMTYPOIDNAME, ObjectIdGetDatum(risk_type),
								 CStringGetDatum(name));
}

/* What is wrong with an entry, or NULL; *record is filled when nothing is. */
static const char *
entry_problem(const LogStreamEntry *entry, Oid risk_type, TimestampTz oldest,
			  TimestampTz newest, LogRecord *record)
{
	LogEntryCheck check;

	if (entry->bytes == NULL)
		return "not a decide log entry";
	check = log_stream_entry_check(entry->bytes, entry->len, record);
	if (check != LOG_ENTRY_OK)
		return log_entry_check_message(check);
	if (!fits_encoding(record->actor) || !fits_encoding(record->action) ||
		!fits_encoding(record->resource) || !fits_encoding(record->policy) ||
		!fits_encoding(record->risk_level) || !fits_encoding(record->context))
		return "text that is not valid in the database encoding";
	if (record->has_policy && !risk_label_exists(risk_type, record->risk_level))
		return "a risk level that decide.risk_level does not have";
	if (record->decided_at < oldest || record->decided_at > newest)
		return "a time outside the log's retention or more than a day ahead";
	return NULL;
}

/* Inserts the valid entries of a batch and moves the stream's position. */
static void
insert_stream_batch(void *arg)
{
	StreamBatch *batch = arg;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(batch->stream),
	CStringGetTextDatum(batch->last_id)};
	Oid			risk_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
											CStringGetDatum("risk_level"),
											ObjectIdGetDatum(get_namespace_oid("decide", false)));
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz oldest = now - (TimestampTz) decide_log_retention_min * USECS_PER_MINUTE -
		ALLOWED_CLOCK_SKEW_US;
	TimestampTz newest = now + ALLOWED_CLOCK_SKEW_US;
	LogRecord  *records = palloc(sizeof(LogRecord) * Max(batch->n, 1));
	int			n = 0;
	int			i;

	batch->n_skipped = 0;
	for (i = 0; i < batch->n; i++)
	{
		const char *why = entry_problem(&batch->entries[i], risk_type, oldest, newest,
										&records[n]);

		if (why == NULL)
			n++;
		else
		{
			batch->skipped[batch->n_skipped].id = batch->entries[i].id;
			batch->skipped[batch->n_skipped].why = why;
			batch->n_skipped++;
		}
	}
	log_insert_records(records, n);
	batch->written = n;
	if (SPI_execute_with_args("INSERT INTO decide.log_stream_positions (stream, last_id) VALUES ($1, $2)"
							  " ON CONFLICT (stream) DO UPDATE SET last_id = excluded.last_id,"
							  " updated_at = now()",
							  2, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the position in a standby's log stream");
}

/* Writes one stream's entries until it is read to its end or time is up. */
static void
receive_stream(const char *stream, TimestampTz deadline)
{
	StreamBatch batch;
	const char *position;
	MemoryContext batch_context;

	memset(&batch, 0, sizeof(batch));
	batch.keep = CurrentMemoryContext;
	batch.stream = stream;
	worker_in_transaction(read_position, &batch);
	position = batch.position ? batch.position : "0-0";
	batch_context = batch_context_create();
	for (;;)
	{
		MemoryContext caller;
		bool		more;
		int			i;

		MemoryContextReset(batch_context);
		caller = MemoryContextSwitchTo(batch_context);
		batch.n = log_stream_read(stream, position, READ_AT_ONCE, &batch.entries);
		if (batch.n > 0)
		{
			batch.last_id = batch.entries[batch.n - 1].id;
			batch.skipped = palloc(sizeof(Skipped) * batch.n);
			worker_in_transaction(insert_stream_batch, &batch);
			for (i = 0; i < batch.n_skipped; i++)
				note_garbage(stream, batch.skipped[i].id, batch.skipped[i].why);
			log_stream_trim(stream, batch.last_id);
			stats_count(STAT_LOG_RECEIVED, batch.written);
			position = MemoryContextStrdup(caller, batch.last_id);
		}
		more = batch.n == READ_AT_ONCE && GetCurrentTimestamp() < deadline;
		MemoryContextSwitchTo(caller);
		if (!more)
			break;
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextDelete(batch_context);
}

/* A name this server's standbys give their streams (and printable). */
static bool
stream_name_is_ours(const char *name, const char *prefix)
{
	size_t		len = strlen(name);
	size_t		i;

	if (len > MAX_STREAM_NAME_BYTES || strncmp(name, prefix, strlen(prefix)) != 0)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char) name[i] <= 0x20 || (unsigned char) name[i] >= 0x7f)
			return false;
	return true;
}

/* On the primary with Redis: writes what standbys forwarded. */
void
standby_receive(const pg_uuid_t *store_id, TimestampTz deadline)
{
	char	  **streams;
	int			n = log_stream_list(store_id, &streams);
	char	   *prefix = log_stream_prefix(store_id);
	MemoryContext context = CurrentMemoryContext;
	int			s;

	for (s = 0; s < n && GetCurrentTimestamp() < deadline; s++)
	{
		if (!stream_name_is_ours(streams[s], prefix))
		{
			note_garbage(NULL, NULL, "a stream registered under a name decide does not give");
			continue;
		}
		PG_TRY();
		{
			receive_stream(streams[s], deadline);
		}
		PG_CATCH();
		{
			ErrorData  *error;
			TimestampTz now = GetCurrentTimestamp();

			MemoryContextSwitchTo(context);
			error = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			MemoryContextSwitchTo(context);
			stats_count(STAT_LOG_FLUSH_ERRORS, 1);
			if (TimestampDifferenceExceeds(last_error_report, now, REPORT_INTERVAL_MS))
			{
				ereport(WARNING,
						(errmsg("decide could not write the log entries of a standby's stream \"%s\": %s",
								streams[s], error->message),
						 errdetail("The entries stay in Redis and are tried again; the local log is written meanwhile.")));
				last_error_report = now;
			}
			FreeErrorData(error);
			break;
		}
		PG_END_TRY();
	}
}
