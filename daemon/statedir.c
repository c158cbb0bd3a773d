/* statedir.c: where the state dir goes, and whether a folder is fit to hold a history. */
#include "statedir.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p, with mode for what it creates. */
int hrd_make_dirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || !*p) {
			char was = *p;
			*p = '\0';
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return -1;
			*p = was;
			if (!was)
				return 0;
		}
	}
}

/*
 * 1 when path is a folder that only we can change: ours, not writable by
 * others, in a folder of ours or root's that others cannot rename it out of.
 * A history kept elsewhere, and the objects games load from it, could be
 * swapped under us. Else 0 and why.
 */
static int trusted(const char *path, char *why, size_t n)
{
	char real[PATH_MAX];
	struct stat st;
	if (!realpath(path, real)) {
		snprintf(why, n, "cannot be reached (%s)", strerror(errno));
		return 0;
	}
	for (int up = 0; up < 2; up++) {
		char *slash = strrchr(real, '/');
		if (lstat(*real ? real : "/", &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(why, n, "is not a folder");
			return 0;
		}
		if (st.st_uid != getuid() && (up == 0 || st.st_uid != 0)) {
			snprintf(why, n, "%s another user", up ? "is in a folder of" : "belongs to");
			return 0;
		}
		if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX)) {
			snprintf(why, n, "%s other users can write to", up ? "is in a folder" : "is a folder");
			return 0;
		}
		if (slash)
			*slash = '\0';
	}
	return 1;
}

/*
 * Where the state dir goes when none is given: ROOT/.hotreload, unless ROOT's
 * filesystem cannot hold it (fsinfo.c). Then it goes under
 * $XDG_STATE_HOME/hotreload/ (else /var/tmp/hotreload-UID/ when that cannot
 * either), and ROOT/.hotreload becomes a symbolic link to it, so that what
 * looks for .hotreload/ still finds it. A real ROOT/.hotreload is kept where
 * it is: a history is never left behind. note gets where and why. Returns 0,
 * or -1 with the error in note.
 */
int hrd_statedir_place(const char *root, const hrd_fsfacts *f, char *want, size_t n, char *note, size_t nn)
{
	char why[256], link[PATH_MAX + 16], base[PATH_MAX], target[PATH_MAX];
	struct stat st;
	snprintf(link, sizeof link, "%s/.hotreload", root);
	snprintf(want, n, "%s", link);
	note[0] = '\0';
	if (hrd_fs_state_ok(f, why, sizeof why))
		return 0;
	ssize_t len = readlink(link, target, sizeof target - 1);
	char whynot[256] = "cannot be looked at";
	hrd_fsfacts g;
	if (len > 0) { /* placed before: its link leads there, if that is a place for it */
		target[len] = '\0';
		char there[2 * PATH_MAX];
		snprintf(there, sizeof there, "%s%s%s", target[0] == '/' ? "" : root, target[0] == '/' ? "" : "/", target);
		if (strlen(there) < n && trusted(there, whynot, sizeof whynot) &&
		    hrd_fs_probe(there, 0, &g) == 0 && hrd_fs_state_ok(&g, whynot, sizeof whynot)) {
			memcpy(want, there, strlen(there) + 1);
			snprintf(note, nn, "the state dir is %s, through the link %s: %s", there, link, why);
			return 0;
		}
		hrd_warn("the link %s leads to %s, which %s: not used", link, there, whynot);
	} else if (lstat(link, &st) == 0) {
		snprintf(note, nn, "the state dir %s is left where it is though %s: move it to a local disk and "
		         "leave a symbolic link to it there, or give --state-dir", link, why);
		return 0;
	}
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME"), *name = strrchr(root, '/');
	uint32_t h = 2166136261u;
	for (const char *c = root; *c; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	name = name && name[1] ? name + 1 : "root";
	if (xdg && *xdg == '/')
		snprintf(base, sizeof base, "%s/hotreload", xdg);
	else if (home && *home == '/')
		snprintf(base, sizeof base, "%s/.local/state/hotreload", home);
	else
		snprintf(base, sizeof base, "/var/tmp/hotreload-%u", (unsigned)getuid());
	for (int tries = 0;; tries++) {
		snprintf(want, n, "%s/%s-%08x", base, name, (unsigned)h);
		if (hrd_make_dirs(want, 0700) == 0 && trusted(want, whynot, sizeof whynot) && hrd_fs_probe(want, 0, &g) == 0 &&
		    hrd_fs_state_ok(&g, whynot, sizeof whynot))
			break;
		if (tries) {
			snprintf(note, nn, "the state dir cannot be %s (%s), nor under %s: give --state-dir on a local disk",
			         link, why, base);
			return -1;
		}
		snprintf(base, sizeof base, "/var/tmp/hotreload-%u", (unsigned)getuid());
	}
	if (len > 0 || symlink(want, link) < 0)
		snprintf(note, nn, "the state dir is %s, because %s; the link %s to it cannot be made (%s): give the "
		         "CLI --state-dir", want, why, link, len > 0 ? "a link that is not used is there" : strerror(errno));
	else
		snprintf(note, nn, "the state dir is %s, linked from %s, because %s", want, link, why);
	return 0;
}
