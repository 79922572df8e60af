/*
 * log_chain.c — the hash chains of the decision log and of the change
 * history.
 *
 * The worker writes, with each day's part of a flushed batch, one row of
 * decide.log_chain (a link): the range of ids and the number of the
 * decisions it wrote, the SHA-256 digest of the chunks that hold them, and
 * a hash over the previous link's hash and all of that.  The change history's trigger does the same
 * in decide.changes_chain for the rows each statement records; changes
 * are serialized by the epoch row, which every changing transaction locks
 * first, so links follow each other in commit order.  decide_verify_log()
 * (log_verify.c) reads the rows and the links again and recomputes both.
 * This file is the one definition of what is hashed, so that writers and
 * verifier agree: every column of a chunk or a row in table order, each as
 * a presence byte, then a 4-byte length and its bytes (integers and times
 * as 8 big-endian bytes, a chunk's body as stored, jsonb as its binary
 * form), so that no two different rows hash the same bytes.  A chunk's
 * body is portable (log_chunk.h): a dump restored anywhere verifies.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "log_chain.h"

static void
hash_update(pg_cryptohash_ctx *ctx, const void *data, size_t len)
{
	if (pg_cryptohash_update(ctx, data, len) < 0)
		elog(ERROR, "could not compute a SHA-256 digest");
}

/* Rows are encoded into this buffer and hashed a buffer at a time. */
static void
flush_buffer(ChainDigest *d)
{
	if (d->used > 0)
		hash_update(d->ctx, d->buffer, d->used);
	d->used = 0;
}

static void
put_present(ChainDigest *d, bool present)
{
	uint8		flag = present ? 1 : 0;

	if (d->used == sizeof(d->buffer))
		flush_buffer(d);
	d->buffer[d->used++] = (char) flag;
}

/*
 * A value: its presence byte, then (unless NULL) a 4-byte length and its
 * bytes.  Written straight into the buffer: this runs for every column of
 * every logged row.
 */
static inline void
put_bytes(ChainDigest *d, const char *ptr, size_t len)
{
	uint8		header[5];

	if (ptr == NULL)
	{
		put_present(d, false);
		return;
	}
	header[0] = 1;
	header[1] = (uint8) (len >> 24);
	header[2] = (uint8) (len >> 16);
	header[3] = (uint8) (len >> 8);
	header[4] = (uint8) len;
	if (sizeof(header) + len > sizeof(d->buffer) - d->used)
	{
		flush_buffer(d);
		if (sizeof(header) + len > sizeof(d->buffer))
		{
			hash_update(d->ctx, header, sizeof(header));
			hash_update(d->ctx, ptr, len);
			return;
		}
	}
	memcpy(d->buffer + d->used, header, sizeof(header));
	memcpy(d->buffer + d->used + sizeof(header), ptr, len);
	d->used += sizeof(header) + len;
}

static inline void
put_int64(ChainDigest *d, int64 value)
{
	uint64		big_endian = pg_hton64((uint64) value);

	put_bytes(d, (const char *) &big_endian, 8);
}

ChainDigest *
log_chain_begin(void)
{
	ChainDigest *d = palloc(sizeof(ChainDigest));

	d->ctx = pg_cryptohash_create(PG_SHA256);
	if (d->ctx == NULL || pg_cryptohash_init(d->ctx) < 0)
		elog(ERROR, "could not start a SHA-256 digest");
	d->used = 0;
	return d;
}

void
log_chain_add_chunk(ChainDigest *d, int64 first_id, TimestampTz first_at, TimestampTz last_at,
					int32 rows, const char *body, size_t len)
{
	put_int64(d, first_at);
	put_int64(d, last_at);
	put_int64(d, first_id);
	put_int64(d, rows);
	put_bytes(d, body, len);
}

void
log_chain_finish(ChainDigest *d, uint8 *digest)
{
	flush_buffer(d);
	if (pg_cryptohash_final(d->ctx, digest, LOG_CHAIN_HASH_BYTES) < 0)
		elog(ERROR, "could not finish a SHA-256 digest");
	pg_cryptohash_free(d->ctx);
	pfree(d);
}

/*
 * A row of decide.changes, its columns as CHANGES_CHAIN_COLUMNS lists
 * them: id and epoch (bigint), changed_at, five texts, two jsonb.
 */
