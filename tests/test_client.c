/* test_client.c: the first loop end to end: the real daemon, the real cc, and a real host process linked to libhotreload. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "util.h"

TestSuite(client, .init = e2e_setup, .fini = e2e_teardown, .timeout = 120);

Test(client, the_first_load_happens_in_hr_update_and_an_edit_goes_live)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){ "a", NULL });
	/* hr_open loaded it in the background but switched nothing. */
	e2e_expect_next(h, "open", "open a v=0 sym=NULL");
	e2e_expect_next(h, "load", "load a 1 prev=0");
	e2e_expect_next(h, "first", "first a 1 v=1 value=1");
	e2e_module("a.c", 2, 0);
	e2e_expect_next(h, "update", "update a 1 v=2 value=2 sym=NULL");
	e2e_module("a.c", 3, 0);
	e2e_expect_next(h, "update", "update a 1 v=3 value=3 sym=NULL");
}

Test(client, hooks_run_in_order_at_a_switch_and_at_the_end)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){ "a", NULL });
	e2e_expect(h, "first a 1 v=1");
	e2e_module("a.c", 2, 0);
	/* The old build's unload, then the new build's load with the old version, then the switch is seen. */
	e2e_expect_next(h, "", "unload a 1");
	e2e_expect_next(h, "", "load a 2 prev=1");
	e2e_expect_next(h, "", "update a 1 v=2 value=2 sym=NULL");
	cr_assert_str_eq(e2e_end_at(h, ""), "unload a 2");
	e2e_expect_next(h, "", "stats switches=2 refusals=0 crashes=0 reconnects=0");
	e2e_expect_next(h, "", "bye");
}

Test(client, a_compile_error_keeps_the_old_build_and_a_fix_goes_live)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){ "a", NULL });
	e2e_expect(h, "first a 1 v=1");
	e2e_put("a.c", "int value(void) { return 2 }\n");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version) \\(.message | test(\"a.c:1:.*error\"))\"", "failed null true");
	e2e_module("a.c", 3, 0);
	/* The next switch is the fix, numbered right after the last good build: nothing went live in between. */
	e2e_expect_next(h, "update", "update a 1 v=2 value=3 sym=NULL");
}

Test(client, a_build_with_an_unresolved_symbol_is_refused_and_recorded)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){ "a", NULL });
	e2e_expect(h, "first a 1 v=1");
	e2e_put("a.c", "int no_such_function(void);\nint value(void) { return no_such_function(); }\n");
	/* -ENOEXEC: it did not load; the old build is still the live one. */
	e2e_expect_next(h, "update", "update a -8 v=1 value=1 sym=NULL");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version) \\(.message | test(\"no_such_function\"))\"", "refused 2 true");
	e2e_put("a.c", "int no_such_function(void);\nint value(void) { return no_such_function() + 1; }\n");
	e2e_expect_next(h, "update", "update a -8 v=1 value=1 sym=NULL");
	e2e_module("a.c", 4, 0);
	e2e_expect_next(h, "update", "update a 1 v=4 value=4 sym=NULL");
	/* v3's refusal was answered with an offer of v2, which this host had refused already: not tried again. */
	e2e_wait_history("map(select(.status == \"refused\") | .version) | join(\",\")", "3,2");
}

Test(client, a_failing_hr_on_load_is_refused_and_the_old_build_loads_again)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){ "a", NULL });
	e2e_expect(h, "first a 1 v=1");
	e2e_module("a.c", 2, 7);
	e2e_expect_next(h, "", "unload a 1");
	e2e_expect_next(h, "", "load a 2 prev=1");
	/* The old build's hr_on_load again, with its own version; then -ECANCELED. */
	e2e_expect_next(h, "", "load a 1 prev=1");
	e2e_expect_next(h, "", "update a -125 v=1 value=1 sym=NULL");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version) \\(.message)\"", "refused 2 hr_on_load returned 7");
	e2e_module("a.c", 3, 0);
	e2e_expect_next(h, "update", "update a 1 v=3 value=3 sym=NULL");
}

