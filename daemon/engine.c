/* engine.c: from a settled change to a recorded, announced object: one module at a time, newest content wins. */
#include "engine.h"
#include "build.h"
#include "ccmd.h"
#include "config.h"
#include "log.h"
#include "project.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IDLE_CHECKPOINT_S 2 /* the WAL is checkpointed this long after the last record, off the save path */

enum mstate { M_IDLE, M_QUEUED, M_BUILDING };

struct build;

typedef struct mod {
	char *name;
	int kind;      /* enum hrd_kind at the last look */
	int invalid;   /* the name is not a module name: reported, never built */
	enum mstate state;
	char key[65];  /* inputs of the last recorded compile, "" for none */
	uint64_t version;  /* the newest good build that can be served, 0 for none */
	uint64_t top;      /* the highest version in the history: the next is top + 1 */
	uint32_t good_kind; /* enum hrp_kind of it */
	char *artifact;
	int last;      /* HRD_OK or HRD_FAILED: the last compile; 0 for none */
	unsigned seen; /* the scan that last saw it */
	char *message; /* its first error */
	char *note;    /* why it is not built (a conflict), for status */
	char cause[160];
	int recheck;   /* a source was open for writing when it was to be built: look again at the recheck timer */
	hrd_deps deps; /* what its last compile read besides its sources: its headers */
	int fresh;     /* a header appeared that its key cannot know of: reuse nothing until a compile is recorded */
	char *ccmd;    /* its entries in compile_commands.json, NULL before its first look */
	struct build *job;
	struct mod *qnext;
} mod;

/* One compiler run of a build: a source to its object (with its dependency file), or the link. */
typedef struct step {
	hrd_job job;
	struct build *b;
	char **argv;
	char *obj, *dep; /* a compile's outputs; NULL for the link */
	int state;       /* S_WAITING, S_RUNNING, S_DONE */
} step;

enum { S_WAITING, S_RUNNING, S_DONE };

/* A module's build: each source compiled on its own, as many at once as jobs allow, then one link. */
typedef struct build {
	struct hrd_engine *e;
	mod *m;  /* NULL once cancelled or ended: neither recorded nor announced */
	struct build *next, **pprev;
	hrd_sources src;
	hrd_deps had;      /* the module's dependencies when the key was taken */
	hrd_deps deps;     /* what the dependency files of this build name */
	hrd_stamp *stamps; /* what each source, then each of had, was when the key was taken */
	step *steps;       /* src.n compiles, then the link */
	char **base, **ld; /* the module's compiler and flags (before -c or -shared); its link flags and libraries */
	char **keyargv;    /* base, "--", ld: the command line as the key covers it */
	size_t running;    /* steps whose process is not reaped yet */
	char key[65];
	char *tmp, *command, *out; /* the object; every step's command line, and output, in order */
	size_t outlen;
	char cause[160];
	int64_t started_us, t0_us;
} build;

struct hrd_engine {
	hrd_engine_config cfg;
	hrd_server *server;
	hrd_project project;
	char **env_cc, **env_cflags, **env_ldflags; /* $CC, $CFLAGS, $LDFLAGS, as words */
	hrd_config conf;        /* ROOT/hotreload.conf, the last good one */
	char conf_error[600];   /* why the file as it is now is not in use, for status; "" when it is */
	int ccmd_dirty;         /* compile_commands.json is behind */
	mod **mods;
	size_t nmods;
	mod *qhead, **qtail;
	build *builds; /* every live child, cancelled ones included */
	int running;   /* builds that count against jobs */
	unsigned long seq;
	unsigned scan; /* scans so far */
	hrd_io timer, watchio;
	hrd_io recheck;      /* a timer: modules whose sources were open for writing */
	unsigned recheck_ms; /* its next delay: doubles while a writer stays, back to the least when none does */
	int recheck_armed;
	hrp_modstat *status; /* the last STATUS reply's array */
	char reason[1400];   /* and its watcher reason, when it has more to say */
	char *older;         /* the path in the last answer to a refusal */
};

