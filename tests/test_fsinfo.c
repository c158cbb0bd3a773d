/* test_fsinfo.c: the watcher and state dir chosen from made-up statfs, mountinfo and /proc data, and the files never watched. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../daemon/fsinfo.h"
#include "../daemon/watch_impl.h"

#define EXT4 0xEF53
#define NFS 0x6969
#define P9 0x01021997
#define FUSE 0x65735546
#define CIFS 0xFF534D42
#define VBOX 0x786F4256
#define OVERLAY 0x794C7630

static const char debian[] = "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) (gcc-12) #1 SMP";
static const char wsl2[] = "Linux version 5.15.153.1-microsoft-standard-WSL2 (root@941d701f84f1) (gcc (GCC) 11.2.0)";
static const char linuxkit[] = "Linux version 6.6.32-linuxkit (root@buildkitsandbox) (gcc (Alpine 13.2.1_git20240309)";

static hrd_fsfacts facts(unsigned long magic, const char *fstype, const char *mnt, const char *kernel)
{
	hrd_fsfacts f = {.magic = magic};
	snprintf(f.fstype, sizeof f.fstype, "%s", fstype);
	snprintf(f.mountpoint, sizeof f.mountpoint, "%s", mnt);
	snprintf(f.kernel, sizeof f.kernel, "%s", kernel);
	return f;
}

static const char *choose(const hrd_fsfacts *f, char *why)
{
	return hrd_fs_watcher(f, "/src/game", why, 512);
}

Test(fsinfo, a_local_disk_is_watched_with_inotify)
{
	char why[512];
	hrd_fsfacts f = facts(EXT4, "ext4", "/", debian);
	cr_assert_str_eq(choose(&f, why), "inotify");
	cr_assert(strstr(why, "/src/game is on ext4"), "%s", why);
	cr_assert(hrd_fs_state_ok(&f, why, sizeof why));
}

Test(fsinfo, network_and_fuse_filesystems_are_polled_and_say_why)
{
	struct {
		unsigned long magic;
		const char *type, *says;
	} cases[] = {
		{NFS, "nfs4", "nfs4, a network filesystem"},
		{CIFS, "cifs", "cifs, a network filesystem"},
		{0xFE534D42, "smb3", "smb3, a network filesystem"},
		{0x00C36400, "ceph", "ceph, a network filesystem"},
		{P9, "9p", "9p, a share another machine writes to"},
		{FUSE, "fuse.sshfs", "fuse.sshfs, a FUSE filesystem"},
		{FUSE, "virtiofs", "virtiofs, a FUSE filesystem"},
		{VBOX, "vboxsf", "vboxsf, a virtual machine's shared folder"},
		{0xBACBACBC, "", "vmhgfs, a virtual machine's shared folder"},
		{0x7C7C6673, "", "prl_fs, a virtual machine's shared folder"},
		{NFS, "", "nfs, a network filesystem"}, /* no mountinfo: the magic number names it */
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char why[512];
		hrd_fsfacts f = facts(cases[i].magic, cases[i].type, "/src", debian);
		cr_expect_str_eq(choose(&f, why), "poll", "%s", cases[i].type);
		cr_expect(strstr(why, cases[i].says) && strstr(why, "kernel events miss"), "%s: %s", cases[i].type, why);
		cr_expect(!hrd_fs_state_ok(&f, why, sizeof why), "%s holds a state dir", cases[i].type);
	}
}

Test(fsinfo, a_fuse_filesystem_on_a_local_disk_is_watched_with_inotify)
{
	char why[512];
	hrd_fsfacts f = facts(FUSE, "fuseblk", "/mnt/usb", debian); /* ntfs-3g */
	cr_assert_str_eq(choose(&f, why), "inotify");
	cr_assert(hrd_fs_state_ok(&f, why, sizeof why));
}

Test(fsinfo, a_windows_drive_under_wsl2_is_polled)
{
	char why[512];
	hrd_fsfacts f = facts(P9, "9p", "/mnt/c", wsl2);
	cr_assert_str_eq(choose(&f, why), "poll");
	cr_assert(strstr(why, "Windows drive under WSL"), "%s", why);
	/* WSL2's own disk is ext4: kernel events see every writer there. */
	f = facts(EXT4, "ext4", "/", wsl2);
	cr_assert_str_eq(choose(&f, why), "inotify");
	/* WSL1 names its Windows drives drvfs. */
	f = facts(0x53464846, "drvfs", "/mnt/c", "Linux version 4.4.0-19041-Microsoft (Microsoft@Microsoft.com)");
	cr_assert_str_eq(choose(&f, why), "poll");
}

Test(fsinfo, a_bind_mount_in_docker_desktop_is_polled_but_not_one_on_a_linux_host)
{
	char why[512];
	hrd_fsfacts f = facts(0x61686970, "hostshare", "/app", linuxkit); /* a share by a name not in the table */
	f.container = 1;
	cr_assert_str_eq(choose(&f, why), "poll");
	cr_assert(strstr(why, "bound into this container"), "%s", why);
	/* a named volume: a disk of Docker's own machine */
	f = facts(EXT4, "ext4", "/data", linuxkit);
	f.container = 1;
	cr_assert_str_eq(choose(&f, why), "inotify");
	f = facts(FUSE, "fakeowner", "/app", linuxkit);
	f.container = 1;
	cr_assert_str_eq(choose(&f, why), "poll");
	/* Docker on Linux: the host's writes go through this very kernel. */
	f = facts(EXT4, "ext4", "/app", debian);
	f.container = 1;
	cr_assert_str_eq(choose(&f, why), "inotify");
	/* A tree inside the container's own root is written from inside only. */
	f = facts(OVERLAY, "overlay", "/", linuxkit);
	f.container = 1;
	cr_assert_str_eq(choose(&f, why), "inotify");
}