Test(client, a_build_that_does_not_load_is_passed_over_for_an_older_one)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){ "a", NULL });
	e2e_expect(h, "first a 1 v=1");
	e2e_put("a.c", "int no_such_function(void);\nint value(void) { return no_such_function(); }\n");
	e2e_wait_history(".[0].status", "refused");
	/* A host that starts now hears of v2 first, refuses it, and gets v1. */
	t_proc *late = e2e_host(1, NULL, (const char *const[]){ "a", NULL });
	e2e_expect_next(late, "open", "open a v=0 sym=NULL");
	e2e_expect_next(late, "first", "first a 1 v=1 value=1");
	/* Refused once by each host, and only once: the offer of v1 is not v2 again. */
	e2e_wait_history("map(select(.status == \"refused\")) | length", "2");
}

Test(client, two_modules_in_one_host_and_a_folder_module)
{
	e2e_module("a.c", 1, 0);
	char *p = t_fmt("%s/b", e2e_dir);
	cr_assert_eq(mkdir(p, 0755), 0);
	free(p);
	e2e_put("b/main.c", "int part(void);\nint value(void) { return 100 + part(); }\n");
	e2e_put("b/part.c", "int part(void) { return 5; }\n");
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){ "a", "b", NULL });
	e2e_expect_next(h, "first", "first a 1 v=1 value=1");
	e2e_expect_next(h, "first", "first b 1 v=1 value=105");
	e2e_put("b/part.c", "int part(void) { return 6; }\n");
	e2e_expect_next(h, "update", "update b 1 v=2 value=106 sym=NULL");
	e2e_module("a.c", 2, 0);
	e2e_expect_next(h, "update", "update a 1 v=2 value=2 sym=NULL");
}

Test(client, one_module_opened_twice_in_one_host)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){ "a", "a", NULL });
	e2e_expect_next(h, "first", "first a 1 v=1 value=1");
	e2e_expect_next(h, "first", "first a 1 v=1 value=1");
	e2e_module("a.c", 2, 0);
	e2e_expect_next(h, "update", "update a 1 v=2 value=2 sym=NULL");
	e2e_expect_next(h, "update", "update a 1 v=2 value=2 sym=NULL");
}

Test(client, two_hosts_on_one_module)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h1 = e2e_host(0, NULL, (const char *const[]){ "a", NULL }), *h2 = e2e_host(1, NULL, (const char *const[]){ "a", NULL });
	e2e_expect(h1, "first a 1 v=1");
	e2e_expect(h2, "first a 1 v=1");
	/* Each waits for the build to go live in both: both get every build. */
	for (int v = 2; v <= 6; v++) {
		e2e_module("a.c", v, 0);
		char *line = t_fmt("update a 1 v=%d value=%d sym=NULL", v, v);
		e2e_expect_next(h1, "update", line);
		e2e_expect_next(h2, "update", line);
		free(line);
	}
}

Test(client, a_module_with_no_build_yet_opens_at_once_and_loads_when_it_appears)
{
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){ "later", NULL });
	e2e_expect_next(h, "open", "open later v=0 sym=NULL");
	e2e_expect_next(h, "first", "first later 0 v=0 value=-1");
	e2e_module("later.c", 4, 0);
	e2e_expect_next(h, "update", "update later 1 v=1 value=4 sym=NULL");
}

Test(client, hr_connect_finds_the_socket_going_up_and_fails_clearly_without_a_daemon)
{
	const char *none[] = { "-", "a", NULL };
	cr_assert_eq(t_host_start(&e2e_hosts[0], e2e_dir, none), 0);
	e2e_expect(&e2e_hosts[0], "connect failed: No such file or directory");
	cr_assert_eq(t_proc_end(&e2e_hosts[0], NULL), 3);
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	char *sub = t_fmt("%s/b", e2e_dir);
	cr_assert_eq(mkdir(sub, 0755), 0);
	cr_assert_eq(t_host_start(&e2e_hosts[0], sub, none), 0, "a host in a folder under the root");
	free(sub);
	e2e_expect(&e2e_hosts[0], "first a 1 v=1");
}