static int64_t now_us(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Compilers at once: --jobs, else hotreload.conf's jobs, else the cores. */
static int jobs(const hrd_engine *e)
{
	return e->cfg.jobs_given || !e->conf.jobs ? e->cfg.jobs : e->conf.jobs;
}

static void set_str(char **dst, const char *src)
{
	char *copy = src ? strdup(src) : NULL;
	if (src && !copy)
		return; /* keep the old text rather than lose the module */
	free(*dst);
	*dst = copy;
}

static int add_word(char ***words, size_t *n, const char *w)
{
	char **grown = realloc(*words, (*n + 2) * sizeof *grown);
	if (!grown)
		return -1;
	*words = grown;
	if (!(grown[*n] = strdup(w)))
		return -1;
	grown[++*n] = NULL;
	return 0;
}

/* Split an environment variable into words (no shell: spaces and tabs only). */
static int split_env(const char *var, const char *fallback, char ***words, size_t *n)
{
	const char *v = getenv(var);
	char *copy = strdup(v && *v ? v : fallback), *save = NULL;
	int rc = copy ? 0 : -1;
	for (char *w = copy ? strtok_r(copy, " \t\n", &save) : NULL; w && rc == 0; w = strtok_r(NULL, " \t\n", &save))
		rc = add_word(words, n, w);
	free(copy);
	return rc;
}

static void free_words(char **words)
{
	for (size_t i = 0; words && words[i]; i++)
		free(words[i]);
	free(words);
}

/* ---- modules ---- */

static mod *find(hrd_engine *e, const char *name)
{
	for (size_t i = 0; i < e->nmods; i++)
		if (strcmp(e->mods[i]->name, name) == 0)
			return e->mods[i];
	return NULL;
}

struct latest {
	mod *m;
	int good, compile;
};

/* A row that published an object to clients. */
static int published_row(const hrd_build *b)
{
	return b->status == HRD_OK || b->status == HRD_REUSED || b->status == HRD_ROLLBACK;
}

/* What a BUILD calls a published row. */
static uint32_t kind_of(const hrd_build *b)
{
	return b->status == HRD_OK ? HRP_KIND_OK : b->status == HRD_REUSED ? HRP_KIND_REUSED : HRP_KIND_ROLLBACK;
}

/* Newest first: the newest good row, and the newest compile (its inputs' key). */
static int take_latest(const hrd_build *b, void *arg)
{
	struct latest *l = arg;
	mod *m = l->m;
	if (published_row(b) && !l->good) {
		l->good = 1;
		m->version = m->top = b->version;
		m->good_kind = kind_of(b);
		set_str(&m->artifact, b->artifact);
	}
	if ((b->status == HRD_OK || b->status == HRD_FAILED) && !l->compile) {
		l->compile = 1;
		/* A restart tries a failed module again: what failed it may be fixed. */
		snprintf(m->key, sizeof m->key, "%s", b->status == HRD_OK ? b->source_hash : "");
		m->last = b->status;
		set_str(&m->message, b->message);
	}
	return l->good && l->compile;
}

/* One of the newest module's dependencies, as the history has them. */
static int take_dep(void *arg, const char *path)
{
	hrd_engine *e = arg;
	return hrd_deps_add(&e->mods[e->nmods - 1]->deps, e->cfg.root, path);
}

static mod *add_mod(hrd_engine *e, const char *name)
{
	mod **grown = realloc(e->mods, (e->nmods + 1) * sizeof *grown);
	mod *m = calloc(1, sizeof *m);
	if (grown)
		e->mods = grown;
	if (!grown || !m || !(m->name = strdup(name))) {
		free(m);
		hrd_error("%s: out of memory", name);
		return NULL;
	}
	e->mods[e->nmods++] = m;
	if (!hrp_valid_name(name))
		return m;
	/* What the history knows: the version to serve, the inputs last built. */
	struct latest l = {.m = m};
	if (hrd_store_history(e->cfg.store, name, 0, take_latest, &l) < 0 ||
	    hrd_store_deps(e->cfg.store, name, take_dep, e) < 0)
		hrd_error("%s", hrd_store_error(e->cfg.store));
	if (m->artifact && access(m->artifact, R_OK) < 0) {
		hrd_warn("%s: the object of v%llu (%s) is gone; building it again", name,
		         (unsigned long long)m->version, m->artifact);
		m->version = 0;
		set_str(&m->artifact, NULL);
		m->key[0] = '\0';
	}
	return m;
}

static void dequeue(hrd_engine *e, mod *m)
{
	if (m->state != M_QUEUED)
		return;
	for (mod **p = &e->qhead; *p; p = &(*p)->qnext)
		if (*p == m) {
			*p = m->qnext;
			if (!*p)
				e->qtail = p;
			break;
		}
	m->qnext = NULL;
	m->state = M_IDLE;
}

static void abandon(struct build *b);

static void cancel(hrd_engine *e, mod *m)
{
	dequeue(e, m);
	if (m->job) {
		hrd_debug("%s: build cancelled by a newer change", m->name);
		abandon(m->job); /* it goes once its compilers are reaped */
		m->job = NULL;
	}
	m->state = M_IDLE;
}

static void pump(hrd_engine *e);

static void failed(hrd_engine *e, mod *m, struct build *b, const char *message, const char *output,
                   int64_t duration, int trusted);

/* A source that cannot be read (permissions, no descriptors left): a failed build, said once. */
static void unreadable(hrd_engine *e, mod *m, const hrd_sources *src, int err, const char *cause)
{
	char msg[600];
	const char *what = src->n ? src->path[0] : m->name;
	for (size_t i = 0; i < src->n; i++)
		if (faccessat(e->project.rootfd, src->path[i], R_OK, 0) < 0) {
			what = src->path[i];
			break;
		}
	snprintf(msg, sizeof msg, "cannot read %s: %s", what, strerror(err));
	if (m->last == HRD_FAILED && m->message && strcmp(m->message, msg) == 0)
		return;
	build b = {.started_us = now_us(CLOCK_REALTIME)};
	snprintf(b.cause, sizeof b.cause, "%s", cause);
	failed(e, m, &b, msg, "", 0, 0);
}

/* Look at name on disk again after a change, and queue it to be built if it still is a module. */
static void touch(hrd_engine *e, const char *name, const char *cause)
{
	char why[160];
	snprintf(why, sizeof why, "%s", cause); /* cause may be m->cause itself */
	mod *m = find(e, name);
	hrd_sources src;
	int kind = hrd_project_resolve(&e->project, name, &src);
	if (kind < 0) {
		hrd_warn("%s: cannot read its sources: %s", name, strerror(errno));
		return;
	}
	if (!m && kind == HRD_KIND_NONE)
		return;
	if (!m && !(m = add_mod(e, name))) {
		hrd_sources_free(&src);
		return;
	}
	int was = m->kind;
	m->kind = kind;
	if (!hrp_valid_name(name)) {
		if (!m->invalid && kind != HRD_KIND_NONE)
			hrd_warn("skipped '%s': a module name is " HRP_NAME_RULE, name);
		m->invalid = 1;
		hrd_sources_free(&src);
		return;
	}
	if (kind == HRD_KIND_NONE || kind == HRD_KIND_CONFLICT) {
		/* A conflict ends the build in flight. A removal does not: the
		 * compiler either read the source already or fails saying it is gone,
		 * and a save by rename (vim) brings it back as a newer change. */
		if (kind == HRD_KIND_CONFLICT)
			cancel(e, m);
		else
			dequeue(e, m);
		if (kind == HRD_KIND_CONFLICT) {
			char note[600];
			snprintf(note, sizeof note, "both %s.c and the folder %s/ exist: rename one; neither is built", name, name);
			set_str(&m->note, note);
		}
		if (kind == HRD_KIND_CONFLICT && was != kind)
			hrd_warn("%s: both %s.c and the folder %s/ exist; neither is built until one goes", name, name, name);
		else if (kind == HRD_KIND_NONE && was != kind)
			hrd_info("%s: removed", name);
		return;
	}
	set_str(&m->note, NULL);
	/* Any settled change ends the build in flight, even one that leaves the
	 * same bytes: the compiler may have read the file in the middle of it.
	 * Whether the content changed at all is for start() to tell, when it
	 * reads the sources it builds. */
	if (m->job)
		cancel(e, m);
	hrd_sources_free(&src);
	snprintf(m->cause, sizeof m->cause, "%s", why);
	if (m->state == M_QUEUED)
		return; /* it reads the final content when it starts */
	m->state = M_QUEUED;
	*e->qtail = m;
	e->qtail = &m->qnext;
	pump(e);
}

/* ---- building ---- */

enum { RECHECK_MIN_MS = 10, RECHECK_MAX_MS = 1000 };

/*
 * Look again soon at a module found open for writing. Its close may well have
 * been reported already: the kernel queues the close event before it lets go
 * of the file's write access, so the event can be read while the file still
 * counts as open for writing. Waiting for another close would miss the save.
 */
static void arm_recheck(hrd_engine *e, mod *m)
{
	m->recheck = 1;
	if (e->recheck_armed)
		return;
	struct itimerspec its = {.it_value = {.tv_sec = e->recheck_ms / 1000, .tv_nsec = e->recheck_ms % 1000 * 1000000L}};
	e->recheck_armed = timerfd_settime(e->recheck.fd, 0, &its, NULL) == 0;
}

static void arm_checkpoint(hrd_engine *e)
{
	struct itimerspec its = {.it_value = {.tv_sec = IDLE_CHECKPOINT_S}};
	timerfd_settime(e->timer.fd, 0, &its, NULL);
}

static void on_recheck(hrd_io *io, uint32_t events)
{
	hrd_engine *e = (hrd_engine *)((char *)io - offsetof(hrd_engine, recheck));
	uint64_t n;
	(void)events;
	(void)!read(io->fd, &n, sizeof n);
	e->recheck_armed = 0;
	unsigned was = e->recheck_ms;
	/* Longer while a writer stays, so that one holding a file open for minutes costs next to nothing. */
	e->recheck_ms = was * 2 > RECHECK_MAX_MS ? RECHECK_MAX_MS : was * 2;
	for (size_t i = 0; i < e->nmods; i++) {
		mod *m = e->mods[i];
		if (!m->recheck)
			continue;
		m->recheck = 0; /* set again by start() if the writer is still there */
		if (!m->job && m->state != M_QUEUED)
			touch(e, m->name, m->cause); /* one building or queued reads its sources anyway */
	}
	if (!e->recheck_armed)
		e->recheck_ms = RECHECK_MIN_MS; /* no writer stayed */
}

static void on_timer(hrd_io *io, uint32_t events)
{
	hrd_engine *e = (hrd_engine *)((char *)io - offsetof(hrd_engine, timer));
	uint64_t n;
	(void)events;
	(void)!read(io->fd, &n, sizeof n);
	if (hrd_store_checkpoint(e->cfg.store) < 0)
		hrd_warn("%s", hrd_store_error(e->cfg.store));
}

static void announce_failed(hrd_engine *e, mod *m)
{
	hrp_msg f = {.type = HRP_FAILED, .u.failed = {m->name, m->message ? m->message : ""}};
	if (e->server)
		hrd_server_announce(e->server, m->name, &f);
}

/* The dependencies a build leaves: what its dependency files name, with those it had kept when it failed (a failed compile may not have written them all). */
static int leave_deps(mod *m, build *b, int ok)
{
	m->fresh = 0;
	if (!ok && hrd_deps_merge(&b->deps, &m->deps) < 0)
		return -1;
	hrd_deps_free(&m->deps);
	m->deps = b->deps;
	b->deps = (hrd_deps){0};
	return 0;
}

/* A set of dependencies as a row records it: an empty list replaces the old ones too. */
static char *const *deps_row(const hrd_deps *d)
{
	static char *const none[] = {NULL};
	return d->n ? d->path : none;
}

/*
 * Record a compile that failed (or could not run), and say so. Only a
 * compiler that ran to its end on inputs that held still ("trusted") ties
 * the failure to the inputs' key: a missing compiler, a full disk or a
 * vanished file must not stop the same content from being built again.
 */
static void failed(hrd_engine *e, mod *m, build *b, const char *message, const char *output, int64_t duration,
                   int trusted)
{
	int deps = leave_deps(m, b, 0) == 0;
	hrd_build row = {.module = m->name, .status = HRD_FAILED, .started_us = b->started_us,
	                 .duration_us = duration, .source_hash = trusted ? b->key : "", .command = b->command,
	                 .output = output, .message = message, .cause = b->cause, .deps = deps ? deps_row(&m->deps) : NULL};
	set_str(&m->message, message);
	m->last = HRD_FAILED;
	snprintf(m->key, sizeof m->key, "%s", trusted ? b->key : "");
	if (hrd_store_record(e->cfg.store, &row) < 0)
		hrd_error("%s: %s", m->name, hrd_store_error(e->cfg.store));
	else
		arm_checkpoint(e);
	hrd_warn("%s: build failed: %s", m->name, message);
	announce_failed(e, m);
}

static int take_top(const hrd_build *b, void *arg)
{
	if (published_row(b)) {
		*(uint64_t *)arg = b->version;
		return 1;
	}
	return 0;
}

static void published(hrd_engine *e, mod *m, build *b, int64_t duration)
{
	char *path = NULL;
	uint64_t version = m->top + 1;
	hrd_build row = {.module = m->name, .status = HRD_OK, .version = version, .started_us = b->started_us,
	                 .duration_us = duration, .source_hash = b->key, .command = b->command,
	                 .output = b->out, .cause = b->cause, .deps = deps_row(&b->deps)};
	/*
	 * A new path per version, because dlopen caches by path and a mapped file
	 * is never written; and per history, because a replaced history numbers
	 * from 1 again while games may still hold the old NAME.1.so.
	 */
	if (asprintf(&path, "%s/objects/%s.%llu.%.8s.so", e->cfg.state_dir, m->name, (unsigned long long)version,
	             hrd_store_id(e->cfg.store)) < 0)
		path = NULL;
	if (!path || rename(b->tmp, path) < 0) {
		char msg[512];
		snprintf(msg, sizeof msg, "cannot publish the object: %s", strerror(path ? errno : ENOMEM));
		free(path);
		failed(e, m, b, msg, b->out, duration, 0);
		return;
	}
	row.artifact = path;
	if (hrd_store_record(e->cfg.store, &row) < 0) {
		/* Unrecorded, so never announced: the last good build stays what clients run. */
		char msg[1200];
		snprintf(msg, sizeof msg, "built, but not recorded: %s", hrd_store_error(e->cfg.store));
		unlink(path);
		free(path);
		hrd_error("%s: %s", m->name, msg);
		set_str(&m->message, msg);
		m->last = HRD_FAILED;
		m->key[0] = '\0';
		/* Whatever the history holds now, number the next build after it. */
		hrd_store_history(e->cfg.store, m->name, 0, take_top, &m->top);
		announce_failed(e, m);
		return;
	}
	leave_deps(m, b, 1);
	arm_checkpoint(e);
	m->version = m->top = version;
	m->good_kind = HRP_KIND_OK;
	free(m->artifact);
	m->artifact = path;
	m->last = HRD_OK;
	set_str(&m->message, NULL);
	snprintf(m->key, sizeof m->key, "%s", b->key);
	hrd_info("%s: v%llu built in %lld ms (%s)", m->name, (unsigned long long)version,
	         (long long)(duration / 1000), b->cause);
	hrp_msg a = {.type = HRP_BUILD, .u.build = {m->name, version, HRP_KIND_OK, path}};
	if (e->server)
		hrd_server_announce(e->server, m->name, &a);
}

static void free_build(build *b)
{
	if (b->pprev) {
		*b->pprev = b->next;
		if (b->next)
			b->next->pprev = b->pprev;
	}
	for (size_t i = 0; b->steps && i <= b->src.n; i++) {
		step *s = &b->steps[i];
		if (s->obj)
			unlink(s->obj);
		if (s->dep)
			unlink(s->dep);
		free(s->obj);
		free(s->dep);
		free_words(s->argv);
		hrd_job_free(&s->job);
	}
	free(b->steps);
	free_words(b->base);
	free_words(b->ld);
	free_words(b->keyargv);
	if (b->tmp)
		unlink(b->tmp);
	free(b->tmp);
	free(b->command);
	free(b->out);
	free(b->stamps);
	hrd_deps_free(&b->had);
	hrd_deps_free(&b->deps);
	hrd_sources_free(&b->src);
	free(b);
}

/* Neither recorded nor announced from here on: its compilers are stopped, and it goes once they are reaped. */
static void abandon(build *b)
{
	b->m = NULL;
	for (size_t i = 0; i <= b->src.n; i++)
		if (b->steps[i].state == S_RUNNING)
			hrd_job_kill(&b->steps[i].job);
}

/* Whether a header first named by this build changed after it began: it may have read it half-written, and no event said it mattered then. */
static int new_dep_changed(hrd_engine *e, const build *b)
{
	/* File times come from a clock that may lag the real one by a tick. */
	const int64_t tick_us = 20000;
	for (size_t i = 0; i < b->deps.n; i++) {
		struct stat st;
		if (hrd_deps_has(&b->had, b->deps.path[i]) ||
		    fstatat(e->project.rootfd, b->deps.path[i], &st, 0) < 0)
			continue;
		if ((int64_t)st.st_ctim.tv_sec * 1000000 + st.st_ctim.tv_nsec / 1000 >= b->started_us - tick_us)
			return 1;
	}
	return 0;
}

/* The build ends: with its link (ok), or with the first step that failed (s). */
static void finish(hrd_engine *e, build *b, step *s, int ok)
{
	mod *m = b->m;
	int64_t duration = now_us(CLOCK_MONOTONIC) - b->t0_us;
	abandon(b);
	m->job = NULL;
	m->state = M_IDLE;
	struct stat st;
	ok = ok && stat(b->tmp, &st) == 0;
	char msg[1024];
	hrd_job_message(s->job.out, s->job.status, msg, sizeof msg);
	if (!hrd_project_unchanged(&e->project, &b->src, &b->had, b->stamps) || (ok && new_dep_changed(e, b))) {
		/* A source or header was written, replaced or removed while the
		 * compiler ran: what it read cannot be trusted. Build what is there
		 * now; if the module is gone, say why its build failed. */
		hrd_sources now;
		int kind = hrd_project_resolve(&e->project, m->name, &now);
		if (kind >= 0)
			hrd_sources_free(&now);
		if (kind == HRD_KIND_FILE || kind == HRD_KIND_DIR || ok) {
			hrd_debug("%s: its inputs changed during the build; building again", m->name);
			touch(e, m->name, m->cause);
			return;
		}
		failed(e, m, b, msg, b->out, duration, 0);
	} else if (ok) {
		/* The key named the headers known before; the build may have read others (checked above to be as they were): name those. */
		if (!hrd_deps_equal(&b->had, &b->deps) &&
		    hrd_project_key(&e->project, &b->src, &b->deps, b->keyargv, b->key, NULL) < 0)
			b->key[0] = '\0';
		published(e, m, b, duration);
	} else {
		failed(e, m, b, msg, b->out, duration, hrd_job_verdict(s->job.status, s->job.out));
	}
}

static void append_out(build *b, const char *text)
{
	size_t n = text ? strlen(text) : 0;
	char *grown = n ? realloc(b->out, b->outlen + n + 1) : NULL;
	if (!grown)
		return;
	memcpy(grown + b->outlen, text, n + 1);
	b->out = grown;
	b->outlen += n;
}

static void on_step(hrd_job *j)
{
	step *s = j->arg;
	build *b = s->b;
	hrd_engine *e = b->e;
	s->state = S_DONE;
	b->running--;
	e->running--;
	if (b->m) {
		int ok = WIFEXITED(j->status) && WEXITSTATUS(j->status) == 0;
		append_out(b, j->out);
		/* A compile that failed on the code still names what it read: keep it, so that a fix in a header is seen. */
		if (s->dep && hrd_deps_read(&b->deps, AT_FDCWD, s->dep, e->cfg.root, b->src.path, b->src.n) < 0 && ok)
			hrd_warn("%s: cannot read the dependency file %s: %s", b->m->name, s->dep, strerror(errno));
		if (!ok || !s->dep)
			finish(e, b, s, ok);
	}
	if (!b->m && !b->running)
		free_build(b);
	pump(e);
}

/* Start what b may start: its compiles while jobs allow, then its link once they are done. */
static void run_steps(hrd_engine *e, build *b)
{
	size_t n = b->src.n, compiled = 0;
	for (size_t i = 0; i < n; i++)
		compiled += b->steps[i].state == S_DONE;
	for (size_t i = 0; i <= n && b->m && e->running < jobs(e); i++) {
		step *s = &b->steps[i];
		if (s->state != S_WAITING || (i == n && compiled < n))
			continue;
		if (hrd_job_start(&s->job, e->cfg.loop, s->argv, e->project.rootfd) < 0) {
			char msg[512];
			mod *m = b->m;
			if (errno == ENOENT)
				snprintf(msg, sizeof msg, "cannot run the compiler '%s': not found; set CC to a C compiler", s->argv[0]);
			else
				snprintf(msg, sizeof msg, "cannot run the compiler '%s': %s", s->argv[0], strerror(errno));
			abandon(b);
			m->job = NULL;
			m->state = M_IDLE;
			failed(e, m, b, msg, b->out, 0, 0);
			break;
		}
		s->state = S_RUNNING;
		b->running++;
		e->running++;
	}
	if (!b->m && !b->running)
		free_build(b);
}

/* argv for one step: the compiler and its flags, then what is given (NULL-terminated), then, for the link, the libraries. */
static char **step_argv(const build *b, const char *const *mid, const hrd_sources *objs)
{
	char **argv = NULL;
	size_t argc = 0;
	int rc = 0;
	for (size_t i = 0; rc == 0 && b->base[i]; i++)
		rc = add_word(&argv, &argc, b->base[i]);
	for (size_t i = 0; rc == 0 && mid[i]; i++)
		rc = add_word(&argv, &argc, mid[i]);
	for (size_t i = 0; rc == 0 && objs && i < objs->n; i++)
		rc = add_word(&argv, &argc, objs->path[i]);
	for (size_t i = 0; rc == 0 && objs && b->ld[i]; i++)
		rc = add_word(&argv, &argc, b->ld[i]);
	if (rc < 0) {
		free_words(argv);
		return NULL;
	}
	return argv;
}

/* Lay out b's steps: src.n compiles into tmp/, and the link of their objects into b->tmp. 0 or -1. */
static int plan(build *b)
{
	size_t n = b->src.n;
	hrd_sources objs = {calloc(n + 1, sizeof(char *)), n};
	if (!(b->steps = calloc(n + 1, sizeof *b->steps)) || !objs.path)
		goto fail;
	for (size_t i = 0; i <= n; i++) {
		step *s = &b->steps[i];
		s->b = b;
		s->job.arg = s;
		s->job.on_done = on_step;
		if (i < n) {
			if (asprintf(&s->obj, "%s.%zu.o", b->tmp, i) < 0 || asprintf(&s->dep, "%s.%zu.d", b->tmp, i) < 0) {
				s->obj = s->dep = NULL;
				goto fail;
			}
			objs.path[i] = s->obj;
			const char *mid[] = {"-c", "-MMD", "-MF", s->dep, "-o", s->obj, b->src.path[i], NULL};
			s->argv = step_argv(b, mid, NULL);
		} else {
			const char *mid[] = {"-shared", "-o", b->tmp, NULL};
			s->argv = step_argv(b, mid, &objs);
		}
		if (!s->argv)
			goto fail;
		char *line = hrd_job_cmdline(s->argv), *all = NULL;
		if (!line || asprintf(&all, "%s%s%s", b->command ? b->command : "", b->command ? "\n" : "", line) < 0) {
			free(line);
			goto fail;
		}
		free(line);
		free(b->command);
		b->command = all;
	}
	free(objs.path); /* the paths are the steps' */
	return 0;
fail:
	free(objs.path);
	return -1;
}

struct words {
	char ***w;
	size_t n;
	const char *prefix; /* "-I", "-D", or NULL */
};

static int add_config_word(void *arg, const char *word)
{
	struct words *ws = arg;
	char *w = NULL;
	if (ws->prefix && asprintf(&w, "%s%s", ws->prefix, word) < 0)
		return -1;
	int rc = add_word(ws->w, &ws->n, w ? w : word);
	free(w);
	return rc;
}

/*
 * The module's commands, from hotreload.conf over the environment: the
 * compiler (cc, else $CC, else cc), -fPIC -g, $CFLAGS, cflags, include
 * (-I), define (-D); and for the link $LDFLAGS, ldflags, libs. 0 or -1.
 */
static int command_for(hrd_engine *e, const char *name, build *b)
{
	/* Empty lists, not NULL: a module may have no link flags. */
	if (!(b->base = calloc(1, sizeof *b->base)) || !(b->ld = calloc(1, sizeof *b->ld)))
		return -1;
	struct words base = {&b->base, 0, NULL}, ld = {&b->ld, 0, NULL};
	int rc = hrd_config_words(&e->conf, name, HRD_CC, add_config_word, &base);
	int from_conf = base.n > 0;
	for (size_t i = 0; rc == 0 && !from_conf && e->env_cc[i]; i++)
		rc = add_config_word(&base, e->env_cc[i]);
	if (rc == 0 && !base.n)
		rc = add_config_word(&base, "cc");
	rc = rc ? rc : add_config_word(&base, "-fPIC");
	rc = rc ? rc : add_config_word(&base, "-g");
	for (size_t i = 0; rc == 0 && e->env_cflags[i]; i++)
		rc = add_config_word(&base, e->env_cflags[i]);
	rc = rc ? rc : hrd_config_words(&e->conf, name, HRD_CFLAGS, add_config_word, &base);
	base.prefix = "-I";
	rc = rc ? rc : hrd_config_words(&e->conf, name, HRD_INCLUDE, add_config_word, &base);
	base.prefix = "-D";
	rc = rc ? rc : hrd_config_words(&e->conf, name, HRD_DEFINE, add_config_word, &base);
	for (size_t i = 0; rc == 0 && e->env_ldflags[i]; i++)
		rc = add_config_word(&ld, e->env_ldflags[i]);
	rc = rc ? rc : hrd_config_words(&e->conf, name, HRD_LDFLAGS, add_config_word, &ld);
	rc = rc ? rc : hrd_config_words(&e->conf, name, HRD_LIBS, add_config_word, &ld);
	struct words key = {&b->keyargv, 0, NULL};
	for (size_t i = 0; rc == 0 && b->base[i]; i++)
		rc = add_config_word(&key, b->base[i]);
	rc = rc ? rc : add_config_word(&key, "--");
	for (size_t i = 0; rc == 0 && b->ld[i]; i++)
		rc = add_config_word(&key, b->ld[i]);
	return rc ? -1 : 0;
}

/* What compile_commands.json says of m, from b's command: marked for writing when it changed. */
static void ccmd_note(hrd_engine *e, mod *m, const build *b)
{
	char *entries = hrd_ccmd_entries(e->cfg.root, b->base, b->src.path, b->src.n);
	if (!entries || (m->ccmd && strcmp(entries, m->ccmd) == 0)) {
		free(entries);
		return;
	}
	free(m->ccmd);
	m->ccmd = entries;
	e->ccmd_dirty = 1;
}

struct match {
	const char *key;
	uint64_t version;
	char *artifact;
};

/* Newest first: the newest published row of these inputs whose object is still there. */
static int take_match(const hrd_build *row, void *arg)
{
	struct match *k = arg;
	if (!published_row(row) || strcmp(row->source_hash, k->key) != 0 || !row->artifact[0] ||
	    access(row->artifact, R_OK) < 0)
		return 0;
	k->version = row->version;
	k->artifact = strdup(row->artifact);
	return 1;
}

/* A copy of from at to, with an inode of its own: glibc takes an object with a loaded one's device and inode for that one. */
static int copy_object(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0 || (out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755)) < 0)
		goto done;
	/* A reflink where the filesystem has them; else the kernel copies. */
	if (ioctl(out, FICLONE, in) == 0) {
		rc = 0;
		goto done;
	}
	off_t left = st.st_size;
	while (left > 0) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
		if (n <= 0)
			goto done;
		left -= n;
	}
	rc = 0;
done:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0)
		rc = -1;
	if (rc < 0 && out >= 0)
		unlink(to);
	return rc;
}

/*
 * Inputs built before (an undo, a stash, a checkout back): publish that
 * build's object again as the next version, a `reused` row, with no
 * compile. 1 when it did, 0 when there is nothing to reuse or it could
 * not (then it is compiled).
 */
static int reuse(hrd_engine *e, mod *m, build *b)
{
	struct match k = {b->key, 0, NULL};
	char *tmp = NULL, *path = NULL;
	int done = 0;
	if (!b->key[0] || hrd_store_history(e->cfg.store, m->name, 0, take_match, &k) < 0 || !k.artifact)
		goto out;
	int64_t t0 = now_us(CLOCK_MONOTONIC);
	uint64_t version = m->top + 1;
	if (asprintf(&tmp, "%s/tmp/%s.%d.%lu.so", e->cfg.state_dir, m->name, (int)getpid(), ++e->seq) < 0 ||
	    asprintf(&path, "%s/objects/%s.%llu.%.8s.so", e->cfg.state_dir, m->name, (unsigned long long)version,
	             hrd_store_id(e->cfg.store)) < 0) {
		tmp = path = NULL;
		goto out;
	}
	if (copy_object(k.artifact, tmp) < 0 || rename(tmp, path) < 0) {
		hrd_warn("%s: cannot reuse the object of v%llu (%s); compiling", m->name, (unsigned long long)k.version,
		         strerror(errno));
		unlink(tmp);
		goto out;
	}
	char note[96];
	snprintf(note, sizeof note, "the object of v%llu, for the same inputs: no compile", (unsigned long long)k.version);
	hrd_build row = {.module = m->name, .status = HRD_REUSED, .version = version, .started_us = now_us(CLOCK_REALTIME),
	                 .duration_us = now_us(CLOCK_MONOTONIC) - t0, .source_hash = b->key, .output = note,
	                 .artifact = path, .cause = b->cause};
	if (hrd_store_record(e->cfg.store, &row) < 0) {
		hrd_error("%s: %s", m->name, hrd_store_error(e->cfg.store));
		unlink(path);
		hrd_store_history(e->cfg.store, m->name, 0, take_top, &m->top);
		goto out;
	}
	arm_checkpoint(e);
	m->version = m->top = version;
	m->good_kind = HRP_KIND_REUSED;
	free(m->artifact);
	m->artifact = path;
	path = NULL;
	m->last = HRD_OK; /* the content is one that built: whatever failed since is undone */
	set_str(&m->message, NULL);
	snprintf(m->key, sizeof m->key, "%s", b->key);
	hrd_info("%s: v%llu is v%llu's object again (%s)", m->name, (unsigned long long)version,
	         (unsigned long long)k.version, b->cause);
	hrp_msg a = {.type = HRP_BUILD, .u.build = {m->name, version, HRP_KIND_REUSED, m->artifact}};
	if (e->server)
		hrd_server_announce(e->server, m->name, &a);
	done = 1;
out:
	free(k.artifact);
	free(tmp);
	free(path);
	return done;
}

