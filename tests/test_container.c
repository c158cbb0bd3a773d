/* test_container.c: a game in a container (podman, and bare namespaces) with only the daemon's socket bind-mounted. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e.h"

/*
 * The game sees neither the state dir nor the root: builds reach it as
 * descriptors over the socket, which is all it is given. Two ways in:
 * - podman, a real engine, rootful, on an image made here with `podman import`
 *   from the host binary and the libraries ldd names (nothing is pulled). Its
 *   runtime is runc where installed: crun 1.8 refuses hybrid cgroups, as on
 *   the machines that run these tests.
 * - util-linux unshare: a mount namespace (tmpfs over the state dir and the
 *   root), with or without a PID namespace, and in it /proc of the host's
 *   namespace or one of its own. No user namespace: the uids the daemon and
 *   the library check (SO_PEERCRED) are the real ones, root's.
 */

static char *run_dir;   /* outside the root: the socket's bind-mount target, the image's tarball */
static char *image;     /* the podman image of this test, removed at the end */

static void setup(void)
{
	e2e_setup();
	run_dir = t_tmpdir();
	image = NULL;
}

static void teardown(void)
{
	e2e_teardown();
	if (image) {
		t_run r = t_exec(NULL, NULL, (const char *const[]){ "podman", "rmi", "-f", image, NULL });
		t_run_free(&r);
		free(image);
	}
	t_rmtree(run_dir);
	free(run_dir);
}

TestSuite(container, .init = setup, .fini = teardown, .timeout = 240);

static const char *host_exe(void)
{
	return getenv("HR_HOST") ? getenv("HR_HOST") : HR_BUILD_DIR "/tests/host";
}

/* Make a podman image of the test host and the libraries it loads: nothing else in it. */
static void make_image(void)
{
	static const char script[] =
	        "set -e; d=$1/rootfs\n"
	        "for f in \"$2\" $(ldd \"$2\" | grep -o '/[^ ]*'); do mkdir -p \"$d$(dirname \"$f\")\"; cp -L \"$f\" \"$d$f\"; done\n"
	        "tar -C \"$d\" -cf \"$1/image.tar\" .\n"
	        "podman import -q \"$1/image.tar\" \"$3\" >/dev/null\n";
	image = t_fmt("localhost/hotreload-test-%d:latest", (int)getpid());
	t_run r = t_exec(NULL, NULL, (const char *const[]){ "sh", "-c", script, "sh", run_dir, host_exe(), image, NULL });
	cr_assert_eq(r.status, 0, "cannot make the image: %s", r.err);
	t_run_free(&r);
}

/* Host i, in a podman container of its own: the socket is all it is given of the daemon. */
static t_proc *podman_host_as(int i, const char *user, const char *module)
{
	const char *runtime = access("/usr/sbin/runc", X_OK) == 0 || access("/usr/bin/runc", X_OK) == 0 ? "runc" : "crun";
	char *vol = t_fmt("%s:/run/hotreload.sock", e2e_d.sock);
	/* --ulimit: podman raises a root container's to 1048576, which a machine without CAP_SYS_RESOURCE refuses. */
	const char *argv[] = { "podman", "run", "--rm", "--runtime", runtime, "--network", "none",
		               "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "-v", vol,
		               "-e", "HOTRELOAD_SOCKET=/run/hotreload.sock", "--user", user, image, host_exe(), "-", module, NULL };
	cr_log_info("container: podman run --runtime %s --user %s, the socket at /run/hotreload.sock", runtime, user);
	cr_assert_eq(t_proc_start(&e2e_hosts[i], "/", NULL, argv), 0, "cannot run podman");
	free(vol);
	return &e2e_hosts[i];
}

static t_proc *podman_host(int i, const char *module)
{
	return podman_host_as(i, "0:0", module);
}

/*
 * Host i under unshare: a mount namespace where the socket is bind-mounted at
 * RUN/hotreload.sock and tmpfs hides the state dir and the root; with pid, a
 * PID namespace too, and with proc, /proc mounted for it. env: one more
 * entry, or NULL (HR_T_NO_PROC=1: /proc unmounted before the host starts).
 */
