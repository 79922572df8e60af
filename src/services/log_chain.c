/*
 * log_chain.c — the decision log's hash chain.
 *
 * The worker writes, with each day's part of a flushed batch, one row of
 * decide.log_chain (a link): the range of ids and the number of the rows
 * it wrote, the SHA-256 digest of those rows, and a hash over the previous
 * link's hash and all of that.  decide_verify_log() (log_verify.c) reads
 * the rows and the links again and recomputes both.  This file is the one
 * definition of what is hashed, so that writer and verifier agree: every
 * column of a row in table order, each as a presence byte, then a 4-byte
 * length and its bytes (integers and times as 8 big-endian bytes, enums as
 * their labels, jsonb as its binary form), so that no two different rows
 * hash the same bytes.  Labels rather than enum OIDs, which a dump and
 * restore renumber.
 */
#include "postgres.h"

#include "log_chain.h"

static void
hash_update(pg_cryptohash_ctx *ctx, const void *data, size_t len)
{
	if (pg_cryptohash_update(ctx, data, len) < 0)
		elog(ERROR, "could not compute a SHA-256 digest");
}

static void
put_present(pg_cryptohash_ctx *ctx, bool present)
{
	uint8		flag = present ? 1 : 0;

	hash_update(ctx, &flag, 1);
}

static void
put_bytes(pg_cryptohash_ctx *ctx, const char *ptr, size_t len)
{
	uint8		header[4];

	put_present(ctx, ptr != NULL);
	if (ptr == NULL)
		return;
	header[0] = (uint8) (len >> 24);
	header[1] = (uint8) (len >> 16);
	header[2] = (uint8) (len >> 8);
	header[3] = (uint8) len;
	hash_update(ctx, header, 4);
	hash_update(ctx, ptr, len);
}

static void
put_str(pg_cryptohash_ctx *ctx, DecStr s)
{
	put_bytes(ctx, s.ptr, s.len);
}

static void
put_int64(pg_cryptohash_ctx *ctx, int64 value)
{
	char		bytes[8];
	int			i;

	for (i = 0; i < 8; i++)
		bytes[i] = (char) ((uint64) value >> (56 - 8 * i));
	put_bytes(ctx, bytes, 8);
}

pg_cryptohash_ctx *
log_chain_begin(void)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not start a SHA-256 digest");
	return ctx;
}

void
log_chain_add_row(pg_cryptohash_ctx *ctx, const ChainRow *row)
{
	put_int64(ctx, row->id);
	put_int64(ctx, row->decided_at);
	put_str(ctx, row->actor);
	put_str(ctx, row->action);
	put_str(ctx, row->resource);
	put_int64(ctx, row->allowed ? 1 : 0);
	put_str(ctx, row->effect);
	put_str(ctx, row->policy);
	put_str(ctx, row->risk_level);
	put_str(ctx, row->reason);
	put_int64(ctx, row->epoch);
	put_str(ctx, row->source);
	put_str(ctx, row->context);
	if (row->has_priority)
		put_int64(ctx, row->priority);
	else
		put_present(ctx, false);
	if (row->has_condition_unknown)
		put_int64(ctx, row->condition_unknown ? 1 : 0);
	else
		put_present(ctx, false);
}

void
log_chain_finish(pg_cryptohash_ctx *ctx, uint8 *digest)
{
	if (pg_cryptohash_final(ctx, digest, LOG_CHAIN_HASH_BYTES) < 0)
		elog(ERROR, "could not finish a SHA-256 digest");
	pg_cryptohash_free(ctx);
}

void
log_chain_link_hash(const uint8 *previous, int64 link, int64 first_id, int64 last_id,
					int64 rows, const uint8 *digest, uint8 *hash)
{
	pg_cryptohash_ctx *ctx = log_chain_begin();

	put_bytes(ctx, (const char *) previous, LOG_CHAIN_HASH_BYTES);
	put_int64(ctx, link);
	put_int64(ctx, first_id);
	put_int64(ctx, last_id);
	put_int64(ctx, rows);
	put_bytes(ctx, (const char *) digest, LOG_CHAIN_HASH_BYTES);
	log_chain_finish(ctx, hash);
}
