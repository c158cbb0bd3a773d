/* fsinfo.c: filesystems and machines where kernel events miss writers, or a state dir cannot live; the one table of them. */
#include "fsinfo.h"
#include "readfile.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

enum kind {
	LOCAL,  /* every write goes through this kernel */
	REMOTE, /* network and cluster filesystems: other machines write too, unseen */
	P9,     /* 9p: WSL2's Windows drives, VM shares */
	FUSE,   /* the writer may be anywhere (sshfs, Docker Desktop's shares) */
	SHARE,  /* a hypervisor's shared folder: the host writes, unseen */
};

/*
 * The filesystems, by statfs magic number (linux/magic.h and the
 * filesystems' own sources) and by the type mountinfo gives (0: that name
 * shares another's number, or has none of its own).
 */
static const struct fs {
	unsigned long magic;
	const char *name;
	enum kind kind;
} fs[] = {
	{0x6969, "nfs", REMOTE},
	{0, "nfs4", REMOTE},
	{0xFF534D42, "cifs", REMOTE},
	{0xFE534D42, "smb2", REMOTE},
	{0, "smb3", REMOTE},
	{0x517B, "smb", REMOTE},
	{0x00C36400, "ceph", REMOTE},
	{0x5346414F, "afs", REMOTE},
	{0x6B414653, "kafs", REMOTE},
	{0x73757245, "coda", REMOTE},
	{0x564C, "ncp", REMOTE},
	{0x0BD00BD0, "lustre", REMOTE},
	{0x47504653, "gpfs", REMOTE},
	{0x01161970, "gfs2", REMOTE},
	{0x7461636F, "ocfs2", REMOTE},
	{0x19830326, "beegfs", REMOTE},
	{0x20030528, "orangefs", REMOTE},
	{0x01021997, "9p", P9},
	{0, "drvfs", P9}, /* WSL1's Windows drives: no number of their own */
	{0x65735546, "fuse", FUSE},
	{0, "virtiofs", FUSE},
	{0, "fakeowner", FUSE}, /* Docker Desktop's shares from the host machine */
	{0, "fuseblk", LOCAL},  /* FUSE on a local disk (ntfs-3g): written through this kernel only */
	{0x786F4256, "vboxsf", SHARE},
	{0xBACBACBC, "vmhgfs", SHARE},
	{0x7C7C6673, "prl_fs", SHARE},
	{0xEF53, "ext4", LOCAL},
	{0, "ext3", LOCAL},
	{0, "ext2", LOCAL},
	{0x58465342, "xfs", LOCAL},
	{0x9123683E, "btrfs", LOCAL},
	{0x01021994, "tmpfs", LOCAL},
	{0x794C7630, "overlay", LOCAL},
	{0x2FC12FC1, "zfs", LOCAL},
	{0xF2F52010, "f2fs", LOCAL},
	{0x4D44, "vfat", LOCAL},
	{0x2011BAB0, "exfat", LOCAL},
	{0x5346544E, "ntfs", LOCAL},
	{0x7366746E, "ntfs3", LOCAL},
};

/* The table's entry for f: by mountinfo's type ("fuse.sshfs" is fuse), else by magic number; NULL when unknown. */
static const struct fs *lookup(const hrd_fsfacts *f)
{
	const char *name = strncmp(f->fstype, "fuse.", 5) == 0 ? "fuse" : f->fstype;
	for (size_t i = 0; *name && i < sizeof fs / sizeof *fs; i++)
		if (strcmp(fs[i].name, name) == 0)
			return &fs[i];
	for (size_t i = 0; i < sizeof fs / sizeof *fs; i++)
		if (fs[i].magic && fs[i].magic == f->magic && (!*name || fs[i].kind != LOCAL))
			return &fs[i];
	return NULL;
}

static enum kind kind_of(const hrd_fsfacts *f)
{
	const struct fs *e = lookup(f);
	return e ? e->kind : LOCAL;
}