static t_proc *unshared_host_env(int i, int pid, int proc, const char *module, const char *env)
{
	static const char script[] =
	        "set -e; : > \"$1/hotreload.sock\"; mount --bind \"$2\" \"$1/hotreload.sock\"\n"
	        "mount -t tmpfs none \"$3\"; mount -t tmpfs none \"$4\"\n"
	        "[ ! -e \"$3/hotreloadd.sock\" ] && [ -z \"$(ls \"$4\")\" ] || { echo 'the root is still there'; exit 9; }\n"
	        "[ -z \"$HR_T_NO_PROC\" ] || umount -l /proc\n"
	        "shift 4; exec \"$@\"\n";
	char *env_sock = t_fmt("HOTRELOAD_SOCKET=%s/hotreload.sock", run_dir);
	const char *argv[20] = { "unshare", "--mount" };
	size_t n = 2;
	if (pid) {
		/* --kill-child: unshare ignores SIGTERM; the host, pid 1 in there, is ended directly (end_unshared). */
		argv[n++] = "--pid", argv[n++] = "--fork", argv[n++] = "--kill-child";
		if (proc)
			argv[n++] = "--mount-proc";
	}
	const char *rest[] = { "sh", "-c", script, "sh", run_dir, e2e_d.sock, e2e_d.state, e2e_dir, host_exe(), "-", module, NULL };
	for (size_t k = 0; rest[k]; k++)
		argv[n++] = rest[k];
	argv[n] = NULL;
	cr_log_info("container: unshare --mount%s%s, the socket at %s/hotreload.sock", pid ? " --pid" : "",
	            proc ? " --mount-proc" : "", run_dir);
	cr_assert_eq(t_proc_start(&e2e_hosts[i], "/", (const char *const[]){ env_sock, env, NULL }, argv), 0);
	free(env_sock);
	return &e2e_hosts[i];
}

static t_proc *unshared_host(int i, int pid, int proc, const char *module)
{
	return unshared_host_env(i, pid, proc, module, NULL);
}

/* End a host that unshare forked into a PID namespace: SIGTERM to it, as unshare passes none on; unshare then ends. */
static void end_unshared(t_proc *h)
{
	char *path = t_fmt("/proc/%d/task/%d/children", h->pid, h->pid), *kids = t_read(path, NULL);
	int child = kids ? atoi(kids) : 0;
	cr_assert_gt(child, 0, "unshare (%d) has no child", h->pid);
	for (int ms = 0; ms < E2E_WAIT_MS; ms += 1000) {
		t_term(child);
		if (t_proc_expect(h, "bye", 1000))
			break;
	}
	cr_assert_str_eq(h->line, "bye");
	free(path);
	free(kids);
}

/* What a game does anywhere: a save goes live, a refused build and one that does not load leave the old one live, and a rollback from the host's side goes live. */
static void plays(t_proc *h)
{
	e2e_expect(h, "first a 1 v=1 value=1");
	e2e_module("a.c", 2, 0);
	e2e_expect_next(h, "update", "update a 1 v=2 value=2 sym=NULL");
	e2e_module("a.c", 3, 7);
	e2e_expect_next(h, "update", "update a -125 v=2 value=2 sym=NULL");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version) \\(.message)\"", "refused 3 hr_on_load returned 7");
	e2e_put("a.c", "int no_such_function(void);\nint value(void) { return no_such_function(); }\n");
	e2e_expect_next(h, "update", "update a -8 v=2 value=2 sym=NULL");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version) \\(.message | test(\"no_such_function\"))\"", "refused 4 true");
	t_run r = t_cli(e2e_dir, NULL, (const char *const[]){ "--state-dir", e2e_d.state, "rollback", "a", "1", NULL });
	cr_assert_eq(r.status, 0, "hotreload rollback a 1: %s", r.err);
	t_run_free(&r);
	e2e_expect_next(h, "update", "update a 1 v=5 value=1 sym=NULL");
}

static int podman_usable(void)
{
	t_run r = t_exec(NULL, NULL, (const char *const[]){ "podman", "--version", NULL });
	int ok = r.status == 0;
	t_run_free(&r);
	return ok;
}

Test(container, a_game_in_a_podman_container_reloads_is_refused_and_rolls_back)
{
	cr_assert(podman_usable(), "podman is not installed: scripts/deps.sh test installs it");
	make_image();
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	plays(podman_host(0, "a"));
}

Test(container, a_game_in_a_mount_namespace_without_the_root_reloads_is_refused_and_rolls_back)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	plays(unshared_host(0, 0, 0, "a"));
}

