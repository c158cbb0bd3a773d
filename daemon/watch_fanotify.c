/* watch_fanotify.c: the fanotify backend: one mark per filesystem, events kept to the tree by folder handle, read on the loop. */
#include "log.h"
#include "watch_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

/*
 * fanotify(7) directly: libinotifytools' fanotify mode reports a queue
 * overflow as a NULL event, the same as an error.
 * - One FAN_MARK_FILESYSTEM mark per filesystem the tree spans costs nothing
 *   per folder, but sees every write there. Each event names its folder by
 *   handle (FAN_REPORT_DFID_NAME): a table of the tree's folders by handle
 *   keeps what is ours, and drops the rest with no system call.
 * - A folder moved, or events lost, make the table stale: it is made again
 *   from a fresh walk, once the queue is read, and the engine rescans (it
 *   compares content, so nothing in between is missed).
 * - The folders on the root's path above it are in the table too, so that the
 *   root moved, gone or back is seen by its name in its parent, or of any
 *   folder above. Its own DELETE_SELF may never come: the engine holds it open.
 * FAN_EVENT_ON_CHILD is left out: a filesystem mark covers every inode already.
 */
#define MASK (FAN_CLOSE_WRITE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_CREATE | FAN_DELETE | FAN_DELETE_SELF | \
              FAN_MOVE_SELF | FAN_ONDIR)
#ifndef AT_HANDLE_FID
#define AT_HANDLE_FID 0x200 /* Linux 6.5: the handle as fanotify encodes it */
#endif

/* A folder's identity as events give it: the filesystem's fsid, the handle's type, the handle. */
typedef struct fkey {
	size_t len;
	unsigned char b[8 + sizeof(int) + MAX_HANDLE_SZ];
} fkey;

typedef struct dnode {
	struct dnode *next;
	char *rel;        /* root-relative ("" is the root), or NULL for a folder on the root's path above it */
	const char *part; /* for those: the next part of the root's path, up to a '/' */
	size_t len;
	unsigned char key[];
} dnode;

typedef struct fsys {
	dev_t dev;
	unsigned char fsid[8];
	int err; /* why it could not be marked, or 0 */
} fsys;

typedef struct fan {
	hrd_watch base; /* base.fd is the fanotify descriptor */
	dnode **tab;    /* the tree's folders by handle, chained; cap is a power of two */
	size_t cap, count;
	fsys *fs; /* the filesystems met, each marked once */
	size_t nfs;
	int fidflag;      /* AT_HANDLE_FID, or 0 on a kernel without it */
	int rebuild;      /* the table is stale: walk again once the queue is read */
	int gone;         /* the root is not there */
	unsigned char buf[65536];
} fan;

/* ---- the table ---- */

static size_t hash_key(const unsigned char *b, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return (size_t)h;
}

static dnode **slot(fan *w, const fkey *k)
{
	dnode **s = &w->tab[hash_key(k->b, k->len) & (w->cap - 1)];
	while (*s && ((*s)->len != k->len || memcmp((*s)->key, k->b, k->len) != 0))
		s = &(*s)->next;
	return s;
}

static int put(fan *w, const fkey *k, const char *rel, const char *part)
{
	dnode **s = slot(w, k), *n = *s, **t;
	char *copy = rel ? strdup(rel) : NULL;
	if ((rel && !copy) || (!n && !(n = calloc(1, sizeof *n + k->len)))) {
		free(copy);
		return -1;
	}
	if (!*s) {
		memcpy(n->key, k->b, n->len = k->len);
		*s = n;
		w->count++;
	}
	free(n->rel); /* NULL, or the same folder met again */
	n->rel = copy;
	n->part = part;
	if (w->count > w->cap && (t = calloc(2 * w->cap, sizeof *t))) { /* else only the chains grow longer */
		for (size_t i = 0; i < w->cap; i++)
			for (dnode *m, *next; (m = w->tab[i]); w->tab[i] = next) {
				next = m->next;
				m->next = t[hash_key(m->key, m->len) & (2 * w->cap - 1)];
				t[hash_key(m->key, m->len) & (2 * w->cap - 1)] = m;
			}
		free(w->tab);
		w->tab = t;
		w->cap *= 2;
	}
	return 0;
}