void
log_chain_add_change(ChainDigest *d, HeapTuple tuple, TupleDesc desc)
{
	int			column;

	for (column = 1; column <= 10; column++)
	{
		bool		isnull;
		Datum		value = SPI_getbinval(tuple, desc, column, &isnull);

		if (isnull)
			put_present(d, false);
		else if (column <= 3)
			put_int64(d, DatumGetInt64(value));	/* timestamptz is an int64 too */
		else if (column <= 8)
		{
			text	   *t = DatumGetTextPP(value);

			put_bytes(d, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		}
		else
		{
			Jsonb	   *j = DatumGetJsonbP(value);

			put_bytes(d, VARDATA(j), VARSIZE(j) - VARHDRSZ);
		}
	}
}

void
log_chain_hash_from_datum(Datum value, uint8 *hash)
{
	bytea	   *b = DatumGetByteaPP(value);

	memset(hash, 0, LOG_CHAIN_HASH_BYTES);
	if (VARSIZE_ANY_EXHDR(b) == LOG_CHAIN_HASH_BYTES)
		memcpy(hash, VARDATA_ANY(b), LOG_CHAIN_HASH_BYTES);
}

bool
log_chain_newest(const char *chain, bool see_own_writes, int64 *link, uint8 *hash)
{
	bool		isnull;

	*link = 0;
	memset(hash, 0, LOG_CHAIN_HASH_BYTES);
	if (SPI_execute(psprintf("SELECT link, hash FROM decide.%s ORDER BY link DESC LIMIT 1", chain),
					!see_own_writes, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the newest link of decide.%s", chain);
	if (SPI_processed == 0)
		return false;
	*link = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	log_chain_hash_from_datum(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
											&isnull), hash);
	return true;
}

static bytea *
hash_bytea(const uint8 *hash)
{
	bytea	   *b = palloc(VARHDRSZ + LOG_CHAIN_HASH_BYTES);

	SET_VARSIZE(b, VARHDRSZ + LOG_CHAIN_HASH_BYTES);
	memcpy(VARDATA(b), hash, LOG_CHAIN_HASH_BYTES);
	return b;
}

void
log_chain_append(const char *chain, ChainDigest *d, int64 first_id, int64 last_id, int64 rows,
				 const TimestampTz *first_at, const TimestampTz *last_at)
{
	uint8		digest[LOG_CHAIN_HASH_BYTES];
	uint8		previous[LOG_CHAIN_HASH_BYTES];
	uint8		hash[LOG_CHAIN_HASH_BYTES];
	int64		link;
	Oid			argtypes[9] = {INT8OID, INT8OID, INT8OID, INT4OID, BYTEAOID, BYTEAOID, BYTEAOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		args[9];

	log_chain_finish(d, digest);
	/* The newest may be this transaction's own, just written. */
	(void) log_chain_newest(chain, true, &link, previous);
	link++;
	log_chain_link_hash(previous, link, first_id, last_id, rows, digest, hash);
	args[0] = Int64GetDatum(link);
	args[1] = Int64GetDatum(first_id);
	args[2] = Int64GetDatum(last_id);
	args[3] = Int32GetDatum((int32) rows);
	args[4] = PointerGetDatum(hash_bytea(digest));
	args[5] = PointerGetDatum(hash_bytea(previous));
	args[6] = PointerGetDatum(hash_bytea(hash));
	if (first_at)
	{
		args[7] = TimestampTzGetDatum(*first_at);
		args[8] = TimestampTzGetDatum(*last_at);
	}
	if (SPI_execute_with_args(psprintf("INSERT INTO decide.%s (link, first_id, last_id, rows, digest,"
									   " previous, hash%s) VALUES ($1, $2, $3, $4, $5, $6, $7%s)",
									   chain, first_at ? ", first_at, last_at" : "",
									   first_at ? ", $8, $9" : ""),
							  first_at ? 9 : 7, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not append a link to decide.%s", chain);
}

void
log_chain_link_hash(const uint8 *previous, int64 link, int64 first_id, int64 last_id,
					int64 rows, const uint8 *digest, uint8 *hash)
{
	ChainDigest *d = log_chain_begin();

	put_bytes(d, (const char *) previous, LOG_CHAIN_HASH_BYTES);
	put_int64(d, link);
	put_int64(d, first_id);
	put_int64(d, last_id);
	put_int64(d, rows);
	put_bytes(d, (const char *) digest, LOG_CHAIN_HASH_BYTES);
	log_chain_finish(d, hash);
}
