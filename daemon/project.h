/* project.h: what the watched root holds: module names, their sources, the key of their inputs. */
#ifndef HRD_PROJECT_H
#define HRD_PROJECT_H

/*
 * Errors: -1 (or NULL) with errno.
 */

#include <stddef.h>

#include "deps.h"

/*
 * The layout the README gives (The daemon), without configuration: ROOT/NAME.c is the module
 * NAME; ROOT/NAME/ holding .c files directly is the module NAME, built from
 * them; both at once is a conflict. hotreload.conf may exclude paths, and
 * give a module sources of its own (patterns under the root), which win. ".git" and the state dir are never
 * looked at; other hidden names are candidates, reported as invalid. Hidden
 * files in a module's folder (editors' ".#name.c") are not its sources.
 */
enum hrd_kind {
	HRD_KIND_NONE,
	HRD_KIND_FILE,
	HRD_KIND_DIR,
	HRD_KIND_CONFLICT,
	HRD_KIND_OUTSIDE, /* NAME.c or NAME/ is a link out of the root, and links are not followed */
};

typedef struct hrd_project {
	int rootfd;       /* the root, O_PATH|O_DIRECTORY */
	const char *skip; /* a top-level entry that is not part of the project (the state dir), or NULL */
	const char *root;       /* its path: source patterns are matched under it */
	const struct hrd_config *conf; /* hotreload.conf's exclusions and modules with sources of their own, or NULL */
	int follow;                    /* a link out of the root is a module too (--follow-links) */
} hrd_project;

/* A module's sources, root-relative and sorted. */
typedef struct hrd_sources {
	char **path;
	size_t n;
} hrd_sources;


/*
 * The module that a root-relative path (of a file or folder, present or
 * gone) may belong to, written to name (size n). Returns 1, or 0 when the
 * path cannot be part of a module (hidden, nested deeper, not a .c file).
 * The name may be invalid: the caller reports it.
 */
int hrd_project_module_of(const hrd_project *p, const char *path, char *name, size_t n);

/* What a source was when it was read: a compile is trusted only if it still is. */
typedef struct hrd_stamp {
	unsigned long long dev, ino;
	long long size, mtime_ns, ctime_ns;
} hrd_stamp;

/* What name is now, and its sources for FILE and DIR (free with hrd_sources_free). -1 with errno on a read error. */
int hrd_project_resolve(const hrd_project *p, const char *name, hrd_sources *out);
void hrd_sources_free(hrd_sources *s);

/* Call fn with each module whose "sources" patterns match the root-relative path (hotreload.conf). */
void hrd_project_matching(const hrd_project *p, const char *path, void (*fn)(void *arg, const char *name), void *arg);
/* Call fn with every top-level entry's candidate module name (valid or not, maybe twice), and each module hotreload.conf gives sources. */
int hrd_project_scan(const hrd_project *p, void (*fn)(void *arg, const char *name), void *arg);

/*
 * The key of a build's inputs: SHA-256 over the command line, the identity
 * (device, inode, size, mtime) of the files its first words before the flags
 * run (the compiler, and a wrapper's; found as exec finds them, from
 * p->rootfd), each source's
 * name and content, and each dependency's (d may be NULL; one that is gone
 * counts as gone), as 64 hex digits. stamps (s->n, then d->n of them, or
 * NULL) get what each was before it was read. -1 with errno when a source
 * cannot be read.
 */
int hrd_project_key(const hrd_project *p, const hrd_sources *s, const hrd_deps *d, char *const argv[], char out[65],
                    hrd_stamp *stamps);
/*
 * 1 when some source is open for writing by anyone (a read lease cannot be
 * had): a file found by a listing may be half-written, and its close will
 * be seen. 0 otherwise, or when the filesystem cannot tell.
 */
int hrd_project_busy(const hrd_project *p, const hrd_sources *s);
/* 1 when every source and dependency (d may be NULL) is still what its stamp says (same file, size and times; still gone), else 0. */
int hrd_project_unchanged(const hrd_project *p, const hrd_sources *s, const hrd_deps *d, const hrd_stamp *stamps);

#endif
