/* e2e.h: the fixture of the end-to-end client suites: a temp root, a real daemon, real hosts linked to libhotreload. */
#ifndef T_E2E_H
#define T_E2E_H

#include "util.h"

#define E2E_WAIT_MS 30000 /* a deadline, not a delay */

/* The suite's state: set up by e2e_setup, and everything in it ended by e2e_teardown. */
extern char *e2e_dir;      /* the watched root */
extern t_daemon e2e_d;     /* started by e2e_start_daemon */
extern t_proc e2e_hosts[2]; /* started by e2e_host */

void e2e_setup(void);
/* Ends the hosts and the daemon, and fails the test if either reported a sanitizer finding. */
void e2e_teardown(void);

/* Write text to ROOT/rel. */
void e2e_put(const char *rel, const char *text);
/* A module whose value() is tag, and whose hooks print "load NAME TAG prev=P" and "unload NAME TAG"; hr_on_load returns rc. */
void e2e_module(const char *rel, int tag, int rc);
/* Start the daemon on the root with env entries ("K=V"; NULL for none). */
void e2e_start_daemon(const char *const *env);
/* Start host i (tests/host.c) with options before the socket, on modules; both NULL-terminated, opts may be NULL. */
t_proc *e2e_host(int i, const char *const *opts, const char *const *modules);
/* The next line of h that contains want: it must come within the deadline. */
const char *e2e_expect(t_proc *h, const char *want);
/* SIGTERM to host h (again each second, until the deadline) until it prints a line that contains want; that line. */
const char *e2e_end_at(t_proc *h, const char *want);
/* The same, until its last line, "bye". */
void e2e_end(t_proc *h);
/* The next line of h that starts with prefix must be exactly line. */
void e2e_expect_next(t_proc *h, const char *prefix, const char *line);
/* Read lines of h until each of wants (NULL-terminated) was in one, in any order. */
void e2e_expect_all(t_proc *h, const char *const *wants);
/* Wait until `hotreload CMD --json`, through jq's filter, prints want. */
void e2e_wait_cli(const char *cmd, const char *filter, const char *want);
void e2e_wait_history(const char *filter, const char *want);
/* How many builds of module a process pid maps, and whether version v is one of them. */
int e2e_mapped(int pid, int v, int *has);
/* Wait until the daemon logged that version v of a is live in n clients. */
void e2e_wait_reported(int v, int n);

#endif
