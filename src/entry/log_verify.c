/*
 * log_verify.c — decide_verify_log() and decide_log_head(): checking the
 * decision log and the change history against their hash chains
 * (log_chain.c says what is hashed).
 *
 * The links of the window are read in order and each is checked to follow
 * the one before it (no link number skipped, its previous hash the hash of
 * the link before, its own hash recomputed); the oldest link kept is
 * trusted for what came before it, which retention dropped.  Then the
 * chunks of decisions of the window are read once in the order of their
 * first ids and walked against the links' id ranges: each link's chunks
 * must hash to its digest and hold as many decisions as it says, and a
 * chunk in no link's range is one the worker never wrote.  The chunks are
 * hashed as stored, not decoded: a damaged one is reported, not an error.  A
 * head kept from decide_log_head() must still be in the chain, unchanged:
 * without it, rows cut from the newest end, with their links, leave a
 * shorter chain that is intact.  Rows older than the chain's first link
 * (logged before it existed) are outside it.  The change history is
 * checked the same way, whole (it is small), its problems named
 * "history ...", and the head holds the newest link of each chain.
 *
 * As the caller (for decide_admin and decide_auditor), with search_path
 * pinned by the function's definition.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "log_chain.h"

typedef struct Link
{
	int64		link;
	int64		first_id;
	int64		last_id;
	int64		rows;
	uint8		digest[LOG_CHAIN_HASH_BYTES];
	uint8		previous[LOG_CHAIN_HASH_BYTES];
	uint8		hash[LOG_CHAIN_HASH_BYTES];
	TimestampTz first_at;
	TimestampTz last_at;
	/* while the rows are walked */
	ChainDigest *found;
	int64		found_rows;
} Link;

/* What differs between the two chains. */
typedef struct ChainKind
{
	const char *links;			/* the table of links */
	const char *prefix;			/* of the problems reported */
	const char *writer;
	bool		timed;			/* links and rows are read for a window of time */
	const char *rows_query;		/* in id order; when timed, $1 and $2 bound the times */
	void		(*add) (ChainDigest *d, HeapTuple tuple, TupleDesc desc);
	int			rows_column;	/* of rows_query: how many rows one counts for; 0: one */
} ChainKind;

typedef struct Report
{
	ReturnSetInfo *rsinfo;
	const ChainKind *kind;
} Report;

static void
report(Report *out, const char *problem, const int64 *link, const int64 *first_id,
	   const int64 *last_id, const char *detail)
{
	Datum		values[5];
	bool		nulls[5] = {false, link == NULL, first_id == NULL, last_id == NULL, false};

	values[0] = CStringGetTextDatum(psprintf("%s%s", out->kind->prefix, problem));
	values[1] = link ? Int64GetDatum(*link) : (Datum) 0;
	values[2] = first_id ? Int64GetDatum(*first_id) : (Datum) 0;
	values[3] = last_id ? Int64GetDatum(*last_id) : (Datum) 0;
	values[4] = CStringGetTextDatum(detail);
	tuplestore_putvalues(out->rsinfo->setResult, out->rsinfo->setDesc, values, nulls);
}

static char *
hex(const uint8 *hash)
{
	char	   *out = palloc(LOG_CHAIN_HASH_BYTES * 2 + 1);

	out[hex_encode((const char *) hash, LOG_CHAIN_HASH_BYTES, out)] = '\0';
	return out;
}

