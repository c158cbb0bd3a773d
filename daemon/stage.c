/* stage.c: the build stage: a plan's steps (each source compiled on its own, then the link) run as jobs allow. */
#include "words.h"
#include "stage.h"
#include "log.h"
#include "objcache.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { S_WAITING, S_RUNNING, S_DONE };

/* A run is under way, ended (its result waits to be taken), or dead (taken or cancelled: freed once its steps are reaped). */
enum { R_ACTIVE, R_ENDED, R_DEAD };

/* One compiler run of a build: a source to its object (with its dependency file), or the link. */
typedef struct step {
	hrd_job job;
	hrd_run *r;
	char **argv;
	char *obj, *dep; /* a compile's outputs; NULL for the link */
	int state;
	int cached;      /* obj is the cache's: linked, never compiled nor removed */
	hrd_objcache_entry ce; /* what the cache knew of its source, when the run has a cache */
} step;

struct hrd_run {
	hrd_stage *s;
	TAILQ_ENTRY(hrd_run) link;
	int phase;
	char *name;         /* the module, for the log */
	hrd_sources src;    /* a copy: dependency files name them, and they are left out */
	char *outpath;
	int dirfd;
	int owndir;         /* dirfd is the run's own (a unit's folder), closed with it */
	char *depdir;       /* the folder the dependency files name paths relative to: NULL for the root */
	int cachefd, fresh;
	char **base, *mdeps; /* copies: the cache's key covers them */
	step *steps;        /* src.n compiles, then the link */
	size_t running;     /* steps whose process is not reaped yet */
	step *last;         /* the step that ended it: its output is kept */
	char *command, *out;
	size_t outlen;
	int cut;            /* out reached HRD_JOB_OUTPUT_MAX, and says so: nothing more is kept */
	char spawn_err[512];
	int64_t t0_us, started_us; /* CLOCK_MONOTONIC, CLOCK_REALTIME */
	hrd_result res;
};

struct hrd_stage {
	hrd_stage_config cfg;
	int running;
	TAILQ_HEAD(runq, hrd_run) runs; /* newest first, dead ones included until they are freed */
};

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* argv for one step: the compiler and its flags, then mid (NULL-terminated), then, for the link, the objects and libraries. */
static char **step_argv(const hrd_plan *p, const char *const *mid, char *const *objs, size_t nobjs)
{
	char **argv = NULL;
	size_t argc = 0;
	int rc = 0;
	for (size_t i = 0; rc == 0 && p->base[i]; i++)
		rc = hrd_words_add(&argv, &argc, p->base[i]);
	for (size_t i = 0; rc == 0 && mid[i]; i++)
		rc = hrd_words_add(&argv, &argc, mid[i]);
	for (size_t i = 0; rc == 0 && objs && i < nobjs; i++)
		rc = hrd_words_add(&argv, &argc, objs[i]);
	for (size_t i = 0; rc == 0 && objs && p->ld[i]; i++)
		rc = hrd_words_add(&argv, &argc, p->ld[i]);
	if (rc < 0) {
		hrd_words_free(argv);
		return NULL;
	}
	return argv;
}

int hrd_stage_open(hrd_stage **out, const hrd_stage_config *cfg)
{
	hrd_stage *s = calloc(1, sizeof *s);
	if (!s)
		return -1;
	s->cfg = *cfg;
	TAILQ_INIT(&s->runs);
	*out = s;
	return 0;
}

int hrd_stage_running(const hrd_stage *s)
{
	return s->running;
}

/* Unlinks its files and takes it off the stage; its steps must all be reaped. */
static void destroy(hrd_run *r)
{
	/* A compiler still running would write into files removed here, and report to freed memory. */
	for (size_t i = 0; r->steps && i <= r->src.n; i++)
		assert(r->steps[i].job.pid <= 0);
	TAILQ_REMOVE(&r->s->runs, r, link);
	for (size_t i = 0; r->steps && i <= r->src.n; i++) {
		step *st = &r->steps[i];
		if (st->obj && !st->cached)
			unlink(st->obj);
		if (st->dep)
			unlink(st->dep);
		free(st->obj);
		free(st->dep);
		hrd_words_free(st->argv);
		hrd_job_free(&st->job);
		hrd_objcache_entry_free(&st->ce);
	}
	free(r->steps);
	if (r->owndir && r->dirfd >= 0)
		close(r->dirfd);
	free(r->depdir);
	if (r->outpath)
		unlink(r->outpath);
	free(r->outpath);
	hrd_words_free(r->base);
	free(r->mdeps);
	free(r->name);
	free(r->command);
	free(r->out);
	hrd_deps_free(&r->res.deps);
	hrd_sources_free(&r->src);
	free(r);
}