static void start(hrd_engine *e, mod *m)
{
	build *b = calloc(1, sizeof *b);
	if (!b) {
		hrd_error("%s: out of memory; the next change builds it", m->name);
		return;
	}
	int kind = hrd_project_resolve(&e->project, m->name, &b->src);
	if (kind != HRD_KIND_FILE && kind != HRD_KIND_DIR) {
		/* Changed again while queued: look again. */
		free_build(b);
		touch(e, m->name, m->cause);
		return;
	}
	if (command_for(e, m->name, b) < 0 || hrd_deps_merge(&b->had, &m->deps) < 0 ||
	    !(b->stamps = calloc(b->src.n + b->had.n, sizeof *b->stamps)))
		goto nomem;
	ccmd_note(e, m, b);
	if (hrd_project_key(&e->project, &b->src, &b->had, b->keyargv, b->key, b->stamps) < 0) {
		if (errno == ENOENT)
			hrd_debug("%s: cannot read its sources yet: %s", m->name, strerror(errno));
		else
			unreadable(e, m, &b->src, errno, m->cause);
		goto out;
	}
	if (strcmp(b->key, m->key) == 0) {
		hrd_debug("%s: unchanged (%s)", m->name, m->cause);
		goto out;
	}
	if (hrd_project_busy(&e->project, &b->src)) {
		/* Found by a listing while still being written, or its close was just reported: see arm_recheck. */
		hrd_debug("%s: a source is still open for writing; looking again in %u ms", m->name, e->recheck_ms);
		arm_recheck(e, m);
		goto out;
	}
	snprintf(b->cause, sizeof b->cause, "%s", m->cause);
	if (!m->fresh && reuse(e, m, b))
		goto out;
	b->e = e;
	b->m = m;
	if (asprintf(&b->tmp, "%s/tmp/%s.%d.%lu.so", e->cfg.state_dir, m->name, (int)getpid(), ++e->seq) < 0) {
		b->tmp = NULL;
		goto nomem;
	}
	if (plan(b) < 0)
		goto nomem;
	b->started_us = now_us(CLOCK_REALTIME);
	b->t0_us = now_us(CLOCK_MONOTONIC);
	b->next = e->builds;
	b->pprev = &e->builds;
	if (e->builds)
		e->builds->pprev = &b->next;
	e->builds = b;
	hrd_debug("%s: building (%s)", m->name, b->command);
	m->job = b;
	m->state = M_BUILDING;
	run_steps(e, b);
	return;
nomem:
	hrd_error("%s: out of memory; the next change builds it", m->name);
out:
	b->m = NULL;
	free_build(b);
}

