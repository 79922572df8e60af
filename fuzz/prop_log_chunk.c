/*
 * prop_log_chunk.c — the decoder of chunks of the decision log
 * (src/core/log_chunk.c): whoever may write the log's tables can put any
 * bytes in a chunk.
 *
 * Input: the bytes of a chunk, as stored; unless the first byte is 0xff,
 * the first four are replaced by the chunk's tag, so that random inputs
 * reach the records.
 *
 * Properties:
 *   1. reading stays within the bytes (an exactly-sized copy, under
 *      AddressSanitizer), and every record it yields is sound: its fields
 *      point into the chunk and pass log_record_check_fields();
 *   2. a chunk read to its end without a failure holds as many records as
 *      its header says, and re-encoding them decodes to the same records;
 *   3. skimming (log_chunk_skim(), which leaves the fields unchecked) also
 *      stays within the bytes, and yields the records log_chunk_next()
 *      yields, with their ids, before any it refuses;
 *   4. reading with a filter (log_chunk_next_kept()) stays within the
 *      bytes, and on a chunk skimmed to its end without a failure yields
 *      exactly the skimmed records that the filter keeps, with their ids.
 *      The filter's conditions are taken from the input.
 */
#include "props.h"
#include "log_chunk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What log_chunk_next_kept() must keep, written out plainly. */
static bool
reference_keeps(const LogChunkFilter *f, const LogRecord *r, int64_t id)
{
	if (f->has_from && r->decided_at < f->from)
		return false;
	if (f->has_before && !(r->decided_at < f->before ||
						   (f->has_before_id && r->decided_at == f->before && id < f->before_id)))
		return false;
	if (f->has_actor && !same_dec_str(r->actor, f->actor))
		return false;
	if (f->has_allowed && r->allowed != f->allowed)
		return false;
	if (f->has_policy && !(r->has_policy && same_dec_str(r->policy, f->policy)))
		return false;
	if (f->has_risk_level && !(r->has_policy && same_dec_str(r->risk_level, f->risk_level)))
		return false;
	return true;
}

/*
 * Property 4: skims the chunk, builds a filter from the input's last byte
 * and from records skimmed, and compares a filtered reading with it.
 */
static const char *
check_filtered_reading(const uint8_t *data, size_t size, const char *chunk)
{
	LogChunkReader skimmer;
	LogChunkReader filtered;
	LogChunkFilter filter;
	LogRecord	all[64];
	int64_t		ids[64];
	LogRecord	got;
	int			n = 0;
	int			i = 0;
	unsigned	choice = size > 0 ? data[size - 1] : 0;
	const char *problem = NULL;

	if (!log_chunk_open(&skimmer, chunk, size))
		return NULL;
	while (n < 64 && log_chunk_skim(&skimmer, &all[n]))
		ids[n++] = skimmer.id;
	memset(&filter, 0, sizeof(filter));
	if (n > 0)
	{
		const LogRecord *a = &all[choice % n];
		const LogRecord *b = &all[(choice / 7) % n];

		filter.has_actor = (choice & 1) != 0;
		filter.actor = a->actor;
		filter.has_allowed = (choice & 2) != 0;
		filter.allowed = (choice & 4) != 0;
		filter.has_from = (choice & 8) != 0;
		filter.from = a->decided_at;
		filter.has_before = (choice & 16) != 0;
		filter.before = b->decided_at;
		filter.has_before_id = (choice & 32) != 0;
		filter.before_id = ids[(choice / 7) % n];
		filter.has_policy = (choice & 64) != 0 && b->has_policy;
		filter.policy = b->policy;
		filter.has_risk_level = (choice & 128) != 0 && a->has_policy;
		filter.risk_level = a->risk_level;
	}
	log_chunk_open(&filtered, chunk, size);
	while (problem == NULL && log_chunk_next_kept(&filtered, &filter, &got))
	{
		if (!log_record_within(&got, chunk, size))
			problem = "a field read with a filter points outside the chunk";
		else if (skimmer.failure == LOG_ENTRY_OK && n < 64)
		{
			while (i < n && !reference_keeps(&filter, &all[i], ids[i]))
				i++;
			if (i == n || filtered.id != ids[i] || !same_log_record(&got, &all[i]))
				problem = "a filtered reading yields a record the filter does not keep";
			i++;
		}
	}
	if (problem == NULL && skimmer.failure == LOG_ENTRY_OK && n < 64)
	{
		if (filtered.failure != LOG_ENTRY_OK)
			problem = "a filtered reading fails on a sound chunk";
		for (; problem == NULL && i < n; i++)
			if (reference_keeps(&filter, &all[i], ids[i]))
				problem = "a filtered reading leaves out a record the filter keeps";
	}
	return problem;
}