/* The links whose rows may lie in [from, to] (NULL: open), in order. */
static Link *
read_links(const ChainKind *kind, Datum *bounds, const char *bound_nulls, int *count,
		   bool *has_before, uint8 *before_hash)
{
	Oid			argtypes[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Link	   *links;
	uint64		i;
	if (SPI_execute_with_args(psprintf("SELECT link, first_id, last_id, rows, digest, previous, hash,"
									   " %s FROM decide.%s WHERE %s ORDER BY link",
									   kind->timed ? "first_at, last_at" : "NULL::timestamptz, NULL::timestamptz",
									   kind->links,
									   kind->timed ? "($1 IS NULL OR last_at >= $1) AND ($2 IS NULL OR first_at <= $2)" :
									   "true"),
							  kind->timed ? 2 : 0, argtypes, bounds, bound_nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read decide.%s", kind->links);
	*count = (int) SPI_processed;
	links = palloc0(sizeof(Link) * Max(*count, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Link	   *l = &links[i];

		l->link = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		l->first_id = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
		l->last_id = DatumGetInt64(SPI_getbinval(tuple, desc, 3, &isnull));
		l->rows = DatumGetInt32(SPI_getbinval(tuple, desc, 4, &isnull));
		log_chain_hash_from_datum(SPI_getbinval(tuple, desc, 5, &isnull), l->digest);
		log_chain_hash_from_datum(SPI_getbinval(tuple, desc, 6, &isnull), l->previous);
		log_chain_hash_from_datum(SPI_getbinval(tuple, desc, 7, &isnull), l->hash);
		/* NULL for the history's links, which are not read by time */
		l->first_at = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 8, &isnull));
		l->last_at = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 9, &isnull));
	}
	*has_before = false;
	if (*count > 0)
	{
		Oid			linktype[1] = {INT8OID};
		Datum		linkarg[1] = {Int64GetDatum(links[0].link - 1)};

		if (SPI_execute_with_args(psprintf("SELECT hash FROM decide.%s WHERE link = $1", kind->links),
								  1, linktype, linkarg, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read decide.%s", kind->links);
		if (SPI_processed == 1)
		{
			bool		isnull;

			*has_before = true;
			log_chain_hash_from_datum(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
													1, &isnull), before_hash);
		}
	}
	return links;
}

/* Each link follows the one before it and hashes to what it says. */
static void
check_links(Link *links, int count, bool has_before, const uint8 *before_hash, Report *out)
{
	int			i;

	for (i = 0; i < count; i++)
	{
		Link	   *l = &links[i];
		uint8		hash[LOG_CHAIN_HASH_BYTES];
		const uint8 *expected_previous = i > 0 ? links[i - 1].hash :
			has_before ? before_hash : NULL;

		if (i > 0 && l->link != links[i - 1].link + 1)
		{
			int64		missing = links[i - 1].link + 1;

			report(out, "links removed", &missing, NULL, NULL,
				   psprintf("links " INT64_FORMAT " to " INT64_FORMAT
							" are gone, with the rows they covered",
							missing, l->link - 1));
		}
		else if (expected_previous &&
				 memcmp(l->previous, expected_previous, LOG_CHAIN_HASH_BYTES) != 0)
			report(out, "link altered", &l->link, &l->first_id, &l->last_id,
				   "its previous hash is not the hash of the link before it");
		log_chain_link_hash(l->previous, l->link, l->first_id, l->last_id, l->rows, l->digest,
							hash);
		if (memcmp(hash, l->hash, LOG_CHAIN_HASH_BYTES) != 0)
			report(out, "link altered", &l->link, &l->first_id, &l->last_id,
				   "its hash does not match its contents");
	}
}

/* A chunk of decide.decision_chunks, read by log_kind's query. */
static void
add_log_chunk(ChainDigest *d, HeapTuple tuple, TupleDesc desc)
{
	bool		isnull;
	bytea	   *body = DatumGetByteaPP(SPI_getbinval(tuple, desc, 5, &isnull));

	log_chain_add_chunk(d, DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull)),
						DatumGetTimestampTz(SPI_getbinval(tuple, desc, 2, &isnull)),
						DatumGetTimestampTz(SPI_getbinval(tuple, desc, 3, &isnull)),
						DatumGetInt32(SPI_getbinval(tuple, desc, 4, &isnull)),
						VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body));
}

/* How many rows a row of a chain's query stands for. */
static int64
rows_of(const ChainKind *kind, HeapTuple tuple, TupleDesc desc)
{
	bool		isnull;

	return kind->rows_column == 0 ? 1 :
		DatumGetInt32(SPI_getbinval(tuple, desc, kind->rows_column, &isnull));
}

static void
finish_link(Link *l, Report *out)
{
	uint8		digest[LOG_CHAIN_HASH_BYTES];

	if (l->found == NULL)
		l->found = log_chain_begin();
	log_chain_finish(l->found, digest);
	l->found = NULL;
	if (l->found_rows != l->rows)
		report(out, "rows differ", &l->link, &l->first_id, &l->last_id,
			   psprintf(INT64_FORMAT " rows were written in this range, " INT64_FORMAT
						" are there: rows were removed or inserted", l->rows, l->found_rows));
	else if (memcmp(digest, l->digest, LOG_CHAIN_HASH_BYTES) != 0)
		report(out, "rows differ", &l->link, &l->first_id, &l->last_id,
			   "the rows in this range are not those logged: a row was altered, or one removed and one inserted");
}

