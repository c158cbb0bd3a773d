/* engine_build.c: one module's build: its key, a reuse or a plan for the stage, then its row and announcement. */
#include "words.h"
#include "engine_impl.h"
#include "../client/elfvars.h"
#include "readfile.h"
#include "../proto/sha256.h"
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void announce_failed(hrd_engine *e, hrd_mod *m)
{
	hrp_msg f = {.type = HRP_FAILED, .u.failed = {m->name, m->message ? m->message : ""}};
	if (e->server)
		hrd_server_announce(e->server, m->name, &f);
}

/* The dependencies a build leaves: what its dependency files name, with those it had kept when it failed (a failed compile may not have written them all). */
static int leave_deps(hrd_mod *m, hrd_deps *got, int ok)
{
	hrd_deps none = {0};
	if (!got)
		got = &none; /* it never ran */
	if (ok)
		m->fresh = 0;
	if (!ok && hrd_deps_merge(got, &m->deps) < 0)
		return -1;
	hrd_deps_free(&m->deps);
	m->deps = *got;
	*got = (hrd_deps){0};
	return 0;
}

/* A set of dependencies as a row records it: an empty list replaces the old ones too. */
static char *const *deps_row(const hrd_deps *d)
{
	static char *const none[] = {NULL};
	return d->n ? d->path : none;
}

/* The files that went in, as they are now (what the build read, the checks before it said): sources, then headers. */
struct snaps {
	hrd_snapshot *f;
	size_t n;
};

#define SNAPSHOT_MAX (1u << 20) /* a bigger input is named in the key, not kept */

static void snap_add(hrd_engine *e, struct snaps *s, const char *path)
{
	size_t len;
	char *data = hrd_readfile(e->project.rootfd, path, SNAPSHOT_MAX, &len), *hash = malloc(65), *name = strdup(path);
	hrd_snapshot *grown = data && hash && name ? realloc(s->f, (s->n + 1) * sizeof *grown) : NULL;
	if (!grown) { /* not kept: too big, gone, or no memory */
		free(data);
		free(hash);
		free(name);
		return;
	}
	hrp_sha256 c;
	hrp_sha256_init(&c);
	hrp_sha256_update(&c, data, len);
	hrp_sha256_hex(&c, hash);
	s->f = grown;
	s->f[s->n++] = (hrd_snapshot){name, hash, data, len};
}


static struct snaps snapshot(hrd_engine *e, const hrd_sources *src, const hrd_deps *deps)
{
	struct snaps s = {NULL, 0};
	for (size_t i = 0; i < src->n; i++)
		snap_add(e, &s, src->path[i]);
	for (size_t i = 0; i < deps->n; i++)
		snap_add(e, &s, deps->path[i]);
	return s;
}

static void snaps_free(struct snaps *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free((char *)s->f[i].path);
		free((char *)s->f[i].hash);
		free((void *)s->f[i].data);
	}
	free(s->f);
}

/*
 * Record a compile that failed (or could not run), and say so. Only a
 * compiler that ran to its end on inputs that held still ("trusted") ties
 * the failure to the inputs' key: a missing compiler, a full disk or a
 * vanished file must not stop the same content from being built again.
 */
static void failed(hrd_engine *e, hrd_mod *m, build *b, hrd_result *r, const char *message, const char *output,
                   int64_t duration, int trusted)
{
	int deps = leave_deps(m, r ? &r->deps : NULL, 0) == 0;
	hrd_engine_outside_sync(e);
	/* The key that ties the failure to its inputs names the headers the module has now. */
	if (trusted && b->keyargv && (!deps || (r && r->nodeps) ||
	                              hrd_project_key(&e->project, &b->src, &m->deps, b->keyargv, b->key, NULL) < 0))
		trusted = 0;
	struct snaps snap = snapshot(e, &b->src, &m->deps);
	hrd_build row = {.module = m->name, .status = HRD_FAILED, .started_us = b->started_us,
	                 .duration_us = duration, .source_hash = trusted ? b->key : "", .command = r ? r->command : NULL,
	                 .output = output, .message = message, .cause = b->cause, .deps = deps ? deps_row(&m->deps) : NULL,
	                 .snap = snap.f, .nsnap = snap.n};
	hrd_engine_set_str(&m->message, message);
	m->last = HRD_FAILED;
	snprintf(m->key, sizeof m->key, "%s", trusted ? b->key : "");
	if (hrd_store_record(e->cfg.store, &row) < 0)
		hrd_error("%s: %s", m->name, hrd_store_error(e->cfg.store));
	else
		hrd_engine_arm_checkpoint(e);
	snaps_free(&snap);
	char at[32];
	hrd_warn("%s%s: build failed: %s", hrd_engine_progress(e, m, at), m->name, message);
	announce_failed(e, m);
}

