/* stage.h: the build stage beneath the engine: a plan's compiles and link, run as jobs allow, each build's result handed back. */
#ifndef HRD_STAGE_H
#define HRD_STAGE_H

/*
 * The engine drives the stage; the stage never calls the engine. It says only
 * that something changed (a step ended: a result may be ready, a job slot may
 * be free), through cfg.changed; the engine then takes the results and pumps.
 *
 * Errors: hrd_stage_open and hrd_stage_start return -1 / NULL with errno.
 */

#include "build.h"
#include "deps.h"
#include "loop.h"
#include "project.h"

#include <stddef.h>
#include <stdint.h>

typedef struct hrd_stage hrd_stage;
typedef struct hrd_run hrd_run;

typedef struct hrd_stage_config {
	hrd_loop *loop;
	const char *root; /* its path: dependency files are read relative to it */
	void (*changed)(void *arg); /* from the loop, once a step is reaped */
	void *arg;
} hrd_stage_config;

/* What to build: each source compiled on its own, then one link into out. Borrowed for hrd_stage_start only. */
typedef struct hrd_plan {
	const hrd_sources *src;
	char *const *base; /* the compiler and its flags, before -c or -shared */
	char *const *ld;   /* link flags and libraries, after the objects */
	const char *mdeps; /* the option for a dependency file without system headers: -MMD, or -MD for tcc */
	int dirfd;         /* the root: the compilers run there */
	int cachefd;       /* STATE/cache (objcache.h): sources whose object is there are not compiled; -1 for none */
	const char *cache_dir; /* its path, for the link's command line */
	int fresh;         /* compile every source all the same (what the keys cannot see may have changed), and keep them */
	int single;        /* one call, sources to out (the quick tier's tcc): no objects, no dependency files; no cache */
	char *const *whole; /* a compile database's unit (--patch): this one command, run in dir, writes out and the
	                     * dependency file dep itself; no link, no cache. NULL otherwise */
	const char *dir, *dep;
	const char *out;   /* the linked object; the run removes it when freed, unless it was moved away */
	const char *name;  /* the module, for the log */
	void *owner;       /* handed back in the result */
} hrd_plan;

/* How a run ended. Owned by the run; the caller may take deps (leaving it empty). */
typedef struct hrd_result {
	void *owner;
	int ok;                /* every step succeeded: the object is at the plan's out */
	const char *spawn_err; /* a compiler could not be started: why ("" otherwise) */
	int status;            /* the wait status of the step that ended the run */
	const char *last_out;  /* that step's own output ("" for none) */
	const char *command;   /* every step's command line, in order */
	const char *out;       /* every step's output, in order, bounded by HRD_JOB_OUTPUT_MAX */
	hrd_deps deps;         /* what the dependency files name, sources left out */
	int nodeps;            /* a compile left no dependency file that could be read: what it read is not known */
	int64_t duration_us;
} hrd_result;

int hrd_stage_open(hrd_stage **out, const hrd_stage_config *cfg);
/* Every compiler still running is killed and reaped; every run freed. NULL is a no-op. */
void hrd_stage_close(hrd_stage *s);
/* A new run of plan, waiting for hrd_stage_pump to start its steps. NULL with errno. */
hrd_run *hrd_stage_start(hrd_stage *s, const hrd_plan *plan);
/* Start the waiting steps of the runs, newest first (the latest change is the one awaited), while fewer than jobs compilers run. A step that cannot be started ends its run. */
void hrd_stage_pump(hrd_stage *s, int jobs);
/* A run that ended, oldest first, or NULL: the caller reads its result, then frees it. */
hrd_run *hrd_stage_take(hrd_stage *s);
hrd_result *hrd_run_result(hrd_run *r);
/* Its result is never handed back: its compilers are stopped, and it is freed once they are reaped. */
void hrd_run_cancel(hrd_run *r);
/* A run taken from hrd_stage_take. */
void hrd_run_free(hrd_run *r);
/* Call keep with each file of the cache that a run under way links. */
void hrd_stage_cached(const hrd_stage *s, void (*keep)(void *arg, const char *name), void *arg);
/* Compilers running now, cancelled runs' included. */
int hrd_stage_running(const hrd_stage *s);

#endif