/* A run of rows, consecutive in id order, in no link's range. */
typedef struct Outside
{
	int64		first_id;
	int64		last_id;
	int64		rows;
} Outside;

static void
report_outside(Outside *outside, Report *out)
{
	if (outside->rows == 0)
		return;
	report(out, "rows not in the chain", NULL, &outside->first_id, &outside->last_id,
		   psprintf(INT64_FORMAT " rows in no link's range: %s did not write them",
					outside->rows, out->kind->writer));
	outside->rows = 0;
}

/* Reads the window's rows in id order and walks them against the links. */
static void
check_rows(Link *links, int count, bool whole_log, Datum *bounds, const char *bound_nulls,
		   Report *out)
{
	Oid			argtypes[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		range[2];
	char		range_nulls[2];
	Portal		portal;
	int			next = 0;		/* the first link not finished */
	Outside		outside = {0};

	/* Widened to the links' own times, so that their rows are read whole. */
	range[0] = bounds[0];
	range_nulls[0] = bound_nulls[0];
	range[1] = bounds[1];
	range_nulls[1] = bound_nulls[1];
	if (count > 0)
	{
		TimestampTz first = links[0].first_at;
		TimestampTz last = links[0].last_at;
		int			i;

		for (i = 1; i < count; i++)
		{
			first = Min(first, links[i].first_at);
			last = Max(last, links[i].last_at);
		}
		if (bound_nulls[0] != 'n')
			range[0] = TimestampTzGetDatum(Min(first, DatumGetTimestampTz(bounds[0])));
		if (bound_nulls[1] != 'n')
			range[1] = TimestampTzGetDatum(Max(last, DatumGetTimestampTz(bounds[1])));
	}
	portal = SPI_cursor_open_with_args(NULL, out->kind->rows_query, out->kind->timed ? 2 : 0,
									   argtypes, range, range_nulls, true, 0);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tuple = SPI_tuptable->vals[i];
			bool		isnull;
			int64		id = DatumGetInt64(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 1, &isnull));

			if ((i & 1023) == 0)
				CHECK_FOR_INTERRUPTS();
			while (next < count && links[next].last_id < id)
				finish_link(&links[next++], out);
			if (next < count && id >= links[next].first_id)
			{
				Link	   *l = &links[next];

				if (l->found == NULL)
					l->found = log_chain_begin();
				out->kind->add(l->found, tuple, SPI_tuptable->tupdesc);
				l->found_rows += rows_of(out->kind, tuple, SPI_tuptable->tupdesc);
			}
			else if (count > 0 && id > links[0].first_id &&
					 (next < count || whole_log))
			{
				/* Consecutive ones are reported together. */
				if (outside.rows == 0)
					outside.first_id = id;
				outside.last_id = id;
				outside.rows += rows_of(out->kind, tuple, SPI_tuptable->tupdesc);
				continue;
			}
			report_outside(&outside, out);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	report_outside(&outside, out);
	while (next < count)
		finish_link(&links[next++], out);
}

static const ChainKind log_kind = {
	"log_chain", "", "the worker", true,
	"SELECT first_id, first_at, last_at, rows, body FROM decide.decision_chunks"
	" WHERE ($1 IS NULL OR last_at >= $1) AND ($2 IS NULL OR first_at <= $2) ORDER BY first_id",
	add_log_chunk, 4
};

static const ChainKind history_kind = {
	"changes_chain", "history ", "the change history's trigger", false,
	"SELECT " CHANGES_CHAIN_COLUMNS " FROM decide.changes ORDER BY id",
	log_chain_add_change, 0
};

/* The newest link of a chain as "link:hash"; "0:" and zeros when it has none. */
static char *
newest_link(const ChainKind *kind)
{
	int64		link;
	uint8		hash[LOG_CHAIN_HASH_BYTES];

	(void) log_chain_newest(kind->links, false, &link, hash);
	return psprintf(INT64_FORMAT ":%s", link, hex(hash));
}

/*
 * One chain's part of a kept head ("link:hash"): that link must still be
 * there, unchanged; gone with no newer link, the newest rows were cut.  A
 * link older than every link kept went with retention.
 */
