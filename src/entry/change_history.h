/*
 * change_history.h — decide.changes, the history of decide.policies and
 * decide.entities (change_history.c).
 */
#ifndef DECIDE_CHANGE_HISTORY_H
#define DECIDE_CHANGE_HISTORY_H

/* decide.changes_retention, in minutes; 0 keeps every row. */
extern int	decide_changes_retention_min;

extern void change_history_define_gucs(void);

#endif							/* DECIDE_CHANGE_HISTORY_H */