int
prop_log_chunk(const uint8_t *data, size_t size)
{
	char	   *copy = malloc(size > 0 ? size : 1);
	LogChunkReader reader;
	LogRecord  *records = NULL;
	int		   *order = NULL;
	int64_t    *ids = NULL;
	int			n = 0;
	int			capacity = 0;
	const char *problem = NULL;
	LogRecord	got;

	memcpy(copy, data, size);
	if (size >= 4 && data[0] != 0xff)
		memcpy(copy, "dch2", 4);
	if (log_chunk_open(&reader, copy, size))
	{
		while (problem == NULL && log_chunk_next(&reader, &got))
		{
			if (!log_record_within(&got, copy, size))
				problem = "a field points outside the chunk";
			else if (log_record_check_fields(&got) != LOG_ENTRY_OK)
				problem = "a record that fails the field checks";
			if (n == capacity)
			{
				capacity = capacity ? 2 * capacity : 16;
				records = realloc(records, sizeof(LogRecord) * capacity);
				order = realloc(order, sizeof(int) * capacity);
				ids = realloc(ids, sizeof(int64_t) * capacity);
			}
			order[n] = n;
			ids[n] = reader.id;
			records[n++] = got;
		}
		if (problem == NULL)
		{
			LogChunkReader skimmer;
			int			i = 0;

			log_chunk_open(&skimmer, copy, size);
			while (problem == NULL && log_chunk_skim(&skimmer, &got))
			{
				if (!log_record_within(&got, copy, size))
					problem = "a skimmed field points outside the chunk";
				else if (i < n && (skimmer.id != ids[i] || !same_log_record(&got, &records[i])))
					problem = "skimming yields another record than reading";
				i++;
			}
			if (problem == NULL && i < n)
				problem = "skimming stops before reading does";
			if (problem == NULL && reader.failure == LOG_ENTRY_OK &&
				(i != n || skimmer.failure != LOG_ENTRY_OK))
				problem = "skimming a sound chunk yields other records";
		}
		if (problem == NULL)
			problem = check_filtered_reading(data, size, copy);
		if (problem == NULL && reader.failure == LOG_ENTRY_OK)
		{
			char	   *again = malloc(log_chunk_bound(records, order, n));
			size_t		len = log_chunk_encode(records, order, ids, n, again);
			LogChunkReader second;
			int			i = 0;

			if ((uint32_t) n != log_chunk_count(&reader))
				problem = "a chunk read to its end holds another count of records";
			else if (!log_chunk_open(&second, again, len))
				problem = "re-encoded records are not a chunk";
			while (problem == NULL && log_chunk_next(&second, &got))
				if (i >= n || second.id != ids[i] || !same_log_record(&got, &records[i++]))
					problem = "re-encoded records decode to other records";
			if (problem == NULL && (i != n || second.failure != LOG_ENTRY_OK))
				problem = "re-encoded records decode to fewer";
			free(again);
		}
	}
	if (problem)
	{
		fprintf(stderr, "log_chunk: %s\n", problem);
		print_bytes("chunk", copy, size, 96);
	}
	free(records);
	free(order);
	free(ids);
	free(copy);
	return problem ? 1 : 0;
}
