/* fsinfo.h: what the filesystem and the machine under a path say about watching it and keeping state on it. */
#ifndef HRD_FSINFO_H
#define HRD_FSINFO_H

#include <stddef.h>

/*
 * The facts the decisions rest on, as the kernel gives them: hrd_fs_probe
 * reads the real ones; tests make up their own.
 */
typedef struct hrd_fsfacts {
	unsigned long magic;  /* statfs f_type */
	int noexec, rdonly;   /* statvfs ST_NOEXEC, ST_RDONLY */
	char fstype[64];      /* the type /proc/self/mountinfo gives the mount holding the path ("nfs4", "fuse.sshfs") */
	char mountpoint[256]; /* and where that mount is ("/" for a container's own root) */
	char kernel[256];     /* /proc/version */
	int container;        /* /.dockerenv or /run/.containerenv, or a container's name in /proc/1/cgroup */
	int fanotify;         /* a filesystem mark could be made there (root, CAP_SYS_ADMIN) */
	char fanotify_err[64]; /* and why not */
	long dirs;            /* folders under the path, counted up to HRD_FS_LARGE + 1 */
} hrd_fsfacts;

/* A tree with more folders than this is watched with fanotify when it may be: one mark, no per-folder watch. */
#define HRD_FS_LARGE 20000

/* Read the facts for path (a resolved folder). count_dirs: walk it to count folders. Returns 0 or -1. */
int hrd_fs_probe(const char *path, int count_dirs, hrd_fsfacts *f);
/* The mount of path in mountinfo's text: its type and mount point. Returns 0, or -1 when none matches. */
int hrd_fs_mountinfo(const char *text, size_t len, const char *path, char *fstype, size_t ntype, char *mnt,
                     size_t nmnt);
/* The backend for --watcher auto ("inotify", "fanotify" or "poll"), and why, for status. */
const char *hrd_fs_watcher(const hrd_fsfacts *f, const char *path, char *why, size_t n);
/* 1 when a state dir (SQLite in WAL mode, objects to dlopen) can live on it; else 0 and why not. */
int hrd_fs_state_ok(const hrd_fsfacts *f, char *why, size_t n);
/* A name for the filesystem: mountinfo's type, else the magic number's. */
const char *hrd_fs_name(const hrd_fsfacts *f);

#endif
