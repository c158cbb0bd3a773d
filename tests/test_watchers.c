/* test_watchers.c: the watcher backends' safety nets and bad input: watch limits, a root made again, links, unreadable folders, the state dir's place. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../daemon/watch_impl.h"
#include "util.h"

#define WAIT_MS 30000 /* a deadline, not a delay */

static char *top;  /* a temp folder holding the root and what lives beside it */
static char *root; /* top/root: the watched folder */
static t_daemon d;
static int mounted;

static void setup(void)
{
	top = t_tmpdir();
	root = t_fmt("%s/root", top);
	cr_assert_eq(mkdir(root, 0755), 0);
	d.pidfd = -1;
	mounted = 0;
}

static void teardown(void)
{
	if (d.pidfd >= 0) {
		char *text = t_read(d.log, NULL);
		t_daemon_stop(&d);
		cr_expect(!text || (!strstr(text, "Sanitizer") && !strstr(text, "runtime error")), "the daemon's log: %s", text);
		free(text);
	}
	if (mounted)
		umount2(root, MNT_DETACH);
	t_rmtree(top);
	free(root);
	free(top);
}

TestSuite(watchers, .init = setup, .fini = teardown, .timeout = 120);

static void at(const char *rel, const char *text)
{
	char *p = t_fmt("%s/%s", root, rel);
	if (strchr(rel, '/')) {
		char *dir = strdup(p);
		*strrchr(dir, '/') = '\0';
		mkdir(dir, 0755);
		free(dir);
	}
	cr_assert_eq(t_write(p, text, strlen(text)), 0, "cannot write %s", p);
	free(p);
}

static void source(const char *rel, int value)
{
	char *text = t_fmt("int f(void) { return %d; }\n", value);
	at(rel, text);
	free(text);
}

/* Start the daemon through wrap (NULL for none), with args; its state dir is state (NULL: ROOT/.hotreload). */
static void start(const char *const *wrap, const char *const *args, const char *const *env, const char *state)
{
	const char *all[16] = {"--state-dir", state};
	size_t n = state ? 2 : 0;
	for (size_t i = 0; args && args[i] && n < 15; i++)
		all[n++] = args[i];
	all[n] = NULL;
	t_run r;
	int rc = t_daemon_start_under(&d, wrap, root, env, all, &r);
	cr_assert_eq(rc, 0, "hotreloadd did not start (exit %d): %s", r.status, r.err);
	t_run_free(&r);
}

/* Wait until module's newest announced build returns want from f(). */
static void live(const char *module, int want)
{
	t_peer p;
	cr_assert_eq(t_peer_open(&p, d.sock), 0, "cannot talk to the daemon");
	hrp_msg m = {.type = HRP_SUBSCRIBE, .u.sub.module = module};
	cr_assert_eq(t_peer_send(&p, &m), 0);
	int got = -1;
	while (got != want) {
		int rc = t_peer_next(&p, 1u << HRP_BUILD, module, WAIT_MS, &m);
		cr_assert_eq(rc, 0, "%s never returned %d (last %d); the log: %s", module, want, got, t_read(d.log, NULL));
		got = t_call(m.u.build.path, "f");
	}
	t_peer_close(&p);
}

/* jq over `hotreload status --json`. */
static char *status(const char *filter)
{
	const char *args[] = {"--state-dir", d.state, "--socket", d.sock, "status", "--json", NULL};
	t_run r = t_cli(root, NULL, args);
	cr_assert_eq(r.status, 0, "hotreload status: %s", r.err);
	int st;
	char *out = t_jq(r.out, filter, &st);
	t_run_free(&r);
	return out;
}

/* Skip where a user namespace of its own cannot be had (its limits are the test's). */
static void need_userns(void)
{
	t_run r = t_exec(top, NULL, (const char *const[]){"unshare", "-Ur", "true", NULL});
	int ok = r.status == 0;
	t_run_free(&r);
	if (!ok)
		cr_skip_test("no user namespace can be made here (unshare -Ur)");
}

