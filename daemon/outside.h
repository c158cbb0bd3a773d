/* outside.h: the folders outside the root that hold headers a build read, each watched on its own (not recursively). */
#ifndef HRD_OUTSIDE_H
#define HRD_OUTSIDE_H

#include <stddef.h>

/*
 * Why not the watcher of the root (watch.h): libinotifytools is a
 * process-wide singleton, and its watches and the other backends' are
 * recursive, when one folder's direct entries are all that matter here (a
 * folder of the host's sources may hold a whole game). So inotify(7)
 * directly: one descriptor, one watch per folder, read on the loop.
 */
typedef struct hrd_outside {
	int fd;      /* inotify's, non-blocking: readable when saves wait */
	char **dirs; /* absolute, sorted */
	int *wd;     /* each one's watch, -1 where it could not be watched (the log says why) */
	size_t n;
} hrd_outside;

/* 0, or -1 with errno. */
int hrd_outside_init(hrd_outside *o);
/* Watch exactly the folders in dirs (absolute, sorted, unique; n of them): new ones added, gone ones dropped. 0 or -1 (out of memory). */
int hrd_outside_set(hrd_outside *o, char *const *dirs, size_t n);
/* Hand each file saved, moved in or removed in a watched folder (its absolute path) to fn. 0, or -1 when events were lost (rescan). */
int hrd_outside_read(hrd_outside *o, void (*fn)(void *arg, const char *path), void *arg);
/* The folders, one a line (the unwatchable ones marked), in out. */
void hrd_outside_list(const hrd_outside *o, char *out, size_t n);
void hrd_outside_fini(hrd_outside *o);

#endif
