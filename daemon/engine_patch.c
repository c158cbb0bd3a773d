/* engine_patch.c: the program's own translation units (--patch): the compile database, each unit's source and command, its objects. */
#include "words.h"
#include "engine_impl.h"
#include "log.h"
#include "statedir.h"
#include "../proto/sha256.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A unit's source as the watchers name it: root-relative under the root, else absolute. */
static char *watch_path(const hrd_engine *e, const char *abs)
{
	size_t rl = strlen(e->cfg.root);
	if (strncmp(abs, e->cfg.root, rl) == 0 && abs[rl] == '/')
		return strdup(abs + rl + 1);
	return strdup(abs);
}

char *hrd_engine_stem(const char *module)
{
	if (module[0] != '/')
		return strdup(module);
	/* A unit: its file name, made safe, and a hash of its whole path (two units may share a base name). */
	const char *base = strrchr(module, '/') + 1;
	char hex[65], safe[64], *out = NULL;
	size_t n = 0;
	for (const char *p = base; *p && n < sizeof safe - 1; p++)
		safe[n++] = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", *p) ? *p : '_';
	safe[n] = '\0';
	hrp_sha256 c;
	hrp_sha256_init(&c);
	hrp_sha256_update(&c, module, strlen(module));
	hrp_sha256_hex(&c, hex);
	if (asprintf(&out, "unit-%s-%.12s", safe, hex) < 0)
		return NULL;
	return out;
}

hrd_mod *hrd_engine_unit_at(hrd_engine *e, const char *path)
{
	for (size_t i = 0; i < e->nmods; i++)
		if (e->mods[i]->unit && e->mods[i]->src && strcmp(e->mods[i]->src, path) == 0)
			return e->mods[i];
	return NULL;
}

int hrd_engine_is_unit_source(hrd_engine *e, const char *path)
{
	hrd_mod *m = hrd_engine_unit_at(e, path);
	return m && m->kind == HRD_KIND_FILE;
}

/* Where the database is: --patch, else hotreload.conf's patch (relative to the root). A new string, normal (as the
 * watchers and compile_commands are compared with it), or NULL for none. */
static char *db_path(const hrd_engine *e)
{
	if (e->cfg.patch)
		return hrd_cdb_normal(e->cfg.root, e->cfg.patch);
	if (!e->conf.patch)
		return NULL;
	return hrd_cdb_normal(e->cfg.root, e->conf.patch);
}

/*
 * The database at path, when no other user can write it (hrd_trusted_file_open): its commands run as us, so a
 * file or folder another user can write would let them run theirs. 0, or -1 with err.
 */
static int load(const char *path, hrd_cdb *db, char *err, size_t n)
{
	*db = (hrd_cdb){0};
	int fd = hrd_trusted_file_open(path, "the compile database", "--patch (or patch = in hotreload.conf)", err, n);
	if (fd < 0 && errno == ENOENT)
		snprintf(err, n, "%s: cannot read the compile database: %s; build the program so that its build writes it",
		         path, strerror(ENOENT));
	if (fd < 0)
		return -1;
	int rc = hrd_cdb_load(fd, path, db, err, n);
	close(fd);
	return rc;
}

