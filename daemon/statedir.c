/* statedir.c: where the state dir goes, and whether a folder is fit to hold a history. */
#include "statedir.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
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

/* Ours or root's: the only owners whose folders we keep files in. */
static int owned(const struct stat *st)
{
	return st->st_uid == geteuid() || st->st_uid == 0;
}

/* "nobody (uid 65534)", or the bare uid of a user with no name. */
static const char *owner(const struct stat *st, char *buf, size_t n)
{
	struct passwd *pw = getpwuid(st->st_uid);
	if (pw)
		snprintf(buf, n, "%s (uid %u)", pw->pw_name, (unsigned)st->st_uid);
	else
		snprintf(buf, n, "uid %u", (unsigned)st->st_uid);
	return buf;
}

/*
 * Whether fd, the folder at path, is fit: see hrd_statedir_open. Its folder
 * counts too: whoever can write there can rename ours away and put one of
 * theirs in its place (a sticky folder, as /tmp, lets only us). 0, or -1
 * and why.
 */
static int fit(int fd, const char *path, const char *option, char *why, size_t n)
{
	struct stat st, up;
	char who[128], above[PATH_MAX];
	int upfd = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int ok = fstat(fd, &st) == 0 && upfd >= 0 && fstat(upfd, &up) == 0, e = errno;
	if (upfd >= 0)
		close(upfd);
	if (!ok) {
		snprintf(why, n, "%s cannot be looked at: %s", path, strerror(e));
		return -1;
	}
	if (!owned(&st)) {
		snprintf(why, n, "%s belongs to %s and has mode %04o: it must be yours or root's, and no one else may "
		         "write to it. Remove it, or give %s a folder of your own",
		         path, owner(&st, who, sizeof who), (unsigned)(st.st_mode & 07777), option);
		return -1;
	}
	if (st.st_mode & 022) {
		char fix[PATH_MAX + 64];
		/* a shared folder, as /tmp, stays shared: the answer is one of one's own */
		if ((st.st_mode & S_ISVTX) || st.st_uid != geteuid())
			snprintf(fix, sizeof fix, "Give %s a folder of your own (mkdir -m 700)", option);
		else
			snprintf(fix, sizeof fix, "Run chmod go-w %s, or give %s another folder", path, option);
		snprintf(why, n, "%s belongs to %s but has mode %04o: other users can write to it. %s", path,
		         owner(&st, who, sizeof who), (unsigned)(st.st_mode & 07777), fix);
		return -1;
	}
	if (!owned(&up) || ((up.st_mode & 022) && !(up.st_mode & S_ISVTX))) {
		const char *slash = strrchr(path, '/');
		if (!slash)
			snprintf(above, sizeof above, ".");
		else
			snprintf(above, sizeof above, "%.*s", slash == path ? 1 : (int)(slash - path), path);
		snprintf(why, n, "%s is in %s, which belongs to %s and has mode %04o: another user could put a folder "
		         "of theirs in its place. Give %s a folder in a folder that only you (or root) can write to",
		         path, above, owner(&up, who, sizeof who), (unsigned)(up.st_mode & 07777), option);
		return -1;
	}
	return 0;
}