static void
check_head_part(const char *part, Report *out)
{
	const ChainKind *kind = out->kind;
	int64		link;
	char		hash_hex[LOG_CHAIN_HASH_BYTES * 2 + 2];
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];

	if (sscanf(part, INT64_FORMAT ":%65s", &link, hash_hex) != 2 ||
		strlen(hash_hex) != LOG_CHAIN_HASH_BYTES * 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a head of the decision log", part),
				 errhint("Pass what decide_log_head() returned: for each chain a link number, a colon and 64 hex digits, the two joined by a slash.")));
	if (link == 0)
		return;					/* the chain had no link when the head was kept */
	args[0] = Int64GetDatum(link);
	if (SPI_execute_with_args(psprintf("SELECT hash, (SELECT max(link) FROM decide.%s) FROM decide.%s"
									   " RIGHT JOIN (SELECT) AS one ON link = $1",
									   kind->links, kind->links),
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read decide.%s", kind->links);
	{
		bool		gone;
		bool		no_newer;
		Datum		newest = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &no_newer);
		Datum		hash_value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &gone);

		if (!no_newer)
			no_newer = DatumGetInt64(newest) < link;
		if (gone && no_newer)
			report(out, "cut at the newest end", &link, NULL, NULL,
				   psprintf("link " INT64_FORMAT " of the kept head is gone: the newest rows were removed with their links",
							link));
		else if (!gone)
		{
			uint8		hash[LOG_CHAIN_HASH_BYTES];

			log_chain_hash_from_datum(hash_value, hash);
			if (pg_strcasecmp(hex(hash), hash_hex) != 0)
				report(out, "head differs", &link, NULL, NULL,
					   psprintf("link " INT64_FORMAT " is not the one of the kept head: the chain was rewritten",
								link));
		}
	}
}

/* Checks one chain: its links, its rows, and its part of a kept head. */
static void
verify_chain(Report *out, Datum *bounds, const char *bound_nulls, bool whole,
			 const char *head_part, MemoryContext caller)
{
	Link	   *links;
	int			count;
	bool		has_before;
	uint8		before_hash[LOG_CHAIN_HASH_BYTES];

	links = read_links(out->kind, bounds, bound_nulls, &count, &has_before, before_hash);
	MemoryContextSwitchTo(caller);
	check_links(links, count, has_before, before_hash, out);
	check_rows(links, count, whole, bounds, bound_nulls, out);
	if (head_part)
		check_head_part(head_part, out);
	MemoryContextSwitchTo(caller);
}

PG_FUNCTION_INFO_V1(decide_verify_log);
Datum
decide_verify_log(PG_FUNCTION_ARGS)
{
	Report		out = {0};
	Datum		bounds[2];
	char		bound_nulls[2];
	char	   *log_head = NULL;
	char	   *history_head = NULL;
	MemoryContext caller = CurrentMemoryContext;

	InitMaterializedSRF(fcinfo, 0);
	out.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bounds[0] = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	bounds[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	bound_nulls[0] = PG_ARGISNULL(0) ? 'n' : ' ';
	bound_nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
	if (!PG_ARGISNULL(2))
	{
		char	   *slash;

		log_head = text_to_cstring(PG_GETARG_TEXT_PP(2));
		if ((slash = strchr(log_head, '/')) != NULL)
		{
			*slash = '\0';
			history_head = slash + 1;
		}
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(caller);
	out.kind = &log_kind;
	verify_chain(&out, bounds, bound_nulls, PG_ARGISNULL(1), log_head, caller);
	/* The history is verified whole: it is small, and not windowed by the log's times. */
	out.kind = &history_kind;
	bounds[0] = bounds[1] = (Datum) 0;
	bound_nulls[0] = bound_nulls[1] = 'n';
	verify_chain(&out, bounds, bound_nulls, true, history_head, caller);
	SPI_finish();
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(decide_log_head);
Datum
decide_log_head(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	char	   *log_part;
	char	   *history_part;
	text	   *head;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	log_part = newest_link(&log_kind);
	history_part = newest_link(&history_kind);
	MemoryContextSwitchTo(caller);
	head = cstring_to_text(psprintf("%s/%s", log_part, history_part));
	SPI_finish();
	PG_RETURN_TEXT_P(head);
}
