/* test_headers.c: header dependencies end to end: a saved header rebuilds what includes it, across failures, restarts and include paths. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e.h"

TestSuite(headers, .init = e2e_setup, .fini = e2e_teardown, .timeout = 240);

static void mkd(const char *rel)
{
	char *p = t_fmt("%s/%s", e2e_dir, rel);
	cr_assert_eq(mkdir(p, 0755), 0, "mkdir %s", p);
	free(p);
}

/* The compiler looks in the root's include/ (and local/ first, when given): paths relative to the root, where it runs. */
static const char *const include_env[] = {"CFLAGS=-Iinclude", NULL};

Test(headers, a_saved_header_rebuilds_every_module_that_includes_it_directly_or_not_and_again_at_the_next_save)
{
	mkd("include");
	mkd("b");
	e2e_put("include/common.h", "#define BASE 1\n");
	e2e_put("include/wrap.h", "#include \"common.h\"\n#define WRAPPED (BASE * 10)\n");
	e2e_put("include/other.h", "#define OTHER 100\n");
	e2e_put("a.c", "#include \"common.h\"\nint value(void) { return BASE; }\n");
	/* A folder module: the header of its first file counts as much as its last's. */
	e2e_put("b/x.c", "#include \"wrap.h\"\nint y(void);\nint value(void) { return WRAPPED + y(); }\n");
	e2e_put("b/y.c", "#include \"other.h\"\nint y(void) { return OTHER; }\n");
	e2e_put("c.c", "int value(void) { return 7; }\n");
	e2e_start_daemon(include_env);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", "b", "c", NULL});
	e2e_expect_all(h, (const char *const[]){"first a 1 v=1 value=1", "first b 1 v=1 value=110", "first c 1 v=1 value=7", NULL});

	e2e_put("include/common.h", "#define BASE 2\n");
	e2e_expect_all(h, (const char *const[]){"update a 1 v=2 value=2", "update b 1 v=2 value=120", NULL});
	e2e_put("include/common.h", "#define BASE 3\n");
	e2e_expect_all(h, (const char *const[]){"update a 1 v=3 value=3", "update b 1 v=3 value=130", NULL});
	e2e_put("include/other.h", "#define OTHER 200\n");
	e2e_expect(h, "update b 1 v=4 value=230");
	/* Saved with the same bytes: nothing to build. Then a change: the very next version. */
	e2e_put("include/common.h", "#define BASE 3\n");
	e2e_put("include/common.h", "#define BASE 4\n");
	e2e_expect(h, "update a 1 v=4 value=4");
	e2e_wait_history("map(select(.module == \"a\" and .status == \"ok\")) | length", "4");
	/* c includes none of them: built once. */
	e2e_wait_history("map(select(.module == \"c\")) | length", "1");
	e2e_wait_history("map(select(.module == \"b\" and .status == \"ok\")) | length", "5");
}

Test(headers, a_header_stays_a_dependency_through_a_failed_build_and_a_restart)
{
	mkd("include");
	e2e_put("include/common.h", "#define BASE 1\n");
	e2e_put("a.c", "#include \"common.h\"\nint value(void) { return BASE; }\n");
	e2e_start_daemon(include_env);
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 1");
	/* Broken in the header: the compile fails, and still names it. */
	e2e_put("include/common.h", "#define BASE 2 +\n");
	e2e_wait_history(".[0] | \"\\(.status) \\(.message | test(\"common.h|a.c\"))\"", "failed true");
	e2e_put("include/common.h", "#define BASE 2\n");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 2");
	e2e_put("include/common.h", "#define BASE 3\n");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 3");

	/* A restart with nothing changed builds nothing; the dependencies come from the history, so a save is seen. */
	cr_assert_eq(t_daemon_stop(&e2e_d), 0);
	e2e_d.pidfd = -1;
	e2e_start_daemon(include_env);
	e2e_put("include/common.h", "#define BASE 4\n");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version) \\(.cause)\"", "ok 4 include/common.h changed");
	/* Saved while it was down: the first scan sees it. */
	cr_assert_eq(t_daemon_stop(&e2e_d), 0);
	e2e_d.pidfd = -1;
	e2e_put("include/common.h", "#define BASE 5\n");
	e2e_start_daemon(include_env);
	e2e_wait_history(".[0] | \"\\(.status) \\(.version) \\(.message)\"", "ok 5 ");
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=5 value=5");
}