const char *hrd_fs_name(const hrd_fsfacts *f)
{
	const struct fs *e = lookup(f);
	return f->fstype[0] ? f->fstype : e ? e->name : "an unknown filesystem";
}

static int has(const char *hay, const char *needle)
{
	return strcasestr(hay, needle) != NULL;
}

/* A filesystem of this kernel's own disks or memory, as the table knows it. */
static int local_type(const hrd_fsfacts *f)
{
	const struct fs *e = lookup(f);
	return e && e->kind == LOCAL;
}

const char *hrd_fs_watcher(const hrd_fsfacts *f, const char *path, char *why, size_t n)
{
	const char *name = hrd_fs_name(f);
	int wsl = has(f->kernel, "microsoft") || has(f->kernel, "wsl");
	/* Docker Desktop runs containers in a VM of its own (LinuxKit; WSL2 on Windows). */
	int vm_kernel = has(f->kernel, "linuxkit") || wsl;
	switch (kind_of(f)) {
	case P9:
		if (wsl)
			snprintf(why, n, "%s is on a Windows drive under WSL (%s): kernel events miss writes "
			         "made from Windows", path, name);
		else
			snprintf(why, n, "%s is on %s, a share another machine writes to: kernel events miss "
			         "its writes", path, name);
		return "poll";
	case REMOTE:
		snprintf(why, n, "%s is on %s, a network filesystem: kernel events miss writes made "
		         "by other machines", path, name);
		return "poll";
	case FUSE:
		snprintf(why, n, "%s is on %s, a FUSE filesystem: kernel events miss writes made "
		         "behind it (on the far side of sshfs, by the host of a VM)", path, name);
		return "poll";
	case SHARE:
		snprintf(why, n, "%s is on %s, a virtual machine's shared folder: kernel events miss "
		         "the host's writes", path, name);
		return "poll";
	case LOCAL:
		break;
	}
	/* A container on a virtual machine's kernel (Docker Desktop), on a mount
	 * of a type no local disk has: a share from the host machine by another
	 * name. Its named volumes are local disks in the machine: inotify. */
	if (f->container && vm_kernel && f->mountpoint[0] && strcmp(f->mountpoint, "/") != 0 && !local_type(f)) {
		snprintf(why, n, "%s is bound into this container from the host machine of Docker's "
		         "virtual machine (%s): kernel events miss the host's writes", path, f->mountpoint);
		return "poll";
	}
	if (f->dirs > HRD_FS_LARGE && f->fanotify) {
		snprintf(why, n, "%s has more than %d folders: one filesystem mark covers them all",
		         path, HRD_FS_LARGE);
		return "fanotify";
	}
	if (f->dirs > HRD_FS_LARGE)
		snprintf(why, n, "%s has more than %d folders, but fanotify cannot be used (%s): one "
		         "watch per folder", path, HRD_FS_LARGE, f->fanotify_err[0] ? f->fanotify_err : "not permitted");
	else
		snprintf(why, n, "%s is on %s, written through this kernel only", path, name);
	return "inotify";
}

int hrd_fs_state_ok(const hrd_fsfacts *f, char *why, size_t n)
{
	const char *name = hrd_fs_name(f);
	switch (kind_of(f)) {
	case REMOTE:
		snprintf(why, n, "%s is a network filesystem: SQLite's write-ahead log needs memory shared "
		         "on one machine, and its locks may not hold", name);
		return 0;
	case P9:
	case FUSE:
	case SHARE:
		snprintf(why, n, "%s may not keep SQLite's locks and shared memory, nor take a socket", name);
		return 0;
	case LOCAL:
		break;
	}
	if (f->noexec) {
		snprintf(why, n, "%s is mounted noexec: built objects could not be loaded from it", name);
		return 0;
	}
	if (f->rdonly) {
		snprintf(why, n, "%s is mounted read-only", name);
		return 0;
	}
	return 1;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *o = s;
	for (; *s; s++)
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	*o = '\0';
}

