/* test_cli.c: the hotreload CLI, run as a program: history, stats, status, state-dir lookup, exit codes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../daemon/store.h"
#include "../proto/hrp.h"
#include "util.h"

static char *dir, *state, *db;
/* Every run clears the variables a developer's shell may have set. */
static const char *const clean_env[] = { "HOTRELOAD_STATE_DIR=", "HOTRELOAD_SOCKET=", NULL };

static void setup(void)
{
	dir = t_tmpdir();
	state = t_fmt("%s/.hotreload", dir);
	db = t_fmt("%s/history.db", state);
	mkdir(state, 0700);
}

static void teardown(void)
{
	t_rmtree(dir);
	free(db);
	free(state);
	free(dir);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 30);

#define T0 1795642201123000LL /* 2026-11-25T21:30:01.123Z */
static const char *const compile_error = "enemy.c:3:5: error: expected ';' before '}' token";

static void make_history(void)
{
	hrd_store *s;
	char e[512];
	cr_assert_eq(hrd_store_open(db, HRD_STORE_CREATE, &s, e, sizeof e), 0, "%s", e);
	hrd_build rows[] = {
		{ .module = "enemy", .status = HRD_OK, .started_us = T0, .duration_us = 142113 },
		{ .module = "enemy", .status = HRD_FAILED, .started_us = T0 + 1000000, .duration_us = 50000,
		  .message = compile_error, .output = "enemy.c: In function 'f':\nenemy.c:3:5: error: ..." },
		{ .module = "enemy", .status = HRD_OK, .started_us = T0 + 2000000, .duration_us = 110000 },
		{ .module = "player", .status = HRD_OK, .started_us = T0 + 3000000, .duration_us = 98000 },
		{ .module = "player", .status = HRD_REFUSED, .version = 1, .started_us = T0 + 4000000,
		  .message = "hr_on_load returned 1" },
		{ .module = "enemy", .status = HRD_REUSED, .started_us = T0 + 5000000, .duration_us = 900 },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		cr_assert_eq(hrd_store_record(s, &rows[i]), 0, "%s", hrd_store_error(s));
	hrd_store_close(s);
}

static t_run cli(const char *cwd, const char *const *args)
{
	return t_cli(cwd ? cwd : dir, clean_env, args);
}

/* jq FILTER over the output must hold (-e: false and null fail). */
static void jq_true(const char *json, const char *filter)
{
	int st;
	char *v = t_jq(json, filter, &st);
	cr_assert_eq(st, 0, "jq '%s' gave '%s' on:\n%s", filter, v, json);
	free(v);
}

static void jq_eq(const char *json, const char *filter, const char *want)
{
	int st;
	char *v = t_jq(json, filter, &st);
	cr_assert_str_eq(v, want, "jq '%s' on:\n%s", filter, json);
	free(v);
}

Test(cli, history_json_has_every_row_newest_first)
{
	make_history();
	t_run r = cli(NULL, (const char *const[]){ "history", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_eq(r.out, "length", "6");
	jq_true(r.out, "all(.[]; has(\"module\") and has(\"version\") and has(\"status\") and has(\"started_at\")"
	               " and has(\"duration_ms\") and has(\"message\"))");
	jq_eq(r.out, "[.[] | .status] | join(\",\")", "reused,refused,ok,ok,failed,ok");
	jq_eq(r.out, "[.[] | .version] | map(tostring) | join(\",\")", "3,1,1,2,null,1");
	jq_eq(r.out, ".[4].message", compile_error);
	jq_eq(r.out, ".[1].message", "hr_on_load returned 1");
	jq_eq(r.out, ".[0].message", "");
	jq_eq(r.out, ".[5].started_at", "2026-11-25T21:30:01.123Z");
	jq_true(r.out, ".[5].duration_ms == 142.113");
	jq_true(r.out, "all(.[]; .started_at | test(\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\\\.[0-9]{3}Z$\"))");
	t_run_free(&r);
}

Test(cli, history_filters_by_module_and_limits)
{
	make_history();
	t_run r = cli(NULL, (const char *const[]){ "history", "enemy", "-n", "2", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_eq(r.out, "length", "2");
	jq_true(r.out, "all(.[]; .module == \"enemy\")");
	jq_eq(r.out, ".[0].version", "3");
	t_run_free(&r);
	r = cli(NULL, (const char *const[]){ "history", "nobody", "--json", NULL });
	cr_assert_eq(r.status, 0);
	jq_eq(r.out, "length", "0");
	t_run_free(&r);
}

Test(cli, history_table_is_aligned)
{
	make_history();
	t_run r = cli(NULL, (const char *const[]){ "history", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	char *lines[16];
	int n = 0;
	for (char *save, *l = strtok_r(r.out, "\n", &save); l && n < 16; l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	cr_assert_eq(n, 7, "a header and six rows");
	cr_assert(strstr(lines[0], "MODULE") == lines[0]);
	size_t col = (size_t)(strstr(lines[0], "STATUS") - lines[0]);
	const char *want[] = { "reused", "refused", "ok", "ok", "failed", "ok" };
	for (int i = 1; i < 7; i++)
		cr_assert_eq(strncmp(lines[i] + col, want[i - 1], strlen(want[i - 1])), 0, "row %d: %s", i, lines[i]);
	cr_assert(strstr(lines[5], compile_error), "the failed row shows the first error: %s", lines[5]);
	t_run_free(&r);
	/* the default is the newest 20 */
	hrd_store *s;
	char e[256];
	hrd_store_open(db, HRD_STORE_CREATE, &s, e, sizeof e);
	for (int i = 0; i < 30; i++)
		hrd_store_record(s, &(hrd_build){ .module = "x", .status = HRD_OK });
	hrd_store_close(s);
	r = cli(NULL, (const char *const[]){ "history", NULL });
	int rows = 0;
	for (char *p = r.out; (p = strchr(p, '\n')); p++)
		rows++;
	cr_assert_eq(rows, 21);
	t_run_free(&r);
}

Test(cli, stats_json_counts_compiles)
{
	make_history();
	t_run r = cli(NULL, (const char *const[]){ "stats", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_eq(r.out, ".total_builds", "4");
	jq_eq(r.out, ".successful", "3");
	jq_eq(r.out, ".failed", "1");
	jq_true(r.out, ".success_rate == 75");
	jq_true(r.out, ".avg_compile_ms == 100.028"); /* (142.113 + 50 + 110 + 98) / 4, rounded by %.3f */
	jq_true(r.out, ".successful + .failed == .total_builds");
	t_run_free(&r);
	r = cli(NULL, (const char *const[]){ "stats", "player", "--json", NULL });
	jq_eq(r.out, ".total_builds", "1");
	jq_eq(r.out, ".refused", "1");
	t_run_free(&r);
	r = cli(NULL, (const char *const[]){ "stats", NULL });
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.out, "75.0%"), "%s", r.out);
	t_run_free(&r);
}

Test(cli, stats_report_the_quick_tier_apart_and_count_final_builds_only)
{
	hrd_store *s;
	char e[256];
	cr_assert_eq(hrd_store_open(db, HRD_STORE_CREATE, &s, e, sizeof e), 0, "%s", e);
	hrd_build rows[] = {
		{.module = "a", .status = HRD_OK, .started_us = 1000000, .duration_us = 50000},
		{.module = "a", .status = HRD_OK, .started_us = 2000000, .duration_us = 3000, .quick = 1},
		{.module = "a", .status = HRD_OK, .started_us = 3000000, .duration_us = 3000, .quick = 1},
		{.module = "a", .status = HRD_FAILED, .started_us = 4000000, .duration_us = 40000},
		/* the game refused the quick v2: a quick refusal, not a final one */
		{.module = "a", .status = HRD_REFUSED, .version = 2, .started_us = 2001000},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		cr_assert_eq(hrd_store_record(s, &rows[i]), 0, "%s", hrd_store_error(s));
	/* live 60 ms after the final v1's start; 5 and 7 ms after the quick ones' */
	cr_assert_eq(hrd_store_loaded(s, "a", 1, 10, 1060000, 0), 0, "%s", hrd_store_error(s));
	cr_assert_eq(hrd_store_loaded(s, "a", 2, 10, 2005000, 0), 0, "%s", hrd_store_error(s));
	cr_assert_eq(hrd_store_loaded(s, "a", 3, 10, 3007000, 0), 0, "%s", hrd_store_error(s));
	hrd_store_close(s);
	t_run r = cli(NULL, (const char *const[]){"stats", "--json", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_true(r.out, ".total_builds == 2 and .successful == 1 and .failed == 1 and .refused == 0 and .lives == 1");
	jq_true(r.out, ".avg_compile_ms == 45 and .save_to_live_p50_ms == 60");
	jq_true(r.out, ".quick_builds == 2 and .quick_successful == 2 and .quick_lives == 2");
	jq_true(r.out, ".save_to_live_quick_p50_ms >= 5 and .save_to_live_quick_p95_ms <= 7"
	               " and .save_to_live_quick_p50_ms <= .save_to_live_quick_p95_ms");
	jq_true(r.out, ".modules[0].quick_builds == 2 and .modules[0].total_builds == 2");
	t_run_free(&r);
	r = cli(NULL, (const char *const[]){"stats", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "builds        2 (1 ok, 1 failed)"), "%s", r.out);
	cr_assert(strstr(r.out, "quick builds  2 (2 ok)"), "%s", r.out);
	cr_assert(strstr(r.out, "quick to live p50 "), "%s", r.out);
	t_run_free(&r);
}

Test(cli, stats_of_an_empty_history_are_zero)
{
	hrd_store *s;
	char e[256];
	cr_assert_eq(hrd_store_open(db, HRD_STORE_CREATE, &s, e, sizeof e), 0);
	hrd_store_close(s);
	t_run r = cli(NULL, (const char *const[]){ "stats", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_true(r.out, ".total_builds == 0 and .successful == 0 and .failed == 0 and .success_rate == 0"
	               " and .avg_compile_ms == 0");
	t_run_free(&r);
}

Test(cli, json_is_valid_for_any_stored_string)
{
	const char *utf8 = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xae \"q\" \\ \t tab\nline2 \x01";
	char bytes[300];
	size_t n = 0;
	for (int c = 1; c < 256; c++)
		bytes[n++] = (char)c;
	bytes[n] = '\0';
	hrd_store *s;
	char e[256];
	cr_assert_eq(hrd_store_open(db, HRD_STORE_CREATE, &s, e, sizeof e), 0);
	hrd_store_record(s, &(hrd_build){ .module = "m", .status = HRD_FAILED, .message = bytes });
	hrd_store_record(s, &(hrd_build){ .module = "m", .status = HRD_FAILED, .message = utf8 });
	hrd_store_record(s, &(hrd_build){ .module = "a b\"c", .status = HRD_OK });
	hrd_store_close(s);
	t_run r = cli(NULL, (const char *const[]){ "history", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_eq(r.out, "length", "3");
	jq_eq(r.out, ".[0].module", "a b\"c");
	jq_true(r.out, ".[1].message == \"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xae \\\"q\\\" \\\\ \\t tab\\nline2 \\u0001\"");
	jq_true(r.out, ".[2].message | length > 200");
	t_run_free(&r);
	/* the table shows one line per row, whatever the message holds */
	r = cli(NULL, (const char *const[]){ "history", NULL });
	int lines = 0;
	for (char *p = r.out; (p = strchr(p, '\n')); p++)
		lines++;
	cr_assert_eq(lines, 4);
	t_run_free(&r);
}

Test(cli, finds_the_state_dir_going_up_and_honours_env_and_option)
{
	make_history();
	char *deep = t_fmt("%s/src/game/ai", dir);
	t_run r = t_exec(NULL, NULL, (const char *const[]){ "mkdir", "-p", deep, NULL });
	t_run_free(&r);
	r = cli(deep, (const char *const[]){ "history", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_eq(r.out, "length", "6");
	t_run_free(&r);
	/* $HOTRELOAD_STATE_DIR beats the search; --state-dir beats both */
	char *other = t_fmt("%s/elsewhere", dir), *envv = t_fmt("HOTRELOAD_STATE_DIR=%s", other);
	mkdir(other, 0700);
	const char *env[] = { envv, "HOTRELOAD_SOCKET=", NULL };
	r = t_cli(deep, env, (const char *const[]){ "history", NULL });
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, other), "names the env's dir: %s", r.err);
	t_run_free(&r);
	r = t_cli(deep, env, (const char *const[]){ "--state-dir", state, "history", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_eq(r.out, "length", "6");
	t_run_free(&r);
	free(envv);
	free(other);
	free(deep);
}

Test(cli, missing_and_corrupt_databases_are_named_and_left_alone)
{
	t_run r = cli(NULL, (const char *const[]){ "history", NULL });
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, db) && strstr(r.err, "no history"), "%s", r.err);
	struct stat st;
	cr_assert_eq(stat(db, &st), -1, "the CLI never creates a database");
	t_run_free(&r);
	const char junk[] = "garbage, not a database";
	t_write(db, junk, sizeof junk);
	r = cli(NULL, (const char *const[]){ "stats", "--json", NULL });
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, db), "%s", r.err);
	cr_assert_str_eq(r.out, "");
	t_run_free(&r);
	size_t n;
	char *after = t_read(db, &n);
	cr_assert(n == sizeof junk && memcmp(after, junk, n) == 0);
	free(after);
}

Test(cli, reads_while_a_writer_holds_the_database_and_after_it_was_killed)
{
	int go[2], ready[2];
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = fork();
	if (pid == 0) {
		hrd_store *s;
		char e[256], c;
		if (hrd_store_open(db, HRD_STORE_CREATE, &s, e, sizeof e) < 0)
			_exit(1);
		for (int i = 0; i < 3; i++)
			hrd_store_record(s, &(hrd_build){ .module = "enemy", .status = HRD_OK });
		(void)!write(ready[1], "r", 1);
		(void)!read(go[0], &c, 1);
		hrd_store_record(s, &(hrd_build){ .module = "enemy", .status = HRD_OK });
		kill(getpid(), SIGKILL); /* no close: the log is left behind, as after a crash */
		_exit(2);
	}
	char c;
	cr_assert_eq(read(ready[0], &c, 1), 1);
	t_run r = cli(NULL, (const char *const[]){ "history", "--json", NULL });
	cr_assert_eq(r.status, 0, "while the writer is open: %s", r.err);
	jq_eq(r.out, "length", "3");
	t_run_free(&r);
	(void)!write(go[1], "g", 1);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	r = cli(NULL, (const char *const[]){ "history", "--json", NULL });
	cr_assert_eq(r.status, 0, "after the writer was killed: %s", r.err);
	jq_eq(r.out, "length", "4");
	jq_eq(r.out, ".[0].version", "4");
	t_run_free(&r);
	for (int i = 0; i < 2; i++) {
		close(go[i]);
		close(ready[i]);
	}
}

Test(cli, no_state_dir_anywhere)
{
	char *bare = t_tmpdir();
	t_run r = cli(bare, (const char *const[]){ "history", NULL });
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "--state-dir"), "%s", r.err);
	t_run_free(&r);
	r = cli(bare, (const char *const[]){ "status", NULL });
	cr_assert_eq(r.status, 3);
	t_run_free(&r);
	t_rmtree(bare);
	free(bare);
}

Test(cli, usage_errors_exit_2_and_help_exits_0)
{
	const char *const *bad[] = {
		(const char *const[]){ NULL },
		(const char *const[]){ "bogus", NULL },
		(const char *const[]){ "--bogus", "history", NULL },
		(const char *const[]){ "history", "-n", "abc", NULL },
		(const char *const[]){ "history", "-n", "-1", NULL },
		(const char *const[]){ "history", "a", "b", NULL },
		(const char *const[]){ "stats", "--nope", NULL },
		(const char *const[]){ "status", "extra", NULL },
		(const char *const[]){ "--state-dir", NULL },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		t_run r = cli(NULL, bad[i]);
		cr_assert_eq(r.status, 2, "case %zu: %d %s", i, r.status, r.err);
		cr_assert(strstr(r.err, "usage:"), "case %zu: %s", i, r.err);
		t_run_free(&r);
	}
	const char *const *good[] = {
		(const char *const[]){ "--help", NULL },
		(const char *const[]){ "help", NULL },
		(const char *const[]){ "history", "--help", NULL },
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		t_run r = cli(NULL, good[i]);
		cr_assert_eq(r.status, 0);
		cr_assert(strstr(r.out, "usage:"));
		t_run_free(&r);
	}
	t_run r = cli(NULL, (const char *const[]){ "--version", NULL });
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "hotreload 0.1.0\n");
	t_run_free(&r);
}

Test(cli, status_without_a_daemon_exits_3_naming_the_socket)
{
	char *sock = t_fmt("%s/hotreloadd.sock", state);
	t_run r = cli(NULL, (const char *const[]){ "status", NULL });
	cr_assert_eq(r.status, 3);
	cr_assert(strstr(r.err, sock), "%s", r.err);
	t_run_free(&r);
	/* a stale socket: bound once, nobody listening now */
	int fd = hrp_listen(sock, 1);
	cr_assert_geq(fd, 0);
	close(fd);
	r = cli(NULL, (const char *const[]){ "status", "--json", NULL });
	cr_assert_eq(r.status, 3);
	cr_assert_str_eq(r.out, "");
	t_run_free(&r);
	free(sock);
}

/* A stand-in daemon for one connection, answering as `mode` says. */
enum { FAKE_OK, FAKE_OLD_VERSION, FAKE_ERROR, FAKE_GARBAGE, FAKE_ANNOUNCES, FAKE_ESCAPES };
struct fake {
	int lfd, mode;
	int saw_cli_hello;
};

static void *fake_daemon(void *arg)
{
	struct fake *f = arg;
	struct pollfd p = { .fd = f->lfd, .events = POLLIN };
	if (poll(&p, 1, 10000) != 1)
		return NULL;
	int fd = accept(f->lfd, NULL, NULL);
	hrp_reader r = { 0 };
	hrp_msg m;
	if (hrp_recv(fd, &r, &m, 5000) == 0 && m.type == HRP_HELLO && m.u.hello.role == HRP_ROLE_CLI)
		f->saw_cli_hello = 1;
	if (f->mode == FAKE_GARBAGE) {
		(void)!write(fd, "\0\0\0\x09\0\x05\0\0!", 9);
	} else if (f->mode == FAKE_ERROR) {
		hrp_send(fd, &(hrp_msg){ .type = HRP_ERROR, .u.error = { HRP_E_DENIED, "uid 1000 is not allowed" } });
	} else {
		hrp_msg hello = { .type = HRP_HELLO,
			          .u.hello = { HRP_VERSION, HRP_ROLE_DAEMON, 4321, "0123456789abcdef0123456789abcdef",
			                       "hotreloadd test" } };
		hrp_buf b = { 0 };
		hrp_encode(&hello, &b);
		if (f->mode == FAKE_OLD_VERSION)
			b.data[HRP_HEADER_SIZE + 3] = HRP_VERSION + 1;
		(void)!write(fd, b.data, b.len);
		hrp_buf_free(&b);
		if (f->mode == FAKE_ANNOUNCES) {
			hrp_send(fd, &(hrp_msg){ .type = HRP_BUILD, .u.build = { "enemy", 4, HRP_KIND_OK, "/x.so", "", 0 } });
			hrp_send(fd, &(hrp_msg){ .type = HRP_FAILED, .u.failed = { "enemy", "enemy.c:1:1: error" } });
		}
		if (f->mode != FAKE_OLD_VERSION && hrp_recv(fd, &r, &m, 5000) == 0 && m.type == HRP_STATUS_REQ) {
			hrp_modstat mods[] = { { "enemy", 3, "ok", "" },
				               { "player", 0, "failed", "player.c:1:1: error: unknown type name 'x'" } };
			const char *reason = f->mode == FAKE_ESCAPES ? "ext4\033]0;owned\007\033[2J" : "local filesystem (ext4)";
			if (f->mode == FAKE_ESCAPES)
				mods[1].message = "\033[31mred\033[0m";
			hrp_send(fd, &(hrp_msg){ .type = HRP_STATUS,
			                         .u.status = { 4321, 2, dir, state, "inotify", reason, 2, mods } });
		}
	}
	hrp_reader_free(&r);
	close(fd);
	return NULL;
}

static t_run status_against(int mode, const char *const *args, struct fake *f)
{
	char *sock = t_fmt("%s/hotreloadd.sock", state);
	*f = (struct fake){ .lfd = hrp_listen(sock, 1), .mode = mode };
	cr_assert_geq(f->lfd, 0);
	pthread_t t;
	pthread_create(&t, NULL, fake_daemon, f);
	t_run r = cli(NULL, args);
	pthread_join(t, NULL);
	close(f->lfd);
	unlink(sock);
	free(sock);
	return r;
}

Test(cli, status_asks_the_daemon)
{
	struct fake f;
	t_run r = status_against(FAKE_OK, (const char *const[]){ "status", "--json", NULL }, &f);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(f.saw_cli_hello, "the CLI introduces itself first");
	jq_eq(r.out, ".watcher.backend", "inotify");
	jq_eq(r.out, ".watcher.reason", "local filesystem (ext4)");
	jq_eq(r.out, ".clients", "2");
	jq_eq(r.out, ".modules | length", "2");
	jq_true(r.out, ".modules[0] == {\"module\":\"enemy\",\"version\":3,\"status\":\"ok\",\"message\":\"\"}");
	jq_true(r.out, ".modules[1].version == null and .modules[1].status == \"failed\"");
	t_run_free(&r);
	r = status_against(FAKE_OK, (const char *const[]){ "status", NULL }, &f);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "inotify (local filesystem (ext4))"), "%s", r.out);
	cr_assert(strstr(r.out, "player.c:1:1: error"), "%s", r.out);
	t_run_free(&r);
}

Test(cli, status_passes_over_announcements_before_its_reply)
{
	struct fake f;
	t_run r = status_against(FAKE_ANNOUNCES, (const char *const[]){ "status", "--json", NULL }, &f);
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_eq(r.out, ".modules[0].version", "3");
	t_run_free(&r);
}

Test(cli, status_never_passes_escape_sequences_to_the_terminal)
{
	struct fake f;
	t_run r = status_against(FAKE_ESCAPES, (const char *const[]){ "status", NULL }, &f);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_null(strchr(r.out, '\033'), "%s", r.out);
	cr_assert(strstr(r.out, "ext4?]0;owned??[2J") && strstr(r.out, "?[31mred?[0m"), "%s", r.out);
	t_run_free(&r);
}

Test(cli, status_of_a_stuck_daemon_exits_3)
{
	char *sock = t_fmt("%s/hotreloadd.sock", state);
	int lfd = hrp_listen(sock, 0), held[4], n = 0, fd;
	cr_assert_geq(lfd, 0);
	while (n < 4 && (fd = hrp_connect(sock, 100)) >= 0) /* fill its queue */
		held[n++] = fd;
	t_run r = cli(NULL, (const char *const[]){ "status", NULL });
	cr_assert_eq(r.status, 3, "%s", r.err);
	cr_assert(strstr(r.err, sock), "%s", r.err);
	t_run_free(&r);
	while (n)
		close(held[--n]);
	close(lfd);
	free(sock);
}

Test(cli, history_is_readable_by_a_user_who_cannot_write_beside_it)
{
	make_history();
	chmod(dir, 0755);
	chmod(state, 0755);
	chmod(db, 0644);
	/* a copy of the CLI: nobody may not be able to reach the build dir */
	char *bin = t_fmt("%s/hotreload", dir);
	size_t n;
	char *exe = t_read(HR_BUILD_DIR "/hotreload", &n);
	cr_assert(exe && t_write(bin, exe, n) == 0);
	chmod(bin, 0755);
	const char *env[] = { "HOTRELOAD_STATE_DIR=", "HOTRELOAD_SOCKET=", NULL };
	char *slashes = t_fmt("/%s", state); /* "//tmp/...": a path, not a URI authority */
	t_run r = t_exec(dir, env, (const char *const[]){ "setpriv", "--reuid=nobody", "--regid=nogroup",
	                                                 "--clear-groups", bin, "--state-dir", slashes, "history",
	                                                 "--json", NULL });
	free(slashes);
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_eq(r.out, "length", "6");
	t_run_free(&r);
	free(exe);
	free(bin);
}

Test(cli, odd_limits_and_times)
{
	hrd_store *s;
	char e[256];
	cr_assert_eq(hrd_store_open(db, HRD_STORE_CREATE, &s, e, sizeof e), 0);
	hrd_store_record(s, &(hrd_build){ .module = "m", .status = HRD_OK, .started_us = -1000 });
	hrd_store_record(s, &(hrd_build){ .module = "m", .status = HRD_OK, .started_us = 0 });
	hrd_store_close(s);
	t_run r = cli(NULL, (const char *const[]){ "history", "-n", "4294967297", "--json", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_eq(r.out, "length", "2");
	jq_eq(r.out, ".[0].started_at", "1970-01-01T00:00:00.000Z");
	jq_eq(r.out, ".[1].started_at", "1969-12-31T23:59:59.999Z");
	t_run_free(&r);
	r = cli(NULL, (const char *const[]){ "history", "-n", "99999999999999999999", NULL });
	cr_assert_eq(r.status, 2, "out of range is a usage error");
	t_run_free(&r);
}

Test(cli, status_reports_what_goes_wrong_with_the_daemon)
{
	struct fake f;
	t_run r = status_against(FAKE_OLD_VERSION, (const char *const[]){ "status", NULL }, &f);
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "protocol version"), "%s", r.err);
	t_run_free(&r);
	r = status_against(FAKE_ERROR, (const char *const[]){ "status", NULL }, &f);
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "uid 1000 is not allowed"), "%s", r.err);
	t_run_free(&r);
	r = status_against(FAKE_GARBAGE, (const char *const[]){ "status", NULL }, &f);
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "bad reply"), "%s", r.err);
	t_run_free(&r);
}

Test(cli, status_uses_the_socket_option_and_env)
{
	/* from a directory with no .hotreload/, the socket comes from --socket or the env */
	char *bare = t_tmpdir(), *sock = t_fmt("%s/hotreloadd.sock", state), *envv = t_fmt("HOTRELOAD_SOCKET=%s", sock);
	struct fake f = { .lfd = hrp_listen(sock, 2), .mode = FAKE_OK };
	pthread_t t;
	pthread_create(&t, NULL, fake_daemon, &f);
	t_run r = t_cli(bare, (const char *const[]){ envv, "HOTRELOAD_STATE_DIR=", NULL },
	                (const char *const[]){ "status", "--json", NULL });
	pthread_join(t, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	jq_eq(r.out, ".modules[0].module", "enemy");
	t_run_free(&r);
	pthread_create(&t, NULL, fake_daemon, &f);
	r = t_cli(bare, clean_env, (const char *const[]){ "--socket", sock, "status", "--json", NULL });
	pthread_join(t, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	close(f.lfd);
	t_rmtree(bare);
	free(envv);
	free(sock);
	free(bare);
}

/* What bash's completion offers for the words of a command line (the last one being completed). */
static char *complete(const char *words)
{
	char *script = t_fmt("source %s/client/hotreload.bash; COMP_WORDS=(%s); COMP_CWORD=$((${#COMP_WORDS[@]} - 1));"
	                     "_hotreload; printf '%%s\\n' \"${COMPREPLY[@]}\" | sort | tr '\\n' ' '",
	                     HR_SOURCE_DIR, words);
	t_run r = t_exec(dir, clean_env, (const char *const[]){ "bash", "-c", script, NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	char *out = strdup(r.out);
	t_run_free(&r);
	free(script);
	return out;
}

Test(cli, bash_completion_offers_commands_options_and_the_modules_of_the_history)
{
	make_history();
	char *words = t_fmt(HR_BUILD_DIR "/hotreload --state-dir %s ''", state), *got = complete(words);
	cr_assert_str_eq(got, "build diff gc help history log rollback show stats status stop unpin wait ");
	free(got);
	free(words);
	got = complete(HR_BUILD_DIR "/hotreload hi");
	cr_assert_str_eq(got, "history ");
	free(got);
	got = complete(HR_BUILD_DIR "/hotreload history --");
	cr_assert_str_eq(got, "--help --json ");
	free(got);
	got = complete(HR_BUILD_DIR "/hotreload log --");
	cr_assert_str_eq(got, "--follow --help --json --quiet ");
	free(got);
	/* A folder with a space is one choice. */
	char *sp = t_fmt("%s/sp ace", dir);
	cr_assert_eq(mkdir(sp, 0755), 0);
	words = t_fmt(HR_BUILD_DIR "/hotreload --state-dir '%s/sp'", dir);
	got = complete(words);
	char *want = t_fmt("%s ", sp);
	cr_assert_str_eq(got, want);
	free(want);
	free(got);
	free(words);
	free(sp);
	/* No daemon answers: the names come from the history. */
	words = t_fmt(HR_BUILD_DIR "/hotreload --state-dir %s stats ''", state);
	got = complete(words);
	cr_assert_str_eq(got, "enemy player ");
	free(got);
	free(words);
}

Test(cli, wait_returns_once_the_module_has_a_good_build_of_the_version_asked)
{
	char *src = t_fmt("%s/a.c", dir);
	cr_assert_eq(t_write(src, "int f(void) { return 1; }\n", 26), 0);
	t_daemon d;
	t_run r;
	cr_assert_eq(t_daemon_start(&d, dir, NULL, NULL, &r), 0, "%s", r.err);
	t_run_free(&r);
	r = cli(NULL, (const char *const[]){ "wait", "a", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "a v1\n");
	t_run_free(&r);
	/* --timeout 0: is it there now? */
	r = cli(NULL, (const char *const[]){ "wait", "a", "--timeout", "0", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	r = cli(NULL, (const char *const[]){ "wait", "a", "--version", "2", "--timeout", "0.2", NULL });
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "a has no good build of v2 or newer after 0.2 s"), "%s", r.err);
	t_run_free(&r);
	r = cli(NULL, (const char *const[]){ "wait", "a", "--timeout", "inf", NULL });
	cr_assert_eq(r.status, 2, "%s", r.err);
	t_run_free(&r);
	/* Waiting, then the save that makes v2. */
	t_proc w = { 0 };
	const char *argv[] = { HR_BUILD_DIR "/hotreload", "wait", "--version", "2", "a", NULL };
	cr_assert_eq(t_proc_start(&w, dir, clean_env, argv), 0);
	cr_assert_eq(t_write(src, "int f(void) { return 2; }\n", 26), 0);
	cr_assert(t_proc_expect(&w, "a v2", 30000), "wait never said v2 (last line: %s)", w.line);
	/* It ends by itself once it has said so: let it, rather than stop it halfway through its exit. */
	cr_assert(t_wait_gone(w.pidfd, 30000), "wait did not end after v2");
	cr_assert_eq(t_proc_end(&w, NULL), 0);
	r = cli(NULL, (const char *const[]){ "wait", "a b", NULL });
	cr_assert_eq(r.status, 2);
	t_run_free(&r);
	r = cli(NULL, (const char *const[]){ "wait", NULL });
	cr_assert_eq(r.status, 2);
	t_run_free(&r);
	cr_assert_eq(t_daemon_stop(&d), 0);
	r = cli(NULL, (const char *const[]){ "wait", "a", NULL });
	cr_assert_eq(r.status, 3, "%s", r.err);
	t_run_free(&r);
	free(src);
}

Test(cli, status_words_are_coloured_when_asked_never_in_a_pipe_and_the_columns_still_line_up)
{
	make_history();
	const char *args[] = { "--state-dir", state, "history", NULL };
	t_run plain = cli(NULL, args);
	cr_assert_eq(plain.status, 0);
	cr_assert_null(strchr(plain.out, '\033'), "a pipe gets no escapes: %s", plain.out);
	const char *force[] = { "HOTRELOAD_STATE_DIR=", "HOTRELOAD_SOCKET=", "CLICOLOR_FORCE=1", NULL };
	t_run forced = t_cli(dir, force, args);
	cr_assert(strstr(forced.out, "\033[32mok\033[0m") && strstr(forced.out, "\033[31mfailed\033[0m") &&
	              strstr(forced.out, "\033[36mreused\033[0m") && strstr(forced.out, "\033[33mrefused\033[0m"),
	          "%s", forced.out);
	/* Without the escapes, the same text: the padding comes after them. */
	char *stripped = strdup(forced.out), *o = stripped;
	for (const char *s = forced.out; *s; s++) {
		if (*s == '\033') {
			s += strcspn(s, "m");
			continue;
		}
		*o++ = *s;
	}
	*o = '\0';
	cr_assert_str_eq(stripped, plain.out);
	const char *no[] = { "HOTRELOAD_STATE_DIR=", "HOTRELOAD_SOCKET=", "CLICOLOR_FORCE=", "NO_COLOR=1", NULL };
	t_run none = t_cli(dir, no, args);
	cr_assert_null(strchr(none.out, '\033'));
	free(stripped);
	t_run_free(&plain);
	t_run_free(&forced);
	t_run_free(&none);
}
