/* engine_server.c: the server's questions, answered from the modules table and the history. */
#include "words.h"
#include "engine_impl.h"
#include "log.h"
#include "objcache.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a subscriber to md hears at once: its newest good build, and why its last failed. 0..2. */
static int latest_of(hrd_mod *md, hrp_msg out[2])
{
	int n = 0;
	if (!md || md->invalid)
		return 0;
	if (md->version) {
		hrd_engine_mod_sum(md);
		out[n++] = (hrp_msg){.type = HRP_BUILD,
		                     .u.build = {md->name, md->version, md->good_kind, md->artifact, md->sha256, md->size}};
	}
	/* A game that starts while its module is broken hears why at once. */
	if (md->last == HRD_FAILED)
		out[n++] = (hrp_msg){.type = HRP_FAILED, .u.failed = {md->name, md->message ? md->message : ""}};
	return n;
}

static int latest(void *arg, const char *module, hrp_msg out[2])
{
	return latest_of(hrd_engine_find(arg, module), out);
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(hrd_mod *const *)a)->name, (*(hrd_mod *const *)b)->name);
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
		hrd_mod *md = e->mods[i];
		hrp_modstat *s = &e->status[n];
		if (md->kind == HRD_KIND_NONE && !md->version)
			continue; /* gone, and never built */
		s->module = md->name;
		s->version = md->invalid ? 0 : md->version;
		s->message = md->message ? md->message : "";
		if (md->pin) {
			snprintf(md->pinned, sizeof md->pinned, "pinned at v%llu: newer builds wait for hotreload unpin %s%s%s",
			         (unsigned long long)md->pin, md->name, md->last == HRD_FAILED ? "; the last build failed: " : "",
			         md->last == HRD_FAILED && md->message ? md->message : "");
			s->message = md->pinned;
		}
		if (md->invalid) {
			s->status = "skipped";
			s->message = "not a module name: use " HRP_NAME_RULE;
		} else if (md->kind == HRD_KIND_CONFLICT || md->kind == HRD_KIND_OUTSIDE) {
			s->status = md->kind == HRD_KIND_CONFLICT ? "conflict" : "skipped";
			s->message = md->note ? md->note : "";
		} else if (md->kind == HRD_KIND_NONE) {
			s->status = "removed";
		} else if (md->state == HRD_M_BUILDING) {
			s->status = "building";
		} else if (md->state == HRD_M_QUEUED) {
			s->status = "queued";
		} else {
			s->status = md->last == HRD_FAILED ? "failed" : md->last == HRD_OK || md->version ? "ok" : "none";
		}
		if (md->noquick && !*s->message)
			s->message = "not built quick: tcc cannot build it (tried again once its configuration changes)";
		n++;
	}
	m->u.status.root = e->cfg.root;
	m->u.status.state_dir = e->cfg.state_dir;
	m->u.status.backend = hrd_watch_backend(e->cfg.watch);
	m->u.status.reason = hrd_watch_reason(e->cfg.watch);
	int unwatched = hrd_watch_unwatched(e->cfg.watch), polled = hrd_watch_polled(e->cfg.watch);
	if (unwatched || polled || e->conf_error[0] || e->cdb_error[0]) {
		char lost[160] = "", slow[160] = "", more[sizeof e->conf_error + 64] = "", db[sizeof e->cdb_error + 64] = "";
		if (unwatched)
			snprintf(lost, sizeof lost, "; %d folder%s not watched: saves there are missed (see the log)", unwatched,
			         unwatched == 1 ? " is" : "s are");
		if (polled)
			snprintf(slow, sizeof slow, "; %d folder%s polled: no watch was left for %s (see the log)", polled,
			         polled == 1 ? " is" : "s are", polled == 1 ? "it" : "them");
		if (e->conf_error[0])
			snprintf(more, sizeof more, "; %s (the settings before it stay)", e->conf_error);
		if (e->cdb_error[0])
			snprintf(db, sizeof db, "; %s (the units of the last good one stay)", e->cdb_error);
		snprintf(e->reason, sizeof e->reason, "%s%s%s%s%s", hrd_watch_reason(e->cfg.watch), lost, slow, more, db);
		m->u.status.reason = e->reason;
	}
	m->u.status.nmods = n;
	m->u.status.mods = e->status;
	struct hrd_watch_report r;
	hrd_watch_report(e->cfg.watch, &r);
	m->u.status.cpu_ms = r.cpu_ms;
	m->u.status.events = r.events;
	m->u.status.overflows = r.overflows;
	m->u.status.rescans = r.rescans;
	m->u.status.verify_scans = e->verify_scans;
	m->u.status.missed = e->missed;
	m->u.status.outside = e->outside_list ? e->outside_list : "";
}

