/* test_show.c: the CLI on a real history and daemon: show, diff, stats by module, and build. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e.h"

TestSuite(show, .init = e2e_setup, .fini = e2e_teardown, .timeout = 240);

static t_run cli(const char *const *args)
{
	const char *argv[16] = {"--state-dir", e2e_d.state};
	size_t n = 2;
	for (size_t i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return t_cli(e2e_dir, NULL, argv);
}

static void jq_is(const char *json, const char *filter, const char *want)
{
	int st;
	char *got = t_jq(json, filter, &st);
	cr_expect_str_eq(got ? got : "(null)", want, "%s over %s", filter, json);
	free(got);
}

/* v1; the header changes: v2; the source: v3; a failed build; the source of v3 again, reused: v4 */
static void history(void)
{
	char *inc = t_fmt("%s/include", e2e_dir);
	cr_assert_eq(mkdir(inc, 0755), 0);
	free(inc);
	e2e_put("hotreload.conf", "include = include\n");
	e2e_put("include/h.h", "#define V 1\n");
	e2e_put("a.c", "#include \"h.h\"\nint value(void) { return V; }\n");
	e2e_start_daemon(NULL);
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 1");
	e2e_put("include/h.h", "#define V 2\n");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 2");
	e2e_put("a.c", "#include \"h.h\"\nint value(void) { return V + 1; }\n");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 3");
	e2e_put("a.c", "#include \"h.h\"\nint value(void) { return V + }\n");
	e2e_wait_history(".[0].status", "failed");
	e2e_put("a.c", "#include \"h.h\"\nint value(void) { return V + 1; }\n");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "reused 4");
}

