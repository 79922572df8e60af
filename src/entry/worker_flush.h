/*
 * worker_flush.h — the worker's flush of the decision log ring into
 * decide.decisions (see worker_flush.c).
 */
#ifndef DECIDE_WORKER_FLUSH_H
#define DECIDE_WORKER_FLUSH_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "log_record.h"

/* UTC day number (days since 2000-01-01) of a timestamp. */
extern int32 log_day_of(TimestampTz t);

/* Makes sure the partition of decide.decisions for one UTC day exists. */
extern void log_ensure_partition(int32 day);
extern void log_forget_partitions(void);

/* Inserts records (contexts as jsonb or as checked JSON text); SPI connected. */
extern void log_insert_records(const LogRecord *records, int n);

/* Writes one batch of the ring in a transaction; false when it was empty. */
extern bool log_flush_once(char *buf);

/* Decisions written since the log's last ANALYZE. */
extern int64 log_rows_since_analyze;

/* Decisions per row of the log's partitioned table, as this worker wrote them. */
extern double log_decisions_per_row(void);

/* The log's table partitioned by day: decision_chunks, or decisions before 0.7.0. */
extern const char *log_partitioned_table(void);

#endif							/* DECIDE_WORKER_FLUSH_H */
