/* test_durable.c: the history survives a SIGKILL in the middle of builds: intact, nothing half-recorded, served at once, and what changed meanwhile is built. */
#include <criterion/criterion.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e.h"

TestSuite(durable, .init = e2e_setup, .fini = e2e_teardown, .timeout = 240);

#define N 20

static void modules(int value)
{
	for (int i = 0; i < N; i++) {
		char *rel = t_fmt("m%02d.c", i), *src = t_fmt("int value(void) { return %d; }\n", value);
		e2e_put(rel, src);
		free(rel);
		free(src);
	}
}

/* One integer from a query on the history, read-only. */
static long long sql(const char *db, const char *q)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(h, q, -1, &st, NULL), SQLITE_OK, "%s: %s", q, sqlite3_errmsg(h));
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", q);
	long long v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

static char *sql_text(const char *db, const char *q)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(h, q, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	char *v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

Test(durable, a_sigkill_in_the_middle_of_builds_loses_nothing_recorded_and_misses_no_save)
{
	/* A compiler that takes its time, so that the kill finds builds under way (a link goes straight on). */
	char *tools = t_fmt("%s/.t", e2e_dir), *cc = t_fmt("%s/slowcc", tools), *env = t_fmt("CC=%s", cc);
	const char *script = "#!/bin/sh\ncase \" $* \" in *\" -c \"*) sleep 0.2 ;; esac\nexec cc \"$@\"\n";
	cr_assert_eq(mkdir(tools, 0700), 0);
	cr_assert_eq(t_write(cc, script, strlen(script)), 0);
	cr_assert_eq(chmod(cc, 0755), 0);
	modules(1);
	e2e_start_daemon((const char *const[]){env, NULL});
	e2e_wait_history("map(select(.status == \"ok\")) | length", "20");
	/* a checkout of all twenty, and the daemon killed while it builds them */
	modules(2);
	e2e_wait_cli("status", ".queue.building > 0", "true");
	kill(e2e_d.pid, SIGKILL);
	cr_assert(t_wait_gone(e2e_d.pidfd, E2E_WAIT_MS));
	char *db = t_fmt("%s/history.db", e2e_d.state);
	t_daemon_stop(&e2e_d);
	e2e_d.pidfd = -1;
	/* saved while it was down */
	e2e_put("m00.c", "int value(void) { return 3; }\n");

	/* Intact, and every published row whole: its object there, its files kept, its versions without a gap. */
	char *check = sql_text(db, "PRAGMA integrity_check");
	cr_assert_str_eq(check, "ok");
	free(check);
	cr_assert_eq(sql(db, "SELECT count(*) FROM builds b WHERE b.status = 'ok' AND NOT EXISTS"
	                     " (SELECT 1 FROM build_files f WHERE f.build = b.id)"),
	             0, "a row without its files");
	cr_assert_eq(sql(db, "SELECT count(*) FROM (SELECT module, max(version) AS top, count(*) AS n FROM builds"
	                     " WHERE status IN ('ok', 'reused', 'rollback') GROUP BY module) WHERE top != n"),
	             0, "a gap in the versions");
	long long before = sql(db, "SELECT count(*) FROM builds");
	cr_assert_gt(sql(db, "SELECT count(*) FROM (SELECT module FROM builds GROUP BY module HAVING max(version) = 1)"), 0,
	             "no build was cut short: the kill came too late to test anything");

	e2e_start_daemon((const char *const[]){env, NULL});
	/* Clients get the last good build at once; what changed while it was down, or was cut short, is built. */
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"m00", "m19", NULL});
	/* value=3 (m00 alone has it) is the save made while it was down, built by the first scan: at first, or soon after */
	e2e_expect_all(h, (const char *const[]){"first m00 1", "first m19 1", "value=3", NULL});
	e2e_wait_history("[group_by(.module)[] | map(select(.status == \"ok\")) | length] | min >= 2", "true");
	cr_assert_geq(sql(db, "SELECT count(*) FROM builds"), before, "rows were lost");
	/* every object the history names is there */
	t_run r = t_cli(e2e_dir, NULL, (const char *const[]){"--state-dir", e2e_d.state, "history", "--json", NULL});
	int st;
	char *paths = t_jq(r.out, "[.[] | select(.artifact != \"\") | .artifact] | join(\"\\n\")", &st);
	for (char *p = strtok(paths, "\n"); p; p = strtok(NULL, "\n"))
		cr_expect_eq(access(p, R_OK), 0, "%s is gone", p);
	free(paths);
	t_run_free(&r);
	free(db);
	free(tools);
	free(cc);
	free(env);
}

Test(durable, the_newest_good_objects_are_kept_in_the_history_and_served_again_when_their_files_are_lost)
{
	e2e_put("hotreload.conf", "keep = 2\n");
	for (int v = 1; v <= 4; v++) {
		char *src = t_fmt("int value(void) { return %d; }\n", v), *want = t_fmt("ok %d", v);
		e2e_put("a.c", src);
		if (v == 1)
			e2e_start_daemon(NULL);
		e2e_wait_history(".[0] | \"\\(.status) \\(.version)\"", want);
		free(src);
		free(want);
	}
	char *db = t_fmt("%s/history.db", e2e_d.state), *objects = t_fmt("%s/objects", e2e_d.state);
	cr_assert_eq(sql(db, "SELECT count(*) FROM objects"), 2, "keep = 2");
	cr_assert_eq(sql(db, "SELECT min(b.version) FROM objects o JOIN builds b ON b.id = o.build"), 3, "the newest two");
	cr_assert_eq(t_daemon_stop(&e2e_d), 0);
	e2e_d.pidfd = -1;
	/* the built files lost */
	t_rmtree(objects);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=4 value=4");
	cr_assert(t_until_in_file(e2e_d.log, "a: the object of v4 was gone; restored from the history", 1, E2E_WAIT_MS));
	e2e_wait_history("length", "4"); /* served again, not compiled again */
	free(db);
	free(objects);
}