static int refused(void *arg, const char *module, uint64_t version, const char *reason, pid_t pid, int record,
                   int (*was_refused)(void *ctx, const char *module, uint64_t version), void *ctx, hrp_msg *answer)
{
	hrd_engine *e = arg;
	char cause[64];
	snprintf(cause, sizeof cause, "client %d", (int)pid);
	hrd_build row = {.module = module, .status = HRD_REFUSED, .version = version,
	                 .started_us = hrd_engine_now_us(CLOCK_REALTIME), .message = reason, .cause = cause};
	if (!record)
		hrd_debug("%s: v%llu refused by client %d, not recorded: %s", module, (unsigned long long)version, (int)pid,
		          reason);
	else
		hrd_warn("%s: v%llu refused by client %d: %s", module, (unsigned long long)version, (int)pid, reason);
	if (record && hrd_store_record(e->cfg.store, &row) < 0)
		hrd_error("%s", hrd_store_error(e->cfg.store));
	else if (record)
		hrd_engine_arm_checkpoint(e);
	/* A build that one process cannot load is passed over there for the newest older one. */
	hrd_mod *md = hrd_engine_find(e, module);
	if (!md || md->invalid || md->pin)
		return 0; /* pinned: nothing else is to be served, older or newer */
	free(e->older);
	e->older = NULL;
	/* The newest older one that this client did not refuse already: a newer
	 * one it refused since may have been offered meanwhile (v3 refused, v2
	 * offered, v4 in before v2 went live and refused: v2 again, not v3). */
	hrd_published o = {.below = version};
	for (;;) {
		if (hrd_engine_published(e, module, &o) <= 0)
			return 0;
		if (!was_refused(ctx, module, o.version))
			break;
		uint64_t below = o.version;
		hrd_engine_published_free(&o);
		o = (hrd_published){.below = below};
	}
	hrd_engine_object_sum(module, o.artifact, e->older_sha256, &e->older_size);
	*answer = (hrp_msg){.type = HRP_BUILD,
	                    .u.build = {md->name, o.version, o.kind, o.artifact, e->older_sha256, e->older_size}};
	e->older = o.artifact; /* until the next call */
	o.artifact = NULL;
	hrd_engine_published_free(&o);
	return 1;
}

static void loaded(void *arg, const char *module, uint64_t version, uint64_t at_us, pid_t pid, int64_t since_us)
{
	hrd_engine *e = arg;
	hrd_info("%s: v%llu live in client %d", module, (unsigned long long)version, (int)pid);
	/* for save-to-live in stats: the client's own clock, from the moment it switched */
	if (hrd_store_loaded(e->cfg.store, module, version, pid, (int64_t)at_us, since_us) < 0)
		hrd_warn("%s", hrd_store_error(e->cfg.store));
	else
		hrd_engine_arm_checkpoint(e);
}

/* hotreload build: a compile, whatever the key, and no reuse (what the key cannot see may have changed). */
static int build_now(void *arg, const char *module)
{
	hrd_engine *e = arg;
	hrd_mod *md = hrd_engine_find(e, module);
	if (!md || md->invalid || (md->kind != HRD_KIND_FILE && md->kind != HRD_KIND_DIR))
		return -1;
	md->key[0] = '\0';
	md->fresh = 1;
	hrd_engine_touch(e, module, "hotreload build");
	hrd_engine_write_ccmds(e);
	return 0;
}

static int rollback(void *arg, const char *module, uint64_t version, uint32_t action, char *err, size_t errsz)
{
	hrd_engine *e = arg;
	hrd_mod *md = hrd_engine_find(e, module);
	uint64_t pin = 0;
	if ((!md || md->invalid) && action == HRP_UNPIN && hrd_store_pin(e->cfg.store, module, &pin) > 0) {
		/* a module gone from the root: its pin goes from the history */
		if (hrd_store_set_pin(e->cfg.store, module, 0) < 0) {
			snprintf(err, errsz, "%s", hrd_store_error(e->cfg.store));
			return -1;
		}
		hrd_info("%s: unpinned (it is not in the root now)", module);
		return 0;
	}
	if (!md || md->invalid || !md->top) {
		snprintf(err, errsz, "no module '%s' with a good build (hotreload history lists them)", module);
		return -1;
	}
	if (action == HRP_UNPIN) {
		hrd_engine_unpin(e, md);
		return 0;
	}
	if (action != HRP_ROLLBACK && action != HRP_ROLLBACK_PIN) {
		snprintf(err, errsz, "no such rollback action: %u", action);
		return -1;
	}
	return hrd_engine_rollback(e, md, version, action == HRP_ROLLBACK_PIN, err, errsz);
}