static void pump(hrd_engine *e)
{
	/* The builds under way go on first, then the queue's. */
	for (build *b = e->builds, *next; b && e->running < jobs(e); b = next) {
		next = b->next;
		if (b->m)
			run_steps(e, b);
	}
	while (e->running < jobs(e) && e->qhead) {
		mod *m = e->qhead;
		e->qhead = m->qnext;
		if (!e->qhead)
			e->qtail = &e->qhead;
		m->qnext = NULL;
		m->state = M_IDLE;
		start(e, m);
	}
}

/* ---- events ---- */

struct scan_ctx {
	hrd_engine *e;
	const char *cause;
};

static void scan_named(void *arg, const char *name)
{
	struct scan_ctx *c = arg;
	mod *m = find(c->e, name);
	if (m && m->seen == c->e->scan)
		return; /* NAME.c and NAME/ both lead here */
	touch(c->e, name, c->cause);
	if ((m = find(c->e, name)))
		m->seen = c->e->scan;
}

/* Follow the root's path to a new folder if the old one was replaced or moved away. */
static void follow_root(hrd_engine *e)
{
	struct stat now, had;
	if (stat(e->cfg.root, &now) < 0 || fstat(e->project.rootfd, &had) < 0 ||
	    (now.st_dev == had.st_dev && now.st_ino == had.st_ino))
		return;
	int fd = open(e->cfg.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	hrd_warn("the root %s is another folder now; following it", e->cfg.root);
	close(e->project.rootfd);
	e->project.rootfd = fd;
}

/* compile_commands.json, when a module's commands or sources changed: where hotreload.conf says, by default in the root. */
static void write_ccmds(hrd_engine *e)
{
	const char *rel = e->conf.compile_commands ? e->conf.compile_commands : "compile_commands.json";
	if (!e->ccmd_dirty || !*rel)
		return;
	e->ccmd_dirty = 0;
	char **entries = calloc(e->nmods + 1, sizeof *entries), *path = NULL;
	for (size_t i = 0; entries && i < e->nmods; i++)
		entries[i] = e->mods[i]->kind == HRD_KIND_FILE || e->mods[i]->kind == HRD_KIND_DIR ? e->mods[i]->ccmd : NULL;
	if (!entries || asprintf(&path, "%s/%s", e->cfg.root, rel) < 0 || hrd_ccmd_write(path, entries, e->nmods) < 0)
		hrd_warn("cannot write %s/%s: %s", e->cfg.root, rel, strerror(errno));
	free(path);
	free(entries);
}

void hrd_engine_scan(hrd_engine *e, const char *cause)
{
	struct scan_ctx c = {e, cause};
	follow_root(e);
	e->scan++;
	if (hrd_project_scan(&e->project, scan_named, &c) < 0)
		hrd_error("cannot read the root %s: %s", e->cfg.root, strerror(errno));
	/* Modules that vanished while nobody looked. */
	for (size_t i = 0; i < e->nmods; i++)
		if (e->mods[i]->seen != e->scan)
			touch(e, e->mods[i]->name, cause);
	write_ccmds(e);
}

void hrd_engine_reload_config(hrd_engine *e, const char *cause)
{
	hrd_config conf;
	char err[sizeof e->conf_error];
	if (hrd_config_load(e->project.rootfd, &conf, err, sizeof err) < 0) {
		if (strcmp(err, e->conf_error) != 0)
			hrd_warn("%s; the settings before it stay until it is fixed", err);
		snprintf(e->conf_error, sizeof e->conf_error, "%s", err);
		return;
	}
	hrd_config_free(&e->conf);
	e->conf = conf;
	e->project.exclude = e->conf.exclude;
	e->conf_error[0] = '\0';
	e->ccmd_dirty = 1; /* its place may have changed */
	hrd_info("%s: read again (%s)", HRD_CONFIG_FILE, cause);
	/* Every module with other flags has another key now: those build, the others do not. */
	hrd_engine_scan(e, cause);
}

void hrd_engine_retry_failed(hrd_engine *e)
{
	for (size_t i = 0; i < e->nmods; i++)
		if (e->mods[i]->last == HRD_FAILED)
			e->mods[i]->key[0] = '\0';
}

/* One batch of watcher events: each module is looked at once, after the batch. */
struct batch {
	hrd_engine *e;
	int rescan, config; /* look at everything; read hotreload.conf again */
	char **names, **causes;
	size_t n, cap;
};

/* Add module name to the batch, path being what changed. */
static void batch_add(struct batch *b, const char *name, const char *path)
{
	char *cause;
	if (asprintf(&cause, "%s changed", path) < 0)
		cause = NULL;
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->names[i], name) == 0) {
			free(b->causes[i]); /* the last event names the cause */
			b->causes[i] = cause;
			return;
		}
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 16;
		char **n = realloc(b->names, cap * sizeof *n), **c = n ? realloc(b->causes, cap * sizeof *c) : NULL;
		if (n)
			b->names = n;
		if (c)
			b->causes = c;
		if (!n || !c) {
			b->rescan = 1; /* cannot remember it: look at everything instead */
			free(cause);
			return;
		}
		b->cap = cap;
	}
	if (!(b->names[b->n] = strdup(name))) {
		b->rescan = 1;
		free(cause);
		return;
	}
	b->causes[b->n++] = cause;
}