Test(watchers, folders_past_the_inotify_watch_limit_are_polled_and_status_says_so)
{
	for (int i = 1; i <= 6; i++) {
		char *rel = t_fmt("m%d/x.c", i);
		source(rel, 1);
		free(rel);
	}
	need_userns();
	/* A user namespace of its own has a watch limit of its own: 4 here. */
	const char *wrap[] = {"unshare", "-Ur", "sh", "-c", "echo 4 > /proc/sys/user/max_inotify_watches && exec \"$@\"",
	                      "sh", NULL};
	const char *args[] = {"--watcher", "inotify", "--poll-interval", "100", NULL};
	start(wrap, args, NULL, NULL);
	live("m6", 1);
	char *reason = status(".watcher.reason");
	cr_assert(strstr(reason, "folders are polled"), "%s", reason);
	free(reason);
	char *log = t_read(d.log, NULL);
	cr_assert(log && strstr(log, "the limit of inotify watches is reached") && strstr(log, "max_user_watches"), "%s", log);
	free(log);
	source("m6/x.c", 2); /* in a polled folder */
	live("m6", 2);
	source("m1/x.c", 3); /* in a watched one */
	live("m1", 3);
	source("m7/x.c", 4); /* in a folder made after the start: no watch left for it either */
	live("m7", 4);
}

static void need(const char *backend)
{
	char why[300];
	if (strcmp(backend, "fanotify") == 0 && t_fanotify_unusable(top, why, sizeof why))
		cr_skip_test("%s", why);
}

static void root_made_again(const char *backend)
{
	need(backend);
	char *state = t_fmt("%s/state", top);
	const char *args[] = {"--watcher", backend, "--poll-interval", "100", NULL};
	source("a.c", 1);
	start(NULL, args, NULL, state);
	live("a", 1);
	t_rmtree(root);
	cr_assert_eq(mkdir(root, 0755), 0);
	source("a.c", 2);
	live("a", 2);
	source("a.c", 3); /* and it is watched again, not only scanned */
	live("a", 3);
	free(state);
}

Test(watchers, a_root_removed_and_made_again_is_watched_again_by_inotify)
{
	root_made_again("inotify");
}

Test(watchers, a_root_removed_and_made_again_is_watched_again_by_poll)
{
	root_made_again("poll");
}

Test(watchers, a_root_removed_and_made_again_is_watched_again_by_fanotify)
{
	root_made_again("fanotify");
}

Test(watchers, auto_says_which_backend_and_why)
{
	source("a.c", 1);
	start(NULL, NULL, NULL, NULL);
	live("a", 1);
	char *w = status(".watcher | \"\\(.backend): \\(.reason)\"");
	cr_assert(strstr(w, "inotify: ") && strstr(w, "written through this kernel only"), "%s", w);
	free(w);
}

Test(watchers, poll_is_chosen_by_name_and_sees_saves)
{
	source("a.c", 1);
	const char *args[] = {"--watcher", "poll", NULL}; /* the default interval */
	start(NULL, args, NULL, NULL);
	live("a", 1);
	char *w = status(".watcher | \"\\(.backend): \\(.reason)\"");
	cr_assert_str_eq(w, "poll: chosen with --watcher poll");
	free(w);
	source("a.c", 2);
	live("a", 2);
}

Test(watchers, links_out_of_the_root_and_link_loops_are_not_followed)
{
	char *elsewhere = t_fmt("%s/elsewhere", top), *link = t_fmt("%s/out", root);
	char *loop = t_fmt("%s/loop", root), *up = t_fmt("%s/sub/up", root);
	source("a.c", 1);
	source("sub/x.c", 1);
	cr_assert_eq(mkdir(elsewhere, 0755), 0);
	char *ext = t_fmt("%s/x.c", elsewhere);
	cr_assert_eq(t_write(ext, "int f(void) { return 9; }\n", 26), 0);
	cr_assert_eq(symlink(elsewhere, link), 0);
	cr_assert_eq(symlink("loop", loop), 0);
	cr_assert_eq(symlink("..", up), 0);
	const char *backends[] = {"inotify", "poll", "fanotify"};
	char why[300];
	for (int i = 0; i < 3 - !!t_fanotify_unusable(top, why, sizeof why); i++) {
		const char *args[] = {"--watcher", backends[i], "--poll-interval", "100", NULL};
		start(NULL, args, NULL, NULL);
		live("a", 1);
		live("sub", 1 + i);
		char *out = status(".modules[] | select(.module == \"out\") | \"\\(.status): \\(.message)\"");
		cr_assert(strstr(out, "skipped: a link to a place outside the root: not followed") &&
		          strstr(out, "--follow-links"), "%s: %s", backends[i], out);
		free(out);
		char *log = t_read(d.log, NULL);
		cr_assert(log && strstr(log, "outside the root: not followed (start hotreloadd with --follow-links to watch"),
		          "%s: the watcher follows it: %s", backends[i], log);
		free(log);
		source("sub/x.c", 2 + i); /* the daemon keeps working */
		live("sub", 2 + i);
		t_daemon_stop(&d);
		d.pidfd = -1;
	}
	free(elsewhere);
	free(link);
	free(loop);
	free(up);
	free(ext);
}

