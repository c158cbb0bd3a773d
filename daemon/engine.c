/* engine.c: the modules, their queue and the watcher's events: each settled change to a build, newest content wins. */
#include "words.h"
#include "engine_impl.h"
#include "log.h"
#include "statedir.h"

#include <dirent.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#define IDLE_CHECKPOINT_S 2 /* the WAL is checkpointed this long after the last record, off the save path (by size: store.c) */

int64_t hrd_engine_now_us(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Compilers at once: --jobs, else hotreload.conf's jobs, else the cores. */
int hrd_engine_jobs(const hrd_engine *e)
{
	return e->cfg.jobs_given || !e->conf.jobs ? e->cfg.jobs : e->conf.jobs;
}

void hrd_engine_set_str(char **dst, const char *src)
{
	char *copy = src ? strdup(src) : NULL;
	if (src && !copy)
		return; /* keep the old text rather than lose the module */
	free(*dst);
	*dst = copy;
}

/* ---- modules ---- */

hrd_mod *hrd_engine_find(hrd_engine *e, const char *name)
{
	for (size_t i = 0; i < e->nmods; i++)
		if (strcmp(e->mods[i]->name, name) == 0)
			return e->mods[i];
	return NULL;
}

struct latest {
	hrd_engine *e;
	hrd_mod *m;
	int good, compile;
	uint64_t want;       /* take_pinned: the pinned version */
	char good_hash[65];  /* the served row's inputs: its origin is the compile of them */
};

/* A row that published an object to clients. */
int hrd_engine_published_row(const hrd_build *b)
{
	return b->status == HRD_OK || b->status == HRD_REUSED || b->status == HRD_ROLLBACK;
}

/* What a BUILD calls a published row. */
uint32_t hrd_engine_kind_of(const hrd_build *b)
{
	return b->status == HRD_OK ? HRP_KIND_OK : b->status == HRD_REUSED ? HRP_KIND_REUSED : HRP_KIND_ROLLBACK;
}

/*
 * Where the object that a history row names is: the file of that name in our
 * own objects/, whatever folder the row says. A history copied with its
 * project names the original's objects/, and one that another hand edited
 * may name any file: a start would write the history's copy of the object
 * there, and a game would load it. Only a name as the daemon gives them,
 * MODULE.VERSION[.ID].so, is taken. A new string, or NULL (said).
 */
char *hrd_engine_object_path(hrd_engine *e, const char *module, uint64_t version, const char *artifact)
{
	char head[HRP_NAME_MAX + 32], *path = NULL, *stem = hrd_engine_stem(module);
	const char *base = strrchr(artifact, '/'), *ext = module[0] == '/' ? ".o" : ".so"; /* a unit's is an ET_REL object */
	base = base ? base + 1 : artifact;
	size_t n = strlen(base), h = (size_t)snprintf(head, sizeof head, "%s.%llu.", stem ? stem : "", (unsigned long long)version);
	size_t el = strlen(ext);
	free(stem);
	if (n < h + 2 || n > 255 || h >= sizeof head || strncmp(base, head, h) != 0 || strcmp(base + n - el, ext) != 0 ||
	    strspn(base, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.") != n) {
		hrd_warn("%s: the history names %s as the object of v%llu, not a file of its own objects/: not used", module,
		         artifact, (unsigned long long)version);
		return NULL;
	}
	if (asprintf(&path, "%s/objects/%s", e->cfg.state_dir, base) < 0) {
		hrd_error("%s: out of memory", module);
		return NULL;
	}
	return path;
}

/* m's artifact, for a row's: NULL when the row names none, or one that is refused. */
static void take_artifact(hrd_engine *e, hrd_mod *m, const hrd_build *b)
{
	free(m->artifact);
	m->artifact = b->artifact && *b->artifact ? hrd_engine_object_path(e, m->name, b->version, b->artifact) : NULL;
}

/* Newest first: the newest good row, and the newest compile (its inputs' key). */
static int take_latest(const hrd_build *b, void *arg)
{
	struct latest *l = arg;
	hrd_mod *m = l->m;
	if (hrd_engine_published_row(b) && !l->good) {
		l->good = 1;
		m->version = m->top = b->version;
		m->good_kind = hrd_engine_kind_of(b);
		take_artifact(l->e, m, b);
		snprintf(l->good_hash, sizeof l->good_hash, "%s", b->source_hash ? b->source_hash : "");
	}
	if ((b->status == HRD_OK || b->status == HRD_REUSED || b->status == HRD_FAILED) && !l->compile) {
		l->compile = 1;
		/* A restart tries a failed module again: what failed it may be fixed. */
		snprintf(m->key, sizeof m->key, "%s", b->status != HRD_FAILED ? b->source_hash : "");
		m->last = b->status == HRD_FAILED ? HRD_FAILED : HRD_OK;
		hrd_engine_set_str(&m->message, b->message);
	}
	return l->good && l->compile;
}

/* One of the newest module's dependencies, as the history has them. */
static int take_dep(void *arg, const char *path)
{
	hrd_engine *e = arg;
	return hrd_deps_add(&e->mods[e->nmods - 1]->deps, e->cfg.root, path);
}

/*
 * The object of m's served version, gone from objects/, written back from the
 * history's copy: 1, or 0. Through the folder's descriptor, as a new file
 * renamed into place: never through a link, never outside objects/.
 */
static int restore(hrd_engine *e, hrd_mod *m)
{
	void *data = NULL;
	size_t len = 0;
	char tmp[64];
	const char *name = strrchr(m->artifact, '/') + 1; /* hrd_engine_object_path made it */
	int done = 0, fd = -1;
	snprintf(tmp, sizeof tmp, ".restore.%d.%lu", (int)getpid(), ++e->seq);
	if (hrd_store_object(e->cfg.store, m->name, m->version, &data, &len) <= 0)
		goto out;
	fd = openat(e->objects_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755);
	size_t off = 0;
	ssize_t k = 1;
	while (fd >= 0 && off < len && (k = write(fd, (char *)data + off, len - off)) > 0)
		off += (size_t)k;
	if (fd >= 0 && close(fd) == 0 && off == len && renameat(e->objects_fd, tmp, e->objects_fd, name) == 0) {
		hrd_info("%s: the object of v%llu was gone; restored from the history", m->name, (unsigned long long)m->version);
		done = 1;
	} else if (fd >= 0) {
		unlinkat(e->objects_fd, tmp, 0);
	}
out:
	free(data);
	return done;
}

/* Newest first: the pinned version's row, whether or not its object is in objects/ now. */
static int take_pinned(const hrd_build *b, void *arg)
{
	struct latest *l = arg;
	if (!hrd_engine_published_row(b) || b->version != l->want)
		return 0;
	l->m->version = b->version;
	l->m->good_kind = hrd_engine_kind_of(b);
	take_artifact(l->e, l->m, b);
	snprintf(l->good_hash, sizeof l->good_hash, "%s", b->source_hash ? b->source_hash : "");
	return l->good = 1;
}

/* A pin made before a restart holds: the pinned version is served, not the newest (its object restored if need be). */
static void take_pin(hrd_engine *e, hrd_mod *m, struct latest *l)
{
	struct latest p = {.e = e, .m = m};
	int rc = hrd_store_pin(e->cfg.store, m->name, &p.want);
	if (rc > 0 && hrd_store_history(e->cfg.store, m->name, 0, take_pinned, &p) < 0)
		rc = -1;
	if (rc < 0) {
		hrd_error("%s", hrd_store_error(e->cfg.store));
		m->pin = p.want; /* what it holds back is still held back */
		return;
	}
	if (rc == 0)
		return;
	if (!p.good) {
		hrd_warn("%s: pinned at v%llu, which the history does not hold: unpinned", m->name, (unsigned long long)p.want);
		if (hrd_store_set_pin(e->cfg.store, m->name, 0) < 0)
			hrd_error("%s", hrd_store_error(e->cfg.store));
		return;
	}
	m->pin = m->version;
	memcpy(l->good_hash, p.good_hash, sizeof l->good_hash);
}

/* Newest first: the compile of the served version's inputs, which a reuse or a rollback copied. */
static int take_origin(const hrd_build *b, void *arg)
{
	struct latest *l = arg;
	if (b->status != HRD_OK || !b->source_hash || strcmp(b->source_hash, l->good_hash) != 0 || b->version > l->m->version)
		return 0;
	l->m->origin = b->version;
	return 1;
}

static hrd_mod *add_mod(hrd_engine *e, const char *name)
{
	hrd_mod **grown = realloc(e->mods, (e->nmods + 1) * sizeof *grown);
	hrd_mod *m = calloc(1, sizeof *m);
	if (grown)
		e->mods = grown;
	if (!grown || !m || !(m->name = strdup(name))) {
		free(m);
		hrd_error("%s: out of memory", name);
		return NULL;
	}
	e->mods[e->nmods++] = m;
	m->unit = name[0] == '/';
	if (!hrp_valid_name(name) && !m->unit)
		return m;
	/* What the history knows: the version to serve, the inputs last built. */
	struct latest l = {.e = e, .m = m};
	if (hrd_store_history(e->cfg.store, name, 0, take_latest, &l) < 0 ||
	    hrd_store_deps(e->cfg.store, name, take_dep, e) < 0)
		hrd_error("%s", hrd_store_error(e->cfg.store));
	take_pin(e, m, &l);
	/* what a second rollback goes back from, as before the restart */
	if (m->version && m->good_kind != HRP_KIND_OK && l.good_hash[0] &&
	    hrd_store_history(e->cfg.store, name, 0, take_origin, &l) < 0)
		hrd_error("%s", hrd_store_error(e->cfg.store));
	if (m->version && (!m->artifact || (access(m->artifact, R_OK) < 0 && !restore(e, m)))) {
		if (m->artifact)
			hrd_warn("%s: the object of v%llu (%s) is gone, and the history keeps it no longer; building it again",
			         name, (unsigned long long)m->version, m->artifact);
		m->version = 0;
		hrd_engine_set_str(&m->artifact, NULL);
		m->key[0] = '\0';
	}
	return m;
}

/* ---- the queue ---- */

static void dequeue(hrd_engine *e, hrd_mod *m)
{
	if (m->state != HRD_M_QUEUED)
		return;
	TAILQ_REMOVE(&e->queue, m, qlink);
	m->state = HRD_M_IDLE;
}

static void cancel(hrd_engine *e, hrd_mod *m)
{
	dequeue(e, m);
	if (m->job) {
		hrd_debug("%s: build cancelled by a newer change", m->name);
		hrd_engine_free_build(m->job); /* its run goes once its compilers are reaped */
		m->job = NULL;
	}
	m->state = HRD_M_IDLE;
}

/* Look at name on disk again after a change, and queue it to be built if it still is a module. */
void hrd_engine_touch(hrd_engine *e, const char *name, const char *cause)
{
	char why[160];
	snprintf(why, sizeof why, "%s", cause); /* cause may be m->cause itself */
	hrd_mod *m = hrd_engine_find(e, name);
	hrd_sources src;
	int unit = name[0] == '/';
	if (unit && !m && hrd_cdb_find(&e->cdb, name) && !(m = add_mod(e, name)))
		return;
	src = (hrd_sources){0};
	int kind = !unit ? hrd_project_resolve(&e->project, name, &src) : m ? hrd_engine_unit_resolve(e, m, &src)
	                                                                    : HRD_KIND_NONE;
	/* A source of the program's compile database is patched, never also built as a module. */
	for (size_t i = 0; !unit && (kind == HRD_KIND_FILE || kind == HRD_KIND_DIR) && i < src.n; i++)
		if (hrd_engine_is_unit_source(e, src.path[i])) {
			if (!m || m->kind != HRD_KIND_NONE)
				hrd_debug("%s: not a module: %s is a unit of the compile database (--patch)", name, src.path[i]);
			hrd_sources_free(&src);
			kind = HRD_KIND_NONE;
			break;
		}
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
	if (!hrp_valid_name(name) && !unit) {
		if (!m->invalid && kind != HRD_KIND_NONE)
			hrd_warn("skipped '%s': a module name is " HRP_NAME_RULE, name);
		m->invalid = 1;
		hrd_sources_free(&src);
		return;
	}
	if (kind == HRD_KIND_NONE || kind == HRD_KIND_CONFLICT || kind == HRD_KIND_OUTSIDE) {
		/* A conflict ends the build in flight. A removal does not: the
		 * compiler either read the source already or fails saying it is gone,
		 * and a save by rename (vim) brings it back as a newer change. */
		if (kind != HRD_KIND_NONE)
			cancel(e, m);
		else
			dequeue(e, m);
		if (kind == HRD_KIND_OUTSIDE) {
			char note[600];
			snprintf(note, sizeof note, "a link to a place outside the root: not followed (start hotreloadd "
			         "with --follow-links to build it)");
			hrd_engine_set_str(&m->note, note);
			if (was != kind)
				hrd_warn("%s: %s", name, note);
		}
		if (kind == HRD_KIND_CONFLICT) {
			char note[600];
			snprintf(note, sizeof note, "both %s.c and the folder %s/ exist: rename one; neither is built", name, name);
			hrd_engine_set_str(&m->note, note);
		}
		if (kind == HRD_KIND_CONFLICT && was != kind)
			hrd_warn("%s: both %s.c and the folder %s/ exist; neither is built until one goes", name, name, name);
		else if (kind == HRD_KIND_NONE && was != kind)
			hrd_info("%s: removed", name);
		return;
	}
	hrd_engine_set_str(&m->note, NULL);
	/* Any settled change ends the build in flight, even one that leaves the
	 * same bytes: the compiler may have read the file in the middle of it.
	 * Whether the content changed at all is for hrd_engine_start_build() to
	 * tell, when it reads the sources it builds. */
	if (m->job)
		cancel(e, m);
	hrd_sources_free(&src);
	snprintf(m->cause, sizeof m->cause, "%s", why);
	if (m->state == HRD_M_QUEUED)
		return; /* it reads the final content when it starts */
	if (TAILQ_EMPTY(&e->queue) && !hrd_stage_running(e->stage)) { /* idle until now: a new wave of builds */
		e->wave++;
		e->wave_total = e->wave_done = 0;
	}
	if (m->in_wave != e->wave) {
		m->in_wave = e->wave;
		e->wave_total++;
	}
	assert(m->state == HRD_M_IDLE && !m->job);
	m->state = HRD_M_QUEUED;
	TAILQ_INSERT_TAIL(&e->queue, m, qlink);
	hrd_engine_pump(e);
}

const char *hrd_engine_progress(hrd_engine *e, hrd_mod *m, char buf[32])
{
	if (m->in_wave == e->wave && m->done_wave != e->wave) {
		m->done_wave = e->wave;
		e->wave_done++;
	}
	/* A checkout or a header that many include: say how far it has got. */
	if (e->wave_total < 4 || m->in_wave != e->wave)
		return "";
	snprintf(buf, 32, "[%u/%u] ", e->wave_done, e->wave_total);
	return buf;
}

/* Drive the stage: take what it finished, let the builds under way go on, then start the queue's while jobs allow. */
void hrd_engine_pump(hrd_engine *e)
{
	for (;;) {
		hrd_run *r = hrd_stage_take(e->stage);
		if (r) {
			hrd_engine_ended(e, r); /* it may queue its module again */
			continue;
		}
		hrd_stage_pump(e->stage, hrd_engine_jobs(e));
		if ((r = hrd_stage_take(e->stage))) { /* a compiler that could not start */
			hrd_engine_ended(e, r);
			continue;
		}
		if (hrd_stage_running(e->stage) >= hrd_engine_jobs(e) || TAILQ_EMPTY(&e->queue)) {
			hrd_engine_flush_held(e);
			return;
		}
		hrd_mod *m = TAILQ_FIRST(&e->queue);
		assert(m->state == HRD_M_QUEUED);
		TAILQ_REMOVE(&e->queue, m, qlink);
		m->state = HRD_M_IDLE;
		hrd_engine_start_build(e, m);
	}
}

static void on_stage(void *arg)
{
	hrd_engine_pump(arg);
}

/* ---- timers ---- */

enum { RECHECK_MIN_MS = 10, RECHECK_MAX_MS = 1000 };

/*
 * Look again soon at a module found open for writing. Its close may well have
 * been reported already: the kernel queues the close event before it lets go
 * of the file's write access, so the event can be read while the file still
 * counts as open for writing. Waiting for another close would miss the save.
 */
void hrd_engine_arm_recheck(hrd_engine *e, hrd_mod *m)
{
	m->recheck = 1;
	if (!hrd_timer_active(&e->recheck))
		hrd_timer_start(e->cfg.loop, &e->recheck, e->recheck_ms, 0);
}

void hrd_engine_arm_checkpoint(hrd_engine *e)
{
	hrd_timer_start(e->cfg.loop, &e->checkpoint, IDLE_CHECKPOINT_S * 1000, 0);
}

static void on_recheck(hrd_timer *t)
{
	hrd_engine *e = hrd_container_of(t, hrd_engine, recheck);
	unsigned was = e->recheck_ms;
	/* Longer while a writer stays, so that one holding a file open for minutes costs next to nothing. */
	e->recheck_ms = was * 2 > RECHECK_MAX_MS ? RECHECK_MAX_MS : was * 2;
	for (size_t i = 0; i < e->nmods; i++) {
		hrd_mod *m = e->mods[i];
		if (!m->recheck)
			continue;
		m->recheck = 0; /* set again by hrd_engine_start_build() if the writer is still there */
		if (!m->job && m->state != HRD_M_QUEUED)
			hrd_engine_touch(e, m->name, m->cause); /* one building or queued reads its sources anyway */
	}
	if (!hrd_timer_active(&e->recheck))
		e->recheck_ms = RECHECK_MIN_MS; /* no writer stayed */
}

static void on_verify(hrd_timer *t)
{
	hrd_engine *e = hrd_container_of(t, hrd_engine, verify);
	/* Only what changed is built: its row's cause names the scan, which tells the watcher missed it. */
	e->verifying = 1;
	e->verify_scans++;
	hrd_engine_scan(e, HRD_VERIFY_CAUSE);
	e->verifying = 0;
}

static void on_checkpoint(hrd_timer *t)
{
	hrd_engine *e = hrd_container_of(t, hrd_engine, checkpoint);
	if (hrd_store_checkpoint(e->cfg.store) < 0)
		hrd_warn("%s", hrd_store_error(e->cfg.store));
}

/* ---- events ---- */

struct scan_ctx {
	hrd_engine *e;
	const char *cause;
};

static void scan_named(void *arg, const char *name)
{
	struct scan_ctx *c = arg;
	hrd_mod *m = hrd_engine_find(c->e, name);
	if (m && m->seen == c->e->scan)
		return; /* NAME.c and NAME/ both lead here */
	if (m && c->e->verifying && m->state != HRD_M_IDLE) {
		m->seen = c->e->scan; /* it reads its sources anyway, and checks them after */
		return;
	}
	hrd_engine_touch(c->e, name, c->cause);
	if ((m = hrd_engine_find(c->e, name)))
		m->seen = c->e->scan;
}

/* Follow the root's path to a new folder if the old one was replaced or moved away. */
static void follow_root(hrd_engine *e)
{
	struct stat now, had;
	/* A removed folder still stats through a descriptor, with no links, and its inode number may be taken again. */
	if (stat(e->cfg.root, &now) < 0 || fstat(e->project.rootfd, &had) < 0 ||
	    (now.st_dev == had.st_dev && now.st_ino == had.st_ino && had.st_nlink > 0))
		return;
	int fd = open(e->cfg.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	hrd_warn("the root %s is another folder now; following it", e->cfg.root);
	close(e->project.rootfd);
	e->project.rootfd = fd;
}

void hrd_engine_scan(hrd_engine *e, const char *cause)
{
	struct scan_ctx c = {e, cause};
	follow_root(e);
	e->scan++;
	hrd_engine_patch_load(e, cause); /* first: a source it names is no module */
	for (size_t i = 0; i < e->nmods; i++)
		if (e->mods[i]->unit)
			e->mods[i]->seen = e->scan; /* looked at just now */
	if (hrd_project_scan(&e->project, scan_named, &c) < 0)
		hrd_error("cannot read the root %s: %s", e->cfg.root, strerror(errno));
	/* Modules that vanished while nobody looked. */
	for (size_t i = 0; i < e->nmods; i++)
		if (e->mods[i]->seen != e->scan)
			hrd_engine_touch(e, e->mods[i]->name, cause);
	hrd_engine_outside_sync(e); /* the headers the history says modules read, at the start */
	hrd_engine_write_ccmds(e);
}

int hrd_engine_reload_config(hrd_engine *e, const char *cause)
{
	hrd_config conf;
	char err[sizeof e->conf_error];
	if (hrd_config_load(e->project.rootfd, &conf, err, sizeof err) < 0) {
		if (strcmp(err, e->conf_error) != 0)
			hrd_warn("%s; the settings before it stay until it is fixed", err);
		snprintf(e->conf_error, sizeof e->conf_error, "%s", err);
		return 0;
	}
	hrd_engine_move_ccmds(e, &conf);
	hrd_config_free(&e->conf);
	e->conf = conf;
	e->project.conf = &e->conf;
	/* What is excluded is not watched either: the watcher starts over if that changed. */
	if (hrd_watch_skip(e->cfg.watch, e->conf.exclude) < 0)
		hrd_error("watcher: out of memory; hotreload.conf's exclusions stay as they were for the watcher");
	e->conf_error[0] = '\0';
	e->ccmd_dirty = 1; /* its place may have changed */
	hrd_info("%s: read again (%s)", HRD_CONFIG_FILE, cause);
	/* Every module with other flags has another key now: those build, the others do not. */
	hrd_engine_scan(e, cause);
	return 1;
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
	int cdb;            /* read the compile database again (--patch) */
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
 * built again. For a module that has not read it, it may be a header
 * appearing on an include path before one of the same name (it shadows it),
 * the one its failed build was missing, or, when no module knows it, one
 * that its build under way is reading for the first time: those modules are
 * built again whatever their key.
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
	if (!header_like(path))
		return;
	for (size_t i = 0; i < e->nmods; i++) {
		hrd_mod *m = e->mods[i];
		if (hrd_deps_has(&m->deps, path))
			continue;
		if (hrd_deps_shadowed(&m->deps, path) || m->last == HRD_FAILED || (m->job && !known)) {
			m->key[0] = '\0';
			m->fresh = 1;
			batch_add(b, m->name, path);
		}
	}
}

struct matched {
	struct batch *b;
	const char *path;
};

static void add_matched(void *arg, const char *name)
{
	struct matched *m = arg;
	batch_add(m->b, name, m->path);
}

/* A save of the compile database, or of a unit's source (as the watchers name them). */
static void patch_change(struct batch *b, const char *path)
{
	hrd_mod *u = hrd_engine_unit_at(b->e, path);
	if (b->e->patch_watch && strcmp(path, b->e->patch_watch) == 0)
		b->cdb = 1;
	if (u)
		batch_add(b, u->name, path);
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
	patch_change(b, path);
	if (hrd_project_module_of(&b->e->project, path, name, sizeof name))
		batch_add(b, name, path);
	hrd_project_matching(&b->e->project, path, add_matched, &(struct matched){b, path});
	dependents(b, path); /* a source may be included too */
}

static void run_batch(hrd_engine *e, struct batch *b);

static void on_watch(hrd_io *io, uint32_t events)
{
	hrd_engine *e = hrd_container_of(io, hrd_engine, watchio);
	struct batch b = {.e = e};
	(void)events;
	/* A burst (a save in chunks, a checkout) arrives as one batch: each
	 * module it touches is looked at, and built, once. */
	hrd_watch_take(e->cfg.watch, on_change, &b);
	run_batch(e, &b);
}

/* A header outside the root (its absolute path, as the dependency files name it) changed. */
static void on_outside_change(void *arg, const char *path)
{
	patch_change(arg, path);
	dependents(arg, path);
}

/* path's folder (absolute) added to dirs unless there: 0, or -1 out of memory. */
static int add_dir(char ***dirs, size_t *n, size_t *cap, const char *p)
{
	const char *slash = strrchr(p, '/');
	if (p[0] != '/' || !slash)
		return 0; /* under the root: the watcher sees it */
	size_t len = slash == p ? 1 : (size_t)(slash - p);
	for (size_t k = 0; k < *n; k++)
		if (strlen((*dirs)[k]) == len && strncmp((*dirs)[k], p, len) == 0)
			return 0;
	if (*n == *cap) {
		char **grown = realloc(*dirs, (*cap ? 2 * *cap : 8) * sizeof *grown);
		if (!grown)
			return -1;
		*dirs = grown;
		*cap = *cap ? 2 * *cap : 8;
	}
	if (!((*dirs)[*n] = strndup(p, len)))
		return -1;
	++*n;
	return 0;
}

static void on_outside(hrd_io *io, uint32_t events)
{
	hrd_engine *e = hrd_container_of(io, hrd_engine, outsideio);
	struct batch b = {.e = e};
	(void)events;
	if (hrd_outside_read(&e->outside, on_outside_change, &b) < 0)
		b.rescan = 1; /* the kernel's queue overflowed: look at everything */
	run_batch(e, &b);
}

static int by_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void hrd_engine_outside_sync(hrd_engine *e)
{
	char **dirs = NULL;
	size_t n = 0, cap = 0;
	/* out of memory: a folder goes unwatched until the next change */
	for (size_t i = 0; i < e->nmods; i++) {
		for (size_t j = 0; j < e->mods[i]->deps.n; j++)
			add_dir(&dirs, &n, &cap, e->mods[i]->deps.path[j]);
		/* the program's sources outside the root, and its compile database (--patch) */
		if (e->mods[i]->unit && e->mods[i]->src && e->mods[i]->kind == HRD_KIND_FILE)
			add_dir(&dirs, &n, &cap, e->mods[i]->src);
	}
	if (e->patch_watch)
		add_dir(&dirs, &n, &cap, e->patch_watch);
	if (n) /* dirs is NULL without one, which qsort may not take */
		qsort(dirs, n, sizeof *dirs, by_path);
	if (hrd_outside_set(&e->outside, dirs, n) < 0)
		hrd_error("cannot follow the folders of headers outside the root: out of memory");
	char list[65536];
	hrd_outside_list(&e->outside, list, sizeof list);
	hrd_engine_set_str(&e->outside_list, list);
	for (size_t i = 0; i < n; i++)
		free(dirs[i]);
	free(dirs);
}

static void run_batch(hrd_engine *e, struct batch *b_)
{
	struct batch b = *b_;
	/* A scan, for a new hotreload.conf or lost events, looks at everything: the batch's modules too. */
	int scanned = b.config && hrd_engine_reload_config(e, HRD_CONFIG_FILE " changed");
	if (b.rescan && !scanned)
		hrd_engine_scan(e, "rescan");
	else if (b.cdb && !scanned && hrd_engine_patch_load(e, "the compile database changed"))
		hrd_engine_outside_sync(e);
	for (size_t i = 0; i < b.n; i++) {
		hrd_mod *u = hrd_engine_find(e, b.names[i]);
		if (u && u->unit)
			u->saved = 1; /* a patch from now on, not a baseline */
		if (!b.rescan && !scanned)
			hrd_engine_touch(e, b.names[i], b.causes[i] ? b.causes[i] : "changed");
		free(b.names[i]);
		free(b.causes[i]);
	}
	free(b.names);
	free(b.causes);
	hrd_engine_write_ccmds(e);
}

/* ---- life ---- */

/*
 * Make tmp/, objects/ and cache/ in the state dir, through its descriptor,
 * and empty tmp/: what is there was left by a daemon that died mid-build.
 * objects/ is kept open: a restore writes there through it; and cache/, which
 * the builds read and write through it.
 */
static int prepare_dirs(hrd_engine *e, char *err, size_t errsz)
{
	char why[512];
	int tmp = hrd_statedir_sub(e->cfg.state_fd, "tmp", 0700, why, sizeof why);
	if (tmp < 0 ||
	    (e->objects_fd = hrd_statedir_sub(e->cfg.state_fd, "objects", e->cfg.shared ? 0711 : 0700, why, sizeof why)) < 0 ||
	    (e->cache_fd = hrd_statedir_sub(e->cfg.state_fd, "cache", 0700, why, sizeof why)) < 0) {
		snprintf(err, errsz, "in the state dir %s: %s", e->cfg.state_dir, why);
		if (tmp >= 0)
			close(tmp);
		return -1;
	}
	DIR *d = fdopendir(tmp);
	struct dirent *ent;
	while (d && (ent = readdir(d)))
		if (ent->d_name[0] != '.')
			unlinkat(dirfd(d), ent->d_name, 0);
	if (d)
		closedir(d);
	else
		close(tmp);
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
	TAILQ_INIT(&e->queue);
	e->watchio.fd = e->project.rootfd = e->objects_fd = e->cache_fd = -1;
	e->outside.fd = e->outsideio.fd = -1;
	/* A state dir inside the root is not part of the project. */
	size_t rl = strlen(cfg->root);
	if (strncmp(cfg->state_dir, cfg->root, rl) == 0 && cfg->state_dir[rl] == '/')
		e->project.skip = cfg->state_dir + rl + 1;
	e->project.root = cfg->root;
	e->project.follow = hrd_watch_follows_links(cfg->watch);
	e->project.rootfd = open(cfg->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (e->project.rootfd < 0) {
		snprintf(err, errsz, "cannot open the root %s: %s", cfg->root, strerror(errno));
		goto fail;
	}
	/* hotreloadd(8): $CC (default cc) with -shared -fPIC; -g for debuggers;
	 * $CFLAGS and $LDFLAGS as make would add them. Each source is compiled
	 * on its own (-c, so that each gets its dependency file, and ccache or
	 * distcc can take it), and the link adds -shared. */
	size_t n = 0;
	if (!(e->env_cc = calloc(1, sizeof(char *))) || !(e->env_cflags = calloc(1, sizeof(char *))) ||
	    !(e->env_ldflags = calloc(1, sizeof(char *))) || hrd_engine_split_env("CC", "", &e->env_cc, &n) < 0 ||
	    hrd_engine_split_env("CFLAGS", "", &e->env_cflags, &(size_t){0}) < 0 ||
	    hrd_engine_split_env("LDFLAGS", "", &e->env_ldflags, &(size_t){0}) < 0)
		goto nomem;
	/* A bad hotreload.conf stops a daemon that starts; one that runs keeps its last good settings. */
	if (hrd_config_load(e->project.rootfd, &e->conf, err, errsz) < 0)
		goto fail;
	e->project.conf = &e->conf;
	if (prepare_dirs(e, err, errsz) < 0)
		goto fail;
	hrd_stage_config sc = {.loop = cfg->loop, .root = cfg->root, .changed = on_stage, .arg = e};
	if (hrd_stage_open(&e->stage, &sc) < 0)
		goto nomem;
	e->checkpoint.fn = on_checkpoint;
	e->recheck.fn = on_recheck;
	e->recheck_ms = RECHECK_MIN_MS;
	e->verify.fn = on_verify;
	if (cfg->verify_s > 0)
		hrd_timer_start(cfg->loop, &e->verify, (int64_t)cfg->verify_s * 1000, (int64_t)cfg->verify_s * 1000);
	e->watchio.fn = on_watch;
	e->watchio.fd = hrd_watch_fd(cfg->watch);
	e->outsideio.fn = on_outside;
	if (hrd_loop_add(cfg->loop, &e->watchio, EPOLLIN) < 0) {
		snprintf(err, errsz, "cannot set up the event loop: %s", strerror(errno));
		goto fail;
	}
	/* Not fatal: out of inotify instances, the root's own watcher may well be polling already. */
	if (hrd_outside_init(&e->outside) < 0 ||
	    (e->outsideio.fd = e->outside.fd, hrd_loop_add(cfg->loop, &e->outsideio, EPOLLIN) < 0)) {
		hrd_warn("cannot watch folders outside the root (%s): a save of a header there is seen only at a "
		         "verification scan (--verify-every)", strerror(errno));
		if (e->outside.fd >= 0)
			close(e->outside.fd);
		e->outside.fd = e->outsideio.fd = -1;
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
	for (size_t i = 0; i < e->nmods; i++) {
		hrd_engine_free_build(e->mods[i]->job); /* its compilers are killed, and reaped below */
		e->mods[i]->job = NULL;
	}
	hrd_stage_close(e->stage);
	for (size_t i = 0; i < e->nmods; i++) {
		free(e->mods[i]->name);
		free(e->mods[i]->src);
		free(e->mods[i]->artifact);
		free(e->mods[i]->summed);
		free(e->mods[i]->message);
		free(e->mods[i]->note);
		hrd_deps_free(&e->mods[i]->deps);
		free(e->mods[i]->ccmd);
		free(e->mods[i]->unkept);
		free(e->mods[i]->noquick);
		free(e->mods[i]);
	}
	free(e->mods);
	hrd_timer_stop(e->cfg.loop, &e->checkpoint);
	hrd_timer_stop(e->cfg.loop, &e->recheck);
	hrd_timer_stop(e->cfg.loop, &e->verify);
	if (e->watchio.fd >= 0)
		hrd_loop_del(e->cfg.loop, &e->watchio);
	if (e->outsideio.fd >= 0)
		hrd_loop_del(e->cfg.loop, &e->outsideio);
	hrd_outside_fini(&e->outside);
	free(e->outside_list);
	hrd_cdb_free(&e->cdb);
	free(e->patch);
	free(e->patch_watch);
	if (e->project.rootfd >= 0)
		close(e->project.rootfd);
	if (e->objects_fd >= 0)
		close(e->objects_fd);
	if (e->cache_fd >= 0)
		close(e->cache_fd);
	hrd_words_free(e->env_cc);
	hrd_words_free(e->env_cflags);
	hrd_words_free(e->env_ldflags);
	hrd_config_free(&e->conf);
	free(e->status);
	free(e->older);
	free(e);
}