static int header_like(const char *path)
{
	static const char *const ext[] = {".h", ".hh", ".hpp", ".hxx", ".inc", ".inl", ".def"};
	const char *dot = strrchr(path, '.');
	for (size_t i = 0; dot && !strchr(dot, '/') && i < sizeof ext / sizeof *ext; i++)
		if (strcmp(dot, ext[i]) == 0)
			return 1;
	return 0;
}

/*
 * A file that is no module's source changed: the modules that read it are
 * built again. One that no module has read yet may be a header appearing on
 * an include path before one of the same name (it shadows it), or the one a
 * failed build was missing: those modules are built again whatever their key.
 */
static void dependents(struct batch *b, const char *path)
{
	hrd_engine *e = b->e;
	int known = 0;
	for (size_t i = 0; i < e->nmods; i++)
		if (hrd_deps_has(&e->mods[i]->deps, path)) {
			known = 1;
			batch_add(b, e->mods[i]->name, path);
		}
	if (known || !header_like(path))
		return;
	for (size_t i = 0; i < e->nmods; i++) {
		mod *m = e->mods[i];
		if (hrd_deps_shadowed(&m->deps, path) || m->last == HRD_FAILED) {
			m->key[0] = '\0';
			m->fresh = 1;
			batch_add(b, m->name, path);
		}
	}
}