/* A source that cannot be read (permissions, no descriptors left): a failed build, said once. */
static void unreadable(hrd_engine *e, hrd_mod *m, const hrd_sources *src, int err, const char *cause)
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
	build b = {.started_us = hrd_engine_now_us(CLOCK_REALTIME)};
	snprintf(b.cause, sizeof b.cause, "%s", cause);
	failed(e, m, &b, NULL, msg, "", 0, 0);
}

static int take_top(const hrd_build *b, void *arg)
{
	if (hrd_engine_published_row(b)) {
		*(uint64_t *)arg = b->version;
		return 1;
	}
	return 0;
}

/* Name the globals of m's new object that a reload starts afresh, when they are not those named last. */
static void log_unkept(hrd_mod *m, const char *path)
{
	char names[1024];
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int rc = fd >= 0 ? hrc_elfvars(fd, names, sizeof names, &n) : -errno;
	if (fd >= 0)
		close(fd);
	if (rc < 0 || (m->unkept ? strcmp(m->unkept, names) == 0 : n == 0))
		return;
	hrd_engine_set_str(&m->unkept, names);
	if (n)
		hrd_info("%s: %zu global%s restart%s at each reload: %s (HR_KEEP keeps them; HR_FRESH(name) says one is "
		         "meant to)", m->name, n, n == 1 ? "" : "s", n == 1 ? "s" : "", names);
}

static void published(hrd_engine *e, hrd_mod *m, build *b, hrd_result *r, int64_t duration)
{
	char *path = NULL;
	uint64_t version = m->top + 1;
	hrd_build row = {.module = m->name, .status = HRD_OK, .version = version, .started_us = b->started_us,
	                 .duration_us = duration, .source_hash = b->key, .command = r->command,
	                 .output = r->out, .cause = b->cause, .deps = deps_row(&r->deps)};
	/*
	 * A new path per version, because dlopen caches by path and a mapped file
	 * is never written; and per history, because a replaced history numbers
	 * from 1 again while games may still hold the old NAME.1.so.
	 */
	char *stem = hrd_engine_stem(m->name);
	if (!stem || asprintf(&path, "%s/objects/%s.%llu.%.8s.%s", e->cfg.state_dir, stem, (unsigned long long)version,
	                      hrd_store_id(e->cfg.store), m->unit ? "o" : "so") < 0)
		path = NULL;
	free(stem);
	if (!path || rename(b->tmp, path) < 0) {
		char msg[512];
		snprintf(msg, sizeof msg, "cannot publish the object: %s", strerror(path ? errno : ENOMEM));
		free(path);
		failed(e, m, b, r, msg, r->out, duration, 0);
		return;
	}
	row.artifact = path;
	struct snaps snap = snapshot(e, &b->src, &r->deps);
	row.snap = snap.f;
	row.nsnap = snap.n;
	/* the object itself, so that the last good ones survive losing objects/ */
	size_t object_len = 0;
	void *object = hrd_readfile(AT_FDCWD, path, HRD_STORE_BLOB_MAX, &object_len); /* NULL: recorded without it */
	if (!object && errno == EFBIG)
		hrd_warn("%s: v%llu's object is over the %u MiB the history keeps of one: recorded without it, so it "
		         "cannot be written back if objects/ loses it", m->name, (unsigned long long)version,
		         HRD_STORE_BLOB_MAX >> 20);
	row.object = object;
	row.object_len = object_len;
	row.keep = e->conf.keep ? e->conf.keep : HRD_KEEP_OBJECTS;
	int recorded = hrd_store_record(e->cfg.store, &row);
	snaps_free(&snap);
	free(object);
	if (recorded < 0) {
		/* Unrecorded, so never announced: the last good build stays what clients run. */
		char msg[1200];
		snprintf(msg, sizeof msg, "built, but not recorded: %s", hrd_store_error(e->cfg.store));
		unlink(path);
		free(path);
		hrd_error("%s: %s", m->name, msg);
		hrd_engine_set_str(&m->message, msg);
		m->last = HRD_FAILED;
		m->key[0] = '\0';
		/* Whatever the history holds now, number the next build after it. */
		hrd_store_history(e->cfg.store, m->name, 0, take_top, &m->top);
		announce_failed(e, m);
		return;
	}
	leave_deps(m, &r->deps, 1);
	hrd_engine_outside_sync(e);
	hrd_engine_arm_checkpoint(e);
	m->top = version;
	m->last = HRD_OK;
	/* A good build's warnings: the first one is what status shows for it (the row keeps them all). */
	char first[512], said[600] = "";
	int warnings = hrd_job_warnings(r->out, first, sizeof first);
	hrd_engine_set_str(&m->message, warnings ? first : NULL);
	if (warnings)
		snprintf(said, sizeof said, "; %d warning%s, the first: %s", warnings, warnings == 1 ? "" : "s", first);
	snprintf(m->key, sizeof m->key, "%s", b->key);
	char at[32];
	hrd_info("%s%s: v%llu built in %lld ms (%s)%s", hrd_engine_progress(e, m, at), m->name,
	         (unsigned long long)version, (long long)(duration / 1000), b->cause, said);
	if (!m->unit)
		log_unkept(m, path);
	hrd_engine_serve(e, m, version, HRP_KIND_OK, path, version);
}

