/*
 * log_chunk.c — encoding and checked decoding of chunks of logged
 * decisions (log_chunk.h).
 *
 * Layout, every integer little-endian:
 *   header: "dch1", uint32 count, int64 base time, int64 base epoch,
 *           int64 base id;
 *   then count records, each:
 *     varint  time - the previous record's time (zigzag; the first's
 *             previous is the base time)
 *     varint  epoch - the previous record's epoch (zigzag; likewise)
 *     varint  id - (the previous record's id + 1) (zigzag; the first's
 *             previous is the base id - 1)
 *     byte    flags: 1 allowed, 2 has a policy, 4 condition unknown,
 *             8 a stored reason follows, 16 no priority (logged before 0.7.0)
 *     byte    source (LogSource)
 *     with a policy: varint priority (zigzag; unless flag 16), string
 *             policy, string risk level
 *     strings actor, action, resource, context (JSON text; empty: none)
 *     with flag 8: string reason
 *   where a string is a varint length and that many bytes.
 * Times, epochs and ids are deltas because a chunk's records are close in
 * time, mostly share one epoch and have consecutive ids: a byte or two
 * each instead of twenty-four.
 */
#include "log_chunk.h"

#include <string.h>

static const char chunk_magic[4] = {'d', 'c', 'h', '1'};

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

		/* three deltas, flags and source, priority, seven string lengths */
		size += 3 * MAX_VARINT_BYTES + 2 + MAX_VARINT_BYTES + 7 * MAX_VARINT_BYTES;
		size += r->actor.len + r->action.len + r->resource.len + r->context.len;
		if (r->has_reason)
			size += r->reason.len;
		if (r->has_policy)
			size += r->policy.len + r->risk_level.len;
	}
	return size;
}

