/* test_quick.c: the quick tier (quick = tcc): a real tcc build goes live first, the configured compiler's replaces it. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e.h"

static void setup(void)
{
	e2e_setup();
	/* tcc is in scripts/deps.sh's test set; without it there is nothing to test */
	if (system("command -v tcc >/dev/null 2>&1") != 0) {
		e2e_teardown();
		cr_skip_test("tcc is not installed (scripts/deps.sh test installs it)");
	}
}

TestSuite(quick, .init = setup, .fini = e2e_teardown, .timeout = 240);

static void slow_env(char *env[3])
{
	cr_assert_eq(t_slow_cc(e2e_dir, T_WAIT_THEN_CC, env), 0, "the stand-in compiler");
}

static void start_slow(char *env[3])
{
	t_run r;
	cr_assert_eq(t_daemon_start(&e2e_d, e2e_dir, (const char *const[]){env[0], env[1], env[2], NULL}, NULL, &r), 0,
	             "hotreloadd did not start: %s", r.err);
	t_run_free(&r);
}

Test(quick, a_quick_build_goes_live_then_the_final_one_both_in_history_with_their_tiers)
{
	char *env[3];
	slow_env(env);
	e2e_put("hotreload.conf", "quick = tcc\n");
	e2e_module("a.c", 1, 0);
	start_slow(env);
	int pid, child;
	cr_assert_eq(t_slow_started(e2e_dir, &pid, &child), 0, "the final build never started");
	/* The configured compiler waits: what goes live is tcc's. */
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=1 value=1");
	e2e_wait_history(".[0] | \"\\(.version) \\(.status) \\(.tier)\"", "1 ok quick");
	cr_assert_eq(t_slow_go(e2e_dir), 0);
	e2e_expect(h, "update a 1 v=2 value=1");
	e2e_wait_history("map(\"\\(.version) \\(.tier)\") | join(\",\")", "2 final,1 quick");
	/* stats count the final build only */
	e2e_wait_cli("stats", ".total_builds", "1");
	for (int i = 0; i < 3; i++)
		free(env[i]);
}

Test(quick, a_quick_compile_failure_is_silent_and_the_final_failure_is_shown)
{
	char *env[3];
	slow_env(env);
	e2e_put("hotreload.conf", "quick = tcc\n");
	e2e_module("a.c", 1, 0);
	start_slow(env);
	int pid, child;
	cr_assert_eq(t_slow_started(e2e_dir, &pid, &child), 0, "the final build never started");
	e2e_wait_history(".[0].tier", "quick");
	cr_assert_eq(t_slow_go(e2e_dir), 0);
	e2e_wait_history("map(.tier) | join(\",\")", "final,quick");
	e2e_put("a.c", "int value(void) { return }\n");
	cr_assert_eq(t_slow_started(e2e_dir, &pid, &child), 0, "the final build never started");
	cr_assert_eq(t_slow_go(e2e_dir), 0);
	e2e_wait_history(".[0] | \"\\(.status) \\(.tier)\"", "failed final");
	/* One failure, the configured compiler's: tcc's left no row and no word for users. */
	e2e_wait_history("map(select(.status == \"failed\")) | length", "1");
	e2e_wait_cli("status", ".modules[0].message | test(\"expected\")", "true");
	cr_assert_eq(t_file_count(e2e_d.log, "build failed"), 1, "not one failure said: tcc's was");
	/* Both failed: the code was wrong, not tcc; the next save is built quick again, before the final build. */
	e2e_module("a.c", 2, 0);
	cr_assert_eq(t_slow_started(e2e_dir, &pid, &child), 0, "the final build never started");
	e2e_wait_history(".[0] | \"\\(.status) \\(.tier)\"", "ok quick");
	cr_assert_eq(t_slow_go(e2e_dir), 0);
	e2e_wait_history(".[0] | \"\\(.status) \\(.tier)\"", "ok final");
	for (int i = 0; i < 3; i++)
		free(env[i]);
}

Test(quick, a_module_tcc_cannot_build_is_marked_and_not_tried_quick_again)
{
	e2e_put("hotreload.conf", "quick = tcc\n");
	e2e_put("a.c", "_Atomic int n;\nint value(void) { return n + 1; }\n");
	e2e_start_daemon(NULL);
	e2e_wait_history("map(\"\\(.status) \\(.tier)\") | join(\",\")", "ok final");
	e2e_wait_cli("status", ".modules[0].message | test(\"not built quick\")", "true");
	e2e_put("a.c", "_Atomic int n;\nint value(void) { return n + 2; }\n");
	e2e_wait_history("map(\"\\(.version) \\(.status) \\(.tier)\") | join(\",\")", "2 ok final,1 ok final");
	char *log = t_read(e2e_d.log, NULL);
	cr_assert(log && t_file_count(e2e_d.log, "tcc cannot build it") == 1, "%s", log);
	free(log);
}

