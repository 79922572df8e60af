/*
 * log_record.c — encoding, decoding and checking of logged decisions.
 *
 * Layout of a record (host byte order: a standby and its primary run on the
 * same architecture):
 *   a 40-byte header (RecordHeader below), then actor, action, resource,
 *   policy, risk level and context bytes, then zero bytes up to a multiple
 *   of LOG_RECORD_ALIGN (the header's size field counts them).
 * A stream entry is LOG_STREAM_MAGIC_BYTES of tag, then a record whose
 * context is JSON text.
 */
#include "log_record.h"

#include <string.h>

#include "uid.h"

typedef struct RecordHeader
{
	uint32_t	size;			/* whole record, padding included */
	int32_t		priority;
	int64_t		decided_at;
	int64_t		epoch;
	uint16_t	actor_len;
	uint16_t	action_len;
	uint16_t	resource_len;
	uint16_t	policy_len;
	uint32_t	context_len;
	uint8_t		risk_len;
	uint8_t		flags;
	uint8_t		source;
	uint8_t		format;			/* LogContextFormat; 0.6.0 wrote 0 */
} RecordHeader;

#define FLAG_ALLOWED			0x01
#define FLAG_HAS_POLICY			0x02
#define FLAG_CONDITION_UNKNOWN	0x04
#define KNOWN_FLAGS (FLAG_ALLOWED | FLAG_HAS_POLICY | FLAG_CONDITION_UNKNOWN)

/* Not a valid start of a 0.6.0 record: its size field would read ~1.8e9. */
static const char stream_magic[LOG_STREAM_MAGIC_BYTES] = {'d', 'l', 'o', 'g', '2', 0, 0, 0};

const char *const log_source_names[LOG_SOURCES] = {"miss", "l1", "l2", "redis"};

static size_t
body_size(const RecordHeader *h)
{
	return sizeof(RecordHeader) + (size_t) h->actor_len + h->action_len + h->resource_len +
		h->policy_len + h->risk_len + h->context_len;
}

static size_t
padded(size_t size)
{
	return (size + LOG_RECORD_ALIGN - 1) & ~((size_t) LOG_RECORD_ALIGN - 1);
}

static void
fill_header(const LogRecord *r, RecordHeader *h)
{
	memset(h, 0, sizeof(*h));
	h->priority = r->priority;
	h->decided_at = r->decided_at;
	h->epoch = r->epoch;
	h->actor_len = (uint16_t) r->actor.len;
	h->action_len = (uint16_t) r->action.len;
	h->resource_len = (uint16_t) r->resource.len;
	h->policy_len = (uint16_t) r->policy.len;
	h->risk_len = (uint8_t) r->risk_level.len;
	h->context_len = r->context.len;
	h->flags = (r->allowed ? FLAG_ALLOWED : 0) | (r->has_policy ? FLAG_HAS_POLICY : 0) |
		(r->condition_unknown ? FLAG_CONDITION_UNKNOWN : 0);
	h->source = (uint8_t) r->source;
	h->format = (uint8_t) r->context_format;
	h->size = (uint32_t) padded(body_size(h));
}

size_t
log_record_size(const LogRecord *record)
{
	RecordHeader h;

	fill_header(record, &h);
	return h.size;
}

static char *
put(char *p, DecStr s)
{
	if (s.len > 0)
		memcpy(p, s.ptr, s.len);
	return p + s.len;
}

size_t
log_record_encode(const LogRecord *record, char *out)
{
	RecordHeader h;
	char	   *p = out;

	fill_header(record, &h);
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	p = put(p, record->actor);
	p = put(p, record->action);
	p = put(p, record->resource);
	p = put(p, record->policy);
	p = put(p, record->risk_level);
	p = put(p, record->context);
	memset(p, 0, out + h.size - p);
	return h.size;
}

static const char *
take(const char *p, uint32_t len, DecStr *out)
{
	out->ptr = p;
	out->len = len;
	return p + len;
}

/* Fills *out from a header and the bytes after it (known to be there). */
static void
decode_fields(const RecordHeader *h, const char *buf, LogRecord *out)
{
	const char *p = buf + sizeof(RecordHeader);

	/* Fields the ring and the streams do not carry stay zero. */
	memset(out, 0, sizeof(*out));
	out->decided_at = h->decided_at;
	out->epoch = h->epoch;
	out->priority = h->priority;
	out->allowed = (h->flags & FLAG_ALLOWED) != 0;
	out->has_policy = (h->flags & FLAG_HAS_POLICY) != 0;
	out->condition_unknown = (h->flags & FLAG_CONDITION_UNKNOWN) != 0;
	out->source = h->source < LOG_SOURCES ? (LogSource) h->source : LOG_SOURCE_MISS;
	out->context_format = (LogContextFormat) h->format;
	p = take(p, h->actor_len, &out->actor);
	p = take(p, h->action_len, &out->action);
	p = take(p, h->resource_len, &out->resource);
	p = take(p, h->policy_len, &out->policy);
	p = take(p, h->risk_len, &out->risk_level);
	take(p, h->context_len, &out->context);
}

