/* test_store.c: the history store: schema, version allocation, queries, migration, refusals. */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../daemon/store.h"
#include "util.h"

static char *dir, *db;

static void setup(void)
{
	dir = t_tmpdir();
	db = t_fmt("%s/history.db", dir);
}

static void teardown(void)
{
	t_rmtree(dir);
	free(db);
	free(dir);
}

TestSuite(store, .init = setup, .fini = teardown);

static hrd_store *open_rw(void)
{
	hrd_store *s;
	char e[1024];
	cr_assert_eq(hrd_store_open(db, HRD_STORE_CREATE, &s, e, sizeof e), 0, "open: %s", e);
	return s;
}

static uint64_t rec(hrd_store *s, const char *module, int status, uint64_t version)
{
	hrd_build b = { .module = module, .status = status, .version = version, .started_us = 1000000,
		        .duration_us = 2500, .message = status == HRD_FAILED ? "enemy.c:3:1: error: x" : "" };
	cr_assert_eq(hrd_store_record(s, &b), 0, "record: %s", hrd_store_error(s));
	cr_assert_gt(b.id, 0);
	return b.version;
}

static int64_t sql_int(const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

Test(store, creates_a_wal_database_with_an_id_that_persists)
{
	hrd_store *s = open_rw();
	char id[33];
	strcpy(id, hrd_store_id(s));
	cr_assert_eq(strlen(id), 32);
	cr_assert_eq(strspn(id, "0123456789abcdef"), 32);
	hrd_store_close(s);
	cr_assert_eq(sql_int("PRAGMA user_version"), HRD_SCHEMA_VERSION);
	cr_assert_eq(sql_int("PRAGMA application_id"), 0x48524c44);
	s = open_rw();
	cr_assert_str_eq(hrd_store_id(s), id, "reopening keeps the id");
	hrd_store_close(s);
	/* another database gets another id */
	char *db2 = t_fmt("%s/other.db", dir);
	char e[256];
	cr_assert_eq(hrd_store_open(db2, HRD_STORE_CREATE, &s, e, sizeof e), 0);
	cr_assert_str_neq(hrd_store_id(s), id);
	hrd_store_close(s);
	free(db2);
	/* creation leaves nothing behind but the databases */
	DIR *dd = opendir(dir);
	struct dirent *de;
	while ((de = readdir(dd)))
		cr_assert_null(strstr(de->d_name, ".new."), "left behind: %s", de->d_name);
	closedir(dd);
	sqlite3 *h;
	sqlite3_open(db, &h);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL);
	sqlite3_step(st);
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(h);
}

Test(store, versions_count_published_builds_per_module)
{
	hrd_store *s = open_rw();
	cr_assert_eq(rec(s, "enemy", HRD_OK, 0), 1);
	cr_assert_eq(rec(s, "enemy", HRD_FAILED, 99), 0, "failed rows have no version");
	cr_assert_eq(rec(s, "enemy", HRD_OK, 0), 2);
	cr_assert_eq(rec(s, "player", HRD_OK, 0), 1, "numbered per module");
	cr_assert_eq(rec(s, "enemy", HRD_REUSED, 0), 3);
	cr_assert_eq(rec(s, "enemy", HRD_ROLLBACK, 0), 4);
	cr_assert_eq(rec(s, "enemy", HRD_REFUSED, 4), 4, "refused rows name the version refused");
	cr_assert_eq(rec(s, "enemy", HRD_OK, 0), 5, "a refusal does not use up a number");
	cr_assert_eq(rec(s, "enemy", HRD_OK, 6), 6, "the expected version");
	hrd_build wrong = { .module = "enemy", .status = HRD_OK, .version = 9 };
	cr_assert_eq(hrd_store_record(s, &wrong), -1, "another version than expected is refused");
	cr_assert(strstr(hrd_store_error(s), "expected to record enemy v9, but the history's next is v7"), "%s", hrd_store_error(s));
	cr_assert_eq(wrong.version, 9);
	cr_assert_eq(rec(s, "enemy", HRD_OK, 0), 7, "and it left nothing behind");
	hrd_store_close(s);
	cr_assert_eq(sql_int("SELECT count(*) FROM builds WHERE version IS NULL"), 1);
	cr_assert_eq(sql_int("SELECT count(*) FROM builds"), 10);
}