Test(watchers, an_unreadable_folder_is_reported_and_the_rest_is_watched)
{
	/* As root every folder is readable: the daemon runs as nobody here. */
	source("a.c", 1);
	source("secret/x.c", 1);
	cr_assert_eq(chown(top, 65534, 65534), 0);
	const char *const chowned[] = {"root", "root/a.c", "root/secret", "root/secret/x.c"};
	for (size_t i = 0; i < 4; i++) {
		char *p = t_fmt("%s/%s", top, chowned[i]);
		cr_assert_eq(chown(p, 65534, 65534), 0);
		free(p);
	}
	char *secret = t_fmt("%s/secret", root);
	cr_assert_eq(chmod(secret, 0), 0);
	const char *wrap[] = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", NULL};
	const char *backends[] = {"inotify", "poll"};
	for (int i = 0; i < 2; i++) {
		const char *args[] = {"--watcher", backends[i], "--poll-interval", "100", NULL};
		start(wrap, args, NULL, NULL);
		live("a", 1 + i);
		char *reason = status(".watcher.reason");
		cr_assert(strstr(reason, "1 folder is not watched"), "%s: %s", backends[i], reason);
		free(reason);
		char *log = t_read(d.log, NULL);
		cr_assert(log && strstr(log, secret) && strstr(log, "Permission denied"), "%s", log);
		free(log);
		source("a.c", 2 + i);
		live("a", 2 + i);
		t_daemon_stop(&d);
		d.pidfd = -1;
	}
	chmod(secret, 0755);
	free(secret);
}

Test(watchers, a_state_dir_on_a_noexec_mount_moves_under_xdg_state_home)
{
	if (mount("tmpfs", root, "tmpfs", MS_NOEXEC, "size=16m") < 0)
		cr_skip_test("cannot mount a noexec tmpfs here (%s): run as root", strerror(errno));
	mounted = 1;
	source("a.c", 1);
	char *xdg = t_fmt("XDG_STATE_HOME=%s/xdg", top);
	const char *env[] = {xdg, NULL};
	start(NULL, NULL, env, NULL);
	live("a", 1);
	char *link = t_fmt("%s/.hotreload", root), to[4096];
	ssize_t n = readlink(link, to, sizeof to - 1);
	cr_assert_gt(n, 0, "%s is no link", link);
	to[n] = '\0';
	char *want = t_fmt("%s/xdg/hotreload/root-", top);
	cr_assert(strncmp(to, want, strlen(want)) == 0, "%s -> %s", link, to);
	char *dir = status(".daemon | \"\\(.state_dir): \\(.state_dir_reason)\"");
	cr_assert(strncmp(dir, to, strlen(to)) == 0 && strstr(dir, "mounted noexec"), "%s", dir);
	free(dir);
	/* Started again, it finds its history through the link: v2, not a new v1. */
	t_daemon_stop(&d);
	source("a.c", 2);
	start(NULL, NULL, env, NULL);
	live("a", 2);
	char *v = status(".modules[] | select(.module == \"a\") | .version");
	cr_assert_str_eq(v, "2");
	free(v);
	free(xdg);
	free(link);
	free(want);
}

/* The daemon in a user namespace whose inotify watches are one: the root's. */
static const char *const one_watch[] = {"unshare", "-Ur", "sh", "-c",
                                        "echo 1 > /proc/sys/user/max_inotify_watches && exec \"$@\"", "sh", NULL};