static void on_change(void *arg, int kind, const char *path)
{
	struct batch *b = arg;
	char name[256];
	if (kind == HRD_WATCH_RESCAN) {
		b->rescan = 1;
		return;
	}
	if (strcmp(path, HRD_CONFIG_FILE) == 0) {
		b->config = 1;
		return;
	}
	if (hrd_project_module_of(&b->e->project, path, name, sizeof name))
		batch_add(b, name, path);
	dependents(b, path); /* a source may be included too */
}

static void on_watch(hrd_io *io, uint32_t events)
{
	hrd_engine *e = (hrd_engine *)((char *)io - offsetof(hrd_engine, watchio));
	struct batch b = {.e = e};
	(void)events;
	/* A burst (a save in chunks, a checkout) arrives as one batch: each
	 * module it touches is looked at, and built, once. */
	hrd_watch_take(e->cfg.watch, on_change, &b);
	if (b.config) {
		hrd_engine_reload_config(e, HRD_CONFIG_FILE " changed");
		b.rescan = 0; /* it has looked at everything */
	} else if (b.rescan) {
		hrd_engine_scan(e, "rescan");
	}
	for (size_t i = 0; i < b.n; i++) {
		if (!b.rescan)
			touch(e, b.names[i], b.causes[i] ? b.causes[i] : "changed");
		free(b.names[i]);
		free(b.causes[i]);
	}
	free(b.names);
	free(b.causes);
	write_ccmds(e);
}

/* ---- the server's questions ---- */

static int latest(void *arg, const char *module, hrp_msg out[2])
{
	mod *md = find(arg, module);
	int n = 0;
	if (!md || md->invalid)
		return 0;
	if (md->version)
		out[n++] = (hrp_msg){.type = HRP_BUILD, .u.build = {md->name, md->version, md->good_kind, md->artifact}};
	/* A game that starts while its module is broken hears why at once. */
	if (md->last == HRD_FAILED)
		out[n++] = (hrp_msg){.type = HRP_FAILED, .u.failed = {md->name, md->message ? md->message : ""}};
	return n;
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(mod *const *)a)->name, (*(mod *const *)b)->name);
}

static void status(void *arg, hrp_msg *m)
{
	hrd_engine *e = arg;
	free(e->status);
	e->status = calloc(e->nmods + 1, sizeof *e->status);
	if (e->nmods)
		qsort(e->mods, e->nmods, sizeof *e->mods, by_name);
	uint32_t n = 0;
	for (size_t i = 0; e->status && i < e->nmods; i++) {
		mod *md = e->mods[i];
		hrp_modstat *s = &e->status[n];
		if (md->kind == HRD_KIND_NONE && !md->version)
			continue; /* gone, and never built */
		s->module = md->name;
		s->version = md->invalid ? 0 : md->version;
		s->message = md->message ? md->message : "";
		if (md->invalid) {
			s->status = "skipped";
			s->message = "not a module name: use " HRP_NAME_RULE;
		} else if (md->kind == HRD_KIND_CONFLICT) {
			s->status = "conflict";
			s->message = md->note ? md->note : "";
		} else if (md->kind == HRD_KIND_NONE) {
			s->status = "removed";
		} else if (md->state == M_BUILDING) {
			s->status = "building";
		} else if (md->state == M_QUEUED) {
			s->status = "queued";
		} else {
			s->status = md->last == HRD_FAILED ? "failed" : md->last == HRD_OK || md->version ? "ok" : "none";
		}
		n++;
	}
	m->u.status.root = e->cfg.root;
	m->u.status.state_dir = e->cfg.state_dir;
	m->u.status.backend = e->cfg.watch->backend;
	m->u.status.reason = e->cfg.watch->reason;
	int unwatched = e->cfg.watch->unwatched;
	if (unwatched || e->conf_error[0]) {
		char more[sizeof e->conf_error + 64] = "";
		if (e->conf_error[0])
			snprintf(more, sizeof more, "; %s (the settings before it stay)", e->conf_error);
		if (unwatched)
			snprintf(e->reason, sizeof e->reason, "%s; %d folder%s not watched: saves there are missed (see the log)%s",
			         e->cfg.watch->reason, unwatched, unwatched == 1 ? " is" : "s are", more);
		else
			snprintf(e->reason, sizeof e->reason, "%s%s", e->cfg.watch->reason, more);
		m->u.status.reason = e->reason;
	}
	m->u.status.nmods = n;
	m->u.status.mods = e->status;
}

struct older {
	uint64_t below;
	hrp_msg *out;
	char *path;
};

/* Newest first: the newest published row below a version whose object is still there. */
static int take_older(const hrd_build *b, void *arg)
{
	struct older *o = arg;
	if (!published_row(b) || b->version >= o->below || !b->artifact || access(b->artifact, R_OK) < 0)
		return 0;
	if (!(o->path = strdup(b->artifact)))
		return 1;
	o->out->u.build.version = b->version;
	o->out->u.build.kind = kind_of(b);
	o->out->u.build.path = o->path;
	return 1;
}

