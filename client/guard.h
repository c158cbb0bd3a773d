/* guard.h: run module code so that a fault in it returns to the caller instead of ending the program. */
#ifndef HRC_GUARD_H
#define HRC_GUARD_H

#include <stddef.h>

/*
 * Install the fault handlers (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) for
 * the whole process, once however many clients ask: each acquire is paired
 * with a release, and the last release puts the previous handlers back (if
 * nobody replaced ours meanwhile). Returns 0 or -errno.
 */
int hrc_guard_acquire(void);
void hrc_guard_release(void);

/*
 * Call fn(arg) on this thread under the guard. Returns 0 when it returned, or
 * the number of the signal that ended it, with a one-line description in why.
 * A fault is caught only while a guarded call runs on the faulting thread;
 * every other one goes to the handler that was there before. Guarded calls
 * may nest. After a catch, whatever fn held (locks, memory) stays as it was.
 */
int hrc_guard_run(void (*fn)(void *), void *arg, char *why, size_t whysz);

#endif