Test(client, hr_update_with_nothing_new_makes_no_system_call)
{
	if (getenv("HR_HOST"))
		cr_skip_test("ThreadSanitizer's runtime handles signals itself");
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	const char *args[] = { "--syscalls", e2e_d.sock, "a", NULL };
	cr_assert_eq(t_host_start(&e2e_hosts[0], e2e_dir, args), 0);
	/* control=1: the same counter saw the one getppid() made under the same filter. */
	e2e_expect_next(&e2e_hosts[0], "syscalls=", "syscalls=0 control=1 rc=0");
}

Test(client, the_demo_runs_and_ctrl_c_stops_the_game_and_the_daemon)
{
	char *state = t_fmt("%s/state", e2e_dir), *env_state = t_fmt("DEMO_STATE=%s", state);
	const char *env[] = { env_state, "HOTRELOAD_SOCKET=", NULL };
	const char *argv[] = { "sh", HR_SOURCE_DIR "/scripts/demo.sh", HR_BUILD_DIR, NULL };
	t_proc *p = &e2e_hosts[0];
	cr_assert_eq(t_proc_start(p, e2e_dir, env, argv), 0);
	/* The first line shows both modules live: the single file and the folder; tcc's v1 (quick = tcc) or gcc's v2. */
	const char *line = e2e_expect(p, "[   0s]");
	unsigned g, ph;
	cr_assert(sscanf(line, "[   0s] greeting v%u: \"Hello", &g) == 1 && strstr(line, "physics v") &&
	                  sscanf(strstr(line, "physics v"), "physics v%u: x = ", &ph) == 1 && g >= 1 && ph >= 1,
	          "%s", line);
	char *lock = t_fmt("%s/hotreloadd.lock", state), *pid = t_read(lock, NULL);
	cr_assert(pid, "no daemon lock in %s", state);
	int daemon = (int)syscall(SYS_pidfd_open, atoi(pid), 0);
	cr_assert_geq(daemon, 0);
	kill(-p->pid, SIGINT);
	cr_assert(t_wait_gone(p->pidfd, E2E_WAIT_MS), "Ctrl-C did not stop the demo");
	cr_assert(t_wait_gone(daemon, E2E_WAIT_MS), "Ctrl-C did not stop the daemon");
	int st;
	cr_assert_eq(waitpid(p->pid, &st, 0), p->pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "the demo's status: %#x", st);
	p->pid = 0;
	t_proc_end(p, NULL);
	close(daemon);
	free(lock);
	free(pid);
	free(state);
	free(env_state);
}

Test(client, hr_open_waits_for_a_first_build_under_way)
{
	char *env[3];
	cr_assert_eq(t_slow_cc(e2e_dir, T_WAIT_THEN_CC, env), 0);
	e2e_module("a.c", 1, 0);
	t_run r;
	cr_assert_eq(t_daemon_start(&e2e_d, e2e_dir, (const char *const[]){ env[0], env[1], env[2], NULL }, NULL, &r), 0,
	             "hotreloadd did not start: %s", r.err);
	t_run_free(&r);
	int pid, child;
	cr_assert_eq(t_slow_started(e2e_dir, &pid, &child), 0, "the first build never started");
	t_proc *h = e2e_host(0, NULL, (const char *const[]){ "a", NULL });
	/* Let the compiler go once the host is connected, and so waiting in hr_open. */
	e2e_wait_cli("status", ".clients", "1");
	cr_assert_eq(t_slow_go(e2e_dir), 0);
	e2e_expect_next(h, "open", "open a v=0 sym=NULL");
	e2e_expect_next(h, "first", "first a 1 v=1 value=1");
	for (int i = 0; i < 3; i++)
		free(env[i]);
}