/* A module whose hr_on_load fails when tcc built it (with rc 7), and succeeds when the configured compiler did. */
static void refused_by_tcc(int tag)
{
	char *src = t_fmt("#include <stdio.h>\n#include <stdint.h>\n"
	                  "int value(void) { return %d; }\n"
	                  "int hr_on_load(void *ud, uint64_t prev) {\n"
	                  "\tprintf(\"load %%s %d prev=%%llu\\n\", (const char *)ud, (unsigned long long)prev);\n"
	                  "#ifdef __TINYC__\n\treturn 7;\n#else\n\treturn 0;\n#endif\n}\n",
	                  tag, tag);
	e2e_put("a.c", src);
	free(src);
}

Test(quick, a_quick_build_refused_by_the_game_then_the_final_one_taken)
{
	char *env[3];
	slow_env(env);
	e2e_put("hotreload.conf", "quick = tcc\n");
	e2e_module("a.c", 1, 0);
	start_slow(env);
	int pid, child;
	cr_assert_eq(t_slow_started(e2e_dir, &pid, &child), 0, "the final build never started");
	e2e_wait_history(".[0] | \"\\(.version) \\(.status) \\(.tier)\"", "1 ok quick");
	cr_assert_eq(t_slow_go(e2e_dir), 0);
	e2e_wait_history(".[0] | \"\\(.version) \\(.status) \\(.tier)\"", "2 ok final");
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=2 value=1");
	/* The save: tcc's build goes first, and the game refuses it; the old build loads again. */
	refused_by_tcc(3);
	cr_assert_eq(t_slow_started(e2e_dir, &pid, &child), 0, "the final build never started");
	e2e_expect_next(h, "", "unload a 1");
	e2e_expect_next(h, "", "load a 3 prev=2");
	e2e_expect_next(h, "", "load a 1 prev=2");
	e2e_expect_next(h, "", "update a -125 v=2 value=1 sym=NULL");
	e2e_wait_history(".[0] | \"\\(.version) \\(.status) \\(.tier) \\(.message)\"", "3 refused quick hr_on_load returned 7");
	/* The refusal does not stop the final build of the same save: it is taken. */
	cr_assert_eq(t_slow_go(e2e_dir), 0);
	e2e_expect_next(h, "", "unload a 1");
	e2e_expect_next(h, "", "load a 3 prev=2");
	e2e_expect_next(h, "", "update a 1 v=4 value=3 sym=NULL");
	e2e_wait_history("map(\"\\(.version) \\(.status) \\(.tier)\") | join(\",\")", "4 ok final,3 refused quick,3 ok quick,2 ok final,1 ok quick");
	for (int i = 0; i < 3; i++)
		free(env[i]);
}

/* A compiler (tcc or cc) in PATH that hangs on a source holding SLOW, saying so in .t/started; else the real one. */
static void hanging(const char *name, const char *real)
{
	char *path = t_fmt("%s/.t/bin/%s", e2e_dir, name);
	char *text = t_fmt("#!/bin/sh\nfor a; do case $a in *.c) grep -q SLOW \"$a\" && slow=1;; esac; done\n"
	                   "if [ -n \"$slow\" ]; then echo \"$$\" >> \"%s/.t/started\"; exec sleep 1000; fi\n"
	                   "exec %s \"$@\"\n", e2e_dir, real);
	cr_assert_eq(t_write(path, text, strlen(text)), 0);
	cr_assert_eq(chmod(path, 0755), 0);
	free(path);
	free(text);
}

static int gone(void *arg)
{
	return kill(*(int *)arg, 0) < 0;
}

Test(quick, a_newer_save_cancels_both_tiers_of_the_older_one)
{
	char *t = t_fmt("%s/.t", e2e_dir), *bin = t_fmt("%s/.t/bin", e2e_dir);
	cr_assert_eq(mkdir(t, 0755), 0);
	cr_assert_eq(mkdir(bin, 0755), 0);
	hanging("tcc", "/usr/bin/tcc");
	hanging("cc", "/usr/bin/cc");
	char *path = t_fmt("PATH=%s:%s", bin, getenv("PATH"));
	e2e_put("hotreload.conf", "quick = tcc\n");
	e2e_module("a.c", 1, 0);
	e2e_start_daemon((const char *const[]){path, NULL});
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_wait_history(".[0] | \"\\(.status) \\(.tier)\"", "ok final");
	e2e_put("a.c", "/* SLOW */\nint value(void) { return 5; }\n");
	char *started = t_fmt("%s/.t/started", e2e_dir);
	cr_assert(t_until_in_file(started, "\n", 2, E2E_WAIT_MS), "the two tiers of the slow save never started");
	char *pids = t_read(started, NULL);
	int p1 = 0, p2 = 0;
	cr_assert_eq(sscanf(pids, "%d %d", &p1, &p2), 2);
	e2e_module("a.c", 3, 0);
	cr_assert(t_until(gone, &p1, E2E_WAIT_MS) && t_until(gone, &p2, E2E_WAIT_MS), "a tier of the older save still runs");
	e2e_expect(h, "value=3");
	e2e_wait_history(".[0] | \"\\(.status) \\(.tier)\"", "ok final");
	/* Neither tier of the slow save left a row: every row is of the two saves that built, none failed. */
	e2e_wait_history("map(select(.status != \"ok\")) | length", "0");
	free(pids);
	free(started);
	free(path);
	free(bin);
	free(t);
}