int hrd_engine_object_sum(const char *module, const char *path, char hex[65], uint64_t *size)
{
	hrp_sha256 c;
	uint8_t buf[65536];
	struct stat st;
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	*hex = '\0';
	*size = 0;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		hrp_sha256_init(&c);
		while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
			if (n > 0) {
				hrp_sha256_update(&c, buf, (size_t)n);
				*size += (uint64_t)n;
			}
		if (n == 0)
			hrp_sha256_hex(&c, hex);
	} else if (fd >= 0) {
		errno = EINVAL;
	}
	if (!*hex)
		hrd_warn("%s: cannot hash the object %s: %s", module, path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return *hex ? 0 : -1;
}

void hrd_engine_mod_sum(hrd_mod *m)
{
	if (!m->artifact || (m->summed && strcmp(m->summed, m->artifact) == 0))
		return;
	free(m->summed);
	m->summed = NULL;
	if (hrd_engine_object_sum(m->name, m->artifact, m->sha256, &m->size) == 0)
		m->summed = strdup(m->artifact); /* NULL: hashed again next time, nothing worse */
}

/* m's served build, to its subscribers. more: a unit's BUILD that another of the same change follows. */
static void announce(hrd_engine *e, hrd_mod *m, int more)
{
	hrp_msg a = {.type = HRP_BUILD,
	             .u.build = {m->name, m->version, m->good_kind | (more ? HRP_KIND_MORE : 0), m->artifact, m->sha256, m->size}};
	if (e->server)
		hrd_server_announce(e->server, m->name, &a);
}

void hrd_engine_serve(hrd_engine *e, hrd_mod *m, uint64_t version, uint32_t kind, char *path, uint64_t origin)
{
	if (m->pin && m->pin != version) {
		/* Pinned: recorded, and kept for unpin, but the programs stay on the pinned version. */
		hrd_info("%s: v%llu recorded; v%llu stays live, pinned (hotreload unpin %s)", m->name,
		         (unsigned long long)version, (unsigned long long)m->pin, m->name);
		free(path);
		return;
	}
	m->version = version;
	m->origin = origin;
	m->good_kind = kind;
	free(m->artifact);
	m->artifact = path;
	hrd_engine_mod_sum(m);
	/* Kept with the build: what its BUILD says of the object, for a game that gets its bytes to check. */
	if (m->sha256[0] && hrd_store_set_object_sum(e->cfg.store, m->name, version, m->sha256) < 0)
		hrd_error("%s", hrd_store_error(e->cfg.store));
	/* A saved header rebuilds several units: the program must get them as one change, applied at one hr_update. */
	if (m->unit && hrd_engine_units_busy(e, m)) {
		m->held = 1;
		hrd_debug("%s: v%llu goes out with the other units being built", m->name, (unsigned long long)version);
		return;
	}
	announce(e, m, 0);
}

int hrd_engine_units_busy(hrd_engine *e, const hrd_mod *but)
{
	for (size_t i = 0; i < e->nmods; i++) {
		const hrd_mod *u = e->mods[i];
		if (u != but && u->unit && (u->state == HRD_M_QUEUED || u->job))
			return 1;
	}
	return 0;
}

void hrd_engine_flush_held(hrd_engine *e)
{
	hrd_mod *last = NULL;
	for (size_t i = 0; i < e->nmods; i++)
		if (e->mods[i]->held)
			last = e->mods[i];
	if (!last || hrd_engine_units_busy(e, NULL))
		return;
	for (size_t i = 0; i < e->nmods; i++)
		if (e->mods[i]->held) {
			e->mods[i]->held = 0;
			announce(e, e->mods[i], e->mods[i] != last);
		}
}

