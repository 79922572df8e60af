/*
 * log_chunk.c — encoding and checked decoding of chunks of logged
 * decisions (log_chunk.h).
 *
 * Layout, every integer little-endian:
 *   header: "dch2", uint32 count, int64 base time, int64 base epoch,
 *           int64 base id;
 *   then count records, each:
 *     varint  the bytes of the record that follow this varint
 *     byte    flags: 1 allowed, 2 has a policy, 4 condition unknown,
 *             8 a stored reason follows, 16 no priority (logged before 0.7.0)
 *     byte    source (LogSource)
 *     varint  time - the previous record's time (zigzag; the first's
 *             previous is the base time)
 *     varint  id - (the previous record's id + 1) (zigzag; the first's
 *             previous is the base id - 1)
 *     varint  epoch - the previous record's epoch (zigzag; likewise)
 *     string  actor
 *     with a policy: varint priority (zigzag; unless flag 16), string
 *             policy, string risk level
 *     strings action, resource, context (JSON text; empty: none)
 *     with flag 8: string reason
 *   where a string is a varint length and that many bytes.
 * Times, epochs and ids are deltas because a chunk's records are close in
 * time, mostly share one epoch and have consecutive ids: a byte or two
 * each instead of twenty-four, and repeated steps that compress well.
 * Each record says its size, and what filters look at comes first, so
 * that a reader looking for a few records passes over the others with a
 * handful of byte reads.
 */
#include "log_chunk.h"

#include <string.h>

static const char chunk_magic[4] = {'d', 'c', 'h', '2'};

#define FLAG_ALLOWED			0x01
#define FLAG_HAS_POLICY			0x02
#define FLAG_CONDITION_UNKNOWN	0x04
#define FLAG_REASON				0x08
#define FLAG_PRIORITY_UNKNOWN	0x10
#define KNOWN_FLAGS (FLAG_ALLOWED | FLAG_HAS_POLICY | FLAG_CONDITION_UNKNOWN | FLAG_REASON | \
					 FLAG_PRIORITY_UNKNOWN)

#define MAX_VARINT_BYTES 10

static uint64_t
zigzag(int64_t v)
{
	return ((uint64_t) v << 1) ^ (uint64_t) (v >> 63);
}

static int64_t
unzigzag(uint64_t v)
{
	return (int64_t) (v >> 1) ^ -(int64_t) (v & 1);
}

static unsigned char *
put_varint(unsigned char *p, uint64_t v)
{
	while (v >= 0x80)
	{
		*p++ = (unsigned char) (v | 0x80);
		v >>= 7;
	}
	*p++ = (unsigned char) v;
	return p;
}

static unsigned char *
put_string(unsigned char *p, DecStr s)
{
	p = put_varint(p, s.len);
	if (s.len > 0)
		memcpy(p, s.ptr, s.len);
	return p + s.len;
}

static unsigned char *
put_le64(unsigned char *p, uint64_t v)
{
	int			i;

	for (i = 0; i < 8; i++)
		*p++ = (unsigned char) (v >> (8 * i));
	return p;
}

size_t
log_chunk_bound(const LogRecord *records, const int *order, int n)
{
	size_t		size = LOG_CHUNK_HEADER_BYTES;
	int			i;

	for (i = 0; i < n; i++)
	{
		const LogRecord *r = &records[order[i]];

		/* size, flags and source, three offsets, priority, seven string lengths */
		size += MAX_VARINT_BYTES + 2 + 3 * MAX_VARINT_BYTES + MAX_VARINT_BYTES + 7 * MAX_VARINT_BYTES;
		size += r->actor.len + r->action.len + r->resource.len + r->context.len;
		if (r->has_reason)
			size += r->reason.len;
		if (r->has_policy)
			size += r->policy.len + r->risk_level.len;
	}
	return size;
}

/*
 * Writes one record after its size varint, from p, its time, epoch and id
 * as deltas from those of the previous; returns where it ends.
 */
static unsigned char *
put_record(unsigned char *p, const LogRecord *r, int64_t id,
		   int64_t previous_time, int64_t previous_epoch, int64_t previous_id)
{
	*p++ = (unsigned char) ((r->allowed ? FLAG_ALLOWED : 0) |
							(r->has_policy ? FLAG_HAS_POLICY : 0) |
							(r->condition_unknown ? FLAG_CONDITION_UNKNOWN : 0) |
							(r->has_reason ? FLAG_REASON : 0) |
							(r->priority_unknown ? FLAG_PRIORITY_UNKNOWN : 0));
	*p++ = (unsigned char) r->source;
	p = put_varint(p, zigzag((int64_t) ((uint64_t) r->decided_at - (uint64_t) previous_time)));
	p = put_varint(p, zigzag((int64_t) ((uint64_t) id - (uint64_t) previous_id - 1)));
	p = put_varint(p, zigzag((int64_t) ((uint64_t) r->epoch - (uint64_t) previous_epoch)));
	p = put_string(p, r->actor);
	if (r->has_policy)
	{
		if (!r->priority_unknown)
			p = put_varint(p, zigzag(r->priority));
		p = put_string(p, r->policy);
		p = put_string(p, r->risk_level);
	}
	p = put_string(p, r->action);
	p = put_string(p, r->resource);
	p = put_string(p, r->context);
	if (r->has_reason)
		p = put_string(p, r->reason);
	return p;
}