void hrd_stage_close(hrd_stage *s)
{
	if (!s)
		return;
	while (!TAILQ_EMPTY(&s->runs)) {
		hrd_run *r = TAILQ_FIRST(&s->runs);
		for (size_t i = 0; r->steps && i <= r->src.n; i++)
			if (r->steps[i].state == S_RUNNING)
				hrd_job_reap(&r->steps[i].job);
		destroy(r);
	}
	free(s);
}

/* Its compilers are stopped; on_step still follows for each, once it is reaped. */
static void stop(hrd_run *r)
{
	for (size_t i = 0; i <= r->src.n; i++)
		if (r->steps[i].state == S_RUNNING)
			hrd_job_kill(&r->steps[i].job);
}

/* The run ends: with its link (ok), with the first step that failed (st), or with one that could not start (st NULL). */
static void end(hrd_run *r, step *st, int ok)
{
	r->phase = R_ENDED;
	r->last = st;
	stop(r);
	r->res.ok = ok;
	r->res.spawn_err = r->spawn_err;
	r->res.status = st ? st->job.status : 0;
	r->res.last_out = st && st->job.out ? st->job.out : "";
	r->res.out = r->out ? r->out : "";
	r->res.duration_us = mono_us() - r->t0_us;
}

#define CUT_NOTE "\n[hotreloadd: the compilers' output past 256 KiB is not kept]\n"

/* A run's output after the others': HRD_JOB_OUTPUT_MAX bounds the whole build (a folder of many noisy sources is one), and a cut says so once. */
static void append_out(hrd_run *r, const hrd_job *j)
{
	size_t n = j->out ? strlen(j->out) : 0;
	if (r->cut || (!n && !j->cut))
		return;
	size_t room = HRD_JOB_OUTPUT_MAX - r->outlen;
	int cut = j->cut || n > room;
	if (n > room)
		n = room;
	char *grown = realloc(r->out, r->outlen + n + sizeof CUT_NOTE);
	if (!grown)
		return;
	memcpy(grown + r->outlen, j->out ? j->out : "", n);
	r->outlen += n;
	grown[r->outlen] = '\0';
	r->out = grown;
	if (cut) {
		memcpy(grown + r->outlen, CUT_NOTE, sizeof CUT_NOTE);
		r->outlen += sizeof CUT_NOTE - 1;
		r->cut = 1;
	}
}

static void on_step(hrd_job *j)
{
	step *st = j->arg;
	hrd_run *r = st->r;
	hrd_stage *s = r->s;
	st->state = S_DONE;
	r->running--;
	s->running--;
	if (r->phase == R_ACTIVE) {
		int ok = WIFEXITED(j->status) && WEXITSTATUS(j->status) == 0;
		append_out(r, j);
		/* A compile that failed on the code still names what it read: keep it, so that a fix in a header is seen. */
		if (st->dep && hrd_deps_read_in(&r->res.deps, AT_FDCWD, st->dep, s->cfg.root, r->depdir, r->src.path,
		                                 r->src.n) < 0) {
			r->res.nodeps = 1;
			if (ok)
				hrd_warn("%s: cannot read the dependency file %s: %s", r->name, st->dep, strerror(errno));
		}
		/* Kept for the next build: a save compiles only the sources whose key changed. */
		if (ok && st->dep && r->cachefd >= 0)
			hrd_objcache_store(r->cachefd, r->dirfd, s->cfg.root, r->base, r->mdeps, r->src.path[st - r->steps],
			                   &st->ce, r->started_us, st->obj, st->dep, j->out);
		if (!ok || !st->dep || st == &r->steps[r->src.n])
			end(r, st, ok);
	}
	/* Kept in the run's output now: a folder of many sources holds one run's at a time, not all of them. */
	if (st != r->last)
		hrd_job_free(j);
	if (r->phase == R_DEAD && !r->running)
		destroy(r);
	s->cfg.changed(s->cfg.arg);
}