void hrd_engine_free_build(build *b)
{
	if (!b)
		return;
	if (b->run)
		hrd_run_cancel(b->run); /* it goes once its compilers are reaped */
	if (b->qrun)
		hrd_run_cancel(b->qrun);
	free(b->qtmp);
	free(b->qsig);
	hrd_words_free(b->base);
	hrd_words_free(b->ld);
	hrd_words_free(b->keyargv);
	free(b->tmp);
	free(b->dir);
	free(b->dep);
	free(b->stamps);
	hrd_deps_free(&b->had);
	hrd_sources_free(&b->src);
	free(b);
}

/* Whether a header first named by this build changed after it began: it may have read it half-written, and no event said it mattered then. */
static int new_dep_changed(hrd_engine *e, const build *b, const hrd_result *r)
{
	/* File times come from a clock that may lag the real one by a tick. */
	const int64_t tick_us = 20000;
	for (size_t i = 0; i < r->deps.n; i++) {
		struct stat st;
		if (hrd_deps_has(&b->had, r->deps.path[i]) ||
		    fstatat(e->project.rootfd, r->deps.path[i], &st, 0) < 0)
			continue;
		if ((int64_t)st.st_ctim.tv_sec * 1000000 + st.st_ctim.tv_nsec / 1000 >= b->started_us - tick_us)
			return 1;
	}
	return 0;
}

/* What the run came to: a link (ok), or the first step that failed. */
static void finish(hrd_engine *e, build *b, hrd_result *r)
{
	hrd_mod *m = b->m;
	int64_t duration = r->duration_us;
	struct stat st;
	int ok = r->ok && stat(b->tmp, &st) == 0;
	char msg[1024];
	hrd_job_message(r->last_out, r->status, msg, sizeof msg);
	if (!hrd_project_unchanged(&e->project, &b->src, &b->had, b->stamps) || new_dep_changed(e, b, r)) {
		/* A source or header was written, replaced or removed while the
		 * compiler ran: what it read cannot be trusted. Build what is there
		 * now; if the module is gone, say why its build failed. */
		hrd_sources now;
		int kind = m->unit ? hrd_engine_unit_resolve(e, m, &now) : hrd_project_resolve(&e->project, m->name, &now);
		if (kind >= 0)
			hrd_sources_free(&now);
		if (kind == HRD_KIND_FILE || kind == HRD_KIND_DIR || ok) {
			hrd_debug("%s: its inputs changed during the build; building again", m->name);
			hrd_engine_touch(e, m->name, m->cause);
			return;
		}
		failed(e, m, b, r, msg, r->out, duration, 0);
	} else if (ok && m->unit && !hrd_engine_relocatable(b->tmp, msg, sizeof msg)) {
		failed(e, m, b, r, msg, r->out, duration, 0);
	} else if (ok) {
		/* The key named the headers known before; the build may have read others (checked above to be as they were): name
		 * those. With a dependency file missing, what it read is not known: no key, so nothing is matched with it. */
		if (r->nodeps || (!hrd_deps_equal(&b->had, &r->deps) &&
		                  hrd_project_key(&e->project, &b->src, &r->deps, b->keyargv, b->key, NULL) < 0))
			b->key[0] = '\0';
		published(e, m, b, r, duration);
	} else {
		failed(e, m, b, r, msg, r->out, duration, hrd_job_verdict(r->status, r->last_out));
	}
}

/*
 * The quick tier's build ended, before the final one (which cancels it when
 * it ends first): published and announced now if it compiled. A failure is
 * the configured compiler's to tell, so it is dropped with a debug line.
 */
static void quick_ended(hrd_engine *e, build *b, hrd_result *r)
{
	hrd_mod *m = b->m;
	struct stat st;
	char *path = NULL;
	if (r->spawn_err[0] || !r->ok || stat(b->qtmp, &st) < 0) {
		char msg[1024];
		hrd_job_message(r->last_out, r->status, msg, sizeof msg);
		hrd_debug("%s: the quick build (tcc) failed, dropped: %s", m->name, r->spawn_err[0] ? r->spawn_err : msg);
		b->qfailed = 1;
		return;
	}
	if (!hrd_project_unchanged(&e->project, &b->src, &b->had, b->stamps)) {
		hrd_debug("%s: its inputs changed during the quick build: dropped", m->name);
		return;
	}
	uint64_t version = m->top + 1;
	if (asprintf(&path, "%s/objects/%s.%llu.%.8s.so", e->cfg.state_dir, m->name, (unsigned long long)version,
	             hrd_store_id(e->cfg.store)) < 0 || rename(b->qtmp, path) < 0) {
		hrd_debug("%s: the quick build cannot be published: %s", m->name, strerror(path ? errno : ENOMEM));
		free(path);
		return;
	}
	hrd_build row = {.module = m->name, .status = HRD_OK, .version = version, .started_us = b->started_us,
	                 .duration_us = r->duration_us, .source_hash = b->key, .command = r->command, .output = r->out,
	                 .artifact = path, .cause = b->cause, .quick = 1};
	if (hrd_store_record(e->cfg.store, &row) < 0) {
		hrd_error("%s: %s", m->name, hrd_store_error(e->cfg.store));
		unlink(path);
		free(path);
		hrd_store_history(e->cfg.store, m->name, 0, take_top, &m->top);
		return;
	}
	hrd_engine_arm_checkpoint(e);
	m->top = version;
	hrd_info("%s: v%llu built quick (tcc) in %lld ms (%s); the final build follows", m->name,
	         (unsigned long long)version, (long long)(r->duration_us / 1000), b->cause);
	hrd_engine_serve(e, m, version, HRP_KIND_OK, path, version);
}

