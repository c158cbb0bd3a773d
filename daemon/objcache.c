/* objcache.c: each source's compiled object kept in STATE/cache, keyed as the module key is, so that a save compiles only what changed. */
#include "objcache.h"
#include "readfile.h"
#include "../proto/sha256.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TICK_US 20000 /* file times come from a clock that may lag the real one by a tick */

/* base, then mdeps: the compile's command line as its key covers it (its outputs' paths are not inputs). NULL when out of memory. */
static char **key_argv(char *const *base, const char *mdeps)
{
	size_t n = 0;
	while (base[n])
		n++;
	char **argv = calloc(n + 3, sizeof *argv);
	if (!argv)
		return NULL;
	memcpy(argv, base, n * sizeof *argv);
	argv[n] = "-c";
	argv[n + 1] = (char *)mdeps;
	return argv;
}

static void id_of(char *const *argv, const char *src, char out[65])
{
	hrp_sha256 c;
	hrp_sha256_init(&c);
	for (size_t i = 0; argv[i]; i++)
		hrp_sha256_update(&c, argv[i], strlen(argv[i]) + 1);
	hrp_sha256_update(&c, "\0source", 7);
	hrp_sha256_update(&c, src, strlen(src) + 1);
	hrp_sha256_hex(&c, out);
}

static int is_key(const char *s, size_t n)
{
	return n == 64 && strspn(s, "0123456789abcdef") == 64;
}

void hrd_objcache_entry_free(hrd_objcache_entry *e)
{
	hrd_deps_free(&e->had);
	free(e->st);
	e->st = NULL;
}

