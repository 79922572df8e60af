/*
 * prop_log_record.c — the checker of decision log entries read from Redis
 * streams (src/core/log_record.c): what a stream hands back is untrusted bytes.
 *
 * Input layout (every byte string is valid):
 *   byte 0       which part is raw: 0-127 the whole rest is an entry as
 *                Redis could return it; 128-255 the rest builds a record
 *   for a built record:
 *     byte 1     flags (bit 0 allowed, 1 has_policy, 2 condition_unknown,
 *                3 context, 4 source bit 0, 5 source bit 1)
 *     byte 2-4   lengths of actor, action, resource (1-64, mapped)
 *     byte 5     length of the policy name (1-64)
 *     byte 6     corruption: byte offset to flip (scaled to the entry)
 *     byte 7     corruption mask (0 becomes 1)
 *     then       the bytes the strings and the context are made of
 *
 * Properties:
 *   1. checking raw bytes stays within them (an exactly-sized copy), and
 *      whatever it accepts is sound: valid uids, an allow names a policy,
 *      an unknown condition only denies, a context that is a safe JSON
 *      object; a tagged entry re-encodes to the very same bytes;
 *   2. a record built from valid parts, encoded, is accepted and decodes
 *      back to the same fields (an allow without a policy, and the other
 *      impossible combinations, are refused instead);
 *   3. a valid entry cut short or extended by a byte is refused, and one
 *      with a byte flipped is refused or still sound.
 */
#include "props.h"
#include "log_record.h"
#include "uid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The invariants of an accepted entry (decoded from buf). */
static const char *
unsound(const LogRecord *r, const char *buf, size_t len)
{
	size_t		at;

	if (!log_record_within(r, buf, len))
		return "a field points outside the entry";
	if (dec_uid_problem(r->actor.ptr, r->actor.len, false, &at) != DEC_UID_OK ||
		dec_uid_problem(r->action.ptr, r->action.len, false, &at) != DEC_UID_OK ||
		dec_uid_problem(r->resource.ptr, r->resource.len, false, &at) != DEC_UID_OK)
		return "accepted an invalid uid";
	if (r->allowed && !r->has_policy)
		return "accepted an allow without a policy";
	if (r->condition_unknown && (r->allowed || !r->has_policy))
		return "accepted an unknown condition that does not deny by a policy";
	if (r->has_policy != (r->policy.len > 0) || r->has_policy != (r->risk_level.len > 0))
		return "policy and risk level disagree with has_policy";
	if ((unsigned) r->source >= LOG_SOURCES)
		return "accepted an unknown source";
	if (r->context.len > 0 &&
		(r->context_format != LOG_CONTEXT_JSON_TEXT ||
		 !log_json_object_is_safe(r->context.ptr, r->context.len)))
		return "accepted a context that is not a safe JSON object";
	return NULL;
}

/* Checks len bytes from a copy of exactly that size; NULL if refused. */
static const char *
check_copy(const char *bytes, size_t len, bool *accepted, bool *tagged_canonical)
{
	char	   *copy = malloc(len ? len : 1);
	LogRecord	r;
	const char *problem = NULL;

	if (copy == NULL)
		abort();
	if (len)
		memcpy(copy, bytes, len);
	memset(&r, 0x5A, sizeof(r));
	*accepted = log_stream_entry_check(copy, len, &r) == LOG_ENTRY_OK;
	*tagged_canonical = true;
	if (*accepted)
	{
		problem = unsound(&r, copy, len);
		if (problem == NULL && r.context_format == LOG_CONTEXT_JSON_TEXT)
		{
			size_t		size = log_stream_entry_size(&r);
			char	   *again = malloc(size);

			if (again == NULL)
				abort();
			if (size != len || log_stream_entry_encode(&r, again) != len ||
				memcmp(again, copy, len) != 0)
				*tagged_canonical = false;
			free(again);
		}
	}
	free(copy);
	return problem;
}

/* A uid of n bytes from the input: printable, no glob characters. */
static void
make_uid(Reader *rd, char *out, size_t n)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789:/-_.@ \xc3\xa9";
	size_t		i;

	for (i = 0; i < n; i++)
		out[i] = alphabet[rd_u8(rd) % (sizeof(alphabet) - 1)];
}

/* A JSON object in the subset the checker accepts, from the input. */
static void
make_context(Reader *rd, Buf *b)
{
	static const char *const values[] = {
		"\"a\\n\\u001f\\\"\xc3\xa9\"", "-12.50", "[true, false, null, 0]",
		"{\"x\": {\"y\": []}}", "\"10.0.0.7\"", "{}"
	};
	int			members = 1 + rd_u8(rd) % 4;
	int			m;

	buf_addc(b, '{');
	for (m = 0; m < members; m++)
	{
		char		key[16];
		const char *value = values[rd_u8(rd) % (sizeof(values) / sizeof(values[0]))];

		snprintf(key, sizeof(key), "%s\"k%d\": ", m > 0 ? ", " : "", m);
		buf_add(b, key, strlen(key));
		buf_add(b, value, strlen(value));
	}
	buf_addc(b, '}');
}

