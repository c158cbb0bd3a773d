/* test_reuse.c: content addressing end to end: inputs built before are published again with no compile, as an object of their own. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "e2e.h"

TestSuite(reuse, .init = e2e_setup, .fini = e2e_teardown, .timeout = 240);

/* value() counts its calls from 1 (plus base): a new object starts at 1 again. */
static void counter(int base)
{
	char *src = t_fmt("static int calls;\nint value(void) { return %d + ++calls; }\n", base);
	e2e_put("a.c", src);
	free(src);
}

static char *artifact(int version)
{
	char *filter = t_fmt(".[] | select(.module == \"a\" and .version == %d) | .artifact", version);
	t_run r = t_cli(e2e_dir, NULL, (const char *const[]){"--state-dir", e2e_d.state, "history", "a", "--json", NULL});
	int st;
	char *out = t_jq(r.out, filter, &st);
	t_run_free(&r);
	free(filter);
	return out;
}

Test(reuse, going_back_to_content_built_before_reuses_its_object_as_a_new_one_with_no_compile)
{
	counter(0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=1 value=1");
	counter(100);
	e2e_expect(h, "update a 1 v=2 value=101");
	/* Back to the first text (an undo): v3 is v1's object, loaded afresh, its counter from 1 again. */
	counter(0);
	e2e_expect(h, "update a 1 v=3 value=1");
	e2e_wait_history("[.[] | select(.module == \"a\")][0] | \"\\(.status) \\(.version) \\(.message)\"", "reused 3 ");
	cr_assert(t_until_in_file(e2e_d.log, "a: v3 is v1's object again", 1, E2E_WAIT_MS), "the log says so");
	cr_assert_eq(t_file_count(e2e_d.log, "a: v3 built"), 0, "no compile for v3");
	/* A copy, not a link: glibc would hand a host the v1 it has loaded, counter and all. */
	char *one = artifact(1), *three = artifact(3);
	struct stat s1, s3;
	cr_assert(one && three && stat(one, &s1) == 0 && stat(three, &s3) == 0, "%s %s", one, three);
	cr_assert_neq(s1.st_ino, s3.st_ino);
	cr_assert_str_neq(one, three);
	free(one);
	free(three);
	/* Stats count compiles only. */
	e2e_wait_cli("stats", "\"\\(.total_builds) \\(.successful)\"", "2 2");
}

Test(reuse, the_content_of_a_good_build_after_a_failed_one_is_live_at_once)
{
	counter(0);
	e2e_start_daemon(NULL);
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 1");
	e2e_put("a.c", "int value(void) { return 1 }\n");
	e2e_wait_history(".[0].status", "failed");
	counter(0);
	e2e_wait_history("map(.status) | join(\",\")", "reused,failed,ok");
	e2e_wait_cli("status", ".modules[0] | \"\\(.version) \\(.status)\"", "2 ok");
}

Test(reuse, a_header_put_back_reuses_the_build_that_read_it)
{
	char *inc = t_fmt("%s/include", e2e_dir);
	cr_assert_eq(mkdir(inc, 0755), 0);
	free(inc);
	e2e_put("include/h.h", "#define V 1\n");
	e2e_put("a.c", "#include \"h.h\"\nint value(void) { return V; }\n");
	e2e_start_daemon((const char *const[]){"CFLAGS=-Iinclude", NULL});
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=1 value=1");
	e2e_put("include/h.h", "#define V 2\n");
	e2e_expect(h, "update a 1 v=2 value=2");
	e2e_put("include/h.h", "#define V 1\n");
	e2e_expect(h, "update a 1 v=3 value=1");
	e2e_wait_history("map(.status) | join(\",\")", "reused,ok,ok");
}

Test(reuse, a_restart_after_a_reuse_publishes_nothing_new)
{
	counter(0);
	e2e_start_daemon(NULL);
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 1");
	counter(100);
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 2");
	counter(0);
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "reused 3");
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(t_daemon_stop(&e2e_d), 0);
		e2e_d.pidfd = -1;
		e2e_start_daemon(NULL);
	}
	/* The first scan of each start is done when it is ready: a new row would be there by now, or being built. */
	e2e_wait_cli("status", ".modules[0] | \"\\(.version) \\(.status)\"", "3 ok");
	e2e_wait_history("length", "3");
}