static int refused(void *arg, const char *module, uint64_t version, const char *reason, pid_t pid, hrp_msg *answer)
{
	hrd_engine *e = arg;
	char cause[64];
	snprintf(cause, sizeof cause, "client %d", (int)pid);
	hrd_build row = {.module = module, .status = HRD_REFUSED, .version = version,
	                 .started_us = now_us(CLOCK_REALTIME), .message = reason, .cause = cause};
	hrd_warn("%s: v%llu refused by client %d: %s", module, (unsigned long long)version, (int)pid, reason);
	if (hrd_store_record(e->cfg.store, &row) < 0)
		hrd_error("%s", hrd_store_error(e->cfg.store));
	else
		arm_checkpoint(e);
	/* A build that one process cannot load is passed over there for the newest older one. */
	mod *md = find(e, module);
	if (!md || md->invalid)
		return 0;
	free(e->older);
	struct older o = {version, answer, NULL};
	*answer = (hrp_msg){.type = HRP_BUILD, .u.build = {.module = md->name}};
	hrd_store_history(e->cfg.store, module, 0, take_older, &o);
	e->older = o.path;
	return o.path != NULL;
}

static void loaded(void *arg, const char *module, uint64_t version, uint64_t at_us, pid_t pid)
{
	(void)arg;
	(void)at_us;
	hrd_info("%s: v%llu live in client %d", module, (unsigned long long)version, (int)pid);
}

const hrd_server_ops hrd_engine_server_ops = {latest, status, refused, loaded};

void hrd_engine_set_server(hrd_engine *e, hrd_server *s)
{
	e->server = s;
}

/* ---- life ---- */

/* Make tmp/ and objects/, and empty tmp/: what is there was left by a daemon that died mid-build. */
static int prepare_dirs(const char *state_dir, int shared, char *err, size_t errsz)
{
	const char *sub[] = {"tmp", "objects"};
	for (int i = 0; i < 2; i++) {
		char path[4200];
		mode_t mode = i == 1 && shared ? 0711 : 0700;
		snprintf(path, sizeof path, "%s/%s", state_dir, sub[i]);
		if ((mkdir(path, mode) < 0 && errno != EEXIST) || chmod(path, mode) < 0) {
			snprintf(err, errsz, "cannot create %s: %s", path, strerror(errno));
			return -1;
		}
	}
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s/tmp", state_dir);
	DIR *d = opendir(tmp);
	struct dirent *ent;
	while (d && (ent = readdir(d)))
		if (ent->d_name[0] != '.')
			unlinkat(dirfd(d), ent->d_name, 0);
	if (d)
		closedir(d);
	return 0;
}

int hrd_engine_open(hrd_engine **out, const hrd_engine_config *cfg, char *err, size_t errsz)
{
	hrd_engine *e = calloc(1, sizeof *e);
	if (!e) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	e->cfg = *cfg;
	e->qtail = &e->qhead;
	e->timer.fd = e->watchio.fd = e->recheck.fd = e->project.rootfd = -1;
	/* A state dir inside the root is not part of the project. */
	size_t rl = strlen(cfg->root);
	if (strncmp(cfg->state_dir, cfg->root, rl) == 0 && cfg->state_dir[rl] == '/')
		e->project.skip = cfg->state_dir + rl + 1;
	e->project.rootfd = open(cfg->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (e->project.rootfd < 0) {
		snprintf(err, errsz, "cannot open the root %s: %s", cfg->root, strerror(errno));
		goto fail;
	}
	/* INTERFACE.md: $CC (default cc) with -shared -fPIC; -g for debuggers;
	 * $CFLAGS and $LDFLAGS as make would add them. Each source is compiled
	 * on its own (-c, so that each gets its dependency file, and ccache or
	 * distcc can take it), and the link adds -shared. */
	size_t n = 0;
	if (!(e->env_cc = calloc(1, sizeof(char *))) || !(e->env_cflags = calloc(1, sizeof(char *))) ||
	    !(e->env_ldflags = calloc(1, sizeof(char *))) || split_env("CC", "", &e->env_cc, &n) < 0 ||
	    split_env("CFLAGS", "", &e->env_cflags, &(size_t){0}) < 0 ||
	    split_env("LDFLAGS", "", &e->env_ldflags, &(size_t){0}) < 0)
		goto nomem;
	/* A bad hotreload.conf stops a daemon that starts; one that runs keeps its last good settings. */
	if (hrd_config_load(e->project.rootfd, &e->conf, err, errsz) < 0)
		goto fail;
	e->project.exclude = e->conf.exclude;
	if (prepare_dirs(cfg->state_dir, cfg->shared, err, errsz) < 0)
		goto fail;
	e->timer.fn = on_timer;
	e->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	e->recheck.fn = on_recheck;
	e->recheck.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	e->recheck_ms = RECHECK_MIN_MS;
	e->watchio.fn = on_watch;
	e->watchio.fd = hrd_watch_fd(cfg->watch);
	if (e->timer.fd < 0 || hrd_loop_add(cfg->loop, &e->timer, EPOLLIN) < 0 || e->recheck.fd < 0 ||
	    hrd_loop_add(cfg->loop, &e->recheck, EPOLLIN) < 0 ||
	    hrd_loop_add(cfg->loop, &e->watchio, EPOLLIN) < 0) {
		snprintf(err, errsz, "cannot set up the event loop: %s", strerror(errno));
		goto fail;
	}
	*out = e;
	return 0;
nomem:
	snprintf(err, errsz, "out of memory");
fail:
	hrd_engine_close(e);
	return -1;
}

void hrd_engine_close(hrd_engine *e)
{
	if (!e)
		return;
	while (e->builds) {
		build *b = e->builds;
		for (size_t i = 0; i <= b->src.n; i++)
			if (b->steps[i].state == S_RUNNING)
				hrd_job_reap(&b->steps[i].job);
		free_build(b);
	}
	for (size_t i = 0; i < e->nmods; i++) {
		free(e->mods[i]->name);
		free(e->mods[i]->artifact);
		free(e->mods[i]->message);
		free(e->mods[i]->note);
		hrd_deps_free(&e->mods[i]->deps);
		free(e->mods[i]->ccmd);
		free(e->mods[i]);
	}
	free(e->mods);
	if (e->timer.fd >= 0) {
		hrd_loop_del(e->cfg.loop, &e->timer);
		close(e->timer.fd);
	}
	if (e->recheck.fd >= 0) {
		hrd_loop_del(e->cfg.loop, &e->recheck);
		close(e->recheck.fd);
	}
	if (e->watchio.fd >= 0)
		hrd_loop_del(e->cfg.loop, &e->watchio);
	if (e->project.rootfd >= 0)
		close(e->project.rootfd);
	free_words(e->env_cc);
	free_words(e->env_cflags);
	free_words(e->env_ldflags);
	hrd_config_free(&e->conf);
	free(e->status);
	free(e->older);
	free(e);
}