/* Start what r may start: its compiles while jobs allow, then its link once they are done. */
static void run_steps(hrd_stage *s, hrd_run *r, int jobs)
{
	size_t n = r->src.n, compiled = 0;
	for (size_t i = 0; i < n; i++)
		compiled += r->steps[i].state == S_DONE;
	for (size_t i = 0; i <= n && r->phase == R_ACTIVE && s->running < jobs; i++) {
		step *st = &r->steps[i];
		if (st->state != S_WAITING || (i == n && compiled < n))
			continue;
		if (hrd_job_start(&st->job, s->cfg.loop, st->argv, r->dirfd) < 0) {
			if (errno == ENOENT)
				snprintf(r->spawn_err, sizeof r->spawn_err,
				         "cannot run the compiler '%s': not found; set CC to a C compiler", st->argv[0]);
			else
				snprintf(r->spawn_err, sizeof r->spawn_err, "cannot run the compiler '%s': %s", st->argv[0],
				         strerror(errno));
			end(r, NULL, 0);
			break;
		}
		st->state = S_RUNNING;
		r->running++;
		s->running++;
	}
}

void hrd_stage_pump(hrd_stage *s, int jobs)
{
	hrd_run *r;
	TAILQ_FOREACH(r, &s->runs, link) {
		if (s->running >= jobs)
			break;
		if (r->phase == R_ACTIVE)
			run_steps(s, r, jobs);
	}
}

/* One more line of the run's commands. 0 or -1. */
static int add_command(hrd_run *r, char *const *argv)
{
	char *line = hrd_job_cmdline(argv), *all = NULL;
	if (!line || asprintf(&all, "%s%s%s", r->command ? r->command : "", r->command ? "\n" : "", line) < 0) {
		free(line);
		return -1;
	}
	free(line);
	free(r->command);
	r->command = all;
	return 0;
}

/* Output that a cached compile said when it ran: replayed, so that the row shows every source's warnings. */
static void replay(hrd_run *r, const char *key)
{
	hrd_job said = {0};
	if (!(said.out = hrd_objcache_output(r->cachefd, key)))
		return;
	append_out(r, &said);
	free(said.out);
}

/* Source i's object, if the cache has it for the key of its inputs now: 1 (its step is done), else 0. */
static int from_cache(hrd_run *r, const hrd_plan *p, step *st, size_t i)
{
	if (hrd_objcache_lookup(r->cachefd, r->dirfd, r->s->cfg.root, p->base, p->mdeps, r->src.path[i], &st->ce) < 0 ||
	    !st->ce.hit || r->fresh)
		return 0;
	char dep[HRD_OBJCACHE_NAME_MAX];
	snprintf(dep, sizeof dep, "%s.d", st->ce.key);
	if (asprintf(&st->obj, "%s/%s.o", p->cache_dir, st->ce.key) < 0) {
		st->obj = NULL;
		return 0;
	}
	/* What it read is what the module depends on, as if it had been compiled now. */
	if (hrd_deps_read(&r->res.deps, r->cachefd, dep, r->s->cfg.root, r->src.path, r->src.n) < 0) {
		free(st->obj);
		st->obj = NULL;
		return 0;
	}
	replay(r, st->ce.key);
	st->cached = 1;
	st->state = S_DONE;
	return 1;
}

static int copy_words(char ***to, char *const *from)
{
	size_t n = 0;
	int rc = (*to = calloc(1, sizeof **to)) ? 0 : -1;
	for (size_t i = 0; rc == 0 && from[i]; i++)
		rc = hrd_words_add(to, &n, from[i]);
	return rc;
}

