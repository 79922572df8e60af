/*
 * log_stream.h — hot standbys' decision logs through Redis streams (see
 * log_stream.c).
 */
#ifndef DECIDE_LOG_STREAM_H
#define DECIDE_LOG_STREAM_H

#include "postgres.h"

#include "utils/uuid.h"

/* The set that registers a store's streams: <prefix>logstreams:<store>. */
extern char *log_stream_registry(const pg_uuid_t *store_id);

/* What every stream name of a store starts with: <prefix>log:<store>: */
extern char *log_stream_prefix(const pg_uuid_t *store_id);

/* This server's stream: new with every lifetime of its shared memory. */
extern char *log_stream_name(const pg_uuid_t *store_id);

/*
 * Registers the stream and appends n entries, entry i with id
 * 1-<positions[i]>; false on any failure (an entry already there counts as
 * sent).
 */
extern bool log_stream_forward(const pg_uuid_t *store_id, const char *stream,
							   const char *const *entries, const size_t *lens,
							   const uint64 *positions, int n);

/* The streams registered for a store, palloc'd; 0 on failure. */
extern int	log_stream_list(const pg_uuid_t *store_id, char ***streams);

/* One entry of a stream as read: bytes NULL when it is not shaped like ours. */
typedef struct LogStreamEntry
{
	char	   *id;
	const char *bytes;			/* unchecked */
	size_t		len;
} LogStreamEntry;

/* The entries after after_id (at most max), palloc'd; -1: failed. */
extern int	log_stream_read(const char *stream, const char *after_id, int max,
							LogStreamEntry **entries);

/* Drops the entries before upto_id. */
extern void log_stream_trim(const char *stream, const char *upto_id);

#endif							/* DECIDE_LOG_STREAM_H */