size_t
log_chunk_encode(const LogRecord *records, const int *order, const int64_t *ids, int n,
				 char *out)
{
	unsigned char *p = (unsigned char *) out;
	int64_t		time = n > 0 ? records[order[0]].decided_at : 0;
	int64_t		epoch = n > 0 ? records[order[0]].epoch : 0;
	int64_t		id = n > 0 ? ids[0] : 0;
	unsigned char scratch[MAX_VARINT_BYTES];
	int			i;

	memcpy(p, chunk_magic, sizeof(chunk_magic));
	p += sizeof(chunk_magic);
	for (i = 0; i < 4; i++)
		*p++ = (unsigned char) ((uint32_t) n >> (8 * i));
	p = put_le64(p, (uint64_t) time);
	p = put_le64(p, (uint64_t) epoch);
	p = put_le64(p, (uint64_t) id);
	id = (int64_t) ((uint64_t) id - 1);	/* wrapping, as the reader's */
	for (i = 0; i < n; i++)
	{
		const LogRecord *r = &records[order[i]];
		unsigned char *body;
		size_t		size;
		size_t		size_bytes;

		/*
		 * The record goes where it would be with a one-byte size, and moves
		 * up when its size takes more bytes.
		 */
		body = put_record(p + 1, r, ids[i], time, epoch, id);
		size = (size_t) (body - (p + 1));
		size_bytes = (size_t) (put_varint(scratch, size) - scratch);
		if (size_bytes > 1)
			memmove(p + size_bytes, p + 1, size);
		memcpy(p, scratch, size_bytes);
		p += size_bytes + size;
		time = r->decided_at;
		epoch = r->epoch;
		id = ids[i];
	}
	return (size_t) ((char *) p - out);
}

static uint64_t
get_le(const unsigned char *p, int bytes)
{
	uint64_t	v = 0;
	int			i;

	for (i = 0; i < bytes; i++)
		v |= (uint64_t) p[i] << (8 * i);
	return v;
}

bool
log_chunk_open(LogChunkReader *reader, const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *) buf;

	memset(reader, 0, sizeof(*reader));
	if (len < LOG_CHUNK_HEADER_BYTES || memcmp(buf, chunk_magic, sizeof(chunk_magic)) != 0)
	{
		reader->failure = len < LOG_CHUNK_HEADER_BYTES ? LOG_ENTRY_TRUNCATED : LOG_ENTRY_BAD_FORMAT;
		return false;
	}
	reader->count = reader->left = (uint32_t) get_le(p + 4, 4);
	reader->time = (int64_t) get_le(p + 8, 8);
	reader->epoch = (int64_t) get_le(p + 16, 8);
	reader->id = (int64_t) ((uint64_t) get_le(p + 24, 8) - 1);
	reader->at = p + LOG_CHUNK_HEADER_BYTES;
	reader->end = p + len;
	return true;
}

uint32_t
log_chunk_count(const LogChunkReader *reader)
{
	return reader->count;
}

/* A varint that ends before end and fits 64 bits; NULL if none. */
static inline const unsigned char *
get_varint(const unsigned char *at, const unsigned char *end, uint64_t *out)
{
	uint64_t	v = 0;
	int			shift = 0;

	/* Most are offsets, sizes and lengths under 128: one byte. */
	if (at < end && *at < 0x80)
	{
		*out = *at;
		return at + 1;
	}
	while (at < end && shift < 64)
	{
		unsigned char b = *at++;

		if (shift == 63 && b > 1)
			return NULL;
		v |= (uint64_t) (b & 0x7f) << shift;
		if ((b & 0x80) == 0)
		{
			*out = v;
			return at;
		}
		shift += 7;
	}
	return NULL;
}

static inline const unsigned char *
get_string(const unsigned char *at, const unsigned char *end, DecStr *out)
{
	uint64_t	len;

	at = get_varint(at, end, &len);
	if (at == NULL || len > (uint64_t) (end - at))
		return NULL;
	out->ptr = (const char *) at;
	out->len = (uint32_t) len;
	return at + len;
}