/* path is under mnt (or is it). */
static size_t under(const char *path, const char *mnt)
{
	size_t m = strlen(mnt);
	if (strcmp(mnt, "/") == 0)
		return 1;
	return strncmp(path, mnt, m) == 0 && (path[m] == '/' || !path[m]) ? m : 0;
}

int hrd_fs_mountinfo(const char *text, size_t len, const char *path, char *fstype, size_t ntype, char *mnt,
                     size_t nmnt)
{
	size_t best = 0;
	const char *end = text + len;
	for (const char *line = text; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t l = nl ? (size_t)(nl - line) : (size_t)(end - line);
		char buf[4096], *f[6] = {0}, *save = NULL, *type = NULL;
		if (l < sizeof buf) {
			memcpy(buf, line, l);
			buf[l] = '\0';
			/* id parent dev root mountpoint options [optional...] - type source superoptions */
			int i = 0;
			for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
				if (i < 6)
					f[i++] = t;
				else if (strcmp(t, "-") == 0) {
					type = strtok_r(NULL, " ", &save);
					break;
				}
			}
			if (i == 6 && type && f[4][0] == '/') {
				unescape(f[4]);
				size_t m = under(path, f[4]);
				if (m && m >= best) { /* the deepest, and the last of a stack */
					best = m;
					snprintf(fstype, ntype, "%s", type);
					snprintf(mnt, nmnt, "%s", f[4]);
				}
			}
		}
		line += l + 1;
	}
	return best ? 0 : -1;
}

static long count_dirs(int dirfd, long limit, int depth)
{
	DIR *d = fdopendir(dirfd);
	long n = 0;
	if (!d) {
		close(dirfd);
		return 0;
	}
	struct dirent *e;
	while (n <= limit && depth < 64 && (e = readdir(d))) {
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    strcmp(e->d_name, ".git") == 0)
			continue;
		int fd = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		n++;
		if (fd >= 0)
			n += count_dirs(fd, limit - n, depth + 1);
	}
	closedir(d);
	return n;
}

static void probe_fanotify(const char *path, hrd_fsfacts *f)
{
	int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_CLOEXEC, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_CLOSE_WRITE, AT_FDCWD, path) == 0)
		f->fanotify = 1;
	else
		snprintf(f->fanotify_err, sizeof f->fanotify_err, "%s",
		         errno == EPERM ? "it needs CAP_SYS_ADMIN" : strerror(errno));
	if (fd >= 0)
		close(fd);
}

int hrd_fs_probe(const char *path, int count, hrd_fsfacts *f)
{
	struct statfs sf;
	struct statvfs sv;
	memset(f, 0, sizeof *f);
	if (statfs(path, &sf) < 0 || statvfs(path, &sv) < 0)
		return -1;
	f->magic = (unsigned long)sf.f_type;
	f->noexec = !!(sv.f_flag & ST_NOEXEC);
	f->rdonly = !!(sv.f_flag & ST_RDONLY);
	size_t len;
	char *text = hrd_readfile(AT_FDCWD, "/proc/self/mountinfo", 16 << 20, &len);
	if (text)
		hrd_fs_mountinfo(text, len, path, f->fstype, sizeof f->fstype, f->mountpoint, sizeof f->mountpoint);
	free(text);
	if ((text = hrd_readfile(AT_FDCWD, "/proc/version", 4096, &len))) {
		snprintf(f->kernel, sizeof f->kernel, "%s", text);
		free(text);
	}
	f->container = access("/.dockerenv", F_OK) == 0 || access("/run/.containerenv", F_OK) == 0;
	if (!f->container && (text = hrd_readfile(AT_FDCWD, "/proc/1/cgroup", 1 << 16, &len))) {
		f->container = strstr(text, "docker") || strstr(text, "containerd") || strstr(text, "kubepods") ||
		               strstr(text, "libpod");
		free(text);
	}
	if (count) {
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		f->dirs = fd >= 0 ? count_dirs(fd, HRD_FS_LARGE, 0) : 0;
		if (f->dirs > HRD_FS_LARGE)
			probe_fanotify(path, f);
	}
	return 0;
}