Test(show, a_build_with_its_record_output_and_the_files_that_went_in)
{
	history();
	t_run r = cli((const char *const[]){"show", "a@2", "--json", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_is(r.out, "[.module, .version, .status, .cause] | map(tostring) | join(\" \")", "a 2 ok include/h.h changed");
	jq_is(r.out, ".files | map(.path) | join(\",\")", "a.c,include/h.h");
	jq_is(r.out, ".files[1].content == \"#define V 2\\n\"", "true");
	jq_is(r.out, ".command | test(\" -c .*a.c\")", "true");
	jq_is(r.out, ".artifact | test(\"/objects/a.2.\")", "true");
	t_run_free(&r);
	/* the newest row by default: here a failure, with the compiler's output and the text that failed */
	e2e_put("a.c", "#include \"h.h\"\nint value(void) { return V + }\n");
	e2e_wait_history(".[0].status", "failed");
	r = cli((const char *const[]){"show", "a", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "failed") && strstr(r.out, "message  a.c:2:") && strstr(r.out, "--- compiler output") &&
	              strstr(r.out, "return V + }") && strstr(r.out, "--- include/h.h (12 bytes)"),
	          "%s", r.out);
	t_run_free(&r);
	/* a reused version shows the files of the compile it is the object of */
	r = cli((const char *const[]){"show", "a@4", "--json", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_is(r.out, "[.status, (.files[0].content | test(\"V \\\\+ 1;\"))] | map(tostring) | join(\" \")", "reused true");
	t_run_free(&r);
	r = cli((const char *const[]){"show", "a@9", NULL});
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "a has no v9"), "%s", r.err);
	t_run_free(&r);
	r = cli((const char *const[]){"show", NULL});
	cr_assert_eq(r.status, 2);
	t_run_free(&r);
	r = cli((const char *const[]){"show", "a@x", NULL});
	cr_assert_eq(r.status, 2);
	t_run_free(&r);
}

Test(show, diff_gives_what_changed_in_each_file_between_two_versions)
{
	history();
	t_run r = cli((const char *const[]){"diff", "a", "1", "3", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "--- a/a.c (v1)\n+++ b/a.c (v3)\n") && strstr(r.out, "\n-int value(void) { return V; }\n") &&
	              strstr(r.out, "\n+int value(void) { return V + 1; }\n") && strstr(r.out, "--- a/include/h.h (v1)") &&
	              strstr(r.out, "\n-#define V 1\n+#define V 2\n"),
	          "%s", r.out);
	t_run_free(&r);
	/* v4 is v3's object: nothing differs */
	r = cli((const char *const[]){"diff", "a", "3", "4", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "");
	t_run_free(&r);
	r = cli((const char *const[]){"diff", "a", "1", NULL});
	cr_assert_eq(r.status, 2);
	t_run_free(&r);
	r = cli((const char *const[]){"diff", "a", "1", "7", NULL});
	cr_assert_eq(r.status, 1);
	t_run_free(&r);
}

Test(show, stats_per_module_with_compile_and_save_to_live_percentiles_and_refusals)
{
	e2e_module("a.c", 1, 0);
	e2e_module("b.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", "b", NULL});
	e2e_expect_all(h, (const char *const[]){"first a 1 v=1", "first b 1 v=1", NULL});
	e2e_module("a.c", 2, 0);
	e2e_expect(h, "update a 1 v=2");
	e2e_module("b.c", 2, 1); /* its hr_on_load says no */
	e2e_wait_history(".[0].status", "refused");
	e2e_wait_reported(2, 1); /* the daemon has a's v2 report */
	/* v2's switch counts; v1's does not: the game started after it was built, and waited for nothing */
	e2e_wait_cli("stats", ".modules | map(select(.module == \"a\"))[0] | .lives", "1");
	t_run r = t_cli(e2e_dir, NULL, (const char *const[]){"--state-dir", e2e_d.state, "stats", "--json", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	int st;
	char *a = t_jq(r.out,
	               ".modules | map(select(.module == \"a\"))[0] | [.total_builds, .compile_p50_ms > 0,"
	               " .compile_p95_ms >= .compile_p50_ms, .save_to_live_p50_ms > 0, .save_to_live_p50_ms < 30000,"
	               " .refused] | map(tostring) | join(\" \")",
	               &st);
	cr_expect_str_eq(a, "2 true true true true 0");
	char *b = t_jq(r.out, ".modules | map(select(.module == \"b\"))[0] | \"\\(.refused) \\(.lives)\"", &st);
	cr_expect_str_eq(b, "1 0", "b: v2 refused, v1 live from the start");
	char *all = t_jq(r.out, "\"\\(.total_builds) \\(.refused) \\(.lives)\"", &st);
	cr_expect_str_eq(all, "4 1 1");
	free(a);
	free(b);
	free(all);
	t_run_free(&r);
	/* the table, by module */
	r = t_cli(e2e_dir, NULL, (const char *const[]){"--state-dir", e2e_d.state, "stats", NULL});
	cr_assert(strstr(r.out, "save to live  p50 ") && strstr(r.out, "MODULE  BUILDS  OK    COMPILE p50/p95 ms"), "%s",
	          r.out);
	t_run_free(&r);
}

Test(show, build_compiles_a_module_now_whatever_its_key_and_says_how_it_went)
{
	e2e_put("a.c", "int value(void) { return 1; }\n");
	e2e_start_daemon(NULL);
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 1");
	t_run r = cli((const char *const[]){"build", "a", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "a v2 built\n");
	t_run_free(&r);
	/* a compile, not a reuse of v1, though nothing changed */
	e2e_wait_history(".[0] | \"\\(.status) \\(.version) \\(.cause)\"", "ok 2 hotreload build");
	r = cli((const char *const[]){"build", "a", "--json", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_is(r.out, "\"\\(.module) \\(.version) \\(.status) \\(.pinned)\"", "a 3 ok false");
	t_run_free(&r);
	e2e_put("a.c", "int value(void) { return 1 }\n");
	e2e_wait_history(".[0].status", "failed");
	r = cli((const char *const[]){"build", "a", NULL});
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "a: build failed: a.c:1:"), "%s", r.err);
	t_run_free(&r);
	r = cli((const char *const[]){"build", "a", "--json", NULL});
	cr_assert_eq(r.status, 1);
	jq_is(r.out, "\"\\(.version) \\(.status) \\(.message | test(\"^a.c:1:\"))\"", "null failed true");
	t_run_free(&r);
	r = cli((const char *const[]){"build", "zz", NULL});
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "no module 'zz' to build"), "%s", r.err);
	t_run_free(&r);
	r = cli((const char *const[]){"build", NULL});
	cr_assert_eq(r.status, 2);
	t_run_free(&r);
	char *state = strdup(e2e_d.state);
	cr_assert_eq(t_daemon_stop(&e2e_d), 0);
	e2e_d.pidfd = -1;
	r = t_cli(e2e_dir, NULL, (const char *const[]){"--state-dir", state, "build", "a", NULL});
	cr_assert_eq(r.status, 3, "%s", r.err);
	free(state);
	t_run_free(&r);
}

Test(show, rollback_puts_an_earlier_build_back_and_a_pin_holds_it_until_unpin)
{
	e2e_put("a.c", "int value(void) { return 1; }\n");
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=1 value=1");
	e2e_put("a.c", "int value(void) { return 2; }\n");
	e2e_expect(h, "update a 1 v=2 value=2");
	/* the one before: v1's object, as v3 */
	t_run r = cli((const char *const[]){"rollback", "a", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "a v3 is an earlier build again\n");
	t_run_free(&r);
	e2e_expect(h, "update a 1 v=3 value=1");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version) \\(.cause)\"", "rollback 3 hotreload rollback to v1");
	/* again: further back than v1 there is nothing; not forward to v2, the build it left */
	r = cli((const char *const[]){"rollback", "a", NULL});
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "a has no good build before v1"), "%s", r.err);
	t_run_free(&r);
	/* pinned to v2: a save is recorded, but the game stays on the pin */
	r = cli((const char *const[]){"rollback", "a", "2", "--pin", "--json", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_is(r.out, "\"\\(.module) \\(.version) \\(.status) \\(.pinned)\"", "a 4 rollback true");
	t_run_free(&r);
	e2e_expect(h, "update a 1 v=4 value=2");
	e2e_put("a.c", "int value(void) { return 5; }\n");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 5");
	/* a forced build while pinned is recorded and said so, not served */
	r = cli((const char *const[]){"build", "a", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "a built, not served: pinned at v4"), "%s", r.out);
	t_run_free(&r);
	r = cli((const char *const[]){"build", "a", "--json", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_is(r.out, "\"\\(.version) \\(.status) \\(.pinned)\"", "null recorded true");
	t_run_free(&r);
	e2e_wait_cli("status", ".modules[0] | \"\\(.version) \\(.message)\"",
	             "4 pinned at v4: newer builds wait for hotreload unpin a");
	/* the pin holds across a restart, objects/ lost meanwhile: v4 is served again from the history, not v5 */
	cr_assert_eq(t_daemon_stop(&e2e_d), 0);
	char *objects = t_fmt("%s/objects", e2e_d.state);
	t_rmtree(objects);
	free(objects);
	e2e_start_daemon(NULL);
	e2e_wait_cli("status", ".modules[0] | \"\\(.version) \\(.message)\"",
	             "4 pinned at v4: newer builds wait for hotreload unpin a");
	t_proc *late = e2e_host(1, NULL, (const char *const[]){"a", NULL});
	e2e_expect(late, "first a 1 v=4 value=2");
	r = cli((const char *const[]){"unpin", "a", "--json", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_is(r.out, "\"\\(.module) \\(.version) \\(.status)\"", "a 7 unpinned");
	t_run_free(&r);
	e2e_expect(h, "update a 1 v=7 value=5");
	e2e_expect(late, "update a 1 v=7 value=5");
	/* and unpinned, it stays so across a restart */
	cr_assert_eq(t_daemon_stop(&e2e_d), 0);
	e2e_start_daemon(NULL);
	e2e_wait_cli("status", ".modules[0] | \"\\(.version) \\(.message)\"", "7 ");
	/* what cannot be */
	r = cli((const char *const[]){"rollback", "a", "9", "--json", NULL});
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "a has no v9 whose object is still there"), "%s", r.err);
	jq_is(r.out, "\"\\(.status) \\(.version) \\(.message | test(\"no v9\"))\"", "error null true");
	t_run_free(&r);
	r = cli((const char *const[]){"rollback", "zz", NULL});
	cr_assert_eq(r.status, 1);
	t_run_free(&r);
	r = cli((const char *const[]){"rollback", NULL});
	cr_assert_eq(r.status, 2);
	t_run_free(&r);
	r = cli((const char *const[]){"unpin", "a", "--pin", NULL});
	cr_assert_eq(r.status, 2);
	t_run_free(&r);
}

Test(show, log_prints_the_recent_lines_and_follows_new_ones)
{
	e2e_put("a.c", "int value(void) { return 1; }\n");
	e2e_start_daemon(NULL);
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 1");
	t_run r = cli((const char *const[]){"log", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, " debug a: building (") && strstr(r.out, " info  a: v1 built in "), "%s", r.out);
	t_run_free(&r);
	r = cli((const char *const[]){"log", "-q", "--json", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(!strstr(r.out, "\"debug\""), "%s", r.out);
	int st;
	char *last = t_jq(r.out, "select(.text | startswith(\"a: v1 built\")) | .level", &st);
	cr_assert_str_eq(last, "info");
	free(last);
	t_run_free(&r);
	/* following: builds started, done and failed, a game connecting and loading, as they happen */
	t_proc f;
	const char *argv[] = {HR_BUILD_DIR "/hotreload", "--state-dir", e2e_d.state, "log", "-f", NULL};
	cr_assert_eq(t_proc_start(&f, e2e_dir, NULL, argv), 0);
	cr_assert(t_proc_expect(&f, "a: v1 built", E2E_WAIT_MS), "the recent lines come first");
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=1 value=1");
	char *connected = t_fmt("client %d connected", (int)h->pid);
	cr_assert(t_proc_expect(&f, connected, E2E_WAIT_MS));
	free(connected);
	cr_assert(t_proc_expect(&f, "a: v1 live in client", E2E_WAIT_MS));
	e2e_put("a.c", "int value(void) { return 2 }\n");
	cr_assert(t_proc_expect(&f, "a: building (", E2E_WAIT_MS));
	cr_assert(t_proc_expect(&f, "a.c:1:", E2E_WAIT_MS), "the failure");
	e2e_put("a.c", "int value(void) { return 2; }\n");
	cr_assert(t_proc_expect(&f, "a: v2 built", E2E_WAIT_MS));
	cr_assert(t_proc_expect(&f, "a: v2 live in client", E2E_WAIT_MS));
	char *err = NULL;
	t_proc_end(&f, &err);
	free(err);
	/* no daemon: 3, naming the socket */
	char *state = strdup(e2e_d.state);
	cr_assert_eq(t_daemon_stop(&e2e_d), 0);
	e2e_d.pidfd = -1;
	r = t_cli(e2e_dir, NULL, (const char *const[]){"--state-dir", state, "log", NULL});
	cr_assert_eq(r.status, 3, "%s", r.err);
	cr_assert(strstr(r.err, "hotreloadd.sock"), "%s", r.err);
	t_run_free(&r);
	free(state);
}

static int objects_in(const char *state)
{
	char *dir = t_fmt("%s/objects", state);
	DIR *d = opendir(dir);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += strstr(e->d_name, ".so") != NULL;
	if (d)
		closedir(d);
	free(dir);
	return n;
}

Test(show, gc_removes_the_objects_past_keep_and_never_what_is_served)
{
	e2e_put("hotreload.conf", "keep = 1\n");
	e2e_put("a.c", "int value(void) { return 1; }\n");
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=1 value=1");
	for (int i = 2; i <= 5; i++) {
		char *src = t_fmt("int value(void) { return %d; }\n", i), *want = t_fmt("v=%d value=%d", i, i);
		e2e_put("a.c", src);
		e2e_expect(h, want);
		free(src);
		free(want);
	}
	/* v2 put back as v6 and pinned; v7 recorded, not served */
	t_run r = cli((const char *const[]){"rollback", "a", "2", "--pin", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	e2e_expect(h, "v=6 value=2");
	e2e_put("a.c", "int value(void) { return 7; }\n");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 7");
	cr_assert_eq(objects_in(e2e_d.state), 7);
	r = cli((const char *const[]){"gc", "--json", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_is(r.out, ".objects_removed", "5");
	jq_is(r.out, ".bytes_freed > 0 and .history_bytes_after > 0", "true");
	t_run_free(&r);
	cr_assert_eq(objects_in(e2e_d.state), 2, "v6 (served, pinned) and v7 (the newest) stay");
	char *v6 = t_fmt("%s/objects/a.6.%s.so", e2e_d.state, "*");
	glob_t g;
	cr_assert_eq(glob(v6, 0, NULL, &g), 0, "the served object is gone: %s", v6);
	globfree(&g);
	free(v6);
	/* what is served still loads in a game that starts now; the history is whole */
	t_proc *late = e2e_host(1, NULL, (const char *const[]){"a", NULL});
	e2e_expect(late, "first a 1 v=6 value=2");
	e2e_wait_history("length", "7");
	r = cli((const char *const[]){"rollback", "a", "4", NULL});
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "a has no v4 whose object is still there"), "%s", r.err);
	t_run_free(&r);
	r = cli((const char *const[]){"unpin", "a", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	e2e_expect(h, "v=7 value=7");
	r = cli((const char *const[]){"gc", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "1 object removed"), "v6, neither served nor pinned now: %s", r.out);
	t_run_free(&r);
}

Test(show, after_a_restart_a_rollback_goes_back_from_the_compile_it_copied_and_a_pin_of_a_module_gone_can_be_undone)
{
	e2e_put("a.c", "int value(void) { return 1; }\n");
	e2e_start_daemon(NULL);
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 1");
	e2e_put("a.c", "int value(void) { return 2; }\n");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 2");
	t_run r = cli((const char *const[]){"rollback", "a", "1", "--pin", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	cr_assert_eq(t_daemon_stop(&e2e_d), 0);
	e2e_start_daemon(NULL);
	/* v3 is v1's object: nothing before v1 to go back to, not v2 again */
	r = cli((const char *const[]){"rollback", "a", NULL});
	cr_assert_eq(r.status, 1, "%s", r.out);
	cr_assert(strstr(r.err, "a has no good build before v1"), "%s", r.err);
	t_run_free(&r);
	/* the module goes while pinned: its pin can still be undone */
	char *src = t_fmt("%s/a.c", e2e_dir);
	cr_assert_eq(unlink(src), 0);
	free(src);
	cr_assert_eq(t_daemon_stop(&e2e_d), 0);
	e2e_start_daemon(NULL);
	r = cli((const char *const[]){"unpin", "a", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	e2e_put("a.c", "int value(void) { return 4; }\n");
	e2e_wait_cli("status", ".modules[0] | \"\\(.version) \\(.status)\"", "4 ok");
}

Test(show, stored_control_characters_are_escaped_and_a_nul_does_not_end_a_file)
{
	/* A source whose comment holds a terminal's escape, and a NUL byte the compiler passes over with a warning. */
	static const char src[] = "int value(void) { return 1; }\n/* \033]0;owned\007 \033[2J */\n\0/* after */\n";
	char *path = t_fmt("%s/a.c", e2e_dir);
	cr_assert_eq(t_write(path, src, sizeof src - 1), 0);
	free(path);
	e2e_start_daemon(NULL);
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 1");
	t_run r = cli((const char *const[]){"show", "a", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_null(strchr(r.out, '\033'), "an escape reached the terminal: %s", r.out);
	cr_assert_null(strchr(r.out, '\007'), "%s", r.out);
	cr_assert(strstr(r.out, "/* \\x1b]0;owned\\x07 \\x1b[2J */\n\\x00/* after */\n"), "%s", r.out);
	t_run_free(&r);
	r = cli((const char *const[]){"show", "a", "--json", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_is(r.out, ".files[0].content | length", "65");
	jq_is(r.out, ".files[0].content | endswith(\"\\u0000/* after */\\n\")", "true");
	jq_is(r.out, ".files[0].content | test(\"\\u001b\\\\[2J\")", "true");
	t_run_free(&r);
}