/*
 * A unit's first compile under this history, before any save: the program
 * was built from these sources, so there is nothing to patch. What it read
 * is learnt (its headers are watched from now on) and its key kept, so that
 * only a change builds a patch. Nothing is recorded or announced.
 */
static void baseline_ended(hrd_engine *e, build *b, hrd_result *r)
{
	hrd_mod *m = b->m;
	int ok = !r->spawn_err[0] && r->ok;
	if (!hrd_project_unchanged(&e->project, &b->src, &b->had, b->stamps)) {
		hrd_engine_touch(e, m->name, m->cause); /* saved meanwhile: that is a patch */
		return;
	}
	leave_deps(m, &r->deps, ok);
	hrd_engine_outside_sync(e);
	if (ok && !r->nodeps && (hrd_deps_equal(&b->had, &m->deps) ||
	                         hrd_project_key(&e->project, &b->src, &m->deps, b->keyargv, b->key, NULL) == 0)) {
		snprintf(m->key, sizeof m->key, "%s", b->key);
		hrd_debug("%s: as built: %zu header%s followed, nothing to patch", m->name, m->deps.n, m->deps.n == 1 ? "" : "s");
		return;
	}
	char msg[1024];
	hrd_job_message(r->last_out, r->status, msg, sizeof msg);
	hrd_warn("%s: the compile database's command does not compile it as it is (%s): a save builds it again",
	         m->name, r->spawn_err[0] ? r->spawn_err : msg);
}

void hrd_engine_ended(hrd_engine *e, hrd_run *run)
{
	hrd_result *r = hrd_run_result(run);
	build *b = r->owner;
	hrd_mod *m = b->m;
	assert(m->job == b);
	if (run == b->qrun) {
		quick_ended(e, b, r);
		b->qrun = NULL;
		hrd_run_free(run);
		return;
	}
	m->job = NULL;
	m->state = HRD_M_IDLE;
	uint64_t top = m->top;
	if (b->baseline)
		baseline_ended(e, b, r);
	else if (r->spawn_err[0])
		failed(e, m, b, r, r->spawn_err, r->out, 0, 0);
	else
		finish(e, b, r);
	if (b->qfailed && b->qsig && m->last == HRD_OK && m->top > top) {
		/* The configured compiler built what tcc could not: tcc does not support something it uses. */
		hrd_info("%s: tcc cannot build it: no quick builds until its configuration changes", m->name);
		hrd_engine_set_str(&m->noquick, b->qsig);
	}
	b->run = NULL;
	hrd_run_free(run);
	hrd_engine_free_build(b);
}

/* A copy of from at to, with an inode of its own: glibc takes an object with a loaded one's device and inode for that one. */
static int copy_object(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out = -1, rc = -1;
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755)) < 0)
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
 * Publish the object at from (that of version vfrom) again as m's next
 * version: a copy, a row of status (reused or rollback) with key, and its
 * announcement, unless m is pinned. Returns the version, or 0 (said).
 */