/* ---- gc: the objects kept, by file name (the state dir may have moved since a row was written) ---- */

struct keeping {
	hrd_engine *e;
	char **names;
	size_t n, cap;
	int keep, seen, failed;
	uint64_t pin; /* the module's pin, kept too, until its row is met */
};

static void keep_name(struct keeping *k, const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (!*base)
		return;
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 64;
		char **g = realloc(k->names, cap * sizeof *g);
		if (!g) {
			k->failed = 1;
			return;
		}
		k->names = g;
		k->cap = cap;
	}
	if (!(k->names[k->n] = strdup(base)))
		k->failed = 1;
	else
		k->n++;
}

/* Newest first: the newest keep published rows of one module, and its pinned one. */
static int keep_row(const hrd_build *b, void *arg)
{
	struct keeping *k = arg;
	if (!hrd_engine_published_row(b) || !b->artifact || !*b->artifact)
		return 0;
	if (k->seen < k->keep || b->version == k->pin)
		keep_name(k, b->artifact);
	k->seen++;
	if (b->version == k->pin)
		k->pin = 0;
	return k->seen >= k->keep && !k->pin;
}

static int keep_module(void *arg, const char *module)
{
	struct keeping *k = arg;
	k->seen = 0;
	k->pin = 0;
	/* a pin of a module that is not there now holds when it comes back */
	if (hrd_store_pin(k->e->cfg.store, module, &k->pin) < 0 ||
	    hrd_store_history(k->e->cfg.store, module, 0, keep_row, k) < 0)
		k->failed = 1;
	return k->failed;
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void keep_cached(void *arg, const char *name)
{
	keep_name(arg, name);
}

/* The cache files of module m's sources as they are now (its last compile of each, and the one that would be reused now). */
static void keep_sources(hrd_engine *e, hrd_mod *m, struct keeping *k)
{
	hrd_sources src;
	build b = {0};
	int kind = hrd_project_resolve(&e->project, m->name, &src);
	if (kind < 0)
		return;
	if ((kind == HRD_KIND_FILE || kind == HRD_KIND_DIR) && src.n > 1 && hrd_engine_command_for(e, m->name, &b) == 0)
		for (size_t i = 0; i < src.n; i++) {
			hrd_objcache_entry ce;
			if (hrd_objcache_lookup(e->cache_fd, e->project.rootfd, e->cfg.root, b.base, b.mdeps, src.path[i], &ce) < 0 &&
			    !ce.id[0])
				k->failed = 1; /* out of memory: keep everything */
			hrd_objcache_names(e->cache_fd, &ce, keep_cached, k);
			hrd_objcache_entry_free(&ce);
		}
	hrd_words_free(b.base);
	hrd_words_free(b.ld);
	hrd_words_free(b.keyargv);
	hrd_sources_free(&src);
}

/* The cache keeps what each module's sources are now, and what the builds under way link: the rest goes. */
static void gc_cache(hrd_engine *e)
{
	struct keeping k = {.e = e};
	uint64_t files = 0, bytes = 0;
	for (size_t i = 0; i < e->nmods; i++)
		if (!e->mods[i]->invalid)
			keep_sources(e, e->mods[i], &k);
	hrd_stage_cached(e->stage, keep_cached, &k);
	if (k.n)
		qsort(k.names, k.n, sizeof *k.names, by_str);
	if (k.failed)
		hrd_warn("gc: out of memory; the compiled sources in cache/ are kept");
	else if (hrd_objcache_gc(e->cache_fd, k.names, k.n, &files, &bytes) < 0)
		hrd_warn("gc: cannot read %s/cache: %s", e->cfg.state_dir, strerror(errno));
	else
		hrd_info("gc: %llu files of compiled sources removed from cache/ (%llu bytes)", (unsigned long long)files,
		         (unsigned long long)bytes);
	for (size_t i = 0; i < k.n; i++)
		free(k.names[i]);
	free(k.names);
}

/*
 * Remove the objects no longer kept: for each module, all but what it serves
 * (its pin, if pinned) and its newest keep published versions, which a
 * rollback, a reuse or a client's fallback may want; and the compiled sources
 * in cache/ that no module's sources are now. Then compact the history.
 */
static int gc(void *arg, hrp_msg *answer, char *err, size_t errsz)
{
	hrd_engine *e = arg;
	struct keeping k = {.e = e, .keep = e->conf.keep ? e->conf.keep : HRD_KEEP_OBJECTS};
	char dir[4200], path[4500];
	int rc = -1;
	DIR *d = NULL;
	*answer = (hrp_msg){.type = HRP_GC};
	if (hrd_store_modules(e->cfg.store, keep_module, &k) < 0 || k.failed) {
		snprintf(err, errsz, "%s", k.failed && !*hrd_store_error(e->cfg.store) ? "out of memory"
		                                                                           : hrd_store_error(e->cfg.store));
		goto out;
	}
	for (size_t i = 0; i < e->nmods; i++)
		if (e->mods[i]->artifact)
			keep_name(&k, e->mods[i]->artifact);
	if (e->older)
		keep_name(&k, e->older); /* offered to a program that refused a newer one: it may be loading it */
	if (k.failed) {
		snprintf(err, errsz, "out of memory");
		goto out;
	}
	if (k.n)
		qsort(k.names, k.n, sizeof *k.names, by_str);
	snprintf(dir, sizeof dir, "%s/objects", e->cfg.state_dir);
	if (!(d = opendir(dir))) {
		snprintf(err, errsz, "cannot read %s: %s", dir, strerror(errno));
		goto out;
	}
	struct dirent *ent;
	struct stat st;
	while ((ent = readdir(d))) {
		size_t len = strlen(ent->d_name);
		const char *name = ent->d_name;
		if (len < 4 || strcmp(name + len - 3, ".so") != 0 || (k.n && bsearch(&name, k.names, k.n, sizeof *k.names, by_str)))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, name);
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && unlink(path) == 0) {
			answer->u.gc.files++;
			answer->u.gc.bytes += (uint64_t)st.st_size;
		}
	}
	gc_cache(e);
	hrd_info("gc: %llu objects removed (%llu bytes); compacting the history (nothing else is answered meanwhile)",
	         (unsigned long long)answer->u.gc.files, (unsigned long long)answer->u.gc.bytes);
	if (hrd_store_compact(e->cfg.store, &answer->u.gc.db_before, &answer->u.gc.db_after) < 0) {
		snprintf(err, errsz, "%llu objects removed, but %s", (unsigned long long)answer->u.gc.files,
		         hrd_store_error(e->cfg.store));
		goto out;
	}
	hrd_info("gc: history.db %llu bytes, was %llu", (unsigned long long)answer->u.gc.db_after,
	         (unsigned long long)answer->u.gc.db_before);
	rc = 0;