Test(watchers, a_verification_scan_builds_what_no_watcher_can_see)
{
	/* A header outside the root is in the key, and its folder is watched too, but not here: a user namespace's
	 * limit of one inotify watch leaves none for it once the root has its own. Only the scan sees its saves. */
	need_userns();
	char *inc = t_fmt("%s/inc", top), *h = t_fmt("%s/inc/ext.h", top), *conf = t_fmt("include = %s\n", inc);
	cr_assert_eq(mkdir(inc, 0755), 0);
	cr_assert_eq(t_write(h, "#define EXT 1\n", 14), 0);
	at("hotreload.conf", conf);
	at("a.c", "#include \"ext.h\"\nint f(void) { return EXT; }\n");
	const char *args[] = {"--verify-every", "1", NULL};
	start(one_watch, args, NULL, NULL);
	live("a", 1);
	cr_assert_eq(t_write(h, "#define EXT 2\n", 14), 0);
	live("a", 2);
	char *log = t_read(d.log, NULL);
	cr_assert(log && strstr(log, "a: v2 built") && strstr(log, "(verification scan)"), "%s", log);
	free(log);
	free(inc);
	free(h);
	free(conf);
}

Test(watchers, status_counts_the_watchers_events_and_the_changes_only_a_verification_scan_found)
{
	need_userns(); /* no watch left for the header's folder, as above */
	char *inc = t_fmt("%s/inc", top), *h = t_fmt("%s/inc/ext.h", top), *conf = t_fmt("include = %s\n", inc);
	cr_assert_eq(mkdir(inc, 0755), 0);
	cr_assert_eq(t_write(h, "#define EXT 1\n", 14), 0);
	at("hotreload.conf", conf);
	at("a.c", "#include \"ext.h\"\nint f(void) { return EXT; }\n");
	const char *args[] = {"--verify-every", "1", NULL};
	start(one_watch, args, NULL, NULL);
	live("a", 1);
	char *before = status(".watcher.events");
	/* A save in the root: the watcher tells it. */
	at("a.c", "#include \"ext.h\"\nint f(void) { return EXT + 10; }\n");
	live("a", 11);
	char *more = t_fmt(".watcher.events > %s", before);
	char *got = status(more);
	cr_assert_str_eq(got, "true", "events were %s before the save", before);
	free(got);
	/* A header outside the root: no event, and the verification scan finds it. */
	cr_assert_eq(t_write(h, "#define EXT 2\n", 14), 0);
	live("a", 12);
	got = status(".watcher | \"\\(.missed >= 1) \\(.verify_scans >= 1) \\(.cpu_ms | type) \\(.overflows)\"");
	cr_assert_str_eq(got, "true true number 0");
	free(got);
	const char *text[] = {"--state-dir", d.state, "--socket", d.sock, "status", NULL};
	t_run r = t_cli(root, NULL, text);
	cr_assert(r.status == 0 && strstr(r.out, "verification scans, ") && strstr(r.out, "changes missed"), "%s", r.out);
	t_run_free(&r);
	char *log = t_read(d.log, NULL);
	cr_assert(log && strstr(log, "a: changed, and only a verification scan saw it"), "%s", log);
	free(log);
	free(more);
	free(before);
	free(inc);
	free(h);
	free(conf);
}

/* jq's filter over `hotreload status --json` prints "true". */
static int status_holds(void *filter)
{
	char *got = status(filter);
	int ok = got && strcmp(got, "true") == 0;
	free(got);
	return ok;
}

Test(watchers, status_measures_the_cpu_of_the_polling_thread)
{
	/* Two thousand files looked at every 10 ms or so: the poller's thread works, and its time is counted. */
	for (int i = 0; i < 2000; i++) {
		char *rel = t_fmt("d%d/f%d.txt", i % 20, i);
		at(rel, "x\n");
		free(rel);
	}
	source("a.c", 1);
	const char *args[] = {"--watcher", "poll", "--poll-interval", "10", NULL};
	start(NULL, args, NULL, NULL);
	live("a", 1);
	/* Its first walk was on the loop's thread, once: what comes after is the thread's. */
	char *first = status(".watcher.cpu_ms"), *grew = t_fmt(".watcher | .backend == \"poll\" and .cpu_ms > %s", first);
	cr_assert(t_until(status_holds, grew, WAIT_MS), "%s", status(".watcher"));
	free(first);
	free(grew);
}