Test(store, a_published_version_cannot_be_written_twice)
{
	hrd_store *s = open_rw();
	rec(s, "enemy", HRD_OK, 0);
	hrd_store_close(s);
	sqlite3 *h;
	sqlite3_open(db, &h);
	int rc = sqlite3_exec(h, "INSERT INTO builds(module, version, status, started_at, duration_us)"
	                         " VALUES('enemy', 1, 'ok', 0, 0)", NULL, NULL, NULL);
	cr_assert_eq(rc, SQLITE_CONSTRAINT);
	sqlite3_close(h);
}

struct seen {
	int n;
	char module[8][16];
	uint64_t version[8];
	int status[8];
};

static int collect(const hrd_build *b, void *arg)
{
	struct seen *s = arg;
	cr_assert_lt(s->n, 8);
	snprintf(s->module[s->n], 16, "%s", b->module);
	s->version[s->n] = b->version;
	s->status[s->n++] = b->status;
	return 0;
}

static int first(const hrd_build *b, void *arg)
{
	hrd_build *out = arg;
	*out = *b;
	out->source_hash = strdup(b->source_hash);
	out->command = strdup(b->command);
	out->output = strdup(b->output);
	out->artifact = strdup(b->artifact);
	out->cause = strdup(b->cause);
	out->module = out->message = NULL;
	return 1;
}

Test(store, history_is_newest_first_with_filter_and_limit_and_keeps_every_field)
{
	hrd_store *s = open_rw();
	rec(s, "a", HRD_OK, 0);
	rec(s, "b", HRD_OK, 0);
	rec(s, "a", HRD_FAILED, 0);
	rec(s, "a", HRD_OK, 0);
	hrd_build full = { .module = "b", .status = HRD_OK, .started_us = 1764106074123456, .duration_us = 142113,
		           .source_hash = "abc123", .command = "cc -shared -fPIC -o x.so b.c",
		           .output = "b.c:1: warning: w\n", .message = "", .artifact = "/s/b.2.so",
		           .cause = "b.c: saved" };
	cr_assert_eq(hrd_store_record(s, &full), 0);
	struct seen all = { 0 };
	cr_assert_eq(hrd_store_history(s, NULL, 0, collect, &all), 0);
	cr_assert_eq(all.n, 5);
	const char *mods[] = { "b", "a", "a", "b", "a" };
	const uint64_t vers[] = { 2, 2, 0, 1, 1 };
	for (int i = 0; i < 5; i++) {
		cr_assert_str_eq(all.module[i], mods[i], "row %d", i);
		cr_assert_eq(all.version[i], vers[i], "row %d", i);
	}
	cr_assert_eq(all.status[2], HRD_FAILED);
	struct seen a = { 0 };
	cr_assert_eq(hrd_store_history(s, "a", 2, collect, &a), 0);
	cr_assert_eq(a.n, 2);
	cr_assert_eq(a.version[0], 2);
	cr_assert_eq(a.status[1], HRD_FAILED);
	struct seen none = { 0 };
	cr_assert_eq(hrd_store_history(s, "zzz", 0, collect, &none), 0);
	cr_assert_eq(none.n, 0);
	hrd_store_close(s);
	/* every field reads back through a read-only open */
	char e[512];
	cr_assert_eq(hrd_store_open(db, HRD_STORE_READONLY, &s, e, sizeof e), 0, "%s", e);
	hrd_build got = { 0 };
	cr_assert_eq(hrd_store_history(s, "b", 1, first, &got), 0);
	cr_assert_eq(got.started_us, full.started_us);
	cr_assert_eq(got.duration_us, full.duration_us);
	cr_assert_str_eq(got.source_hash, full.source_hash);
	cr_assert_str_eq(got.command, full.command);
	cr_assert_str_eq(got.output, full.output);
	cr_assert_str_eq(got.artifact, full.artifact);
	cr_assert_str_eq(got.cause, full.cause);
	free((char *)got.source_hash);
	free((char *)got.command);
	free((char *)got.output);
	free((char *)got.artifact);
	free((char *)got.cause);
	hrd_store_close(s);
}