out:
	if (d)
		closedir(d);
	for (size_t i = 0; i < k.n; i++)
		free(k.names[i]);
	free(k.names);
	return rc;
}

/*
 * Units in the modules table's order, the cursor an index in it: the table is not reordered while the server walks it
 * (one call after another, on the loop), and each unit is looked at once.
 */
static int unit_latest(void *arg, size_t *cursor, hrp_msg out[2])
{
	hrd_engine *e = arg;
	while (*cursor < e->nmods) {
		hrd_mod *md = e->mods[(*cursor)++];
		if (md->unit)
			return latest_of(md, out);
	}
	return -1;
}

/* The BUILD of version of module, for a client whose BUILD of it came without its descriptor. */
static int object(void *arg, const char *module, uint64_t version, hrp_msg *answer)
{
	hrd_engine *e = arg;
	hrd_mod *md = hrd_engine_find(e, module);
	hrd_published o = {.want = version};
	if (!md || md->invalid || !version || hrd_engine_published(e, module, &o) <= 0)
		return 0;
	hrd_engine_object_sum(module, o.artifact, e->older_sha256, &e->older_size);
	*answer = (hrp_msg){.type = HRP_BUILD,
	                    .u.build = {md->name, o.version, o.kind, o.artifact, e->older_sha256, e->older_size}};
	free(e->older);
	e->older = o.artifact; /* until the next call */
	o.artifact = NULL;
	hrd_engine_published_free(&o);
	return 1;
}

const hrd_server_ops hrd_engine_server_ops = {latest, status, refused, loaded, build_now, rollback, gc, unit_latest, object};

void hrd_engine_set_server(hrd_engine *e, hrd_server *s)
{
	e->server = s;
}