static uint64_t republish(hrd_engine *e, hrd_mod *m, int status, uint64_t vfrom, const char *from, const char *key,
                          const char *cause)
{
	char *tmp = NULL, *path = NULL;
	int64_t t0 = hrd_engine_now_us(CLOCK_MONOTONIC);
	uint64_t version = m->top + 1;
	char *stem = hrd_engine_stem(m->name);
	const char *ext = m->unit ? "o" : "so";
	if (!stem || asprintf(&tmp, "%s/tmp/%s.%d.%lu.%s", e->cfg.state_dir, stem, (int)getpid(), ++e->seq, ext) < 0 ||
	    asprintf(&path, "%s/objects/%s.%llu.%.8s.%s", e->cfg.state_dir, stem, (unsigned long long)version,
	             hrd_store_id(e->cfg.store), ext) < 0) {
		free(stem);
		tmp = path = NULL;
		version = 0;
		goto out;
	}
	free(stem);
	if (copy_object(from, tmp) < 0 || rename(tmp, path) < 0) {
		hrd_warn("%s: cannot copy the object of v%llu: %s", m->name, (unsigned long long)vfrom, strerror(errno));
		unlink(tmp);
		version = 0;
		goto out;
	}
	char note[96];
	snprintf(note, sizeof note, "the object of v%llu%s", (unsigned long long)vfrom,
	         status == HRD_REUSED ? ", for the same inputs: no compile" : ", put back");
	hrd_build row = {.module = m->name, .status = status, .version = version,
	                 .started_us = hrd_engine_now_us(CLOCK_REALTIME),
	                 .duration_us = hrd_engine_now_us(CLOCK_MONOTONIC) - t0, .source_hash = key, .output = note,
	                 .artifact = path, .cause = cause};
	if (hrd_store_record(e->cfg.store, &row) < 0) {
		hrd_error("%s: %s", m->name, hrd_store_error(e->cfg.store));
		unlink(path);
		hrd_store_history(e->cfg.store, m->name, 0, take_top, &m->top);
		version = 0;
		goto out;
	}
	hrd_engine_arm_checkpoint(e);
	m->top = version;
	char at[32];
	hrd_info("%s%s: v%llu is v%llu's object again (%s)", hrd_engine_progress(e, m, at), m->name,
	         (unsigned long long)version, (unsigned long long)vfrom, cause);
	hrd_engine_serve(e, m, version, status == HRD_REUSED ? HRP_KIND_REUSED : HRP_KIND_ROLLBACK, path, vfrom);
	path = NULL;
out:
	free(tmp);
	free(path);
	return version;
}

/*
 * Inputs built before (an undo, a stash, a checkout back): publish that
 * build's object again as the next version, a `reused` row, with no
 * compile. 1 when it did, 0 when there is nothing to reuse or it could
 * not (then it is compiled).
 */
static int reuse(hrd_engine *e, hrd_mod *m, build *b)
{
	hrd_published k = {.below = UINT64_MAX, .key = b->key};
	int done = 0;
	if (b->key[0] && hrd_engine_published(e, m->name, &k) > 0 &&
	    republish(e, m, HRD_REUSED, k.version, k.artifact, b->key, b->cause)) {
		m->last = HRD_OK; /* the content is one that built: whatever failed since is undone */
		hrd_engine_set_str(&m->message, NULL);
		snprintf(m->key, sizeof m->key, "%s", b->key);
		done = 1;
	}
	hrd_engine_published_free(&k);
	return done;
}

/* Newest first: the row a hrd_published asks for, as hrd_engine_published says. */
static int take_published(const hrd_build *row, void *arg)
{
	hrd_published *p = arg;
	if (!hrd_engine_published_row(row) || (p->want ? row->version != p->want : row->version >= p->below) ||
	    (p->key && strcmp(row->source_hash, p->key) != 0))
		return 0;
	/* ours, by file name: a copied history names the original's objects/ */
	char *path = row->artifact[0] ? hrd_engine_object_path(p->e, row->module, row->version, row->artifact) : NULL;
	if (!path || access(path, R_OK) < 0) {
		free(path);
		return p->want != 0; /* that version's object is gone: say so; else look further back */
	}
	p->version = row->version;
	p->kind = hrd_engine_kind_of(row);
	p->artifact = path;
	if (!(p->source_hash = strdup(row->source_hash)))
		p->found = -1;
	else
		p->found = 1;
	return 1;
}

int hrd_engine_published(hrd_engine *e, const char *module, hrd_published *p)
{
	p->found = 0;
	p->e = e;
	p->artifact = p->source_hash = NULL;
	if (hrd_store_published(e->cfg.store, module, p->key, take_published, p) < 0)
		p->found = -1;
	if (p->found < 0)
		hrd_engine_published_free(p);
	return p->found;
}

void hrd_engine_published_free(hrd_published *p)
{
	free(p->artifact);
	free(p->source_hash);
	p->artifact = p->source_hash = NULL;
}