size_t
log_record_decode(const char *buf, size_t len, LogRecord *out)
{
	RecordHeader h;

	if (len < sizeof(h))
		return 0;
	memcpy(&h, buf, sizeof(h));
	decode_fields(&h, buf, out);
	return h.size;
}

size_t
log_record_count(const char *buf, size_t len)
{
	size_t		n = 0;
	size_t		pos = 0;
	RecordHeader h;

	while (len - pos >= sizeof(h))
	{
		memcpy(&h, buf + pos, sizeof(h));
		if (h.size < sizeof(h) || h.size > len - pos)
			break;				/* not a whole record */
		pos += h.size;
		n++;
	}
	return n;
}

size_t
log_stream_entry_size(const LogRecord *record)
{
	return LOG_STREAM_MAGIC_BYTES + log_record_size(record);
}

size_t
log_stream_entry_encode(const LogRecord *record, char *out)
{
	memcpy(out, stream_magic, LOG_STREAM_MAGIC_BYTES);
	return LOG_STREAM_MAGIC_BYTES + log_record_encode(record, out + LOG_STREAM_MAGIC_BYTES);
}

static bool
has_byte(DecStr s, char byte)
{
	return s.len > 0 && memchr(s.ptr, byte, s.len) != NULL;
}

LogEntryCheck
log_stream_entry_check(const char *buf, size_t len, LogRecord *out)
{
	bool		tagged = len >= LOG_STREAM_MAGIC_BYTES &&
		memcmp(buf, stream_magic, LOG_STREAM_MAGIC_BYTES) == 0;
	RecordHeader h;
	size_t		body;
	size_t		i;

	if (tagged)
	{
		buf += LOG_STREAM_MAGIC_BYTES;
		len -= LOG_STREAM_MAGIC_BYTES;
	}
	if (len < sizeof(h))
		return LOG_ENTRY_TRUNCATED;
	memcpy(&h, buf, sizeof(h));
	if (h.size != len || len % LOG_RECORD_ALIGN != 0)
		return LOG_ENTRY_BAD_SIZE;
	if (h.format != (tagged ? LOG_CONTEXT_JSON_TEXT : LOG_CONTEXT_JSONB))
		return LOG_ENTRY_BAD_FORMAT;
	if ((h.flags & ~KNOWN_FLAGS) != 0)
		return LOG_ENTRY_BAD_FLAGS;
	if (h.source >= LOG_SOURCES)
		return LOG_ENTRY_BAD_SOURCE;
	body = body_size(&h);
	if (body > len || len - body >= LOG_RECORD_ALIGN)
		return LOG_ENTRY_BAD_SIZE;
	/* 0.6.0 copied its ring's padding as it was; ours is zeroed. */
	if (tagged)
		for (i = body; i < len; i++)
			if (buf[i] != 0)
				return LOG_ENTRY_BAD_PADDING;

	decode_fields(&h, buf, out);
	if (out->context.len > 0 && !tagged)
		return LOG_ENTRY_UNCHECKABLE_CONTEXT;
	return log_record_check_fields(out);
}

LogEntryCheck
log_record_check_fields(const LogRecord *out)
{
	size_t		at;

	if (dec_uid_problem(out->actor.ptr, out->actor.len, false, &at) != DEC_UID_OK ||
		dec_uid_problem(out->action.ptr, out->action.len, false, &at) != DEC_UID_OK ||
		dec_uid_problem(out->resource.ptr, out->resource.len, false, &at) != DEC_UID_OK)
		return LOG_ENTRY_BAD_UID;
	if (out->has_policy != (out->policy.len > 0) ||
		out->policy.len > LOG_MAX_POLICY_NAME_BYTES || has_byte(out->policy, '\0'))
		return LOG_ENTRY_BAD_POLICY;
	if (out->has_policy != (out->risk_level.len > 0) ||
		out->risk_level.len > LOG_MAX_RISK_LEVEL_BYTES || has_byte(out->risk_level, '\0'))
		return LOG_ENTRY_BAD_RISK_LEVEL;
	/* The default is a denial; an unknown condition only ever decides a deny. */
	if ((out->allowed && !out->has_policy) ||
		(out->condition_unknown && (out->allowed || !out->has_policy)))
		return LOG_ENTRY_BAD_FLAGS;
	if (out->context.len > 0 &&
		(out->context_format != LOG_CONTEXT_JSON_TEXT ||
		 out->context.len > LOG_MAX_CONTEXT_TEXT_BYTES ||
		 !log_json_object_is_safe(out->context.ptr, out->context.len)))
		return LOG_ENTRY_BAD_CONTEXT;
	return LOG_ENTRY_OK;
}