Test(store, stats_count_compiles_and_average_their_time)
{
	hrd_store *s = open_rw();
	hrd_stats st;
	cr_assert_eq(hrd_store_stats(s, NULL, &st), 0);
	cr_assert_eq(st.total_builds, 0);
	cr_assert_float_eq(st.success_rate, 0, 1e-9);
	cr_assert_float_eq(st.avg_compile_ms, 0, 1e-9);
	const int64_t dur[] = { 100000, 200000, 600000 };
	const int status[] = { HRD_OK, HRD_OK, HRD_FAILED };
	for (int i = 0; i < 3; i++) {
		hrd_build b = { .module = "m", .status = status[i], .duration_us = dur[i] };
		cr_assert_eq(hrd_store_record(s, &b), 0);
	}
	/* reuse, rollback and refusal are not compiles */
	hrd_build r = { .module = "m", .status = HRD_REUSED, .duration_us = 9000000 };
	hrd_store_record(s, &r);
	hrd_build f = { .module = "m", .status = HRD_REFUSED, .version = 3, .duration_us = 9000000 };
	hrd_store_record(s, &f);
	hrd_build o = { .module = "other", .status = HRD_FAILED, .duration_us = 1000 };
	hrd_store_record(s, &o);
	cr_assert_eq(hrd_store_stats(s, "m", &st), 0);
	cr_assert_eq(st.total_builds, 3);
	cr_assert_eq(st.successful, 2);
	cr_assert_eq(st.failed, 1);
	cr_assert_eq(st.reused, 1);
	cr_assert_eq(st.refused, 1);
	cr_assert_float_eq(st.success_rate, 200.0 / 3, 1e-9);
	cr_assert_float_eq(st.avg_compile_ms, 300.0, 1e-9);
	cr_assert_eq(hrd_store_stats(s, NULL, &st), 0);
	cr_assert_eq(st.total_builds, 4);
	cr_assert_eq(st.successful + st.failed, st.total_builds);
	hrd_store_close(s);
}

Test(store, concurrent_writers_never_share_a_version, .timeout = 60)
{
	hrd_store_close(open_rw());
	enum { PROCS = 4, EACH = 50 };
	for (int p = 0; p < PROCS; p++) {
		if (fork() == 0) {
			hrd_store *s;
			char e[256];
			if (hrd_store_open(db, HRD_STORE_CREATE, &s, e, sizeof e) < 0)
				_exit(1);
			for (int i = 0; i < EACH; i++) {
				hrd_build b = { .module = "shared", .status = i % 5 ? HRD_OK : HRD_FAILED };
				if (hrd_store_record(s, &b) < 0)
					_exit(2);
			}
			hrd_store_close(s);
			_exit(0);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		int st;
		wait(&st);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer failed: %d", st);
	}
	int64_t published = PROCS * EACH * 4 / 5;
	cr_assert_eq(sql_int("SELECT count(DISTINCT version) FROM builds WHERE status = 'ok'"), published);
	cr_assert_eq(sql_int("SELECT max(version) FROM builds"), published, "no gaps, no repeats");
}

Test(store, processes_creating_one_database_at_once_agree, .timeout = 60)
{
	enum { PROCS = 4, ROUNDS = 10 };
	for (int round = 0; round < ROUNDS; round++) {
		char *path = t_fmt("%s/race%d.db", dir, round);
		int ids[PROCS][2];
		for (int p = 0; p < PROCS; p++) {
			cr_assert_eq(pipe(ids[p]), 0);
			if (fork() == 0) {
				hrd_store *s;
				char e[512];
				if (hrd_store_open(path, HRD_STORE_CREATE, &s, e, sizeof e) < 0) {
					fprintf(stderr, "%s\n", e);
					_exit(1);
				}
				(void)!write(ids[p][1], hrd_store_id(s), 32);
				hrd_store_close(s);
				_exit(0);
			}
			close(ids[p][1]);
		}
		char first[33] = "";
		for (int p = 0; p < PROCS; p++) {
			int st;
			wait(&st);
			cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "round %d: an opener failed", round);
		}
		for (int p = 0; p < PROCS; p++) {
			char id[33] = "";
			cr_assert_eq(read(ids[p][0], id, 32), 32);
			close(ids[p][0]);
			if (!*first)
				strcpy(first, id);
			cr_assert_str_eq(id, first, "round %d: one database, one id", round);
		}
		free(path);
	}
}