size_t
log_chunk_encode(const LogRecord *records, const int *order, const int64_t *ids, int n,
				 char *out)
{
	unsigned char *p = (unsigned char *) out;
	int64_t		time = n > 0 ? records[order[0]].decided_at : 0;
	int64_t		epoch = n > 0 ? records[order[0]].epoch : 0;
	int64_t		id = n > 0 ? ids[0] : 0;
	int			i;

	memcpy(p, chunk_magic, sizeof(chunk_magic));
	p += sizeof(chunk_magic);
	for (i = 0; i < 4; i++)
		*p++ = (unsigned char) ((uint32_t) n >> (8 * i));
	p = put_le64(p, (uint64_t) time);
	p = put_le64(p, (uint64_t) epoch);
	p = put_le64(p, (uint64_t) id);
	id--;
	for (i = 0; i < n; i++)
	{
		const LogRecord *r = &records[order[i]];

		p = put_varint(p, zigzag((int64_t) ((uint64_t) r->decided_at - (uint64_t) time)));
		p = put_varint(p, zigzag((int64_t) ((uint64_t) r->epoch - (uint64_t) epoch)));
		p = put_varint(p, zigzag((int64_t) ((uint64_t) ids[i] - (uint64_t) id - 1)));
		*p++ = (unsigned char) ((r->allowed ? FLAG_ALLOWED : 0) |
								(r->has_policy ? FLAG_HAS_POLICY : 0) |
								(r->condition_unknown ? FLAG_CONDITION_UNKNOWN : 0) |
								(r->has_reason ? FLAG_REASON : 0) |
								(r->priority_unknown ? FLAG_PRIORITY_UNKNOWN : 0));
		*p++ = (unsigned char) r->source;
		if (r->has_policy)
		{
			if (!r->priority_unknown)
				p = put_varint(p, zigzag(r->priority));
			p = put_string(p, r->policy);
			p = put_string(p, r->risk_level);
		}
		p = put_string(p, r->actor);
		p = put_string(p, r->action);
		p = put_string(p, r->resource);
		p = put_string(p, r->context);
		if (r->has_reason)
			p = put_string(p, r->reason);
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

/* A varint that ends within the chunk and fits 64 bits; false if none. */
static bool
get_varint(LogChunkReader *reader, uint64_t *out)
{
	uint64_t	v = 0;
	int			shift = 0;

	/* Most are deltas and lengths under 128: one byte. */
	if (reader->at < reader->end && *reader->at < 0x80)
	{
		*out = *reader->at++;
		return true;
	}
	while (reader->at < reader->end && shift < 64)
	{
		unsigned char b = *reader->at++;

		if (shift == 63 && b > 1)
			return false;
		v |= (uint64_t) (b & 0x7f) << shift;
		if ((b & 0x80) == 0)
		{
			*out = v;
			return true;
		}
		shift += 7;
	}
	return false;
}

static bool
get_string(LogChunkReader *reader, DecStr *out)
{
	uint64_t	len;

	if (!get_varint(reader, &len) || len > (uint64_t) (reader->end - reader->at) ||
		len > UINT32_MAX)
		return false;
	out->ptr = (const char *) reader->at;
	out->len = (uint32_t) len;
	reader->at += len;
	return true;
}

/* Stops the reading: the bytes are not a chunk's. */
static bool
fail(LogChunkReader *reader, LogEntryCheck why)
{
	reader->failure = why;
	reader->left = 0;
	return false;
}

bool
log_chunk_skim(LogChunkReader *reader, LogRecord *out)
{
	uint64_t	time_delta;
	uint64_t	epoch_delta;
	uint64_t	id_delta;
	uint64_t	priority = 0;
	unsigned char flags;
	unsigned char source;

	if (reader->failure != LOG_ENTRY_OK)
		return false;
	if (reader->left == 0)
		return reader->at == reader->end ? false : fail(reader, LOG_ENTRY_BAD_SIZE);
	memset(out, 0, sizeof(*out));
	if (!get_varint(reader, &time_delta) || !get_varint(reader, &epoch_delta) ||
		!get_varint(reader, &id_delta) || reader->end - reader->at < 2)
		return fail(reader, LOG_ENTRY_TRUNCATED);
	flags = *reader->at++;
	source = *reader->at++;
	if ((flags & ~KNOWN_FLAGS) != 0)
		return fail(reader, LOG_ENTRY_BAD_FLAGS);
	if (source >= LOG_SOURCES)
		return fail(reader, LOG_ENTRY_BAD_SOURCE);
	out->allowed = (flags & FLAG_ALLOWED) != 0;
	out->has_policy = (flags & FLAG_HAS_POLICY) != 0;
	out->condition_unknown = (flags & FLAG_CONDITION_UNKNOWN) != 0;
	out->has_reason = (flags & FLAG_REASON) != 0;
	out->priority_unknown = (flags & FLAG_PRIORITY_UNKNOWN) != 0;
	/* Before 0.7.0 a policy's priority and condition were not recorded. */
	if (out->priority_unknown && (!out->has_policy || out->condition_unknown))
		return fail(reader, LOG_ENTRY_BAD_FLAGS);
	out->source = (LogSource) source;
	out->context_format = LOG_CONTEXT_JSON_TEXT;
	if (out->has_policy &&
		((!out->priority_unknown && !get_varint(reader, &priority)) ||
		 !get_string(reader, &out->policy) ||
		 !get_string(reader, &out->risk_level)))
		return fail(reader, LOG_ENTRY_TRUNCATED);
	if (unzigzag(priority) < INT32_MIN || unzigzag(priority) > INT32_MAX)
		return fail(reader, LOG_ENTRY_BAD_POLICY);
	out->priority = (int32_t) unzigzag(priority);
	if (!get_string(reader, &out->actor) || !get_string(reader, &out->action) ||
		!get_string(reader, &out->resource) || !get_string(reader, &out->context) ||
		(out->has_reason && !get_string(reader, &out->reason)))
		return fail(reader, LOG_ENTRY_TRUNCATED);
	/* Wrapping arithmetic, as encoded; the server checks the time's range. */
	reader->time = (int64_t) ((uint64_t) reader->time + (uint64_t) unzigzag(time_delta));
	reader->epoch = (int64_t) ((uint64_t) reader->epoch + (uint64_t) unzigzag(epoch_delta));
	reader->id = (int64_t) ((uint64_t) reader->id + 1 + (uint64_t) unzigzag(id_delta));
	out->decided_at = reader->time;
	out->epoch = reader->epoch;
	reader->left--;
	return true;
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
