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
 *      yields, with their ids, before any it refuses.
 */
#include "props.h"
#include "log_chunk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		memcpy(copy, "dch1", 4);
	if (log_chunk_open(&reader, copy, size))
	{
		while (problem == NULL && log_chunk_next(&reader, &got))
		{
			if (!dec_str_within(got.actor, copy, size) || !dec_str_within(got.action, copy, size) ||
				!dec_str_within(got.resource, copy, size) || !dec_str_within(got.policy, copy, size) ||
				!dec_str_within(got.risk_level, copy, size) || !dec_str_within(got.context, copy, size) ||
				!dec_str_within(got.reason, copy, size))
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
				if (!dec_str_within(got.actor, copy, size) || !dec_str_within(got.action, copy, size) ||
					!dec_str_within(got.resource, copy, size) || !dec_str_within(got.policy, copy, size) ||
					!dec_str_within(got.risk_level, copy, size) || !dec_str_within(got.context, copy, size) ||
					!dec_str_within(got.reason, copy, size))
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