int hrd_engine_rollback(hrd_engine *e, hrd_mod *m, uint64_t version, int pin, char *err, size_t errsz)
{
	/* Before the compile the live version came from: a second rollback goes further back, not to the build it left. */
	hrd_published t = {.want = version, .below = m->origin ? m->origin : m->version};
	int rc = -1, found = hrd_engine_published(e, m->name, &t);
	if (found < 0) {
		snprintf(err, errsz, "%s", hrd_store_error(e->cfg.store));
	} else if (!found) {
		if (version)
			snprintf(err, errsz, "%s has no v%llu whose object is still there", m->name, (unsigned long long)version);
		else
			snprintf(err, errsz, "%s has no good build before v%llu whose object is still there", m->name,
			         (unsigned long long)t.below);
	} else {
		char cause[64];
		snprintf(cause, sizeof cause, "hotreload rollback to v%llu", (unsigned long long)t.version);
		uint64_t was = m->pin;
		m->pin = 0; /* a new rollback takes the place of a pin */
		uint64_t v = republish(e, m, HRD_ROLLBACK, t.version, t.artifact, t.source_hash, cause);
		if (!v) {
			m->pin = was;
			snprintf(err, errsz, "cannot put v%llu back (see the daemon's log)", (unsigned long long)t.version);
		} else {
			m->pin = pin ? v : 0;
			/* kept across restarts; the rollback is recorded either way */
			if ((was || pin) && hrd_store_set_pin(e->cfg.store, m->name, m->pin) < 0)
				hrd_error("%s: the pin is not kept across a restart: %s", m->name, hrd_store_error(e->cfg.store));
		}
		rc = v ? 0 : -1;
	}
	hrd_engine_published_free(&t);
	return rc;
}

/*
 * The quick tier beside b's run: tcc in one call, with the module's -I and
 * -D only (its other flags are the configured compiler's). Not for a module
 * tcc could not build under the same commands. Nothing is said if it cannot
 * start: the final build is the one that counts.
 */
static void start_quick(hrd_engine *e, hrd_mod *m, build *b)
{
	char **qbase = NULL, *cmd = NULL, *key = NULL;
	size_t n = 0;
	if (b->elsewhere) {
		hrd_debug("%s: not built quick: its compiler builds for another machine, and tcc for this one", m->name);
		return;
	}
	int rc = hrd_words_add(&qbase, &n, "tcc");
	for (size_t i = 0; rc == 0 && b->base[i]; i++)
		if ((strncmp(b->base[i], "-I", 2) == 0 || strncmp(b->base[i], "-D", 2) == 0) && b->base[i][2])
			rc = hrd_words_add(&qbase, &n, b->base[i]);
	if (rc < 0 || !(cmd = hrd_job_cmdline(qbase)) || !(key = hrd_job_cmdline(b->keyargv)) ||
	    asprintf(&b->qsig, "%s\n%s", cmd, key) < 0) {
		b->qsig = NULL;
		goto out;
	}
	if (m->noquick && strcmp(m->noquick, b->qsig) == 0) {
		hrd_debug("%s: not built quick: tcc could not build it", m->name);
		goto out;
	}
	if (asprintf(&b->qtmp, "%s/tmp/%s.%d.%lu.quick.so", e->cfg.state_dir, m->name, (int)getpid(), ++e->seq) < 0) {
		b->qtmp = NULL;
		goto out;
	}
	hrd_plan plan = {.src = &b->src, .base = qbase, .ld = b->ld, .mdeps = "-MD", .dirfd = e->project.rootfd,
	                 .cachefd = -1, .cache_dir = "", .single = 1, .out = b->qtmp, .name = m->name, .owner = b};
	if ((b->qrun = hrd_stage_start(e->stage, &plan)))
		hrd_debug("%s: building quick (%s)", m->name, hrd_run_result(b->qrun)->command);
out:
	free(cmd);
	free(key);
	hrd_words_free(qbase);
}