Test(watchers, watches_of_removed_folders_are_let_go_of)
{
	source("a.c", 1);
	char *parent = t_fmt("%s/d", root);
	cr_assert_eq(mkdir(parent, 0755), 0);
	free(parent);
	for (int i = 0; i < 1000; i++) { /* there at the start: each is watched before it goes */
		char *p = t_fmt("%s/d/%d", root, i);
		cr_assert_eq(mkdir(p, 0755), 0);
		free(p);
	}
	const char *args[] = {"--watcher", "inotify", NULL};
	start(NULL, args, NULL, NULL);
	live("a", 1);
	for (int i = 0; i < 1000; i++) {
		char *p = t_fmt("%s/d/%d", root, i);
		cr_assert_eq(rmdir(p), 0);
		free(p);
	}
	cr_assert(t_until_in_file(d.log, "starting over to let go of them", 1, WAIT_MS), "%s", t_read(d.log, NULL));
	source("a.c", 2);
	live("a", 2);
}

Test(watchers, auto_polls_when_inotify_cannot_start)
{
	need_userns();
	source("a.c", 1);
	/* No inotify instance to be had in this user namespace. */
	const char *wrap[] = {"unshare", "-Ur", "sh", "-c", "echo 0 > /proc/sys/user/max_inotify_instances && exec \"$@\"",
	                      "sh", NULL};
	const char *args[] = {"--poll-interval", "100", NULL};
	start(wrap, args, NULL, NULL);
	live("a", 1);
	char *w = status(".watcher | \"\\(.backend): \\(.reason)\"");
	cr_assert(strstr(w, "poll: polling: inotify could not start"), "%s", w);
	free(w);
	source("a.c", 2);
	live("a", 2);
}

Test(watchers, a_state_dir_link_is_followed_from_the_root_and_only_to_a_folder_of_ours)
{
	if (mount("tmpfs", root, "tmpfs", MS_NOEXEC, "size=16m") < 0)
		cr_skip_test("cannot mount a noexec tmpfs here (%s): run as root", strerror(errno));
	mounted = 1;
	source("a.c", 1);
	char *mine = t_fmt("%s/mine", top), *link = t_fmt("%s/.hotreload", root);
	cr_assert_eq(mkdir(mine, 0700), 0);
	/* relative: from the root's folder, not from wherever the daemon started */
	cr_assert_eq(symlink("../mine", link), 0);
	start(NULL, NULL, NULL, NULL);
	live("a", 1);
	char *db = t_fmt("%s/history.db", mine);
	struct stat st;
	cr_assert_eq(stat(db, &st), 0, "the history is not in %s", mine);
	t_daemon_stop(&d);
	/* a folder another user may change is not a place for it: it goes under XDG_STATE_HOME instead */
	cr_assert_eq(unlink(link), 0);
	char *theirs = t_fmt("%s/theirs", top), *xdg = t_fmt("XDG_STATE_HOME=%s/xdg", top);
	cr_assert_eq(mkdir(theirs, 0777), 0);
	cr_assert_eq(chmod(theirs, 0777), 0);
	cr_assert_eq(symlink(theirs, link), 0);
	t_proc p;
	const char *env[] = {xdg, NULL};
	const char *argv[] = {getenv("HR_DAEMON") ? getenv("HR_DAEMON") : HR_BUILD_DIR "/hotreloadd", "--root", root,
	                      "--foreground", NULL};
	cr_assert_eq(t_proc_start(&p, top, env, argv), 0);
	char *err = NULL;
	int ready = t_until_in_file(p.errpath, "ready: ", 1, WAIT_MS);
	char *text = t_read(p.errpath, NULL);
	cr_assert(ready, "%s", text);
	cr_assert(strstr(text, "leads to a folder that is not used") && strstr(text, "other users can write to it"), "%s",
	          text);
	free(text);
	char *planted = t_fmt("%s/history.db", theirs);
	cr_assert_neq(stat(planted, &st), 0, "the history went into a folder others can change");
	t_proc_end(&p, &err);
	free(err);
	free(planted);
	free(theirs);
	free(xdg);
	free(db);
	free(mine);
	free(link);
}

