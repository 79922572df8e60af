/*
 * log_record.h — the byte layout of one logged decision: in the shared
 * ring (audit_log.c), and in the Redis streams through which hot standbys
 * forward their log to the primary (worker_standby.c).
 *
 * Pure C (no PostgreSQL headers), so that the decoder of untrusted stream
 * entries can be fuzzed alone.  A ring record is written and read by the
 * same server and is trusted.  A stream entry comes from outside: it is
 * read only through log_stream_entry_check(), which accepts nothing it has
 * not checked byte for byte.
 */
#ifndef DECIDE_LOG_RECORD_H
#define DECIDE_LOG_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evaluator.h"

/* How the context of a record is stored. */
typedef enum LogContextFormat
{
	LOG_CONTEXT_JSONB = 0,		/* the request's jsonb, varlena header included (ring) */
	LOG_CONTEXT_JSON_TEXT = 1	/* JSON text (streams: checkable from outside) */
} LogContextFormat;

/* The cache layer that answered; its name is what the log shows. */
typedef enum LogSource
{
	LOG_SOURCE_MISS = 0,
	LOG_SOURCE_L1,
	LOG_SOURCE_L2,
	LOG_SOURCE_REDIS,
	LOG_SOURCES
} LogSource;

extern const char *const log_source_names[LOG_SOURCES];

/* One logged decision; the strings point into a buffer and need no NUL. */
typedef struct LogRecord
{
	int64_t		decided_at;		/* TimestampTz */
	int64_t		epoch;
	int32_t		priority;
	bool		allowed;
	bool		has_policy;		/* false: no policy matched, policy and risk empty */
	bool		condition_unknown;
	LogSource	source;
	LogContextFormat context_format;
	DecStr		actor;
	DecStr		action;
	DecStr		resource;
	DecStr		policy;
	DecStr		risk_level;
	DecStr		context;		/* len 0: not logged */
	/*
	 * Only in chunks of the decision log (log_chunk.h), for decisions logged
	 * before 0.7.0, which stored their reason and recorded no priority: the
	 * ring and the streams never carry these.
	 */
	bool		priority_unknown;	/* no priority, no condition flag */
	bool		has_reason;
	DecStr		reason;			/* stored, not derived when read */
} LogRecord;

#define LOG_RECORD_ALIGN 8
#define LOG_MAX_POLICY_NAME_BYTES 128
#define LOG_MAX_RISK_LEVEL_BYTES 63
/* A context in JSON text: the ring keeps contexts of at most 8 kB of jsonb. */
#define LOG_MAX_CONTEXT_TEXT_BYTES (64 * 1024)
#define LOG_MAX_JSON_DEPTH 1000

/* Bytes a record takes, padded to LOG_RECORD_ALIGN. */
extern size_t log_record_size(const LogRecord *record);

/* Writes log_record_size() bytes (padding zeroed); returns that size. */
extern size_t log_record_encode(const LogRecord *record, char *out);

/*
 * Decodes the next trusted record (one this server encoded) of a buffer;
 * returns its size, 0 when fewer than a header's bytes are left.
 */
extern size_t log_record_decode(const char *buf, size_t len, LogRecord *out);

/* How many whole trusted records a buffer holds (to size arrays for them). */
extern size_t log_record_count(const char *buf, size_t len);

/*
 * Stream entries: a magic tag, then a record whose context is JSON text.
 * The tag makes servers of 0.6.0, which read a plain record there, refuse
 * the entry instead of taking its JSON text for jsonb.
 */
#define LOG_STREAM_MAGIC_BYTES 8

extern size_t log_stream_entry_size(const LogRecord *record);
extern size_t log_stream_entry_encode(const LogRecord *record, char *out);

typedef enum LogEntryCheck
{
	LOG_ENTRY_OK = 0,
	LOG_ENTRY_TRUNCATED,
	LOG_ENTRY_BAD_SIZE,
	LOG_ENTRY_BAD_FORMAT,
	LOG_ENTRY_BAD_FLAGS,
	LOG_ENTRY_BAD_SOURCE,
	LOG_ENTRY_BAD_PADDING,
	LOG_ENTRY_BAD_UID,
	LOG_ENTRY_BAD_POLICY,
	LOG_ENTRY_BAD_RISK_LEVEL,
	LOG_ENTRY_BAD_CONTEXT,
	LOG_ENTRY_UNCHECKABLE_CONTEXT,
	LOG_ENTRY_CHECKS
} LogEntryCheck;

/*
 * Checks an entry read from a stream and decodes it into *out (pointers
 * into buf).  Accepts this format and the plain records of 0.6.0 without a
 * context (a 0.6.0 context is jsonb, whose bytes cannot be trusted).  What
 * needs the server is left to the caller: the text encoding of the strings,
 * that the risk level is a label of its type, and the time.
 */
extern LogEntryCheck log_stream_entry_check(const char *buf, size_t len, LogRecord *out);

/*
 * The checks of a decoded record's fields that need no server: its uids,
 * policy and risk level, flags that agree with them, and a context in JSON
 * text that the server parses without an error.
 */
extern LogEntryCheck log_record_check_fields(const LogRecord *record);

/* A sentence for the server log. */
extern const char *log_entry_check_message(LogEntryCheck check);

/*
 * Is this JSON text an object that the server's JSON parser accepts and
 * turns into jsonb without an error?  A strict subset of JSON: string
 * escapes only those the server writes (\" \\ \/ \b \f \n \r \t and \u0001
 * to \u001f), numbers without exponents and with at most 16383 digits after
 * the point, nesting at most LOG_MAX_JSON_DEPTH deep, no NUL byte.
 * Bytes of 0x80 and above inside strings are left to the encoding check.
 */
extern bool log_json_object_is_safe(const char *text, size_t len);

#endif							/* DECIDE_LOG_RECORD_H */
