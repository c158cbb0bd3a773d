/* objcache.h: each source's compiled object kept in STATE/cache, keyed by everything that decides it. */
#ifndef HRD_OBJCACHE_H
#define HRD_OBJCACHE_H

/*
 * A source's key follows the module key's rules (hrd_project_key): the
 * compile's command line and its compiler's identity, the source's name and
 * content, and the name and content of every header its own last compile
 * read (its dependency file: no system headers, as -MMD has it). It does not
 * cover what the module key does not: the compiler's other parts (cc1),
 * system headers, the environment.
 *
 * In the folder, by key K and by source id I (the command line and the
 * source's name): K.o, K.d (its dependency file), K.out (its output, if it
 * said anything), and I.key (the key of that source's last compile).
 *
 * Errors: -1 with errno; a cache that cannot be read or written is a miss.
 */

#include "deps.h"
#include "project.h"

#include <stddef.h>
#include <stdint.h>

#define HRD_OBJCACHE_NAME_MAX 72 /* a file name of the cache: 64 hex digits and a suffix */

/* What the cache knows of one source before its compile. */
typedef struct hrd_objcache_entry {
	char id[65];    /* the command line and the source's name */
	char last[65];  /* the key of its last compile, "" for none */
	char key[65];   /* the key of it now, with the headers of its last compile; "" when none can be had */
	hrd_deps had;   /* those headers */
	hrd_stamp *st;  /* the source, then each of had, before they were read */
	int hit;        /* key.o is there: no compile */
} hrd_objcache_entry;

/* Look src (root-relative, read through rootfd), compiled with base and mdeps, up: fills e. 0, or -1 (then a miss; e still to free). */
int hrd_objcache_lookup(int cachefd, int rootfd, const char *root, char *const *base, const char *mdeps,
                        const char *src, hrd_objcache_entry *e);
void hrd_objcache_entry_free(hrd_objcache_entry *e);

/*
 * Keep a compile that succeeded: obj and dep (its outputs, through AT_FDCWD)
 * linked into the cache under the key of what it read, and out (its output)
 * with them. Only when the source and every header it read held still from
 * before the compile (started_us, CLOCK_REALTIME) to now; else nothing is
 * kept, and the next build compiles it again. 0 when kept, -1 when not.
 */
int hrd_objcache_store(int cachefd, int rootfd, const char *root, char *const *base, const char *mdeps,
                       const char *src, const hrd_objcache_entry *e, int64_t started_us, const char *obj, const char *dep,
                       const char *out);

/* The output kept with key (NULL when none); the caller frees it. */
char *hrd_objcache_output(int cachefd, const char *key);

/* Call keep with each file name of the cache that src's entry e needs: its I.key, and the files of its last and current keys. */
void hrd_objcache_names(int cachefd, const hrd_objcache_entry *e, void (*keep)(void *arg, const char *name), void *arg);

/* Remove every file of the cache not in keep (sorted, n names): counts what went. 0, or -1. */
int hrd_objcache_gc(int cachefd, char *const *keep, size_t n, uint64_t *files, uint64_t *bytes);

#endif