Test(watchers, a_state_dir_link_another_user_made_is_not_followed_even_to_a_folder_of_ours)
{
	if (mount("tmpfs", root, "tmpfs", MS_NOEXEC, "size=16m") < 0)
		cr_skip_test("cannot mount a noexec tmpfs here (%s): run as root", strerror(errno));
	mounted = 1;
	source("a.c", 1);
	/* The root is nobody's, and so is its link, to a folder of root's that nobody chose. */
	char *mine = t_fmt("%s/mine", top), *link = t_fmt("%s/.hotreload", root), *xdg = t_fmt("XDG_STATE_HOME=%s/xdg", top);
	cr_assert_eq(chmod(top, 0711), 0);
	cr_assert_eq(mkdir(mine, 0700), 0);
	cr_assert_eq(chown(root, 65534, 65534), 0);
	cr_assert_eq(symlink(mine, link), 0);
	cr_assert_eq(lchown(link, 65534, 65534), 0);
	t_proc p;
	const char *argv[] = {getenv("HR_DAEMON") ? getenv("HR_DAEMON") : HR_BUILD_DIR "/hotreloadd", "--root", root,
	                      "--foreground", NULL};
	cr_assert_eq(t_proc_start(&p, top, (const char *const[]){xdg, NULL}, argv), 0);
	int ready = t_until_in_file(p.errpath, "ready: ", 1, WAIT_MS);
	char *text = t_read(p.errpath, NULL);
	cr_assert(ready, "%s", text);
	cr_assert(strstr(text, "the link belongs to nobody (uid 65534)"), "%s", text);
	char *db = t_fmt("%s/history.db", mine), *err = NULL;
	struct stat st;
	cr_assert_neq(stat(db, &st), 0, "the history went where another user's link led");
	t_proc_end(&p, &err);
	free(err);
	free(text);
	free(db);
	free(xdg);
	free(link);
	free(mine);
}

/* Wait for the start of a wall-clock second: a save there shares its second with the next ones. */
static void at_a_second(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct timespec rest = {0, 1000000000L - ts.tv_nsec};
	nanosleep(&rest, NULL); /* part of how the save is made, not a wait for a result */
}

Test(watchers, polling_finds_a_file_made_in_the_second_its_folder_was_listed)
{
	/* ext4 with 128-byte inodes keeps times in whole seconds, as ext3, HFS+ and many NFS servers do. */
	char *img = t_fmt("%s/coarse.img", top);
	t_run r = t_exec(top, NULL, (const char *const[]){"truncate", "-s", "16M", img, NULL});
	int ok = r.status == 0;
	t_run_free(&r);
	r = t_exec(top, NULL, (const char *const[]){"mkfs.ext4", "-q", "-I", "128", img, NULL});
	ok = ok && r.status == 0;
	t_run_free(&r);
	if (ok) {
		r = t_exec(top, NULL, (const char *const[]){"mount", "-o", "loop", img, root, NULL});
		ok = r.status == 0;
		t_run_free(&r);
	}
	if (!ok)
		cr_skip_test("cannot make and mount a small ext4 image here (mkfs.ext4, loop devices, root)");
	mounted = 1;
	source("z.c", 1);
	const char *args[] = {"--watcher", "poll", "--poll-interval", "100", NULL};
	start(NULL, args, NULL, NULL);
	live("z", 1);
	for (int i = 0; i < 3; i++) {
		char *a = t_fmt("a%d.c", i), *b = t_fmt("b%d.c", i), *bname = t_fmt("b%d", i);
		at_a_second();
		source(a, i);
		struct timespec later = {0, 400000000L};
		nanosleep(&later, NULL); /* listed by now, most likely, in that same second */
		source(b, 10 + i);
		live(bname, 10 + i);
		free(a);
		free(b);
		free(bname);
	}
	free(img);
}