void hrd_engine_start_build(hrd_engine *e, hrd_mod *m)
{
	build *b = calloc(1, sizeof *b);
	if (!b) {
		hrd_error("%s: out of memory; the next change builds it", m->name);
		return;
	}
	int kind = m->unit ? hrd_engine_unit_resolve(e, m, &b->src) : hrd_project_resolve(&e->project, m->name, &b->src);
	if (kind != HRD_KIND_FILE && kind != HRD_KIND_DIR) {
		/* Changed again while queued: look again. */
		hrd_engine_free_build(b);
		hrd_engine_touch(e, m->name, m->cause);
		return;
	}
	char *stem = m->unit ? hrd_engine_stem(m->name) : NULL;
	if (m->unit && (!stem || asprintf(&b->tmp, "%s/tmp/%s.%d.%lu.o", e->cfg.state_dir, stem, (int)getpid(),
	                                  ++e->seq) < 0)) {
		free(stem);
		b->tmp = NULL;
		goto nomem;
	}
	free(stem);
	if ((m->unit ? hrd_engine_unit_command(e, m, b) : hrd_engine_command_for(e, m->name, b)) < 0 ||
	    hrd_deps_merge(&b->had, &m->deps) < 0 || !(b->stamps = calloc(b->src.n + b->had.n, sizeof *b->stamps)))
		goto nomem;
	if (!m->unit)
		hrd_engine_ccmd_note(e, m, b);
	if (hrd_project_key(&e->project, &b->src, &b->had, b->keyargv, b->key, b->stamps) < 0) {
		if (errno == ENOENT)
			hrd_debug("%s: cannot read its sources yet: %s", m->name, strerror(errno));
		else
			unreadable(e, m, &b->src, errno, m->cause);
		goto out;
	}
	if (strcmp(b->key, m->key) == 0) {
		char at[32];
		hrd_debug("%s%s: unchanged (%s)", hrd_engine_progress(e, m, at), m->name, m->cause);
		goto out;
	}
	if (hrd_project_busy(&e->project, &b->src)) {
		/* Found by a listing while still being written, or its close was just reported: see hrd_engine_arm_recheck. */
		hrd_debug("%s: a source is still open for writing; looking again in %u ms", m->name, e->recheck_ms);
		hrd_engine_arm_recheck(e, m);
		goto out;
	}
	/* Changed, and no event said so: the watcher missed it (a module with no key is built whatever changed). */
	if (m->key[0] && strcmp(m->cause, HRD_VERIFY_CAUSE) == 0) {
		e->missed++;
		hrd_warn("%s: changed, and only a verification scan saw it: the watcher missed it", m->name);
	}
	snprintf(b->cause, sizeof b->cause, "%s", m->cause);
	/* A unit with no history that no save has touched yet: see baseline_ended. */
	b->baseline = m->unit && !m->top && !m->last && !m->saved;
	if (!b->baseline && !m->fresh && reuse(e, m, b))
		goto out;
	b->m = m;
	if (!m->unit && asprintf(&b->tmp, "%s/tmp/%s.%d.%lu.so", e->cfg.state_dir, m->name, (int)getpid(), ++e->seq) < 0) {
		b->tmp = NULL;
		goto nomem;
	}
	char *cache_dir = NULL;
	if (asprintf(&cache_dir, "%s/cache", e->cfg.state_dir) < 0)
		goto nomem;
	/* A module of one source has nothing to reuse that its own key does not decide: only folders keep objects. */
	hrd_plan plan = {.src = &b->src, .base = b->base, .ld = b->ld, .mdeps = b->mdeps, .dirfd = e->project.rootfd,
	                 .cachefd = b->src.n > 1 ? e->cache_fd : -1, .cache_dir = cache_dir, .fresh = m->fresh, .out = b->tmp, .name = m->name,
	                 .owner = b, .whole = m->unit ? b->base : NULL, .dir = b->dir, .dep = b->dep};
	b->run = hrd_stage_start(e->stage, &plan);
	free(cache_dir);
	if (!b->run && m->unit && errno != ENOMEM) {
		/* the database's folder for it: gone, or not ours to enter */
		hrd_error("%s: cannot compile in %s, the unit's directory in the compile database: %s; build the program "
		          "again, or fix the database", m->name, b->dir, strerror(errno));
		goto out;
	}
	if (!b->run)
		goto nomem;
	b->started_us = hrd_engine_now_us(CLOCK_REALTIME);
	hrd_debug("%s: building (%s)", m->name, hrd_run_result(b->run)->command);
	if (!m->unit && hrd_config_quick(&e->conf, m->name))
		start_quick(e, m, b);
	m->job = b;
	m->state = HRD_M_BUILDING;
	return; /* its steps start as the engine pumps */
nomem:
	hrd_error("%s: out of memory; the next change builds it", m->name);
out:
	hrd_engine_free_build(b);
}

void hrd_engine_unpin(hrd_engine *e, hrd_mod *m)
{
	hrd_published t = {.below = UINT64_MAX};
	m->pin = 0;
	if (hrd_store_set_pin(e->cfg.store, m->name, 0) < 0)
		hrd_error("%s: %s", m->name, hrd_store_error(e->cfg.store));
	/* only forward: what was built while pinned */
	if (hrd_engine_published(e, m->name, &t) > 0 && t.version > m->version) {
		hrd_info("%s: unpinned: v%llu is live", m->name, (unsigned long long)t.version);
		hrd_engine_serve(e, m, t.version, t.kind, t.artifact, t.version); /* it takes the path */
		t.artifact = NULL;
	}
	hrd_engine_published_free(&t);
}
