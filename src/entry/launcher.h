/*
 * launcher.h — the decide launcher: a background worker per database that
 * has decide (see launcher.c).
 */
#ifndef DECIDE_LAUNCHER_H
#define DECIDE_LAUNCHER_H

/* From _PG_init at preload. */
extern void launcher_register(void);
extern void launcher_install_hooks(void);

#endif							/* DECIDE_LAUNCHER_H */