Test(watchers, what_hotreload_conf_excludes_is_not_watched_and_is_once_it_is_not)
{
	need_userns();
	source("m1/x.c", 1);
	source("gen/x.c", 7);
	for (int i = 0; i < 8; i++) {
		char *rel = t_fmt("gen/d%d/y.h", i);
		at(rel, "#define Y 1\n");
		free(rel);
	}
	at("hotreload.conf", "exclude = gen\n");
	/* 4 watches: the root, its folder, m1 and one more; gen and its 8 folders would need 9 */
	const char *wrap[] = {"unshare", "-Ur", "sh", "-c", "echo 4 > /proc/sys/user/max_inotify_watches && exec \"$@\"",
	                      "sh", NULL};
	const char *args[] = {"--watcher", "inotify", "--poll-interval", "100", NULL};
	start(wrap, args, NULL, NULL);
	live("m1", 1);
	char *reason = status(".watcher.reason");
	cr_assert(!strstr(reason, "polled"), "gen was watched: %s", reason);
	free(reason);
	/* no longer excluded: watched (past the limit: polled) and built */
	at("hotreload.conf", "# nothing excluded\n");
	live("gen", 7);
	source("gen/x.c", 8);
	live("gen", 8);
	reason = status(".watcher.reason");
	cr_assert(strstr(reason, "polled"), "%s", reason);
	free(reason);
	char *log = t_read(d.log, NULL);
	cr_assert(log && strstr(log, "exclusions changed; watching again"), "%s", log);
	free(log);
}

Test(watchers, every_backend_watches_a_folder_once_hotreload_conf_stops_excluding_it)
{
	const char *backends[] = {"poll", "fanotify", "inotify"};
	char why[300];
	for (int i = 0; i < 3; i++) {
		if (strcmp(backends[i], "fanotify") == 0 && t_fanotify_unusable(top, why, sizeof why))
			continue;
		char *conf = t_fmt("exclude = gen\n# %d\n", i);
		at("hotreload.conf", conf);
		free(conf);
		source("gen/x.c", 10 * i + 1);
		source("a.c", i);
		const char *args[] = {"--watcher", backends[i], "--poll-interval", "100", NULL};
		start(NULL, args, NULL, NULL);
		live("a", i);
		at("hotreload.conf", "# nothing excluded\n");
		live("gen", 10 * i + 1);
		source("gen/x.c", 10 * i + 2); /* seen: the watches started over without it */
		live("gen", 10 * i + 2);
		source("a.c", 100 + i);
		live("a", 100 + i);
		t_daemon_stop(&d);
		d.pidfd = -1;
	}
}

struct taken {
	int rescans, changes;
};

static void take_one(void *arg, int kind, const char *path)
{
	struct taken *t = arg;
	(void)path;
	if (kind == HRD_WATCH_RESCAN)
		t->rescans++;
	else
		t->changes++;
}

Test(watchers, events_past_the_queues_bound_while_the_loop_is_busy_become_one_rescan)
{
	const char *backends[] = {"inotify", "poll"};
	for (size_t b = 0; b < sizeof backends / sizeof *backends; b++) {
		struct hrd_watch_options o = {backends[b], 0, 0, NULL, NULL};
		hrd_watch *w;
		char err[512];
		cr_assert_eq(hrd_watch_open(&o, root, NULL, &w, err, sizeof err), 0, "%s", err);
		struct taken t = {0, 0};
		hrd_watch_take(w, take_one, &t); /* what the backend says of itself at its start */
		/* The loop takes nothing while 5000 events of 1000-byte paths, 5 MB, come in from the watcher's side. */
		char path[1001];
		memset(path, 'p', 1000);
		path[1000] = '\0';
		for (int i = 0; i < 5000; i++) {
			snprintf(path, 16, "%014d", i);
			path[14] = 'p';
			hrd_watch_post(w, HRD_WATCH_CHANGED, path);
		}
		cr_assert_leq(w->queued, HRD_WATCH_QUEUE_MAX, "%s: %zu bytes queued", backends[b], w->queued);
		t = (struct taken){0, 0};
		hrd_watch_take(w, take_one, &t);
		cr_assert_eq(t.rescans, 1, "%s: the lost events are one rescan", backends[b]);
		cr_assert_eq(t.changes, 0, "%s: %d events of a dropped queue were handed out", backends[b], t.changes);
		/* And then the queue is as before. */
		hrd_watch_post(w, HRD_WATCH_CHANGED, "a.c");
		t = (struct taken){0, 0};
		hrd_watch_take(w, take_one, &t);
		cr_assert(t.rescans == 0 && t.changes == 1, "%s: %d rescans, %d changes", backends[b], t.rescans, t.changes);
		hrd_watch_close(w);
	}
}
