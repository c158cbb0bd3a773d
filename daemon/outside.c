/* outside.c: the folders outside the root that hold headers a build read, each watched on its own with inotify(7). */
#include "outside.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

/* A save is a close after writing or a rename into place; a removal too, so that the build says what is missing. */
#define MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ONLYDIR)

int hrd_outside_init(hrd_outside *o)
{
	*o = (hrd_outside){.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)};
	return o->fd < 0 ? -1 : 0;
}

static int find(const hrd_outside *o, const char *dir)
{
	for (size_t i = 0; i < o->n; i++)
		if (o->dirs[i] && strcmp(o->dirs[i], dir) == 0)
			return (int)i;
	return -1;
}

int hrd_outside_set(hrd_outside *o, char *const *dirs, size_t n)
{
	char **nd = calloc(n + 1, sizeof *nd);
	int *nw = calloc(n + 1, sizeof *nw);
	if (!nd || !nw) {
		free(nd);
		free(nw);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		int at = find(o, dirs[i]);
		if (at >= 0) { /* kept as it is */
			nd[i] = o->dirs[at];
			nw[i] = o->wd[at];
			o->dirs[at] = NULL;
			continue;
		}
		if (!(nd[i] = strdup(dirs[i]))) {
			nw[i] = -1;
			continue;
		}
		nw[i] = o->fd >= 0 ? inotify_add_watch(o->fd, dirs[i], MASK) : -1;
		if (o->fd < 0)
			continue; /* no instance: said once, at the start */
		if (nw[i] < 0)
			hrd_warn("cannot watch %s, which holds headers that modules read: %s; a save there is seen only "
			         "at a rescan (--verify-every)", dirs[i], strerror(errno));
		else
			hrd_info("watching %s: it holds headers that modules read", dirs[i]);
	}
	for (size_t i = 0; i < o->n; i++) {
		if (!o->dirs[i])
			continue;
		/* Another folder may have taken its watch (the same inode by another path): only an unshared one goes. */
		int shared = 0;
		for (size_t j = 0; j < n; j++)
			shared |= nw[j] == o->wd[i];
		if (o->wd[i] >= 0 && !shared)
			inotify_rm_watch(o->fd, o->wd[i]);
		free(o->dirs[i]);
	}
	free(o->dirs);
	free(o->wd);
	o->dirs = nd;
	o->wd = nw;
	o->n = n;
	return 0;
}

int hrd_outside_read(hrd_outside *o, void (*fn)(void *arg, const char *path), void *arg)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	int lost = 0;
	for (;;) {
		ssize_t len = read(o->fd, buf, sizeof buf);
		if (len <= 0)
			return lost ? -1 : 0;
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			p += sizeof *ev + ev->len;
			if (ev->mask & IN_Q_OVERFLOW)
				lost = 1;
			if (!ev->len || (ev->mask & IN_ISDIR))
				continue;
			for (size_t i = 0; i < o->n; i++) {
				if (o->wd[i] != ev->wd || !o->dirs[i])
					continue;
				char path[PATH_MAX];
				if (snprintf(path, sizeof path, "%s/%s", strcmp(o->dirs[i], "/") ? o->dirs[i] : "", ev->name) <
				    (int)sizeof path)
					fn(arg, path);
			}
		}
	}
}

void hrd_outside_list(const hrd_outside *o, char *out, size_t n)
{
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < o->n && len < n; i++) {
		if (o->dirs[i])
			len += (size_t)snprintf(out + len, n - len, "%s%s%s", len ? "\n" : "", o->dirs[i],
			                        o->wd[i] < 0 ? " (cannot be watched: see the log)" : "");
	}
}

void hrd_outside_fini(hrd_outside *o)
{
	hrd_outside_set(o, NULL, 0);
	free(o->dirs);
	free(o->wd);
	if (o->fd >= 0)
		close(o->fd);
	*o = (hrd_outside){.fd = -1};
}
