/* watch.c: the one place that chooses a watcher backend. */
#include "watch.h"

#include <stdio.h>
#include <string.h>

int hrd_watch_open(const char *backend, const char *root, const char *const *exclude,
                   hrd_watch **out, char *err, size_t errsz)
{
	const char *why;
	if (strcmp(backend, "auto") == 0)
		why = "auto: kernel events (inotify); fanotify and polling are not built yet";
	else if (strcmp(backend, "inotify") == 0)
		why = "chosen with --watcher inotify";
	else if (strcmp(backend, "fanotify") == 0 || strcmp(backend, "poll") == 0) {
		snprintf(err, errsz, "the %s watcher is not built yet: use --watcher auto or inotify", backend);
		return -1;
	} else {
		snprintf(err, errsz, "unknown watcher '%s': use auto or inotify", backend);
		return -1;
	}
	if (hrd_watch_inotify_open(root, exclude, out, err, errsz) < 0)
		return -1;
	snprintf((*out)->reason, sizeof (*out)->reason, "%s", why);
	return 0;
}

int hrd_watch_fd(hrd_watch *w)
{
	return w->ops->fd(w);
}

int hrd_watch_take(hrd_watch *w, void (*fn)(void *arg, int kind, const char *path), void *arg)
{
	return w->ops->take(w, fn, arg);
}

void hrd_watch_close(hrd_watch *w)
{
	if (w)
		w->ops->close(w);
}
