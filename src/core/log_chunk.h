/*
 * log_chunk.h — the stored form of a chunk of logged decisions (the body of
 * a row of the decision log): many decisions in one value, so that the log
 * costs a heap tuple and an index entry per chunk instead of per decision.
 *
 * Pure C (no PostgreSQL headers), so that the decoder can be fuzzed alone.
 * The form is portable (little-endian, no padding: a dump restores on any
 * architecture) and read only through a decoder that checks every byte,
 * since whoever may write the log's tables can put any bytes there.
 */
#ifndef DECIDE_LOG_CHUNK_H
#define DECIDE_LOG_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log_record.h"

#define LOG_CHUNK_HEADER_BYTES 32

/*
 * Bytes that records[order[0]] … records[order[n - 1]] take as a chunk, at
 * most (the exact size is what log_chunk_encode() returns).
 */
extern size_t log_chunk_bound(const LogRecord *records, const int *order, int n);

/*
 * Writes a chunk of records[order[0]] … records[order[n - 1]], in that
 * order, with the ids ids[0] … ids[n - 1]; their contexts are JSON text
 * (or absent).  Returns its size.
 */
extern size_t log_chunk_encode(const LogRecord *records, const int *order, const int64_t *ids,
							   int n, char *out);

/* Where a reading of a chunk is. */
typedef struct LogChunkReader
{
	const unsigned char *at;
	const unsigned char *end;
	uint32_t	count;			/* records in the chunk */
	uint32_t	left;			/* records not read yet (the one read last, or
								 * that failed, is count - left) */
	int64_t		time;			/* the last record's decided_at */
	int64_t		epoch;			/* and its epoch */
	int64_t		id;				/* and its id */
	LogEntryCheck failure;		/* LOG_ENTRY_OK, or why the bytes are not a chunk's */
} LogChunkReader;

/* Starts reading a chunk; false (and reader->failure) when it has no chunk's header. */
extern bool log_chunk_open(LogChunkReader *reader, const char *buf, size_t len);

/* How many records the chunk holds, by its header. */
extern uint32_t log_chunk_count(const LogChunkReader *reader);

/*
 * The next record, its strings pointing into the chunk, every field
 * checked as log_record_check_fields() does.  False at the end of the
 * chunk, and also (with reader->failure set) at bytes that are not a
 * record's, or bytes left over after the last record.
 */
extern bool log_chunk_next(LogChunkReader *reader, LogRecord *out);

/*
 * The next record as log_chunk_next() reads it, its framing checked (its
 * strings lie within the record, its flags and source are known) but not
 * its fields' contents: for a reader that checks, with
 * log_record_check_fields(), only the records it uses.
 */
extern bool log_chunk_skim(LogChunkReader *reader, LogRecord *out);

/* Which records log_chunk_next_kept() returns; an absent condition keeps all. */
typedef struct LogChunkFilter
{
	bool		has_from;
	int64_t		from;			/* decided_at >= from */
	bool		has_before;
	int64_t		before;			/* (decided_at, id) < (before, before_id) */
	bool		has_before_id;	/* without one, decided_at < before */
	int64_t		before_id;
	bool		has_actor;
	DecStr		actor;
	bool		has_allowed;
	bool		allowed;
	bool		has_risk_level; /* and a policy */
	DecStr		risk_level;
	bool		has_policy;
	DecStr		policy;
} LogChunkFilter;

/*
 * The next record that the filter keeps, as log_chunk_skim() reads it.
 * The others are passed over by their size, read only as far as the
 * filter needs: their framing past that is not checked.
 */
extern bool log_chunk_next_kept(LogChunkReader *reader, const LogChunkFilter *filter,
								LogRecord *out);

#endif							/* DECIDE_LOG_CHUNK_H */