Test(store, the_schema_refuses_unknown_statuses)
{
	hrd_store_close(open_rw());
	sqlite3 *h;
	sqlite3_open(db, &h);
	int rc = sqlite3_exec(h, "INSERT INTO builds(module, version, status, started_at, duration_us)"
	                         " VALUES('enemy', 1, 'building', 0, 0)", NULL, NULL, NULL);
	cr_assert_eq(rc, SQLITE_CONSTRAINT);
	sqlite3_close(h);
}

/* The first schema, frozen as shipped: what an old database looks like. */
static const char schema_v1[] =
	"PRAGMA application_id = 1213353028; /* 0x48524c44 */"
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE builds(id INTEGER PRIMARY KEY, module TEXT NOT NULL, version INTEGER,"
	" status TEXT NOT NULL CHECK(status IN ('ok', 'failed', 'reused', 'rollback', 'refused')),"
	" started_at INTEGER NOT NULL, duration_us INTEGER NOT NULL,"
	" source_hash TEXT NOT NULL DEFAULT '', command TEXT NOT NULL DEFAULT '',"
	" output TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '');"
	"INSERT INTO meta VALUES('id', '0123456789abcdef0123456789abcdef');"
	"INSERT INTO builds(module, version, status, started_at, duration_us, message) VALUES"
	" ('enemy', 1, 'ok', 1, 10, ''), ('enemy', NULL, 'failed', 2, 20, 'enemy.c:1: error: e'),"
	" ('enemy', 2, 'ok', 3, 30, '');"
	"PRAGMA user_version = 1;";

static void make_v1(void)
{
	sqlite3 *h;
	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, schema_v1, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
	sqlite3_close(h);
}

Test(store, migrates_a_first_version_database_in_place)
{
	make_v1();
	hrd_store *s;
	char e[512];
	/* the CLI never writes: it says how to upgrade */
	cr_assert_eq(hrd_store_open(db, HRD_STORE_READONLY, &s, e, sizeof e), -1);
	cr_assert(strstr(e, db) && strstr(e, "run hotreloadd once"), "%s", e);
	s = open_rw();
	cr_assert_str_eq(hrd_store_id(s), "0123456789abcdef0123456789abcdef", "the id survives");
	cr_assert_eq(rec(s, "enemy", HRD_OK, 0), 3, "numbering goes on from the old rows");
	struct seen all = { 0 };
	cr_assert_eq(hrd_store_history(s, NULL, 0, collect, &all), 0);
	cr_assert_eq(all.n, 4);
	cr_assert_eq(all.status[2], HRD_FAILED);
	hrd_store_close(s);
	cr_assert_eq(sql_int("PRAGMA user_version"), HRD_SCHEMA_VERSION);
	cr_assert_eq(sql_int("SELECT count(*) FROM builds WHERE id <= 3 AND artifact = '' AND cause = ''"), 3);
	cr_assert_eq(sql_int("SELECT count(*) FROM builds WHERE tier = 'final'"), 4, "old rows are final builds");
}

static int newest(const hrd_build *b, void *arg)
{
	*(uint64_t *)arg = b->version;
	return 1;
}

static int first_quick(const hrd_build *b, void *arg)
{
	*(int *)arg = b->quick;
	return 1;
}

Test(store, a_quick_row_is_numbered_and_listed_but_not_reused_nor_counted)
{
	hrd_store *s = open_rw();
	rec(s, "enemy", HRD_OK, 0);
	hrd_build q = { .module = "enemy", .status = HRD_OK, .started_us = 1000000, .duration_us = 900,
		        .source_hash = "k", .quick = 1 };
	cr_assert_eq(hrd_store_record(s, &q), 0, "%s", hrd_store_error(s));
	cr_assert_eq(q.version, 2);
	int quick = 0;
	cr_assert_eq(hrd_store_history(s, "enemy", 1, first_quick, &quick), 0);
	cr_assert_eq(quick, 1, "the history lists it as quick");
	uint64_t found = 0;
	cr_assert_eq(hrd_store_published(s, "enemy", NULL, newest, &found), 0);
	cr_assert_eq(found, 1, "reuse and rollback found v%llu, a quick build", (unsigned long long)found);
	found = 0;
	cr_assert_eq(hrd_store_published(s, "enemy", "k", newest, &found), 0);
	cr_assert_eq(found, 0);
	hrd_stats st;
	cr_assert_eq(hrd_store_stats(s, "enemy", &st), 0);
	cr_assert_eq(st.total_builds, 1);
	cr_assert_eq(st.successful, 1);
	cr_assert_eq(rec(s, "enemy", HRD_OK, 0), 3, "a final build numbers after it");
	hrd_store_close(s);
}

static void assert_refused_untouched(int flags, const char *want)
{
	size_t n0, n1;
	char *before = t_read(db, &n0);
	hrd_store *s = (hrd_store *)1;
	char e[1024];
	cr_assert_eq(hrd_store_open(db, flags, &s, e, sizeof e), -1);
	cr_assert_null(s);
	cr_assert(strstr(e, db), "the message names the file: %s", e);
	cr_assert(strstr(e, want), "'%s' in: %s", want, e);
	char *after = t_read(db, &n1);
	cr_assert(before && after && n0 == n1 && memcmp(before, after, n0) == 0, "the file is left as it was");
	free(before);
	free(after);
}

Test(store, refuses_garbage_and_leaves_it_alone)
{
	const char junk[] = "this is not a database, but somebody's file\n";
	t_write(db, junk, sizeof junk);
	assert_refused_untouched(HRD_STORE_CREATE, "move it aside");
	assert_refused_untouched(HRD_STORE_READONLY, "move it aside");
}

Test(store, refuses_a_corrupt_history)
{
	hrd_store *s = open_rw();
	for (int i = 0; i < 400; i++) {
		hrd_build b = { .module = "enemy", .status = HRD_OK, .output = "padding padding padding padding "
		                                                                 "padding padding padding padding" };
		hrd_store_record(s, &b);
	}
	hrd_store_close(s);
	size_t n;
	char *p = t_read(db, &n);
	cr_assert_gt(n, 4 * 4096);
	memset(p + 2 * 4096, 0xA5, 4096); /* a b-tree page turned to noise */
	t_write(db, p, n);
	free(p);
	assert_refused_untouched(HRD_STORE_CREATE, "corrupt");
}

Test(store, refuses_other_sqlite_files_and_newer_schemas)
{
	sqlite3 *h;
	sqlite3_open(db, &h);
	sqlite3_exec(h, "CREATE TABLE mine(x); INSERT INTO mine VALUES(1);", NULL, NULL, NULL);
	sqlite3_close(h);
	assert_refused_untouched(HRD_STORE_CREATE, "not a hotreload history");
	unlink(db);
	hrd_store_close(open_rw());
	sqlite3_open(db, &h);
	sqlite3_exec(h, "PRAGMA user_version = 99;", NULL, NULL, NULL);
	sqlite3_close(h);
	assert_refused_untouched(HRD_STORE_CREATE, "newer hotreload");
	assert_refused_untouched(HRD_STORE_READONLY, "newer hotreload");
	sqlite3_open(db, &h);
	sqlite3_exec(h, "PRAGMA user_version = -1;", NULL, NULL, NULL);
	sqlite3_close(h);
	assert_refused_untouched(HRD_STORE_CREATE, "invalid schema version");
}

Test(store, read_only_open_never_creates_a_file)
{
	hrd_store *s;
	char e[1024];
	cr_assert_eq(hrd_store_open(db, HRD_STORE_READONLY, &s, e, sizeof e), -1);
	cr_assert(strstr(e, db) && strstr(e, "no history"), "%s", e);
	struct stat st;
	cr_assert_eq(stat(db, &st), -1, "nothing was created");
	cr_assert_eq(hrd_store_open(dir, HRD_STORE_READONLY, &s, e, sizeof e), -1);
	cr_assert(strstr(e, "not a regular file"), "%s", e);
}

Test(store, the_daemon_refuses_a_history_it_cannot_write)
{
	hrd_store_close(open_rw());
	chmod(dir, 0755);
	chmod(db, 0444);
	pid_t pid = fork();
	if (pid == 0) { /* as nobody: root writes whatever the mode says */
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(3);
		hrd_store *s;
		char e[1024];
		int rc = hrd_store_open(db, HRD_STORE_CREATE, &s, e, sizeof e);
		_exit(rc == -1 && strstr(e, "cannot write it") && strstr(e, db) ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
}

Test(store, record_refuses_incomplete_rows)
{
	hrd_store *s = open_rw();
	hrd_build b = { .module = NULL, .status = HRD_OK };
	cr_assert_eq(hrd_store_record(s, &b), -1);
	b = (hrd_build){ .module = "m", .status = 42 };
	cr_assert_eq(hrd_store_record(s, &b), -1);
	cr_assert(strstr(hrd_store_error(s), db));
	hrd_store_close(s);
	cr_assert_eq(sql_int("SELECT count(*) FROM builds"), 0);
}

Test(store, status_names_round_trip)
{
	for (int i = HRD_OK; i <= HRD_REFUSED; i++)
		cr_assert_eq(hrd_status_parse(hrd_status_name(i)), i);
	cr_assert_null(hrd_status_name(0));
	cr_assert_eq(hrd_status_parse("bogus"), 0);
}

static int join_dep(void *arg, const char *path)
{
	char *all = arg;
	size_t n = strlen(all);
	snprintf(all + n, 256 - n, "%s%s", n ? " " : "", path);
	return 0;
}

Test(store, a_build_records_its_dependencies_replacing_the_old_ones_or_keeping_them)
{
	hrd_store *s = open_rw();
	char *const first[] = {"include/b.h", "include/a.h", NULL}, *const none[] = {NULL};
	hrd_build b = {.module = "enemy", .status = HRD_OK, .started_us = 1, .deps = first};
	cr_assert_eq(hrd_store_record(s, &b), 0, "%s", hrd_store_error(s));
	char all[256] = "";
	cr_assert_eq(hrd_store_deps(s, "enemy", join_dep, all), 0);
	cr_assert_str_eq(all, "include/a.h include/b.h");
	/* A row without a list keeps them; another module has its own. */
	rec(s, "enemy", HRD_FAILED, 0);
	rec(s, "other", HRD_OK, 0);
	all[0] = '\0';
	cr_assert_eq(hrd_store_deps(s, "enemy", join_dep, all), 0);
	cr_assert_str_eq(all, "include/a.h include/b.h");
	/* An empty list replaces them. */
	b = (hrd_build){.module = "enemy", .status = HRD_OK, .started_us = 2, .deps = none};
	cr_assert_eq(hrd_store_record(s, &b), 0);
	all[0] = '\0';
	cr_assert_eq(hrd_store_deps(s, "enemy", join_dep, all), 0);
	cr_assert_str_eq(all, "");
	hrd_store_close(s);
}

static int count_file(void *arg, const hrd_snapshot *f)
{
	char *all = arg;
	size_t n = strlen(all);
	snprintf(all + n, 256 - n, "%s%s=%.*s", n ? " " : "", f->path, (int)f->len, (const char *)f->data);
	return 0;
}

Test(store, a_build_keeps_the_files_that_went_in_each_content_once)
{
	hrd_store *s = open_rw();
	hrd_snapshot files[] = {{"a.c", "aaaa", "int a;", 6}, {"inc/h.h", "hhhh", "#define H", 9}};
	hrd_build b = {.module = "enemy", .status = HRD_OK, .started_us = 1, .snap = files, .nsnap = 2};
	cr_assert_eq(hrd_store_record(s, &b), 0, "%s", hrd_store_error(s));
	hrd_build again = {.module = "enemy", .status = HRD_FAILED, .started_us = 2, .snap = files, .nsnap = 1};
	cr_assert_eq(hrd_store_record(s, &again), 0, "%s", hrd_store_error(s));
	char all[256] = "";
	cr_assert_eq(hrd_store_snapshots(s, b.id, count_file, all), 0);
	cr_assert_str_eq(all, "a.c=int a; inc/h.h=#define H");
	all[0] = '\0';
	cr_assert_eq(hrd_store_snapshots(s, again.id, count_file, all), 0);
	cr_assert_str_eq(all, "a.c=int a;");
	hrd_store_close(s);
	cr_assert_eq(sql_int("SELECT count(*) FROM blobs"), 2, "each content once");
}

Test(store, an_object_or_a_file_past_the_bound_is_refused_whole_not_cut)
{
	/* A length past what an int holds: bound as an int, it was cut to its low bits and stored without a word. */
	static const char bytes[16] = "0123456789abcdef";
	size_t huge = ((size_t)1 << 32) + sizeof bytes;
	hrd_store *s = open_rw();
	hrd_build b = {.module = "enemy", .status = HRD_OK, .started_us = 1, .object = bytes, .object_len = huge, .keep = 1};
	cr_assert_eq(hrd_store_record(s, &b), -1, "an object of 4 GiB was recorded");
	cr_assert(strstr(hrd_store_error(s), "the object") && strstr(hrd_store_error(s), "4294967312 bytes") &&
	              strstr(hrd_store_error(s), "256 MiB"),
	          "%s", hrd_store_error(s));
	hrd_snapshot f = {"a.c", "aaaa", bytes, huge};
	hrd_build c = {.module = "enemy", .status = HRD_FAILED, .started_us = 2, .snap = &f, .nsnap = 1};
	cr_assert_eq(hrd_store_record(s, &c), -1, "a file of 4 GiB was recorded");
	cr_assert(strstr(hrd_store_error(s), "a.c") && strstr(hrd_store_error(s), "256 MiB"), "%s", hrd_store_error(s));
	hrd_store_close(s);
	cr_assert_eq(sql_int("SELECT count(*) FROM builds"), 0, "nothing of either is left");
	cr_assert_eq(sql_int("SELECT count(*) FROM objects"), 0);
	cr_assert_eq(sql_int("SELECT count(*) FROM blobs"), 0);
	/* Up to the bound, as it was. */
	s = open_rw();
	b = (hrd_build){.module = "enemy", .status = HRD_OK, .started_us = 1, .object = bytes, .object_len = sizeof bytes, .keep = 1};
	cr_assert_eq(hrd_store_record(s, &b), 0, "%s", hrd_store_error(s));
	void *data;
	size_t len;
	cr_assert_eq(hrd_store_object(s, "enemy", 1, &data, &len), 1);
	cr_assert(len == sizeof bytes && memcmp(data, bytes, len) == 0);
	free(data);
	hrd_store_close(s);
}

static long long wal_size(void)
{
	struct stat st;
	char *wal = t_fmt("%s-wal", db);
	long long n = stat(wal, &st) == 0 ? (long long)st.st_size : 0;
	free(wal);
	return n;
}

Test(store, records_in_a_row_with_no_idle_gap_keep_the_log_bounded, .timeout = 120)
{
	/* The daemon's discipline: no checkpoint inside every commit, and none waits for an idle moment here. */
	hrd_store *s = open_rw();
	cr_assert_eq(hrd_store_autocheckpoint(s, 0), 0);
	enum { N = 320, SIZE = 64 << 10 };
	char *data = malloc(SIZE), hash[65];
	long long most = 0;
	for (int i = 0; i < N; i++) {
		memset(data, 'a' + i % 26, SIZE);
		snprintf(data, SIZE, "%d", i); /* each one new: 20 MiB in all */
		snprintf(hash, sizeof hash, "%064d", i);
		hrd_snapshot f = {"a.c", hash, data, SIZE};
		hrd_build b = {.module = "enemy", .status = HRD_FAILED, .started_us = i, .snap = &f, .nsnap = 1};
		cr_assert_eq(hrd_store_record(s, &b), 0, "%s", hrd_store_error(s));
		if (wal_size() > most)
			most = wal_size();
	}
	cr_assert_leq(most, 2 * HRD_STORE_WAL_MAX, "the log grew to %lld bytes", most);
	cr_assert_eq(sql_int("SELECT count(*) FROM blobs"), N);
	free(data);
	hrd_store_close(s);
}

Test(store, a_published_objects_sha256_is_kept_with_its_row)
{
	hrd_store *s = open_rw();
	rec(s, "enemy", HRD_OK, 0);
	rec(s, "enemy", HRD_FAILED, 0);
	const char *abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	cr_assert_eq(hrd_store_set_object_sum(s, "enemy", 1, abc), 0, "%s", hrd_store_error(s));
	hrd_store_close(s);
	cr_assert_eq(sql_int("SELECT count(*) FROM builds WHERE version = 1 AND object_sha256 = "
	                     "'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'"), 1);
	cr_assert_eq(sql_int("SELECT count(*) FROM builds WHERE status = 'failed' AND object_sha256 = ''"), 1);
}

/* A history of schema 7: its published rows get their objects' SHA-256 from objects/, if still there, else none. */
Test(store, migrating_to_8_hashes_the_objects_still_there)
{
	hrd_store *s = open_rw();
	char *objs = t_fmt("%s/objects", dir), *one = t_fmt("%s/enemy.1.so", objs), *two = t_fmt("%s/enemy.2.so", objs);
	hrd_build b = { .module = "enemy", .status = HRD_OK, .started_us = 1, .artifact = one };
	cr_assert_eq(hrd_store_record(s, &b), 0, "%s", hrd_store_error(s));
	b = (hrd_build){ .module = "enemy", .status = HRD_OK, .started_us = 2, .artifact = two };
	cr_assert_eq(hrd_store_record(s, &b), 0, "%s", hrd_store_error(s));
	hrd_store_close(s);
	cr_assert_eq(mkdir(objs, 0700), 0);
	cr_assert_eq(t_write(one, "abc", 3), 0); /* enemy.2.so is gone */
	sqlite3 *h;
	cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, "ALTER TABLE builds DROP COLUMN object_sha256; PRAGMA user_version = 7;", NULL, NULL,
	                          NULL),
	             SQLITE_OK, "%s", sqlite3_errmsg(h));
	sqlite3_close(h);
	s = open_rw();
	hrd_store_close(s);
	cr_assert_eq(sql_int("PRAGMA user_version"), HRD_SCHEMA_VERSION);
	cr_assert_eq(sql_int("SELECT count(*) FROM builds WHERE version = 1 AND object_sha256 = "
	                     "'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'"), 1);
	cr_assert_eq(sql_int("SELECT count(*) FROM builds WHERE version = 2 AND object_sha256 = ''"), 1);
	free(objs);
	free(one);
	free(two);
}