Test(container, a_game_in_a_pid_namespace_with_the_hosts_proc_reloads_is_refused_and_rolls_back)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = unshared_host(0, 1, 0, "a");
	plays(h);
	end_unshared(h);
}

Test(container, a_game_in_a_pid_namespace_with_its_own_proc_reloads_is_refused_and_rolls_back)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = unshared_host(0, 1, 1, "a");
	plays(h);
	end_unshared(h);
}

/* One game on the host and one in a container, on the same module: both go live on each save. */
static void both_live(t_proc *in)
{
	t_proc *out = e2e_host(1, NULL, (const char *const[]){ "a", NULL });
	e2e_expect(in, "first a 1 v=1 value=1");
	e2e_expect(out, "first a 1 v=1 value=1");
	for (int v = 2; v <= 4; v++) {
		char *line = t_fmt("update a 1 v=%d value=%d sym=NULL", v, v);
		e2e_module("a.c", v, 0);
		e2e_expect_next(in, "update", line);
		e2e_expect_next(out, "update", line);
		e2e_wait_reported(v, 2);
		free(line);
	}
}

Test(container, a_game_in_podman_and_one_on_the_host_both_go_live_on_each_save)
{
	cr_assert(podman_usable(), "podman is not installed: scripts/deps.sh test installs it");
	make_image();
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	both_live(podman_host(0, "a"));
}

Test(container, a_game_in_a_pid_namespace_and_one_on_the_host_both_go_live_on_each_save)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *in = unshared_host(0, 1, 0, "a");
	both_live(in);
	end_unshared(in);
}

Test(container, a_game_without_proc_is_told_why_no_build_loads)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = unshared_host_env(0, 0, 0, "a", "HR_T_NO_PROC=1");
	e2e_expect_next(h, "first", "first a -8 v=0 value=-1");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version) \\(.message | test(\"no /proc in this process's mount namespace\"))\"",
	                 "refused 1 true");
	e2e_end(h);
	/* LeakSanitizer (make SAN=1) cannot run without /proc (nor read ASAN_OPTIONS, from /proc/self/environ):
	 * its fatal error at the exit is the one report let pass here. */
	char *err = NULL;
	int rc = t_proc_end(h, &err);
	h->pid = 0;
	cr_assert(rc == 0 || (err && strstr(err, "LeakSanitizer has encountered a fatal error") &&
	                      !strstr(err, "ERROR: AddressSanitizer") && !strstr(err, "runtime error")),
	          "the host ended with %d: %s", rc, err);
	free(err);
}

/*
 * The container's user is another than the daemon's: the daemon lets it in
 * with --allow-uid (and opens the socket to it), and the game trusts the
 * daemon, root here, as SO_PEERCRED says. Without --allow-uid it is refused.
 */
Test(container, a_game_in_podman_as_another_user_reloads_once_the_daemon_allows_that_uid)
{
	cr_assert(podman_usable(), "podman is not installed: scripts/deps.sh test installs it");
	make_image();
	e2e_module("a.c", 1, 0);
	t_run r;
	cr_assert_eq(t_daemon_start(&e2e_d, e2e_dir, NULL, (const char *const[]){ "--allow-uid", "4242", NULL }, &r), 0,
	             "hotreloadd: %s", r.err);
	t_run_free(&r);
	t_proc *h = podman_host_as(0, "4242:4242", "a");
	e2e_expect(h, "first a 1 v=1 value=1");
	e2e_module("a.c", 2, 0);
	e2e_expect_next(h, "update", "update a 1 v=2 value=2 sym=NULL");
	e2e_end(h);
	cr_assert(t_proc_end(h, NULL) >= 0);
	h->pid = 0;
	/* Another uid than the one allowed: the daemon says no. */
	h = podman_host_as(1, "4243:4243", "a");
	e2e_expect_next(h, "connect", "connect failed: Permission denied");
	/* it ends by itself: a SIGTERM while podman tears the container down could end podman with 0 */
	cr_assert(t_wait_gone(h->pidfd, 60000), "the refused game is still running");
	char *err = NULL;
	int rc = t_proc_end(h, &err);
	cr_assert(rc == 3 || rc == 128 + SIGTERM, "the refused game ended with %d: %s", rc, err);
	free(err);
	h->pid = 0;
}
