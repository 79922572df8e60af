/*
 * log_chain.h — the decision log's hash chain: how a logged row and a link
 * are hashed (see log_chain.c).
 */
#ifndef DECIDE_LOG_CHAIN_H
#define DECIDE_LOG_CHAIN_H

#include "postgres.h"

#include "common/cryptohash.h"
#include "common/sha2.h"
#include "access/htup.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"


#define LOG_CHAIN_HASH_BYTES PG_SHA256_DIGEST_LENGTH

/* The SHA-256 digest of one link's chunks or rows, being computed. */
typedef struct ChainDigest
{
	pg_cryptohash_ctx *ctx;		/* freed with its resource owner on error */
	size_t		used;
	char		buffer[65536];	/* rows encoded, hashed a buffer at a time */
} ChainDigest;

extern ChainDigest *log_chain_begin(void);

/*
 * Adds a chunk of decide.decision_chunks, its columns and its body as
 * stored, to a link's digest (chunks go in the order of their first ids).
 */
extern void log_chain_add_chunk(ChainDigest *d, int64 first_id, TimestampTz first_at,
								TimestampTz last_at, int32 rows, const char *body, size_t len);

extern void log_chain_finish(ChainDigest *d, uint8 *digest);

/* A hash stored as bytea; zeros if it is not one. */
extern void log_chain_hash_from_datum(Datum value, uint8 *hash);

/*
 * The newest link of decide.<chain> (through SPI); false, link 0 and a hash
 * of zeros when it has none.  With see_own_writes, this transaction's links
 * written just before are seen too.
 */
extern bool log_chain_newest(const char *chain, bool see_own_writes, int64 *link, uint8 *hash);

/* The columns of decide.changes a link's digest covers, in this order. */
#define CHANGES_CHAIN_COLUMNS \
	"id, epoch, changed_at, session_user_name, current_user_name, operation, table_name, key, before, after"

/* Adds a row of decide.changes, read with CHANGES_CHAIN_COLUMNS. */
extern void log_chain_add_change(ChainDigest *d, HeapTuple tuple, TupleDesc desc);

/*
 * Finishes a digest and appends its link after the newest of
 * decide.<chain> (log_chain, with the rows' times; changes_chain, without),
 * through SPI, in the caller's transaction.
 */
extern void log_chain_append(const char *chain, ChainDigest *d, int64 first_id, int64 last_id,
							 int64 rows, const TimestampTz *first_at, const TimestampTz *last_at);

/*
 * The hash of a link: of the previous link's hash (zeros for the first),
 * the link's number, its rows' id range and count, and their digest.
 */
extern void log_chain_link_hash(const uint8 *previous, int64 link, int64 first_id,
								int64 last_id, int64 rows, const uint8 *digest, uint8 *hash);

#endif							/* DECIDE_LOG_CHAIN_H */
