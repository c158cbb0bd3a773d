/* build.h: one compiler run: spawned without a shell, watched through a pidfd, its output captured. */
#ifndef HRD_BUILD_H
#define HRD_BUILD_H

/*
 * Errors: -1 with errno, as the system calls beneath.
 */

#include "loop.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HRD_JOB_OUTPUT_MAX (256u << 10) /* compiler output kept per run, and per build (engine_build.c); the rest is cut */

typedef struct hrd_job hrd_job;
struct hrd_job {
	hrd_io pidio, outio;
	hrd_loop *loop;
	pid_t pid;               /* also its process group */
	int status;              /* wait status, once done */
	char *out;               /* stdout and stderr, NUL-terminated */
	size_t outlen, outcap;
	int cut;                 /* output past HRD_JOB_OUTPUT_MAX was read to nowhere */
	void (*on_done)(hrd_job *j); /* called from the loop once the child is reaped */
	void *arg;
};

/*
 * Run argv[0] (looked up in PATH) in the folder dirfd, in its own process group, with an
 * empty signal mask, default dispositions, stdin from /dev/null, stdout and
 * stderr into a pipe, and no other descriptor. j->on_done and j->arg must be
 * set. Returns 0, or -1 with errno (ENOENT: no such compiler).
 */
int hrd_job_start(hrd_job *j, hrd_loop *loop, char *const argv[], int dirfd);
/* Kill the job's whole process group; on_done still follows, once it is reaped. */
void hrd_job_kill(hrd_job *j);
/* Kill and reap at once, without on_done (shutdown). */
void hrd_job_reap(hrd_job *j);
/* Free what the job holds (after on_done or reap). */
void hrd_job_free(hrd_job *j);

/* "exited with status 1", "killed by signal 9 (Killed)" */
void hrd_job_describe(int status, char *buf, size_t n);

/* The line a developer needs from a failed job: the first compiler error, else the first line, else how it ended. */
void hrd_job_message(const char *out, int status, char *msg, size_t n);

/*
 * 1 when a failed compile is the compiler's verdict on the sources, so that
 * the same sources need not be compiled again: it exited with 1, and nothing
 * in its output says the fault lay elsewhere (a missing header that may yet
 * appear, a full disk, a killed cc1, a compiler bug). Else 0.
 */
int hrd_job_verdict(int status, const char *out);

/* How many warnings the output holds (file:line:col: warning: ...); the first of them in first (size n). */
int hrd_job_warnings(const char *out, char *first, size_t n);
/* argv as one line for the history, quoted where a shell would need it; the caller frees it. NULL when out of memory. */
char *hrd_job_cmdline(char *const argv[]);

#endif