int hrd_engine_patch_load(hrd_engine *e, const char *cause)
{
	char *path = db_path(e), err[sizeof e->cdb_error];
	hrd_cdb db;
	if (!path && (e->cfg.patch || e->conf.patch)) {
		hrd_error("out of memory");
		return 0;
	}
	free(e->patch);
	e->patch = path;
	free(e->patch_watch);
	e->patch_watch = path ? watch_path(e, path) : NULL;
	if (!path) {
		db = (hrd_cdb){0};
	} else if (load(path, &db, err, sizeof err) < 0) {
		if (strcmp(err, e->cdb_error) != 0)
			hrd_warn("%s; the units of the last good database stay until it is fixed", err);
		snprintf(e->cdb_error, sizeof e->cdb_error, "%s", err);
		return 0;
	}
	if (e->cdb_error[0] || !e->cdb_loaded)
		hrd_info("%s: %zu translation unit%s to patch (%s)", path ? path : "no compile database", db.n,
		         db.n == 1 ? "" : "s", cause);
	if (db.refused > 1)
		hrd_warn("%s (and %zu more units of the database)", db.why, db.refused - 1);
	else if (db.refused)
		hrd_warn("%s", db.why);
	e->cdb_error[0] = '\0';
	e->cdb_loaded = 1;
	hrd_cdb_free(&e->cdb);
	e->cdb = db;
	/* Units the database names now: each looked at (a changed command is another key); the others are gone. */
	for (size_t i = 0; i < e->nmods; i++)
		if (e->mods[i]->unit && !hrd_cdb_find(&e->cdb, e->mods[i]->name))
			hrd_engine_touch(e, e->mods[i]->name, cause);
	for (size_t i = 0; i < e->cdb.n; i++)
		hrd_engine_touch(e, e->cdb.u[i].file, cause);
	return 1;
}

int hrd_engine_unit_resolve(hrd_engine *e, hrd_mod *m, hrd_sources *out)
{
	*out = (hrd_sources){0};
	if (!hrd_cdb_find(&e->cdb, m->name))
		return HRD_KIND_NONE;
	if (!m->src && !(m->src = watch_path(e, m->name)))
		return -1;
	if (!(out->path = calloc(2, sizeof *out->path)) || !(out->path[0] = strdup(m->src))) {
		hrd_sources_free(out);
		errno = ENOMEM;
		return -1;
	}
	out->n = 1;
	return HRD_KIND_FILE;
}

int hrd_engine_unit_command(hrd_engine *e, hrd_mod *m, build *b)
{
	const hrd_cdb_unit *u = hrd_cdb_find(&e->cdb, m->name);
	if (!u || !(b->dir = strdup(u->dir)) || asprintf(&b->dep, "%s.d", b->tmp) < 0) {
		b->dep = NULL;
		return -1;
	}
	/* The key covers the command, not where this daemon puts its outputs: the same inputs are the same key. */
	b->base = hrd_cdb_patch_argv(u, b->tmp, b->dep);
	b->keyargv = hrd_cdb_patch_argv(u, "OBJECT", "DEPFILE");
	size_t n = 0;
	while (b->keyargv && b->keyargv[n])
		n++;
	/* A compiler named relative to the unit's directory, where it runs: the key finds it from the root, so names it whole. */
	for (size_t i = 0; i < n && b->keyargv[i][0] != '-'; i++) {
		char *whole;
		if (b->keyargv[i][0] == '/' || !strchr(b->keyargv[i], '/'))
			continue;
		if (asprintf(&whole, "%s/%s", u->dir, b->keyargv[i]) < 0)
			return -1;
		free(b->keyargv[i]);
		b->keyargv[i] = whole;
	}
	if (!b->base || !b->keyargv || hrd_words_add(&b->keyargv, &n, "--in") < 0 ||
	    hrd_words_add(&b->keyargv, &n, u->dir) < 0)
		return -1;
	b->mdeps = "-MMD";
	return 0;
}

int hrd_engine_relocatable(const char *path, char *why, size_t n)
{
	Elf64_Ehdr h;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t got = fd >= 0 ? pread(fd, &h, sizeof h, 0) : -1;
	if (fd >= 0)
		close(fd);
	if (got < 0) {
		snprintf(why, n, "cannot read the object: %s", strerror(errno));
		return 0;
	}
	if ((size_t)got < sizeof h || memcmp(h.e_ident, ELFMAG, SELFMAG) != 0 || h.e_ident[EI_CLASS] != ELFCLASS64) {
		snprintf(why, n, "the compile did not write a 64-bit ELF object: check the database's command for this unit");
		return 0;
	}
	if (h.e_type != ET_REL) {
		snprintf(why, n, "the compile wrote an ELF file of type %u, not a relocatable object (ET_REL): the "
		         "database's command for this unit must compile, not link", (unsigned)h.e_type);
		return 0;
	}
	return 1;
}