Test(fsinfo, a_huge_tree_takes_fanotify_only_where_it_is_permitted)
{
	char why[512];
	hrd_fsfacts f = facts(EXT4, "ext4", "/", debian);
	f.dirs = HRD_FS_LARGE + 1;
	f.fanotify = 1;
	cr_assert_str_eq(choose(&f, why), "fanotify");
	cr_assert(strstr(why, "one filesystem mark"), "%s", why);
	f.fanotify = 0;
	snprintf(f.fanotify_err, sizeof f.fanotify_err, "it needs CAP_SYS_ADMIN");
	cr_assert_str_eq(choose(&f, why), "inotify");
	cr_assert(strstr(why, "it needs CAP_SYS_ADMIN"), "%s", why);
	f.dirs = HRD_FS_LARGE;
	f.fanotify = 1;
	cr_assert_str_eq(choose(&f, why), "inotify");
	/* Polling wins over size: fanotify misses remote writers too. */
	f = facts(NFS, "nfs4", "/src", debian);
	f.dirs = HRD_FS_LARGE + 1;
	f.fanotify = 1;
	cr_assert_str_eq(choose(&f, why), "poll");
}

Test(fsinfo, noexec_and_read_only_mounts_cannot_hold_the_state_dir)
{
	char why[512];
	hrd_fsfacts f = facts(EXT4, "ext4", "/home", debian);
	f.noexec = 1;
	cr_assert(!hrd_fs_state_ok(&f, why, sizeof why));
	cr_assert(strstr(why, "noexec"), "%s", why);
	f.noexec = 0;
	f.rdonly = 1;
	cr_assert(!hrd_fs_state_ok(&f, why, sizeof why));
	cr_assert(strstr(why, "read-only"), "%s", why);
}

Test(fsinfo, mountinfo_gives_the_deepest_mount_of_a_path)
{
	static const char text[] =
		"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
		"40 22 0:35 / /home rw,relatime shared:20 - ext4 /dev/sda2 rw\n"
		"41 40 0:36 / /home/me/net rw - nfs4 server:/export rw,vers=4.2\n"
		"42 22 0:37 / /mnt/my\\040drive rw - 9p drvfs rw\n"
		"43 40 0:38 / /home/me/netbook rw - fuse.sshfs me@box: rw\n"
		"garbage line\n"
		"44 22 0:39 / relative rw - tmpfs tmpfs rw\n"
		"45 41 0:40 /sub /home/me/net rw master:3 - overlay overlay rw\n";
	char type[64], mnt[256];
	size_t n = sizeof text - 1;
	cr_assert_eq(hrd_fs_mountinfo(text, n, "/home/me/net/game", type, sizeof type, mnt, sizeof mnt), 0);
	cr_expect_str_eq(type, "overlay", "the last of a stack of mounts is the one seen");
	cr_expect_str_eq(mnt, "/home/me/net");
	cr_assert_eq(hrd_fs_mountinfo(text, n, "/home/me/netbook", type, sizeof type, mnt, sizeof mnt), 0);
	cr_expect_str_eq(type, "fuse.sshfs");
	cr_assert_eq(hrd_fs_mountinfo(text, n, "/home/me/network", type, sizeof type, mnt, sizeof mnt), 0);
	cr_expect_str_eq(type, "ext4", "/home/me/net is no prefix of /home/me/network");
	cr_assert_eq(hrd_fs_mountinfo(text, n, "/mnt/my drive/src", type, sizeof type, mnt, sizeof mnt), 0);
	cr_expect_str_eq(type, "9p");
	cr_expect_str_eq(mnt, "/mnt/my drive");
	cr_assert_eq(hrd_fs_mountinfo(text, n, "/srv", type, sizeof type, mnt, sizeof mnt), 0);
	cr_expect_str_eq(mnt, "/");
	cr_expect_eq(hrd_fs_mountinfo("bad\n", 4, "/srv", type, sizeof type, mnt, sizeof mnt), -1);
}

Test(fsinfo, probing_this_machine_gives_facts_that_agree_with_statfs)
{
	hrd_fsfacts f;
	char why[512];
	cr_assert_eq(hrd_fs_probe("/tmp", 1, &f), 0);
	cr_assert(f.magic != 0);
	cr_assert(f.fstype[0] && f.mountpoint[0] == '/', "%s on %s", f.fstype, f.mountpoint);
	cr_assert(strstr(f.kernel, "Linux"), "%s", f.kernel);
	cr_assert(hrd_fs_watcher(&f, "/tmp", why, sizeof why) != NULL);
}

Test(fsinfo, editor_temporary_files_are_never_saves)
{
	const char *ignored[] = {".enemy.c.swp", ".enemy.c.swo", "enemy.c.swx", "enemy.c~", "4913", ".#enemy.c",
	                         "#enemy.c#", "enemy.c___jb_tmp___", "enemy.c___jb_old___"};
	const char *kept[] = {"enemy.c", "enemy.h", "swap.c", "4913.c", "enemy.c.orig", "a~b.c", "#x.c"};
	for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++)
		cr_expect(hrd_watch_ignored(ignored[i]), "%s", ignored[i]);
	for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
		cr_expect(!hrd_watch_ignored(kept[i]), "%s", kept[i]);
}