/* Lay out r's steps: src.n compiles into out.I.o, and the link of their objects into out. 0 or -1. */
static int plan_steps(hrd_run *r, const hrd_plan *p)
{
	size_t n = r->src.n;
	char **objs = calloc(n + 1, sizeof *objs);
	if (!(r->steps = calloc(n + 1, sizeof *r->steps)) || !objs)
		goto fail;
	for (size_t i = 0; i <= n; i++) {
		step *st = &r->steps[i];
		st->r = r;
		st->job.arg = st;
		st->job.on_done = on_step;
		if (i < n && (p->single || p->whole)) {
			st->state = S_DONE; /* the one call below compiles it */
			continue;
		} else if (i < n && r->cachefd >= 0 && from_cache(r, p, st, i)) {
			objs[i] = st->obj;
			continue;
		} else if (i < n) {
			if (asprintf(&st->obj, "%s.%zu.o", r->outpath, i) < 0) {
				st->obj = NULL;
				goto fail;
			}
			if (asprintf(&st->dep, "%s.%zu.d", r->outpath, i) < 0) {
				st->dep = NULL;
				goto fail;
			}
			objs[i] = st->obj;
			const char *mid[] = {"-c", p->mdeps, "-MF", st->dep, "-o", st->obj, r->src.path[i], NULL};
			st->argv = step_argv(p, mid, NULL, 0);
		} else if (p->whole) {
			if (copy_words(&st->argv, p->whole) < 0 || !(st->dep = strdup(p->dep)))
				goto fail;
		} else {
			const char *mid[] = {"-shared", "-o", r->outpath, NULL};
			st->argv = step_argv(p, mid, p->single ? r->src.path : objs, n);
		}
		if (!st->argv || add_command(r, st->argv) < 0)
			goto fail;
	}
	free(objs); /* the paths are the steps' */
	return 0;
fail:
	free(objs);
	return -1;
}

static int copy_sources(hrd_sources *to, const hrd_sources *from)
{
	if (!(to->path = calloc(from->n + 1, sizeof *to->path)))
		return -1;
	for (; to->n < from->n; to->n++)
		if (!(to->path[to->n] = strdup(from->path[to->n])))
			return -1;
	return 0;
}

hrd_run *hrd_stage_start(hrd_stage *s, const hrd_plan *p)
{
	hrd_run *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->s = s;
	r->res.owner = p->owner;
	r->dirfd = p->dirfd;
	r->cachefd = p->whole ? -1 : p->cachefd;
	r->fresh = p->fresh;
	r->t0_us = mono_us();
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	r->started_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
	TAILQ_INSERT_HEAD(&s->runs, r, link);
	if (p->whole) {
		/* the unit's folder, held by the run until its compile starts there */
		r->owndir = 1;
		if ((r->dirfd = open(p->dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 || !(r->depdir = strdup(p->dir))) {
			int err = r->dirfd < 0 ? errno : ENOMEM;
			destroy(r);
			errno = err;
			return NULL;
		}
	}
	if (!(r->name = strdup(p->name)) || !(r->outpath = strdup(p->out)) ||
	    copy_sources(&r->src, p->src) < 0 || copy_words(&r->base, p->base) < 0 || !(r->mdeps = strdup(p->mdeps)) ||
	    plan_steps(r, p) < 0) {
		destroy(r);
		errno = ENOMEM;
		return NULL;
	}
	r->res.command = r->command;
	return r;
}

hrd_run *hrd_stage_take(hrd_stage *s)
{
	hrd_run *r;
	TAILQ_FOREACH_REVERSE(r, &s->runs, runq, link)
		if (r->phase == R_ENDED) {
			r->phase = R_DEAD;
			return r;
		}
	return NULL;
}

hrd_result *hrd_run_result(hrd_run *r)
{
	return &r->res;
}

void hrd_run_cancel(hrd_run *r)
{
	r->phase = R_DEAD;
	stop(r);
	if (!r->running)
		destroy(r); /* none running: no on_step will free it */
}

void hrd_run_free(hrd_run *r)
{
	assert(r->phase == R_DEAD);
	if (!r->running)
		destroy(r); /* else once its killed compilers are reaped */
}

void hrd_stage_cached(const hrd_stage *s, void (*keep)(void *arg, const char *name), void *arg)
{
	const hrd_run *r;
	TAILQ_FOREACH(r, &s->runs, link)
		for (size_t i = 0; r->steps && i < r->src.n; i++)
			if (r->steps[i].cached) {
				const char *name = strrchr(r->steps[i].obj, '/');
				keep(arg, name ? name + 1 : r->steps[i].obj);
			}
}