int hrd_statedir_open(const char *path, const char *option, char *why, size_t n)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, n, "%s cannot be opened: %s", path,
		         errno == ELOOP || errno == ENOTDIR ? "it is not a folder" : strerror(errno));
		return -1;
	}
	if (fit(fd, path, option, why, n) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Whether no one but us and root can change what the folder st holds, or take away what is ours in it. */
static int folder_ok(const struct stat *st)
{
	return owned(st) && (!(st->st_mode & 022) || (st->st_mode & S_ISVTX));
}

int hrd_trusted_file_open(const char *path, const char *what, const char *option, char *why, size_t n)
{
	char real[PATH_MAX], who[128];
	struct stat st;
	int dir = -1, fd = -1, e;
	if (!realpath(path, real)) {
		e = errno;
		snprintf(why, n, "%s: cannot read %s: %s", path, what, strerror(e));
		goto fail;
	}
	/* From / down: each folder is checked before anything in it is opened, and no link is followed. */
	char *name = real + 1;
	dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	for (;;) {
		if (dir < 0 || fstat(dir, &st) < 0) {
			e = errno;
			snprintf(why, n, "%s: cannot read %s: %s", path, what, strerror(e));
			goto fail;
		}
		if (!folder_ok(&st)) {
			e = EPERM;
			snprintf(why, n, "%s: %s is refused: it is in %.*s, which belongs to %s and has mode %04o, so another "
			         "user could put a file of theirs in its place, and its commands run as this daemon's user. "
			         "Keep it in folders that only you (or root) can write to (chmod go-w), or give %s another",
			         real, what, name - real > 1 ? (int)(name - real - 1) : 1, real, owner(&st, who, sizeof who),
			         (unsigned)(st.st_mode & 07777), option);
			goto fail;
		}
		char *slash = strchr(name, '/');
		if (!slash)
			break;
		*slash = '\0';
		int next = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		e = errno;
		*slash = '/';
		close(dir);
		dir = next;
		errno = e;
		name = slash + 1;
	}
	fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		e = errno;
		snprintf(why, n, "%s: cannot read %s: %s", path, what, strerror(e));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || !owned(&st) || (st.st_mode & 022)) {
		e = S_ISREG(st.st_mode) ? EPERM : EINVAL;
		if (!S_ISREG(st.st_mode))
			snprintf(why, n, "%s: %s is not a regular file: give %s the file itself", real, what, option);
		else
			snprintf(why, n, "%s: %s is refused: it belongs to %s and has mode %04o, and its commands run as this "
			         "daemon's user, so it must be yours or root's and no one else may write to it. %s, or give %s "
			         "one of your own", real, what, owner(&st, who, sizeof who), (unsigned)(st.st_mode & 07777),
			         owned(&st) ? "Run chmod go-w on it" : "Make it yours (chown) with chmod go-w", option);
		goto fail;
	}
	close(dir);
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	if (dir >= 0)
		close(dir);
	errno = e;
	return -1;
}

int hrd_statedir_sub(int dirfd, const char *name, mode_t mode, char *why, size_t n)
{
	struct stat st;
	if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST) {
		snprintf(why, n, "cannot create %s: %s", name, strerror(errno));
		return -1;
	}
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	const char *bad = NULL;
	if (fd < 0)
		bad = errno == ELOOP || errno == ENOTDIR ? "it is not a folder: remove it" : strerror(errno);
	else if (fstat(fd, &st) < 0)
		bad = strerror(errno);
	else if (!owned(&st))
		bad = "it belongs to another user: remove it";
	else if (fchmod(fd, mode) < 0)
		bad = strerror(errno);
	if (bad) {
		snprintf(why, n, "cannot use %s: %s", name, bad);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* 1 when path is a folder fit to hold a history (hrd_statedir_open), else 0 and why. */
static int trusted(const char *path, char *why, size_t n)
{
	char real[PATH_MAX];
	if (!realpath(path, real)) {
		snprintf(why, n, "cannot be reached (%s)", strerror(errno));
		return 0;
	}
	int fd = hrd_statedir_open(real, "--state-dir", why, n);
	if (fd < 0)
		return 0;
	close(fd);
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
	char whynot[PATH_MAX + 512] = "cannot be looked at";
	hrd_fsfacts g;
	if (len > 0) { /* placed before: its link leads there, if that is a place for it */
		target[len] = '\0';
		char there[2 * PATH_MAX], who[128];
		snprintf(there, sizeof there, "%s%s%s", target[0] == '/' ? "" : root, target[0] == '/' ? "" : "/", target);
		/* a link of another user's would have them choose where our files go */
		if (lstat(link, &st) == 0 && !owned(&st))
			snprintf(whynot, sizeof whynot, "the link belongs to %s", owner(&st, who, sizeof who));
		else if (strlen(there) < n && trusted(there, whynot, sizeof whynot) && hrd_fs_probe(there, 0, &g) == 0 &&
		         hrd_fs_state_ok(&g, whynot, sizeof whynot)) {
			memcpy(want, there, strlen(there) + 1);
			snprintf(note, nn, "the state dir is %s, through the link %s: %s", there, link, why);
			return 0;
		}
		hrd_warn("the link %s leads to a folder that is not used: %s", link, whynot);
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

int hrd_statedir_gitignore(int dirfd)
{
	static const char text[] = "# made by hotreloadd: everything here is the daemon's own, never to be committed\n*\n";
	/* O_EXCL and O_NOFOLLOW: a file already there, or a link, is left alone. */
	int fd = openat(dirfd, ".gitignore", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	int rc = write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1) ? 0 : -1;
	close(fd);
	return rc;
}