int hrd_objcache_lookup(int cachefd, int rootfd, const char *root, char *const *base, const char *mdeps,
                        const char *src, hrd_objcache_entry *e)
{
	char name[HRD_OBJCACHE_NAME_MAX], **argv = key_argv(base, mdeps);
	char *const srcs[] = {(char *)src};
	hrd_sources one = {(char **)srcs, 1};
	hrd_project p = {.rootfd = rootfd};
	size_t len;
	*e = (hrd_objcache_entry){0};
	if (!argv)
		return -1;
	id_of(argv, src, e->id);
	snprintf(name, sizeof name, "%s.key", e->id);
	char *last = hrd_readfile(cachefd, name, 64, &len);
	if (last && is_key(last, len)) {
		memcpy(e->last, last, 65);
		snprintf(name, sizeof name, "%s.d", e->last);
		/* The headers its last compile read. Without them, none: a key is sound whatever headers it names. */
		if (hrd_deps_read(&e->had, cachefd, name, root, srcs, 1) < 0)
			hrd_deps_free(&e->had);
	}
	free(last);
	int rc = -1;
	if (!(e->st = calloc(1 + e->had.n, sizeof *e->st)) || hrd_project_key(&p, &one, &e->had, argv, e->key, e->st) < 0) {
		e->key[0] = '\0';
		goto out;
	}
	snprintf(name, sizeof name, "%s.o", e->key);
	e->hit = faccessat(cachefd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
	rc = 0;
out:
	free(argv);
	return rc;
}

/* The key of what the compile read (now), if the source and those headers held still since before it began. 0 or -1. */
static int key_read(int rootfd, char *const *argv, const char *src, const hrd_objcache_entry *e, const hrd_deps *now,
                    int64_t started_us, char key[65])
{
	char *const srcs[] = {(char *)src};
	hrd_sources one = {(char **)srcs, 1};
	hrd_project p = {.rootfd = rootfd};
	if (!e->st)
		return -1; /* its source was not read before the compile */
	if (e->key[0] && hrd_deps_equal(now, &e->had)) {
		/* What the key before it named: it holds if none of it changed. */
		if (!hrd_project_unchanged(&p, &one, &e->had, e->st))
			return -1;
		memcpy(key, e->key, 65);
		return 0;
	}
	hrd_stamp *st = calloc(1 + now->n, sizeof *st);
	int rc = st && hrd_project_key(&p, &one, now, argv, key, st) == 0 && memcmp(&st[0], &e->st[0], sizeof *st) == 0 ? 0 : -1;
	/* A header it read for the first time: not written since a tick before the compile began. */
	for (size_t i = 0; rc == 0 && i < now->n; i++)
		if (st[1 + i].ctime_ns / 1000 >= started_us - TICK_US)
			rc = -1;
	free(st);
	return rc;
}

/* from (through AT_FDCWD) as name in the cache, by a hard link: the same bytes, and a cache file is never written in place. */
static int put(int cachefd, const char *from, const char *name)
{
	return linkat(AT_FDCWD, from, cachefd, name, 0) == 0 || errno == EEXIST ? 0 : -1;
}

int hrd_objcache_store(int cachefd, int rootfd, const char *root, char *const *base, const char *mdeps,
                       const char *src, const hrd_objcache_entry *e, int64_t started_us, const char *obj,
                       const char *dep, const char *out)
{
	char name[HRD_OBJCACHE_NAME_MAX], tmp[HRD_OBJCACHE_NAME_MAX], key[65], **argv = key_argv(base, mdeps);
	char *const srcs[] = {(char *)src};
	hrd_deps now = {0};
	int rc = -1;
	if (!argv || hrd_deps_read(&now, AT_FDCWD, dep, root, srcs, 1) < 0 ||
	    key_read(rootfd, argv, src, e, &now, started_us, key) < 0)
		goto done;
	/* The object last: where K.o is, K.d is too. */
	snprintf(name, sizeof name, "%s.d", key);
	if (put(cachefd, dep, name) < 0)
		goto done;
	size_t n = out ? strlen(out) : 0;
	snprintf(name, sizeof name, "%s.out", key);
	int fd = n ? openat(cachefd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
	if (fd >= 0) {
		if (write(fd, out, n) != (ssize_t)n)
			unlinkat(cachefd, name, 0); /* only its output: the object is kept without it */
		close(fd);
	}
	snprintf(name, sizeof name, "%s.o", key);
	if (put(cachefd, obj, name) < 0)
		goto done;
	/* Then which key this source had last, replaced whole. */
	snprintf(tmp, sizeof tmp, "%s.new", e->id);
	snprintf(name, sizeof name, "%s.key", e->id);
	fd = openat(cachefd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		goto done;
	int wrote = write(fd, key, 64) == 64;
	if (close(fd) == 0 && wrote && renameat(cachefd, tmp, cachefd, name) == 0)
		rc = 0;
	else
		unlinkat(cachefd, tmp, 0);
done:
	free(argv);
	hrd_deps_free(&now);
	return rc;
}

char *hrd_objcache_output(int cachefd, const char *key)
{
	char name[HRD_OBJCACHE_NAME_MAX];
	size_t len;
	snprintf(name, sizeof name, "%s.out", key);
	return hrd_readfile(cachefd, name, 1u << 20, &len);
}

void hrd_objcache_names(int cachefd, const hrd_objcache_entry *e, void (*keep)(void *arg, const char *name), void *arg)
{
	static const char *const ext[] = {"o", "d", "out"};
	char name[HRD_OBJCACHE_NAME_MAX];
	(void)cachefd;
	snprintf(name, sizeof name, "%s.key", e->id);
	keep(arg, name);
	for (size_t i = 0; i < 3; i++) {
		if (e->last[0]) {
			snprintf(name, sizeof name, "%s.%s", e->last, ext[i]);
			keep(arg, name);
		}
		if (e->key[0] && strcmp(e->key, e->last) != 0) {
			snprintf(name, sizeof name, "%s.%s", e->key, ext[i]);
			keep(arg, name);
		}
	}
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int hrd_objcache_gc(int cachefd, char *const *keep, size_t n, uint64_t *files, uint64_t *bytes)
{
	int fd = openat(cachefd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct dirent *ent;
	struct stat st;
	while ((ent = readdir(d))) {
		const char *name = ent->d_name;
		if (name[0] == '.' || (n && bsearch(&name, keep, n, sizeof *keep, by_str)))
			continue;
		if (fstatat(cachefd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && unlinkat(cachefd, name, 0) == 0) {
			++*files;
			*bytes += S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
		}
	}
	closedir(d);
	return 0;
}