Test(client, old_builds_stay_mapped_for_eight_switches_then_go)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, (const char *const[]){ "--old", NULL }, (const char *const[]){ "a", NULL });
	e2e_expect(h, "first a 1 v=1");
	for (int v = 2; v <= 9; v++) {
		e2e_module("a.c", v, 0);
		char *line = t_fmt("update a 1 v=%d value=%d sym=NULL", v, v);
		e2e_expect_next(h, "update", line);
		/* The host calls v1's value() through the pointer it took at the first load. */
		e2e_expect_next(h, "old=", "old=1");
		free(line);
	}
	/* Eight switches after v1 was live, its pointers are still good: nine builds are mapped. */
	e2e_wait_reported(9, 1);
	int has;
	cr_assert_eq(e2e_mapped(h->pid, 1, &has), 9);
	cr_assert(has, "v1 was unmapped early");
	e2e_module("a.c", 10, 0);
	e2e_expect_next(h, "update", "update a 1 v=10 value=10 sym=NULL");
	/* The ninth: v1 goes, v2 stays. */
	e2e_wait_reported(10, 1);
	cr_assert_eq(e2e_mapped(h->pid, 1, &has), 9);
	cr_assert(!has, "v1 is still mapped");
	e2e_mapped(h->pid, 2, &has);
	cr_assert(has, "v2 was unmapped early");
}

Test(client, a_status_longer_than_a_frame_comes_whole_and_hr_open_still_waits_for_its_module)
{
	/* 3,200 files whose names are too long for a module: each is a "skipped" entry of about 350 bytes in the
	 * status, which passes HRP_MAX_FRAME. They cost no compile. z sorts last: it is in the status's last frame. */
	char pad[246];
	memset(pad, 'x', sizeof pad - 1);
	pad[sizeof pad - 1] = '\0';
	for (int i = 0; i < 3200; i++) {
		char *name = t_fmt("%04d%s.c", i, pad);
		e2e_put(name, "int f(void) { return 0; }\n");
		free(name);
	}
	char *env[3];
	cr_assert_eq(t_slow_cc(e2e_dir, T_WAIT_THEN_CC, env), 0);
	e2e_module("z.c", 1, 0);
	t_run r;
	cr_assert_eq(t_daemon_start(&e2e_d, e2e_dir, (const char *const[]){ env[0], env[1], env[2], NULL }, NULL, &r), 0,
	             "hotreloadd did not start: %s", r.err);
	t_run_free(&r);
	int pid, child;
	cr_assert_eq(t_slow_started(e2e_dir, &pid, &child), 0, "the first build never started");
	r = t_cli(e2e_dir, NULL, (const char *const[]){ "--state-dir", e2e_d.state, "status", "--json", NULL });
	cr_assert_eq(r.status, 0, "hotreload status: %s", r.err);
	cr_assert_gt(strlen(r.out), HRP_MAX_FRAME, "the status is %zu bytes: not over one frame", strlen(r.out));
	int st;
	char *got = t_jq(r.out, ".modules | \"\\(length) \\(map(select(.status == \"skipped\")) | length) "
	                        "\\(.[-1].module):\\(.[-1].status)\"", &st);
	cr_assert_str_eq(got, "3201 3200 z:building");
	free(got);
	t_run_free(&r);
	/* The host's hr_open finds z building in the last frame only, and waits for it. */
	t_proc *h = e2e_host(0, NULL, (const char *const[]){ "z", NULL });
	e2e_wait_cli("status", ".clients", "1");
	cr_assert_eq(t_slow_go(e2e_dir), 0);
	e2e_expect_next(h, "open", "open z v=0 sym=NULL");
	e2e_expect_next(h, "first", "first z 1 v=1 value=1");
	for (int i = 0; i < 3; i++)
		free(env[i]);
}

/* The demo under a terminal of its own (a pty whose master the test holds), as a user runs it. */
struct demo_tty {
	int pid, pidfd, master, daemon;
};