int
prop_log_record(const uint8_t *data, size_t size)
{
	Reader		rd = {data, size};
	uint8_t		mode = rd_u8(&rd);
	int			failed = 0;
	bool		accepted;
	bool		canonical;
	const char *problem;

	if (mode < 128)
	{
		/* 1. raw bytes from "Redis" */
		problem = check_copy((const char *) rd.p, rd.n, &accepted, &canonical);
		if (problem || !canonical)
		{
			fprintf(stderr, "log_record: raw entry: %s\n",
					problem ? problem : "accepted bytes do not re-encode to themselves");
			print_bytes("raw", (const char *) rd.p, rd.n, 96);
			failed = 1;
		}
		return failed;
	}

	{
		uint8_t		flags = rd_u8(&rd);
		char		actor[64],
					action[64],
					resource[64],
					policy[64];
		size_t		actor_len = 1 + rd_u8(&rd) % 64;
		size_t		action_len = 1 + rd_u8(&rd) % 64;
		size_t		resource_len = 1 + rd_u8(&rd) % 64;
		size_t		policy_len = 1 + rd_u8(&rd) % 64;
		uint8_t		flip = rd_u8(&rd);
		uint8_t		mask = rd_u8(&rd);
		LogRecord	r;
		LogRecord	got;
		Buf			context;
		char	   *entry;
		size_t		entry_len;
		bool		possible;
		LogEntryCheck check;
		size_t		i;

		if (mask == 0)
			mask = 1;
		memset(&r, 0, sizeof(r));
		r.decided_at = (int64_t) rd_u64(&rd);
		r.epoch = (int64_t) rd_u64(&rd);
		r.priority = (int32_t) rd_u16(&rd) - 1000;
		r.allowed = (flags & 1) != 0;
		r.has_policy = (flags & 2) != 0;
		r.condition_unknown = (flags & 4) != 0;
		r.source = (LogSource) ((flags >> 4) & 3);
		r.context_format = LOG_CONTEXT_JSON_TEXT;
		make_uid(&rd, actor, actor_len);
		make_uid(&rd, action, action_len);
		make_uid(&rd, resource, resource_len);
		r.actor.ptr = actor;
		r.actor.len = actor_len;
		r.action.ptr = action;
		r.action.len = action_len;
		r.resource.ptr = resource;
		r.resource.len = resource_len;
		if (r.has_policy)
		{
			memset(policy, 'p', sizeof(policy));
			r.policy.ptr = policy;
			r.policy.len = policy_len;
			r.risk_level.ptr = "high";
			r.risk_level.len = 4;
		}
		buf_init(&context);
		if (flags & 8)
		{
			make_context(&rd, &context);
			r.context.ptr = context.p;
			r.context.len = context.len;
		}
		possible = !(r.allowed && !r.has_policy) &&
			!(r.condition_unknown && (r.allowed || !r.has_policy));

		/* 2. round trip */
		entry_len = log_stream_entry_size(&r);
		entry = malloc(entry_len + 1);
		if (entry == NULL)
			abort();
		entry[entry_len] = 0x77;
		if (log_stream_entry_encode(&r, entry) != entry_len || entry[entry_len] != 0x77)
		{
			fprintf(stderr, "log_record: encode wrote other than its size\n");
			failed = 1;
		}
		check = log_stream_entry_check(entry, entry_len, &got);
		if ((check == LOG_ENTRY_OK) != possible)
		{
			fprintf(stderr, "log_record: a built record (flags %02x) was %s: %s\n", flags,
					check == LOG_ENTRY_OK ? "accepted" : "refused", log_entry_check_message(check));
			failed = 1;
		}
		if (check == LOG_ENTRY_OK && !same_log_record(&got, &r))
		{
			fprintf(stderr, "log_record: the round trip changed the record\n");
			failed = 1;
		}

		/* 3. cut short, extended, one byte flipped */
		if (check == LOG_ENTRY_OK)
		{
			char	   *bad = malloc(entry_len + 8);

			if (bad == NULL)
				abort();
			for (i = 1; i <= 8 && i <= entry_len; i++)
				if (log_stream_entry_check(entry, entry_len - i, &got) == LOG_ENTRY_OK)
				{
					fprintf(stderr, "log_record: an entry cut by %zu bytes was accepted\n", i);
					failed = 1;
				}
			memcpy(bad, entry, entry_len);
			memset(bad + entry_len, 0, 8);
			if (log_stream_entry_check(bad, entry_len + 8, &got) == LOG_ENTRY_OK)
			{
				fprintf(stderr, "log_record: an entry with 8 more bytes was accepted\n");
				failed = 1;
			}
			memcpy(bad, entry, entry_len);
			bad[(size_t) flip * entry_len / 256] ^= (char) mask;
			problem = check_copy(bad, entry_len, &accepted, &canonical);
			if (problem || !canonical)
			{
				fprintf(stderr, "log_record: byte %zu ^ 0x%02x: %s\n",
						(size_t) flip * entry_len / 256, mask,
						problem ? problem : "accepted bytes do not re-encode to themselves");
				failed = 1;
			}
			free(bad);
		}
		free(entry);
		buf_free(&context);
	}
	return failed;
}