static inline bool
same_bytes(DecStr a, DecStr b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Stops the reading: the bytes are not a chunk's. */
static bool
fail(LogChunkReader *reader, LogEntryCheck why)
{
	reader->failure = why;
	return false;
}

bool
log_chunk_next_kept(LogChunkReader *reader, const LogChunkFilter *filter, LogRecord *out)
{
	while (reader->failure == LOG_ENTRY_OK)
	{
		const unsigned char *at = reader->at;
		const unsigned char *end;
		uint64_t	size;
		uint64_t	time;
		uint64_t	id;
		uint64_t	epoch;
		uint64_t	priority = 0;
		unsigned char flags;
		unsigned char source;

		if (reader->left == 0)
			return reader->at == reader->end ? false : fail(reader, LOG_ENTRY_BAD_SIZE);
		reader->left--;
		at = get_varint(at, reader->end, &size);
		if (at == NULL || size > (uint64_t) (reader->end - at))
			return fail(reader, LOG_ENTRY_TRUNCATED);
		/* Every read below stays within the record's own bytes. */
		end = at + size;
		reader->at = end;
		if (end - at < 2)
			return fail(reader, LOG_ENTRY_TRUNCATED);
		flags = *at++;
		source = *at++;
		if ((flags & ~KNOWN_FLAGS) != 0)
			return fail(reader, LOG_ENTRY_BAD_FLAGS);
		if (source >= LOG_SOURCES)
			return fail(reader, LOG_ENTRY_BAD_SOURCE);
		/* Every record's deltas are read: the next record's are from them. */
		if ((at = get_varint(at, end, &time)) == NULL || (at = get_varint(at, end, &id)) == NULL ||
			(at = get_varint(at, end, &epoch)) == NULL)
			return fail(reader, LOG_ENTRY_TRUNCATED);
		/* Wrapping arithmetic, as encoded; the caller checks the time's range. */
		reader->time = (int64_t) ((uint64_t) reader->time + (uint64_t) unzigzag(time));
		reader->id = (int64_t) ((uint64_t) reader->id + 1 + (uint64_t) unzigzag(id));
		reader->epoch = (int64_t) ((uint64_t) reader->epoch + (uint64_t) unzigzag(epoch));
		if (filter && filter->has_allowed && ((flags & FLAG_ALLOWED) != 0) != filter->allowed)
			continue;
		if (filter &&
			((filter->has_from && reader->time < filter->from) ||
			 (filter->has_before && reader->time >= filter->before &&
			  !(filter->has_before_id && reader->time == filter->before &&
				reader->id < filter->before_id))))
			continue;
		if ((at = get_string(at, end, &out->actor)) == NULL)
			return fail(reader, LOG_ENTRY_TRUNCATED);
		if (filter && filter->has_actor && !same_bytes(out->actor, filter->actor))
			continue;
		out->allowed = (flags & FLAG_ALLOWED) != 0;
		out->has_policy = (flags & FLAG_HAS_POLICY) != 0;
		out->condition_unknown = (flags & FLAG_CONDITION_UNKNOWN) != 0;
		out->has_reason = (flags & FLAG_REASON) != 0;
		out->priority_unknown = (flags & FLAG_PRIORITY_UNKNOWN) != 0;
		/* Before 0.7.0 a policy's priority and condition were not recorded. */
		if (out->priority_unknown && (!out->has_policy || out->condition_unknown))
			return fail(reader, LOG_ENTRY_BAD_FLAGS);
		out->policy.ptr = out->risk_level.ptr = out->reason.ptr = NULL;
		out->policy.len = out->risk_level.len = out->reason.len = 0;
		if (out->has_policy &&
			((!out->priority_unknown && (at = get_varint(at, end, &priority)) == NULL) ||
			 (at = get_string(at, end, &out->policy)) == NULL ||
			 (at = get_string(at, end, &out->risk_level)) == NULL))
			return fail(reader, LOG_ENTRY_TRUNCATED);
		if (unzigzag(priority) < INT32_MIN || unzigzag(priority) > INT32_MAX)
			return fail(reader, LOG_ENTRY_BAD_POLICY);
		if (filter &&
			((filter->has_policy && (!out->has_policy || !same_bytes(out->policy, filter->policy))) ||
			 (filter->has_risk_level &&
			  (!out->has_policy || !same_bytes(out->risk_level, filter->risk_level)))))
			continue;
		if ((at = get_string(at, end, &out->action)) == NULL ||
			(at = get_string(at, end, &out->resource)) == NULL ||
			(at = get_string(at, end, &out->context)) == NULL ||
			(out->has_reason && (at = get_string(at, end, &out->reason)) == NULL))
			return fail(reader, LOG_ENTRY_TRUNCATED);
		if (at != end)
			return fail(reader, LOG_ENTRY_BAD_SIZE);
		out->priority = (int32_t) unzigzag(priority);
		out->decided_at = reader->time;
		out->epoch = reader->epoch;
		out->source = (LogSource) source;
		out->context_format = LOG_CONTEXT_JSON_TEXT;
		return true;
	}
	return false;
}

bool
log_chunk_skim(LogChunkReader *reader, LogRecord *out)
{
	return log_chunk_next_kept(reader, NULL, out);
}

bool
log_chunk_next(LogChunkReader *reader, LogRecord *out)
{
	LogEntryCheck check;

	if (!log_chunk_skim(reader, out))
		return false;
	check = log_record_check_fields(out);
	if (check != LOG_ENTRY_OK)
		return fail(reader, check);
	return true;
}