static void demo_in_a_terminal(struct demo_tty *t)
{
	char *state = t_fmt("%s/state", e2e_dir), *env_state = t_fmt("DEMO_STATE=%s", state);
	int slave;
	cr_assert_eq(openpty(&t->master, &slave, NULL, NULL, NULL), 0);
	t->pid = fork();
	cr_assert_geq(t->pid, 0);
	if (t->pid == 0) {
		setsid();
		ioctl(slave, TIOCSCTTY, 0);
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
		close(t->master);
		putenv(env_state);
		unsetenv("HOTRELOAD_SOCKET");
		execlp("sh", "sh", HR_SOURCE_DIR "/scripts/demo.sh", HR_BUILD_DIR, (char *)NULL);
		_exit(127);
	}
	close(slave);
	t->pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	/* Read the terminal until the game's first line: both are up. */
	char seen[65536] = "";
	size_t n = 0;
	while (n < sizeof seen - 1 && !strstr(seen, "[   0s]")) {
		struct pollfd p = { t->master, POLLIN, 0 };
		cr_assert_gt(poll(&p, 1, E2E_WAIT_MS), 0, "the demo said nothing: %s", seen);
		ssize_t k = read(t->master, seen + n, sizeof seen - 1 - n);
		cr_assert_gt(k, 0, "the terminal closed: %s", seen);
		n += (size_t)k;
		seen[n] = '\0';
	}
	char *lock = t_fmt("%s/hotreloadd.lock", state), *pid = t_read(lock, NULL);
	cr_assert(pid, "no daemon lock in %s", state);
	t->daemon = (int)syscall(SYS_pidfd_open, atoi(pid), 0);
	cr_assert_geq(t->daemon, 0);
	free(lock);
	free(pid);
	free(state);
}

/* No game of this build runs ([d]: not the pgrep's own shell). */
static int no_game(void *arg)
{
	(void)arg;
	t_run r = t_exec(e2e_dir, NULL, (const char *const[]){ "sh", "-c", "pgrep -f \"$0/[d]emo/game\"", HR_BUILD_DIR, NULL });
	int none = r.status != 0;
	t_run_free(&r);
	return none;
}

static void demo_ends_whole(struct demo_tty *t, const char *how)
{
	cr_assert(t_wait_gone(t->pidfd, E2E_WAIT_MS), "%s did not end the demo", how);
	cr_assert(t_wait_gone(t->daemon, E2E_WAIT_MS), "%s left the daemon running", how);
	cr_assert(t_until(no_game, NULL, E2E_WAIT_MS), "%s left the game running", how);
	waitpid(t->pid, NULL, 0);
	close(t->pidfd);
	close(t->daemon);
	if (t->master >= 0)
		close(t->master);
}

Test(client, the_demo_ends_whole_when_its_terminal_is_closed)
{
	struct demo_tty t;
	demo_in_a_terminal(&t);
	close(t.master); /* the terminal's window closed: SIGHUP */
	t.master = -1;
	demo_ends_whole(&t, "a closed terminal");
}

Test(client, the_demo_ends_whole_when_its_script_is_killed)
{
	struct demo_tty t;
	demo_in_a_terminal(&t);
	kill(t.pid, SIGTERM); /* the script alone, not its process group */
	demo_ends_whole(&t, "SIGTERM to the script");
	demo_in_a_terminal(&t);
	kill(t.pid, SIGKILL); /* no trap runs: the kernel ends the rest */
	demo_ends_whole(&t, "SIGKILL of the script");
}

/* A module whose hr_on_load writes 1 MiB of its own data (512 KiB initialised, 512 KiB zeroed) and counts its loads
 * in a kept global. */
static void writer(int tag)
{
	char *src = t_fmt("#include <hotreload.h>\n"
	                  "HR_KEEP(long, loads) = 0;\n"
	                  "HR_KEEP(int[64], marks);\n"
	                  "char filled[1 << 19] = {1}, zeroed[1 << 19];\n"
	                  "int value(void) { return %d * 1000 + (int)loads; }\n"
	                  "int hr_on_load(void *ud, uint64_t prev) {\n"
	                  "\t(void)ud;\n"
	                  "\tfor (unsigned i = 0; i < sizeof filled; i += 64) filled[i] = zeroed[i] = (char)(i + prev);\n"
	                  "\tmarks[loads %% 64] = %d;\n"
	                  "\tloads++;\n"
	                  "\treturn 0;\n}\n",
	                  tag, tag);
	e2e_put("a.c", src);
	free(src);
}

