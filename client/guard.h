/* guard.h: run module code so that a fault in it returns to the caller instead of ending the program. */
#ifndef HRC_GUARD_H
#define HRC_GUARD_H

#include <stddef.h>

/*
 * Install the fault handlers (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) for
 * the whole process, the first time it is called; they stay for the life of
 * the process. Outside a guarded call they pass every signal on to the
 * handler that was there before, so a program behaves as without them.
 * Never taking them out means nothing can chain to a handler that is gone,
 * and no handler installed later can end up chained to itself. Returns 0, or
 * -1 when they could not be installed (crashes are then not caught).
 */
int hrc_guard_install(void);

/* The signals it catches, HRC_GUARD_NSIGS of them. */
#define HRC_GUARD_NSIGS 5
extern const int hrc_guard_sigs[HRC_GUARD_NSIGS];

/*
 * Give this thread an alternate signal stack for good if it has none, so that
 * a stack overflow in a guarded call can be caught: once per thread, the
 * first guarded call on it does it if this was not called before. From then
 * on a guarded call that does not fault makes no system call.
 */
void hrc_guard_prepare(void);

/*
 * Call fn(arg) on this thread under the guard (installed or not). Returns 0 when it returned, or
 * the number of the signal that ended it, with a one-line description in why.
 * A fault is caught only while a guarded call runs on the faulting thread;
 * every other one goes to the handler that was there before. Guarded calls
 * may nest. After a catch, whatever fn held (locks, memory) stays as it was.
 * fn must return or fault: a longjmp out of it would leave the guard marking
 * a frame that is gone. After a fault the signal mask is the one fn faulted
 * with (so, unless fn changed it, the caller's).
 */
int hrc_guard_run(void (*fn)(void *), void *arg, char *why, size_t whysz);

#endif