Test(headers, a_header_that_comes_back_rebuilds_every_module_that_misses_it)
{
	mkd("include");
	e2e_put("include/new.h", "#define N 1\n");
	e2e_put("c.c", "#include \"new.h\"\nint value(void) { return N; }\n");
	e2e_start_daemon(include_env);
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 1");
	/* c knows new.h, and keeps it through the failure its removal brings */
	char *h = t_fmt("%s/include/new.h", e2e_dir);
	cr_assert_eq(unlink(h), 0);
	e2e_wait_history(".[0] | \"\\(.module) \\(.status)\"", "c failed");
	/* d has never read it: it fails too */
	e2e_put("d.c", "#include \"new.h\"\nint value(void) { return 10 * N; }\n");
	e2e_wait_history(".[0] | \"\\(.module) \\(.status)\"", "d failed");
	e2e_put("include/new.h", "#define N 2\n");
	t_proc *p = e2e_host(0, NULL, (const char *const[]){"c", "d", NULL});
	e2e_expect_all(p, (const char *const[]){"c 1 v=2 value=2", "d 1 v=1 value=20", NULL});
	free(h);
}

Test(headers, a_shadowing_header_is_not_forgotten_through_a_failed_build)
{
	mkd("include");
	e2e_put("include/cfg.h", "#define V 1\n");
	const char *good = "#include \"cfg.h\"\nint value(void) { return V; }\n";
	e2e_put("a.c", good);
	e2e_start_daemon((const char *const[]){"CFLAGS=-Ilocal -Iinclude", NULL});
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 1");
	e2e_put("a.c", "#include \"nope.h\"\n#include \"cfg.h\"\nint value(void) { return V; }\n");
	e2e_wait_history(".[0].status", "failed");
	/* local/cfg.h now comes first; the build it sets off fails on nope.h still */
	mkd("local");
	e2e_put("local/cfg.h", "#define V 2\n");
	e2e_wait_history("map(select(.status == \"failed\")) | length", "2");
	/* Back to the text of v1: not v1's object (which read include/cfg.h), a compile that reads local/cfg.h. */
	e2e_put("a.c", good);
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 2");
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=2 value=2");
}

Test(headers, a_header_that_appears_first_on_the_include_path_is_picked_up)
{
	mkd("include");
	e2e_put("include/cfg.h", "#define V 1\n");
	e2e_put("a.c", "#include \"cfg.h\"\nint value(void) { return V; }\n");
	e2e_start_daemon((const char *const[]){"CFLAGS=-Ilocal -Iinclude", NULL});
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=1 value=1");
	/* local/ comes before include/: its cfg.h shadows the one the last build read. */
	mkd("local");
	e2e_put("local/cfg.h", "#define V 2\n");
	e2e_expect(h, "update a 1 v=2 value=2");
	e2e_put("local/cfg.h", "#define V 3\n");
	e2e_expect(h, "update a 1 v=3 value=3");
}

Test(headers, a_missing_header_that_appears_builds_the_module)
{
	mkd("include");
	e2e_put("a.c", "#include \"later.h\"\nint value(void) { return LATER; }\n");
	e2e_start_daemon(include_env);
	e2e_wait_history(".[0] | \"\\(.status) \\(.message | test(\"later.h\"))\"", "failed true");
	e2e_put("include/later.h", "#define LATER 9\n");
	e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", "ok 1");
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=1 value=9");
}