static void drop(fan *w, dnode **s)
{
	dnode *n = *s;
	*s = n->next;
	free(n->rel);
	free(n);
	w->count--;
}

static void clear(fan *w)
{
	for (size_t i = 0; w->tab && i < w->cap; i++)
		while (w->tab[i])
			drop(w, &w->tab[i]);
}

/* ---- folders ---- */

static void make_key(fkey *k, const void *fsid, int type, const unsigned char *handle, size_t n)
{
	memcpy(k->b, fsid, 8);
	memcpy(k->b + 8, &type, sizeof type);
	memcpy(k->b + 8 + sizeof type, handle, n);
	k->len = 8 + sizeof type + n;
}

/* The key of the folder open as fd; with mark, its filesystem is marked when first met. Returns 0 or an errno. */
static int key_of(fan *w, int fd, int mark, fkey *k)
{
	struct stat st;
	struct statfs sf = {0};
	fsys *f = NULL;
	if (fstat(fd, &st) < 0)
		return errno;
	for (size_t i = 0; i < w->nfs && !f; i++)
		f = w->fs[i].dev == st.st_dev ? &w->fs[i] : NULL;
	if (!f && !mark)
		return EXDEV;
	if (!f) {
		if (!(f = realloc(w->fs, (w->nfs + 1) * sizeof *f)))
			return ENOMEM;
		w->fs = f;
		f = &w->fs[w->nfs++];
		f->dev = st.st_dev;
		/* Marked before anything on it is listed: what is created meanwhile has its event. */
		f->err = fstatfs(fd, &sf) < 0 || fanotify_mark(w->base.fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, MASK, fd, NULL) < 0
		         ? errno : 0;
		memcpy(f->fsid, &sf.f_fsid, sizeof f->fsid);
	}
	if (f->err)
		return f->err;
	_Alignas(struct file_handle) unsigned char hb[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	struct file_handle *fh = (struct file_handle *)hb;
	int mnt;
	for (fh->handle_bytes = MAX_HANDLE_SZ; name_to_handle_at(fd, "", fh, &mnt, AT_EMPTY_PATH | w->fidflag) < 0;) {
		if (errno != EINVAL || !w->fidflag)
			return errno;
		w->fidflag = 0; /* before 6.5: the plain handle, the same on the usual filesystems */
	}
	make_key(k, f->fsid, fh->handle_type, fh->f_handle, fh->handle_bytes);
	return 0;
}

/*
 * Record folder full (depth 0 is the root) and every folder under it by
 * handle; with post_files, post every file found (written before the folder
 * was known). A symbolic link to a folder is followed at the top level only
 * (a module folder linked into the root), never below it, so no link loop is
 * walked. Returns 0, or the error that kept full itself out.
 */
static int walk(fan *w, const char *full, int depth, int post_files)
{
	if (depth > 64 || hrd_watch_skipped(&w->base, full))
		return 0;
	fkey k = {0};
	DIR *d = NULL;
	int e, fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (depth > 1 ? O_NOFOLLOW : 0));
	if ((e = fd < 0 ? errno : key_of(w, fd, 1, &k)) == 0 && put(w, &k, hrd_watch_rel(&w->base, full), NULL) < 0)
		e = ENOMEM;
	if (e || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		if (e && depth > 0 && e != ENOENT && e != ENOTDIR && e != ELOOP) {
			w->base.unwatched++;
			hrd_error("watcher: cannot watch %s: %s", full, strerror(e));
		}
		return e;
	}
	struct dirent *ent;
	struct stat st;
	char *path;
	while ((ent = readdir(d))) {
		if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
			continue;
		if (asprintf(&path, "%s/%s", full, ent->d_name) < 0) {
			hrd_watch_post(&w->base, HRD_WATCH_RESCAN, "");
			continue;
		}
		int type = ent->d_type;
		if (type == DT_UNKNOWN && lstat(path, &st) == 0)
			type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK : DT_REG;
		if (type == DT_LNK && depth == 0 && stat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
		    hrd_watch_follows(&w->base, path))
			type = DT_DIR;
		if (type == DT_DIR)
			walk(w, path, depth + 1, post_files);
		else if (post_files)
			hrd_watch_post(&w->base, HRD_WATCH_CHANGED, hrd_watch_rel(&w->base, path));
		free(path);
	}
	closedir(d);
	return 0;
}

