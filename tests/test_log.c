/* test_log.c: the daemon's recent log lines: debug lines never push out the others, a slow reader is told what it missed, and a flood of one kind is cut. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../daemon/log.h"

struct got {
	char text[64][128];
	int level[64];
	size_t n;
};

static void take(void *arg, int64_t at_us, int level, const char *text)
{
	struct got *g = arg;
	cr_assert_gt(at_us, 0, "every line has a time, so that at_us 0 can end the recent ones");
	if (g->n < 64) {
		snprintf(g->text[g->n], sizeof g->text[g->n], "%s", text);
		g->level[g->n++] = level;
	}
}

/* Read everything after c at most_detailed, up to 64 lines. */
static void drain(hrd_log_cursor *c, int most_detailed, struct got *g)
{
	memset(g, 0, sizeof *g);
	while (hrd_log_recent(c, most_detailed, 8, take, g))
		;
}

static void init(void)
{
	hrd_log_level(-1); /* nothing on stderr: the ring keeps every level whatever */
}

TestSuite(log, .init = init);

Test(log, a_scan_of_debug_lines_leaves_the_builds_and_failures_in_view)
{
	hrd_log_cursor c = {{0, 0}, {0, 0}};
	struct got g;
	drain(&c, HRD_DEBUG, &g); /* what other tests of this process logged */
	hrd_info("enemy: v2 built");
	hrd_warn("player: build failed");
	for (int i = 0; i < 3 * HRD_LOG_RECENT; i++)
		hrd_debug("m%d: unchanged", i);
	hrd_log_cursor fresh = {{0, 0}, {0, 0}};
	drain(&fresh, HRD_INFO, &g);
	cr_assert_geq(g.n, 2);
	cr_assert_str_eq(g.text[g.n - 2], "enemy: v2 built");
	cr_assert_str_eq(g.text[g.n - 1], "player: build failed");
	cr_assert_eq(g.level[g.n - 1], HRD_WARN);
}

Test(log, a_reader_that_falls_behind_is_told_how_many_lines_it_missed_then_gets_the_rest_in_order)
{
	hrd_log_cursor c = {{0, 0}, {0, 0}};
	struct got g;
	drain(&c, HRD_DEBUG, &g);
	hrd_info("first");
	for (int i = 0; i < HRD_LOG_RECENT + 10; i++)
		hrd_debug("d%d", i);
	hrd_info("last");
	memset(&g, 0, sizeof g);
	/* the debug ring was written over 10 lines past where this reader stood */
	cr_assert_eq(hrd_log_recent(&c, HRD_DEBUG, 3, take, &g), 1);
	cr_assert_str_eq(g.text[0], "first", "lines come oldest first, across the two rings");
	cr_assert_str_eq(g.text[1], "10 log lines were written over before they could be sent");
	cr_assert_eq(g.level[1], HRD_WARN);
	cr_assert_str_eq(g.text[2], "d10");
	/* the rest, in order, and then nothing */
	int more = 1;
	char last[128] = "";
	for (int i = 0; more && i < 100; i++) {
		memset(&g, 0, sizeof g);
		more = hrd_log_recent(&c, HRD_DEBUG, 64, take, &g);
		if (g.n)
			snprintf(last, sizeof last, "%s", g.text[g.n - 1]);
	}
	cr_assert_eq(more, 0);
	cr_assert_str_eq(last, "last");
}

Test(log, a_flood_of_one_kind_of_line_is_cut_to_a_burst_and_other_lines_still_come)
{
	hrd_log_cursor c = {{0, 0}, {0, 0}};
	struct got g;
	drain(&c, HRD_INFO, &g);
	for (int i = 0; i < 5 * HRD_LOG_BURST; i++)
		hrd_warn("refused a client (pid %d)", i);
	hrd_info("enemy: v2 built");
	hrd_log_cursor fresh = {{0, 0}, {0, 0}};
	int refused = 0, built = 0, more = 1;
	while (more) {
		memset(&g, 0, sizeof g);
		more = hrd_log_recent(&fresh, HRD_INFO, 64, take, &g);
		for (size_t i = 0; i < g.n; i++) {
			refused += strncmp(g.text[i], "refused a client", 16) == 0;
			built += strcmp(g.text[i], "enemy: v2 built") == 0;
		}
	}
	cr_assert_eq(built, 1, "another kind of line comes through the flood");
	cr_assert_leq(refused, HRD_LOG_BURST + HRD_LOG_RATE, "%d refusals kept", refused);
	cr_assert_geq(refused, HRD_LOG_BURST - 1, "a burst comes through whole");
}