const char *
log_entry_check_message(LogEntryCheck check)
{
	switch (check)
	{
		case LOG_ENTRY_OK:
			return "valid";
		case LOG_ENTRY_TRUNCATED:
			return "shorter than a record header";
		case LOG_ENTRY_BAD_SIZE:
			return "its lengths do not add up to its size";
		case LOG_ENTRY_BAD_FORMAT:
			return "unknown record format";
		case LOG_ENTRY_BAD_FLAGS:
			return "impossible combination of flags";
		case LOG_ENTRY_BAD_SOURCE:
			return "unknown source";
		case LOG_ENTRY_BAD_PADDING:
			return "non-zero padding";
		case LOG_ENTRY_BAD_UID:
			return "an actor, action or resource that is not a valid uid";
		case LOG_ENTRY_BAD_POLICY:
			return "invalid policy name";
		case LOG_ENTRY_BAD_RISK_LEVEL:
			return "invalid risk level";
		case LOG_ENTRY_BAD_CONTEXT:
			return "its context is not a safe JSON object";
		case LOG_ENTRY_UNCHECKABLE_CONTEXT:
			return "a 0.6.0 record with a binary context, which cannot be checked";
		case LOG_ENTRY_CHECKS:
			break;
	}
	return "unknown problem";
}

/* ---- the JSON subset of log_json_object_is_safe() ---- */

typedef struct JsonScan
{
	const char *p;
	const char *end;
} JsonScan;

static bool json_value(JsonScan *s, int depth);

static void
json_space(JsonScan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool
json_literal(JsonScan *s, const char *word)
{
	size_t		n = strlen(word);

	if ((size_t) (s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return false;
	s->p += n;
	return true;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
json_string(JsonScan *s)
{
	if (s->p >= s->end || *s->p != '"')
		return false;
	s->p++;
	while (s->p < s->end)
	{
		unsigned char c = (unsigned char) *s->p++;

		if (c == '"')
			return true;
		if (c < 0x20)
			return false;		/* control characters must be escaped; NUL never */
		if (c != '\\')
			continue;
		if (s->p >= s->end)
			return false;
		c = (unsigned char) *s->p++;
		if (c == 'u')
		{
			int			code = 0;
			int			i;

			if (s->end - s->p < 4)
				return false;
			for (i = 0; i < 4; i++)
			{
				int			digit = hex_value(s->p[i]);

				if (digit < 0)
					return false;
				code = code * 16 + digit;
			}
			s->p += 4;
			/* \u0000 is refused by jsonb; others depend on the encoding. */
			if (code < 0x01 || code > 0x1f)
				return false;
		}
		else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0')
			return false;
	}
	return false;
}

static bool
json_digits(JsonScan *s, size_t *count)
{
	const char *start = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	*count = s->p - start;
	return *count > 0;
}

static bool
json_number(JsonScan *s)
{
	size_t		digits;

	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (!json_digits(s, &digits))
		return false;
	if (s->p < s->end && *s->p == '.')
	{
		s->p++;
		/* numeric's display scale is at most 16383 digits */
		if (!json_digits(s, &digits) || digits > 16383)
			return false;
	}
	/* No exponent: numeric's text form has none, and one could overflow. */
	return !(s->p < s->end && (*s->p == 'e' || *s->p == 'E' ||
							   (*s->p >= '0' && *s->p <= '9')));
}

static bool
json_container(JsonScan *s, int depth, char close)
{
	bool		object = close == '}';

	if (depth >= LOG_MAX_JSON_DEPTH)
		return false;
	s->p++;						/* the opening bracket */
	json_space(s);
	if (s->p < s->end && *s->p == close)
	{
		s->p++;
		return true;
	}
	for (;;)
	{
		if (object)
		{
			if (!json_string(s))
				return false;
			json_space(s);
			if (s->p >= s->end || *s->p != ':')
				return false;
			s->p++;
			json_space(s);
		}
		if (!json_value(s, depth + 1))
			return false;
		json_space(s);
		if (s->p >= s->end)
			return false;
		if (*s->p == close)
		{
			s->p++;
			return true;
		}
		if (*s->p != ',')
			return false;
		s->p++;
		json_space(s);
	}
}

static bool
json_value(JsonScan *s, int depth)
{
	if (s->p >= s->end)
		return false;
	switch (*s->p)
	{
		case '{':
			return json_container(s, depth, '}');
		case '[':
			return json_container(s, depth, ']');
		case '"':
			return json_string(s);
		case 't':
			return json_literal(s, "true");
		case 'f':
			return json_literal(s, "false");
		case 'n':
			return json_literal(s, "null");
		default:
			return json_number(s);
	}
}

bool
log_json_object_is_safe(const char *text, size_t len)
{
	JsonScan	s = {text, text + len};

	json_space(&s);
	if (s.p >= s.end || *s.p != '{' || !json_container(&s, 0, '}'))
		return false;
	json_space(&s);
	return s.p == s.end;
}