/* ---- the root ---- */

/* Record the folders on the root's path above it that are there, on a filesystem marked (no syscall per event elsewhere). */
static void watch_path(fan *w)
{
	char path[PATH_MAX];
	fkey k = {0};
	const char *root = w->base.root;
	for (const char *p = root; (p = strchr(p, '/')) && p[1]; p++) {
		snprintf(path, sizeof path, "%.*s", (int)(p - root), root);
		int fd = open(*path ? path : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return; /* nothing below it is there */
		if (key_of(w, fd, 0, &k) == 0 && !*slot(w, &k))
			put(w, &k, NULL, p + 1);
		close(fd);
	}
}

/* The root, or a folder on its path, moved or went: unless the root's path is still the folder we watch, walk it again. */
static void check_root(fan *w)
{
	fkey k = {0};
	int fd = open(w->base.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int e = fd < 0 ? errno : key_of(w, fd, 1, &k);
	if (fd >= 0)
		close(fd);
	dnode *n = e ? NULL : *slot(w, &k);
	if (!n || !n->rel || *n->rel) {
		clear(w); /* the old tree's events no longer name paths under the root */
		w->rebuild = 1;
	}
}

/* Make the table again from a fresh walk, and have the engine rescan; or wait for the root to be back. */
static void rebuild(fan *w)
{
	w->rebuild = 0;
	w->base.unwatched = 0;
	clear(w);
	int e = walk(w, w->base.root, 0, 0); /* on failure, the root itself is out: the table stays empty */
	if (e == ENOENT && !w->gone)
		hrd_error("watcher: the root %s was moved or removed; watching for it to come back", w->base.root);
	else if (e && !w->gone)
		hrd_error("watcher: cannot watch the root %s: %s; watching for it to come back", w->base.root, strerror(e));
	else if (!e && w->gone)
		hrd_warn("watcher: the root %s is back; looking at everything again", w->base.root);
	w->gone = e != 0;
	watch_path(w);
	if (!e)
		hrd_watch_post(&w->base, HRD_WATCH_RESCAN, "");
}

/* ---- events ---- */

/* The folder and entry name of an event's first file-handle record ("" for the folder itself). Returns 0 or -1. */
static int parse(const unsigned char *p, size_t len, fkey *k, const char **name)
{
	struct fanotify_event_info_header h;
	struct fanotify_event_info_fid fi;
	struct file_handle fh;
	const size_t at = sizeof fi + sizeof fh;
	for (; len >= sizeof h; p += h.len, len -= h.len) {
		memcpy(&h, p, sizeof h); /* records are 4-aligned only: copied, never cast */
		if (h.len < sizeof h || h.len > len)
			return -1;
		if (h.info_type != FAN_EVENT_INFO_TYPE_DFID_NAME && h.info_type != FAN_EVENT_INFO_TYPE_DFID &&
		    h.info_type != FAN_EVENT_INFO_TYPE_FID)
			continue;
		if (h.len < at)
			return -1;
		memcpy(&fi, p, sizeof fi);
		memcpy(&fh, p + sizeof fi, sizeof fh);
		if (fh.handle_bytes > MAX_HANDLE_SZ || fh.handle_bytes > h.len - at)
			return -1;
		make_key(k, &fi.fsid, fh.handle_type, p + at, fh.handle_bytes);
		*name = "";
		if (h.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
			const char *s = (const char *)p + at + fh.handle_bytes;
			if (!memchr(s, '\0', h.len - at - fh.handle_bytes))
				return -1;
			if (strcmp(s, ".") != 0) /* a folder's own event (DELETE_SELF, MOVE_SELF) is named "." */
				*name = s;
		}
		return 0;
	}
	return -1;
}

/* A file that appears by link() or symlink() is complete at once: no close follows. */
static int appeared_whole(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && (S_ISLNK(st.st_mode) || (S_ISREG(st.st_mode) && st.st_nlink > 1));
}

/*
 * An O_TMPFILE file linked into place: a create of the final name, whose file
 * is not closed yet, then a close named "#<inode>" in the folder it was made
 * in. Post the names with that inode there; failing that, the whole folder.
 */
static void tmpfile_saved(fan *w, char *full)
{
	char *slash = strrchr(full, '/'), path[PATH_MAX];
	unsigned long long ino = strtoull(slash + 2, NULL, 10);
	int found = 0;
	*slash = '\0';
	DIR *d = opendir(full);
	for (struct dirent *e; d && (e = readdir(d));)
		if (e->d_ino == ino && e->d_type != DT_DIR &&
		    (size_t)snprintf(path, sizeof path, "%s/%s", full, e->d_name) < sizeof path) {
			hrd_watch_post(&w->base, HRD_WATCH_CHANGED, hrd_watch_rel(&w->base, path));
			found = 1;
		}
	if (d)
		closedir(d);
	if (!found) /* in the root, the folder is every module */
		hrd_watch_post(&w->base, *hrd_watch_rel(&w->base, full) ? HRD_WATCH_CHANGED : HRD_WATCH_RESCAN,
		               hrd_watch_rel(&w->base, full));
	*slash = '/';
}

static void handle(fan *w, uint64_t mask, const unsigned char *info, size_t len)
{
	fkey k;
	const char *name;
	char full[PATH_MAX];
	struct stat st;
	if (mask & FAN_Q_OVERFLOW) {
		w->base.overflows++;
		hrd_warn("watcher: the kernel's event queue overflowed; rescanning");
		w->rebuild = 1;
		return;
	}
	if (parse(info, len, &k, &name) < 0)
		return;
	dnode **s = slot(w, &k), *dir = *s;
	if (!dir)
		return; /* not ours: most of a filesystem's events end here */
	if (!dir->rel) { /* a folder above the root: its entry on the root's path moved, went or came */
		if ((mask & FAN_ONDIR) && strlen(name) == strcspn(dir->part, "/") && memcmp(name, dir->part, strlen(name)) == 0)
			check_root(w);
		return;
	}
	if (mask & (FAN_DELETE_SELF | FAN_MOVE_SELF)) {
		if (!*dir->rel)
			check_root(w);
		else if (mask & FAN_DELETE_SELF)
			drop(w, s);
		return; /* a folder moved inside the tree: its parent's event says where */
	}
	if (!*name || (size_t)snprintf(full, sizeof full, "%s/%s%s%s", w->base.root, dir->rel, *dir->rel ? "/" : "",
	                               name) >= sizeof full)
		return;
	const char *rel = hrd_watch_rel(&w->base, full);
	int depth = strchr(rel, '/') ? 2 : 1;
	if (mask & FAN_ONDIR) {
		if (hrd_watch_skipped(&w->base, full))
			return;
		if (mask & (FAN_MOVED_FROM | FAN_MOVED_TO))
			w->rebuild = 1; /* every folder under it has a new path */
		if (mask & (FAN_CREATE | FAN_DELETE))
			hrd_watch_post(&w->base, HRD_WATCH_CHANGED, rel);
		if ((mask & FAN_CREATE) && !w->rebuild)
			walk(w, full, depth, 1);
		return;
	}
	if ((mask & FAN_CLOSE_WRITE) && name[0] == '#' && name[1] && strspn(name + 1, "0123456789") == strlen(name + 1) &&
	    lstat(full, &st) < 0) {
		tmpfile_saved(w, full);
		return;
	}
	/* A link to a folder made or moved in at the top: a module folder linked in. */
	if ((mask & (FAN_CREATE | FAN_MOVED_TO)) && depth == 1 && lstat(full, &st) == 0 && S_ISLNK(st.st_mode) &&
	    stat(full, &st) == 0 && S_ISDIR(st.st_mode) && hrd_watch_follows(&w->base, full))
		walk(w, full, 1, 1);
	if ((mask & (FAN_CLOSE_WRITE | FAN_MOVED_TO | FAN_MOVED_FROM | FAN_DELETE)) ||
	    ((mask & FAN_CREATE) && appeared_whole(full)))
		hrd_watch_post(&w->base, HRD_WATCH_CHANGED, rel);
}

/* ops->read, on the loop's thread: every event waiting. */
static void read_events(hrd_watch *base)
{
	fan *w = (fan *)base;
	struct fanotify_event_metadata m;
	ssize_t n;
	while ((n = read(w->base.fd, w->buf, sizeof w->buf)) > 0 || (n < 0 && errno == EINTR))
		for (size_t off = 0; n > 0 && (size_t)n - off >= sizeof m; off += m.event_len) {
			memcpy(&m, w->buf + off, sizeof m); /* events are 4-aligned only */
			if (m.event_len < sizeof m || m.event_len > (size_t)n - off)
				break;
			if (m.fd >= 0) /* only without FID reporting, but never leak one */
				close(m.fd);
			if (m.vers != FANOTIFY_METADATA_VERSION || m.metadata_len < sizeof m || m.metadata_len > m.event_len) {
				hrd_error("watcher: an event of fanotify version %d, which this daemon cannot read; rescanning", m.vers);
				w->rebuild = 1;
				continue;
			}
			handle(w, m.mask, w->buf + off + m.metadata_len, m.event_len - m.metadata_len);
		}
	if (n < 0 && errno != EAGAIN) {
		hrd_error("watcher: cannot read events: %s; rescanning", strerror(errno));
		w->rebuild = 1;
	}
	if (w->rebuild)
		rebuild(w);
}

static void close_fan(hrd_watch *base)
{
	fan *w = (fan *)base;
	clear(w);
	free(w->tab);
	free(w->fs);
	if (w->base.fd != w->base.efd)
		close(w->base.fd);
	hrd_watch_fini(&w->base);
	free(w);
}

static void resume_fan(hrd_watch *base)
{
	rebuild((fan *)base);
}

static const struct hrd_watch_ops ops = {read_events, close_fan, NULL, resume_fan};

int hrd_watch_fanotify_open(const struct hrd_watch_options *o, const char *root, const char *const *exclude,
                            hrd_watch **out, char *err, size_t errsz)
{
	fan *w = calloc(1, sizeof *w);
	if (!w) {
		snprintf(err, errsz, "fanotify: out of memory");
		return -1;
	}
	if (hrd_watch_init(&w->base, &ops, o, root, exclude, err, errsz) < 0)
		goto fail;
	/* Nothing would read the eventfd: take() calls read_events, and every post is made in it. */
	close(w->base.efd);
	w->base.efd = -1;
	/* No limit on the queue (CAP_SYS_ADMIN has it, as the mark needs): the
	 * whole filesystem's writes arrive here, and an overflow costs a walk of
	 * a tree that is huge by design. */
	w->base.fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_CLOEXEC | FAN_NONBLOCK |
	                           FAN_UNLIMITED_QUEUE, O_RDONLY | O_CLOEXEC | O_LARGEFILE);
	int e = w->base.fd < 0 ? errno : 0;
	w->fidflag = AT_HANDLE_FID;
	w->cap = 1024;
	if (!e && !(w->tab = calloc(w->cap, sizeof *w->tab)))
		e = ENOMEM;
	if (!e)
		e = walk(w, root, 0, 0);
	if (e == EPERM)
		snprintf(err, errsz, "fanotify: needs CAP_SYS_ADMIN (run the daemon as root), or use --watcher inotify or poll");
	else if (e == EINVAL && w->base.fd < 0)
		snprintf(err, errsz, "fanotify: this kernel cannot report folder handles and names (that needs Linux 5.9); "
		         "use --watcher inotify or poll");
	else if (e)
		snprintf(err, errsz, "fanotify: cannot watch %s: %s", root, strerror(e));
	if (e)
		goto fail;
	watch_path(w);
	*out = &w->base;
	return 0;
fail:
	close_fan(&w->base);
	return -1;
}
