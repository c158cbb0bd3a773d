/* find.c: which daemon the library may talk to: the uids it trusts, the peer on a socket, and the socket found going up (or one folder down). */
#include "client.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int hrc_trusts(const hr_client *c, uint32_t u)
{
	if (u == 0 || u == (uint32_t)geteuid())
		return 1;
	for (size_t i = 0; i < c->ntrust; i++)
		if (c->trust[i] == u)
			return 1;
	return 0;
}

int hrc_check_peer(const hr_client *c, int fd, uint32_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	*uid = (uint32_t)cred.uid;
	return hrc_trusts(c, *uid) ? 0 : -EACCES;
}

/* Whether st (of a folder, a link or the socket) is owned by a uid c trusts, and writable by nobody else. */
static int fit(const hr_client *c, const struct stat *st)
{
	return hrc_trusts(c, st->st_uid) && (S_ISLNK(st->st_mode) || !(st->st_mode & (S_IWGRP | S_IWOTH)));
}

/* Append ", item" (or "item" first) to list, if it fits. */
static void list_add(char *list, size_t n, const char *item)
{
	size_t len = strlen(list);
	if (len + strlen(item) + 3 < n)
		snprintf(list + len, n - len, "%s%s", len ? ", " : "", item);
}

/*
 * Whether dir/.hotreload/hotreloadd.sock is a socket that c trusts: the
 * folder (and the link to it, if it is one) and the socket owned by a uid c
 * trusts, and the folder writable by nobody else. 1 with its path in out; 0
 * when there is none, or one passed over (named in skipped).
 */
static int socket_in(const hr_client *c, const char *dir, char *out, size_t outsz, char *skipped, size_t skippedsz)
{
	char state[PATH_MAX + 16];
	struct stat link, folder, sock;
	int n = snprintf(state, sizeof state, "%s/.hotreload", strcmp(dir, "/") == 0 ? "" : dir);
	int m = snprintf(out, outsz, "%s/" HRP_SOCKET_NAME, state);
	if (n < 0 || (size_t)n >= sizeof state || m < 0 || (size_t)m >= outsz || lstat(state, &link) < 0 ||
	    stat(state, &folder) < 0 || !S_ISDIR(folder.st_mode) || lstat(out, &sock) < 0 || !S_ISSOCK(sock.st_mode))
		return 0;
	if (fit(c, &link) && fit(c, &folder) && hrc_trusts(c, sock.st_uid))
		return 1;
	list_add(skipped, skippedsz, state);
	return 0;
}

/*
 * The folders directly under dir (not hidden, not links) that hold a socket c
 * trusts: the first in out, and how many (each named in found). At most
 * SUBDIRS_MAX entries are read: a project's root, not a home folder of
 * thousands, is what this is for.
 */
enum { SUBDIRS_MAX = 4096 };
static int socket_below(const hr_client *c, const char *dir, char *out, size_t outsz, char *found, size_t foundsz,
                        char *skipped, size_t skippedsz)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int count = 0;
	char first[PATH_MAX + 32] = "", sub[PATH_MAX];
	for (int i = 0; d && i < SUBDIRS_MAX && (e = readdir(d)); i++) {
		if (e->d_name[0] == '.' || (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN))
			continue;
		struct stat st;
		int n = snprintf(sub, sizeof sub, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, e->d_name);
		if (n < 0 || (size_t)n >= sizeof sub || lstat(sub, &st) < 0 || !S_ISDIR(st.st_mode) ||
		    !socket_in(c, sub, out, outsz, skipped, skippedsz))
			continue;
		/* readdir's order is the filesystem's: the first by name, so that the choice does not depend on it */
		if (!count++ || strcmp(out, first) < 0)
			snprintf(first, sizeof first, "%s", out);
		list_add(found, foundsz, sub);
	}
	if (d)
		closedir(d);
	snprintf(out, outsz, "%s", first);
	return count;
}

/*
 * $HOTRELOAD_SOCKET, else .hotreload/hotreloadd.sock: in the current
 * directory, else in one folder directly under it (a game run from its
 * project's root, its modules in a subfolder), else in the nearest parent
 * that has one. Only one that c trusts counts (socket_in): another user's
 * .hotreload in a shared folder is passed over, never connected to.
 */
int hrc_find_socket(const hr_client *c, char *out, size_t outsz, char *why, size_t whysz)
{
	/* Not from whoever ran a setuid program: a socket of theirs would run their code in it. */
	const char *env = secure_getenv("HOTRELOAD_SOCKET");
	if (env && *env) {
		snprintf(out, outsz, "%s", env);
		return 0;
	}
	char cwd[PATH_MAX], dir[PATH_MAX], skipped[1024] = "", found[1024] = "";
	if (!getcwd(cwd, sizeof cwd))
		return -errno;
	if (socket_in(c, cwd, out, outsz, skipped, sizeof skipped))
		return 0;
	int below = socket_below(c, cwd, out, outsz, found, sizeof found, skipped, sizeof skipped);
	if (below == 1)
		return 0;
	if (below > 1) {
		if (why && whysz)
			snprintf(why, whysz, "no hotreloadd chosen: the folders %s under %s each hold a daemon's "
			         ".hotreload/: set HOTRELOAD_SOCKET to the socket of the one to use", found, cwd);
		return -ENOENT;
	}
	memcpy(dir, cwd, sizeof dir);
	while (strcmp(dir, "/") != 0) {
		char *slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (socket_in(c, dir, out, outsz, skipped, sizeof skipped))
			return 0;
	}
	if (why && whysz)
		snprintf(why, whysz, "no hotreloadd found (start one, or set HOTRELOAD_SOCKET): looked for "
		         ".hotreload/" HRP_SOCKET_NAME " in %s, the folders directly under it, and those above it%s%s",
		         cwd, skipped[0] ? "; passed over, as not trusted: " : "", skipped);
	return -ENOENT;
}