/* Under AddressSanitizer the library checks its shadow of the build's memory at the switch: the first look at a
 * shadow page is a fault that no prefault of the build covers. */
#ifdef __SANITIZE_ADDRESS__
#define SHADOW_FAULTS 1
#else
#define SHADOW_FAULTS 0
#endif

Test(client, a_switch_makes_no_system_call_and_takes_no_page_fault_on_the_games_thread)
{
	if (getenv("HR_HOST"))
		cr_skip_test("ThreadSanitizer's runtime handles signals itself");
	writer(1);
	e2e_start_daemon((const char *const[]){ "CFLAGS=-I" HR_SOURCE_DIR "/client", NULL });
	t_proc *h = e2e_host(0, (const char *const[]){ "--switch-cost", NULL }, (const char *const[]){ "a", NULL });
	e2e_expect(h, "first a 1 v=1 value=1001");
	for (int v = 2; v <= 5; v++) {
		writer(v);
		/* The build's pages were made on the library's thread, which shares the game's page tables. */
		char *cost = t_fmt("cost a v%d syscalls=0 minflt=%s", v, SHADOW_FAULTS ? "" : "0"),
		     *up = t_fmt("update a 1 v=%d value=%d sym=NULL", v, v * 1000 + v);
		e2e_expect(h, "cost");
		if (SHADOW_FAULTS)
			cr_assert(strncmp(h->line, cost, strlen(cost)) == 0, "%s", h->line);
		else
			cr_assert_str_eq(h->line, cost);
		e2e_expect_next(h, "update", up);
		free(cost);
		free(up);
	}
	/* The library's thread learned of each switch without being woken by it: the daemon hears of the last. */
	e2e_wait_reported(5, 1);
}

/* The voluntary context switches of pid's library thread (its one thread besides the main one), or -1. */
static long library_thread_switches(int pid)
{
	char *dir = t_fmt("/proc/%d/task", pid);
	DIR *d = opendir(dir);
	free(dir);
	cr_assert(d);
	long n = -1;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == pid)
			continue;
		char *path = t_fmt("/proc/%d/task/%s/status", pid, e->d_name), *text = t_read(path, NULL);
		const char *at = text ? strstr(text, "\nvoluntary_ctxt_switches:") : NULL;
		cr_assert(at, "no count in %s", path);
		cr_assert_eq(n, -1, "the host has more than one thread besides the main one");
		n = atol(at + strlen("\nvoluntary_ctxt_switches:"));
		free(text);
		free(path);
	}
	closedir(d);
	return n;
}

Test(client, the_library_thread_sleeps_once_the_host_took_what_it_offered)
{
	if (getenv("HR_HOST"))
		cr_skip_test("ThreadSanitizer's runtime has a thread of its own in the host");
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){ "a", NULL });
	e2e_expect(h, "first a 1 v=1");
	e2e_module("a.c", 2, 0);
	e2e_expect_next(h, "update", "update a 1 v=2 value=2 sym=NULL");
	/* It looked for the switch on its own, and reported it: from then on it has nothing to look for. */
	e2e_wait_reported(2, 1);
	long before = library_thread_switches(h->pid), now;
	/* What it was finishing (the note to the sink) is done once its count holds still for 100 ms. */
	for (int i = 0; i < 50; i++, before = now) {
		nanosleep(&(struct timespec){ 0, 100000000 }, NULL); /* the quiet time is what is measured */
		if ((now = library_thread_switches(h->pid)) == before)
			break;
	}
	/* Over a second with nothing new, the game's frames going on: it is never woken. */
	nanosleep(&(struct timespec){ 1, 0 }, NULL); /* the idle second is what is under test, not a wait for a result */
	now = library_thread_switches(h->pid);
	cr_assert_eq(now, before, "the library's thread woke %ld times in a second with nothing new", now - before);
}
