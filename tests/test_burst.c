/* test_burst.c: many modules changed at once, as a checkout does: each built once, in parallel, with the progress in the log. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

TestSuite(burst, .init = e2e_setup, .fini = e2e_teardown, .timeout = 240);

#define N 50

static void all_modules(int value, int by_rename)
{
	for (int i = 0; i < N; i++) {
		char *rel = t_fmt("m%02d.c", i), *src = t_fmt("int value(void) { return %d; }\n", value);
		if (by_rename) {
			/* as git writes a checkout: a new file renamed over the old */
			char *tmp = t_fmt("%s/.m%02d.c.tmp", e2e_dir, i), *to = t_fmt("%s/%s", e2e_dir, rel);
			cr_assert_eq(t_write(tmp, src, strlen(src)), 0);
			cr_assert_eq(rename(tmp, to), 0);
			free(tmp);
			free(to);
		} else {
			e2e_put(rel, src);
		}
		free(rel);
		free(src);
	}
}

Test(burst, a_checkout_that_changes_fifty_modules_builds_each_once_and_says_how_far_it_has_got)
{
	all_modules(1, 0);
	e2e_start_daemon(NULL);
	e2e_wait_history("map(select(.status == \"ok\")) | length", "50");
	all_modules(2, 1);
	/* fifty builds on the cores take a while: status shows the queue meanwhile */
	e2e_wait_cli("status", ".queue.building > 0 and .queue.queued > 0", "true");
	e2e_wait_history("map(select(.status == \"ok\")) | length", "100");
	e2e_wait_cli("status", "\"\\(.queue.building) \\(.queue.queued)\"", "0 0");
	/* once each: two rows a module, the second from the checkout */
	e2e_wait_history("group_by(.module) | map(length) | unique | map(tostring) | join(\",\")", "2");
	e2e_wait_history("[.[] | select(.version == 2) | .cause | test(\"changed\")] | all", "true");
	cr_assert(t_until_in_file(e2e_d.log, "[50/50] ", 2, E2E_WAIT_MS), "no progress in the log");
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"m00", "m49", NULL});
	e2e_expect_all(h, (const char *const[]){"first m00 1 v=2 value=2", "first m49 1 v=2 value=2", NULL});
}
