/* test_patchd.c: hotreloadd --patch: the real daemon and cc on a program's compile database; each saved unit a relocatable object, recorded and announced. */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define WAIT_MS 30000 /* a deadline, not a delay */

static char *dir, *root, *prog; /* the test's folder; the daemon's root in it (no modules); the program's tree beside it */
static t_daemon d;
static t_peer peers[3];
static size_t npeers;

/* Strings the test made, freed at its end. */
static char *kept[256];
static size_t nkept;

static char *keep(char *p)
{
	cr_assert_not_null(p);
	cr_assert_lt(nkept, sizeof kept / sizeof *kept);
	return kept[nkept++] = p;
}

#define F(...) keep(t_fmt(__VA_ARGS__))

static void setup(void)
{
	dir = t_tmpdir();
	root = t_fmt("%s/root", dir);
	prog = t_fmt("%s/prog", dir);
	cr_assert_eq(mkdir(root, 0755), 0);
	cr_assert_eq(mkdir(prog, 0755), 0);
	cr_assert_eq(mkdir(F("%s/src", prog), 0755), 0);
	d.pidfd = -1;
	npeers = 0;
}

static void teardown(void)
{
	for (size_t i = 0; i < npeers; i++)
		t_peer_close(&peers[i]);
	if (d.pidfd >= 0) {
		char *log = strdup(d.log);
		t_daemon_stop(&d);
		char *text = t_read(log, NULL);
		cr_expect(!text || (!strstr(text, "Sanitizer") && !strstr(text, "runtime error")), "the daemon's log: %s", text);
		free(text);
		free(log);
	}
	t_rmtree(dir);
	free(dir);
	free(root);
	free(prog);
	while (nkept)
		free(kept[--nkept]);
}

TestSuite(patchd, .init = setup, .fini = teardown, .timeout = 120);

static void put(const char *path, const char *text)
{
	cr_assert_eq(t_write(path, text, strlen(text)), 0, "cannot write %s", path);
}

/*
 * The program: src/a.c (relative "file" with "directory", "arguments", a -D that names its function), root/game/b.c
 * inside the daemon's root ("command", with a quoted -D), and dir/lib/c.c outside both; a.c and c.c share
 * src/shared.h. Each is compiled once as the build would, into the build's own objects.
 */
static char *a_c, *b_c, *c_c, *db;

static void program(void)
{
	a_c = F("%s/src/a.c", prog);
	b_c = F("%s/game/b.c", root);
	c_c = F("%s/lib/c.c", dir);
	db = F("%s/compile_commands.json", prog);
	cr_assert_eq(mkdir(F("%s/game", root), 0755), 0);
	cr_assert_eq(mkdir(F("%s/lib", dir), 0755), 0);
	put(F("%s/src/shared.h", prog), "#define SHARED 1\n");
	put(a_c, "#include \"shared.h\"\nint FNAME(void) { return SHARED + 40; }\n");
	put(b_c, "const char *b_name(void) { return NAME; }\n");
	put(c_c, "#include \"shared.h\"\nint c_value(void) { return SHARED * 2; }\n");
	char *text = F("[\n"
	                   " {\"directory\": \"%s\", \"file\": \"src/a.c\",\n"
	                   "  \"arguments\": [\"cc\", \"-DFNAME=patched_a\", \"-Isrc\", \"-MD\", \"-c\", \"src/a.c\", \"-o\", \"a.o\"]},\n"
	                   " {\"directory\": \"%s\", \"file\": \"%s\",\n"
	                   "  \"command\": \"cc '-DNAME=\\\"two words\\\"' -o b.o -c %s\"},\n"
	                   " {\"directory\": \"%s\", \"file\": \"%s\", \"command\": \"cc -I src -c %s -o c.o\"}\n"
	                   "]\n", prog, prog, b_c, b_c, prog, c_c, c_c);
	put(db, text);
	/* the build's own objects */
	const char *const builds[][9] = {
		{"cc", "-DFNAME=patched_a", "-Isrc", "-MD", "-c", "src/a.c", "-o", "a.o", NULL},
		{"cc", "-DNAME=\"two words\"", "-o", "b.o", "-c", b_c, NULL},
		{"cc", "-I", "src", "-c", c_c, "-o", "c.o", NULL},
	};
	for (size_t i = 0; i < 3; i++) {
		t_run r = t_exec(prog, NULL, builds[i]);
		cr_assert_eq(r.status, 0, "the build: %s", r.err);
		t_run_free(&r);
	}
}

static void start(void)
{
	t_run r;
	const char *args[] = {"--patch", db, "--log-level", "debug", NULL};
	cr_assert_eq(t_daemon_start(&d, root, NULL, args, &r), 0, "hotreloadd did not start (exit %d): %s", r.status, r.err);
	t_run_free(&r);
}

/* A new connection subscribed to every unit ("/"). */
static t_peer *subscribe_all(void)
{
	cr_assert_lt(npeers, sizeof peers / sizeof *peers);
	t_peer *p = &peers[npeers++];
	cr_assert_eq(t_peer_open(p, d.sock), 0, "cannot talk to the daemon");
	hrp_msg m = {.type = HRP_SUBSCRIBE, .u.sub.module = "/"};
	cr_assert_eq(t_peer_send(p, &m), 0);
	return p;
}

/* The next BUILD or FAILED on p (any unit), with the descriptor that came with it in *fd (-1 for none). */
static hrp_msg next(t_peer *p, int *fd)
{
	hrp_msg m;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	*fd = -1;
	for (;;) {
		int rc = hrp_reader_next(&p->r, &m);
		cr_assert_geq(rc, 0, "a bad frame: %s", p->r.why);
		if (rc == 1 && (m.type == HRP_BUILD || m.type == HRP_FAILED))
			return m;
		if (rc == 1) {
			if (*fd >= 0)
				close(*fd);
			*fd = -1;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = WAIT_MS - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		cr_assert_gt(left, 0, "no BUILD nor FAILED within %d ms", WAIT_MS);
		struct pollfd pf = {.fd = p->fd, .events = POLLIN};
		if (poll(&pf, 1, (int)left) <= 0)
			continue;
		int cut = 0;
		long n = hrp_reader_recv(&p->r, p->fd, fd, &cut);
		cr_assert(n > 0 || n == -EAGAIN, "the daemon went away: %ld", n);
	}
}

/* The next announcement of unit: a BUILD (its version, kind, and the object's descriptor checked to be ET_REL). */
static uint64_t next_build(t_peer *p, const char *unit, uint32_t kind, char **path)
{
	for (;;) {
		int fd;
		hrp_msg m = next(p, &fd);
		if (strcmp(m.type == HRP_BUILD ? m.u.build.module : m.u.failed.module, unit) != 0) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		cr_assert_eq(m.type, HRP_BUILD, "%s failed: %s", unit, m.type == HRP_FAILED ? m.u.failed.message : "");
		cr_assert_eq(m.u.build.kind, kind);
		cr_assert_geq(fd, 0, "no descriptor came with the BUILD of %s", unit);
		Elf64_Ehdr h;
		cr_assert_eq(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
		cr_expect_eq(memcmp(h.e_ident, ELFMAG, SELFMAG), 0);
		cr_expect_eq(h.e_type, ET_REL, "the object of %s is not relocatable", unit);
		close(fd);
		if (path)
			*path = keep(strdup(m.u.build.path));
		return m.u.build.version;
	}
}

static char *next_failure(t_peer *p, const char *unit)
{
	int fd;
	hrp_msg m = next(p, &fd);
	if (fd >= 0)
		close(fd);
	cr_assert_eq(m.type, HRP_FAILED, "%s built where it should fail", unit);
	cr_assert_str_eq(m.u.failed.module, unit);
	return keep(strdup(m.u.failed.message));
}

static char *cli(const char *const *args)
{
	const char *argv[16] = {"--state-dir", d.state, "--socket", d.sock};
	size_t n = 4;
	for (size_t i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	t_run r = t_cli(dir, NULL, argv);
	cr_assert_eq(r.status, 0, "hotreload %s: %s", args[0], r.err);
	free(r.err);
	return keep(r.out);
}

static char *query(const char *const *args, const char *filter)
{
	int st;
	return keep(t_jq(cli(args), filter, &st));
}

static char *symbols(const char *path)
{
	t_run r = t_exec(NULL, NULL, (const char *const[]){"nm", path, NULL});
	cr_assert_eq(r.status, 0, "nm %s: %s", path, r.err);
	free(r.err);
	return keep(r.out);
}

Test(patchd, a_saved_unit_is_compiled_with_the_databases_command_and_announced)
{
	program();
	struct stat was;
	cr_assert_eq(stat(F("%s/a.o", prog), &was), 0);
	size_t built_len, after_len;
	char *built = keep(t_read(F("%s/a.o", prog), &built_len)), *deps = keep(t_read(F("%s/a.d", prog), NULL));
	start();
	t_peer *p = subscribe_all();
	put(a_c, "#include \"shared.h\"\nint FNAME(void) { return SHARED + 41; }\n");
	char *obj;
	cr_assert_eq(next_build(p, a_c, HRP_KIND_OK, &obj), 1);
	/* the database's -D named the function; its -MD and -o went to the daemon's own files */
	char *syms = symbols(obj);
	cr_expect(strstr(syms, " T patched_a"), "%s", syms);
	struct stat now;
	cr_assert_eq(stat(F("%s/a.o", prog), &now), 0);
	cr_expect(now.st_mtim.tv_sec == was.st_mtim.tv_sec && now.st_mtim.tv_nsec == was.st_mtim.tv_nsec,
	          "the build's own object was written");
	/* an object holds NUL bytes: compared byte for byte, all of it */
	char *after = keep(t_read(F("%s/a.o", prog), &after_len));
	cr_expect(after_len == built_len && memcmp(after, built, built_len) == 0, "the build's own object was changed");
	cr_expect_str_eq(keep(t_read(F("%s/a.d", prog), NULL)), deps, "the build's dependency file was written");
	/* a unit inside the root (a command with a quoted -D), never a module too */
	put(b_c, "const char *b_name(void) { return NAME \"!\"; }\n");
	cr_assert_eq(next_build(p, b_c, HRP_KIND_OK, NULL), 1);
	char *h = query((const char *const[]){"history", "--json", NULL}, "[.[] | .module + \" \" + .status] | join(\",\")");
	cr_expect_str_eq(h, F("%s ok,%s ok", b_c, a_c));
	char *row = query((const char *const[]){"show", "--json", a_c, NULL}, ".command");
	cr_expect(strstr(row, "-DFNAME=patched_a") && strstr(row, "-c") && !strstr(row, "a.o "), "%s", row);
	char *st = query((const char *const[]){"status", "--json", NULL},
	                 "[.modules[].module | select(startswith(\"/\") | not)] | join(\",\")");
	cr_expect_str_eq(st, "", "b.c is built as a module too");
	/* outside both: watched all the same */
	put(c_c, "#include \"shared.h\"\nint c_value(void) { return SHARED * 3; }\n");
	cr_assert_eq(next_build(p, c_c, HRP_KIND_OK, NULL), 1);
}

Test(patchd, a_saved_header_shared_by_two_units_rebuilds_both)
{
	program();
	start();
	t_peer *p = subscribe_all();
	/* the units' first compiles learn what they read: the header is followed once the log says so */
	cr_assert(t_until_in_file(d.log, "as built: 1 header followed", 2, WAIT_MS), "the units' headers were not learnt");
	put(F("%s/src/shared.h", prog), "#define SHARED 2\n");
	int seen_a = 0, seen_c = 0;
	while (!(seen_a && seen_c)) {
		int fd;
		hrp_msg m = next(p, &fd);
		if (fd >= 0)
			close(fd);
		cr_assert_eq(m.type, HRP_BUILD, "failed: %s", m.type == HRP_FAILED ? m.u.failed.message : "");
		cr_assert_str_neq(m.u.build.module, b_c, "b.c does not read the header");
		seen_a |= strcmp(m.u.build.module, a_c) == 0;
		seen_c |= strcmp(m.u.build.module, c_c) == 0;
	}
}

Test(patchd, a_compile_error_is_a_failed_row_with_file_line_col)
{
	program();
	start();
	t_peer *p = subscribe_all();
	put(a_c, "int FNAME(void) { return 1 }\n");
	char *msg = next_failure(p, a_c);
	cr_expect(strstr(msg, "src/a.c:1:27: error"), "%s", msg);
	char *h = query((const char *const[]){"history", "--json", a_c, NULL}, ".[0].status + \" \" + .[0].message");
	cr_expect(strstr(h, "failed src/a.c:1:27: error"), "%s", h);
}

Test(patchd, a_late_subscriber_gets_the_newest_good_build_of_each_unit)
{
	program();
	start();
	t_peer *p = subscribe_all();
	put(a_c, "int FNAME(void) { return 2; }\n");
	cr_assert_eq(next_build(p, a_c, HRP_KIND_OK, NULL), 1);
	put(a_c, "int FNAME(void) { return 3; }\n");
	cr_assert_eq(next_build(p, a_c, HRP_KIND_OK, NULL), 2);
	put(c_c, "int c_value(void) { return 4; }\n");
	cr_assert_eq(next_build(p, c_c, HRP_KIND_OK, NULL), 1);
	t_peer *late = subscribe_all();
	int got_a = 0, got_c = 0;
	for (int i = 0; i < 2; i++) {
		int fd;
		hrp_msg m = next(late, &fd);
		cr_assert_eq(m.type, HRP_BUILD);
		cr_expect_geq(fd, 0);
		if (fd >= 0)
			close(fd);
		if (strcmp(m.u.build.module, a_c) == 0)
			got_a = (int)m.u.build.version;
		if (strcmp(m.u.build.module, c_c) == 0)
			got_c = (int)m.u.build.version;
	}
	cr_expect_eq(got_a, 2);
	cr_expect_eq(got_c, 1);
}

Test(patchd, a_bad_database_is_said_and_the_last_good_one_stays)
{
	program();
	start();
	t_peer *p = subscribe_all();
	put(db, "[\n {\"directory\": \"/x\", \"file\": \"a.c\",\n  \"command\": \"cc 'a\"}\n]\n");
	cr_assert(t_until_in_file(d.log, "compile_commands.json:3:14: \"command\": the ' opened at character 4 of the "
	                          "command does not close; quote it as a shell would", 1, WAIT_MS),
	          "the log does not say what is wrong where");
	char *reason = query((const char *const[]){"status", "--json", NULL}, ".watcher.reason");
	cr_expect(strstr(reason, "the units of the last good one stay"), "%s", reason);
	/* the last good database: a.c is still a unit */
	put(a_c, "int FNAME(void) { return 9; }\n");
	cr_assert_eq(next_build(p, a_c, HRP_KIND_OK, NULL), 1);
}

Test(patchd, rollback_of_a_unit_through_the_cli)
{
	program();
	start();
	t_peer *p = subscribe_all();
	put(a_c, "int FNAME(void) { return 2; }\n");
	cr_assert_eq(next_build(p, a_c, HRP_KIND_OK, NULL), 1);
	put(a_c, "int FNAME(void) { return 3; }\n");
	cr_assert_eq(next_build(p, a_c, HRP_KIND_OK, NULL), 2);
	cli((const char *const[]){"rollback", a_c, NULL});
	cr_assert_eq(next_build(p, a_c, HRP_KIND_ROLLBACK, NULL), 3);
	char *h = query((const char *const[]){"history", "--json", a_c, NULL}, ".[0].status + \" \" + (.[0].version|tostring)");
	cr_expect_str_eq(h, "rollback 3");
}

Test(patchd, the_database_named_in_hotreload_conf_with_dot_slash_is_never_written_over)
{
	/* the program's database in the root, where the modules' compile_commands.json goes by default, and a module beside */
	program();
	char *in_root = F("%s/compile_commands.json", root), *text = keep(t_read(db, NULL));
	put(in_root, text);
	put(F("%s/hotreload.conf", root), "patch = ./compile_commands.json\n");
	put(F("%s/enemy.c", root), "int enemy(void) { return 1; }\n");
	t_run r;
	const char *args[] = {"--log-level", "debug", NULL};
	cr_assert_eq(t_daemon_start(&d, root, NULL, args, &r), 0, "hotreloadd did not start (exit %d): %s", r.status, r.err);
	t_run_free(&r);
	/* the modules' file is written after a batch: a save of the module makes one */
	cr_assert(t_until_in_file(d.log, "enemy: v1 built", 1, WAIT_MS), "the module was not built");
	put(F("%s/enemy.c", root), "int enemy(void) { return 2; }\n");
	cr_assert(t_until_in_file(d.log, "enemy: v2 built", 1, WAIT_MS), "the module was not built again");
	cr_expect(t_until_in_file(d.log, "is the program's compile database (--patch)", 1, 1000),
	          "the daemon did not see that compile_commands.json is the program's");
	char *now = keep(t_read(in_root, NULL));
	cr_expect_str_eq(now, text, "the program's database was written over");
	/* and a save of it is followed */
	put(in_root, "[{\"directory\": 1}]\n");
	cr_expect(t_until_in_file(d.log, "compile_commands.json:1:16: \"directory\" is a number", 1, 15000),
	          "a save of the database was not followed");
}

Test(patchd, a_units_folder_that_is_gone_is_said_not_out_of_memory)
{
	char *gone = F("%s/gone", dir), *d_c = F("%s/src/d.c", prog), *text = NULL;
	put(d_c, "int d(void) { return 1; }\n");
	cr_assert(asprintf(&text, "[{\"directory\": \"%s\", \"file\": \"%s\", \"arguments\": [\"cc\", \"-c\", \"%s\"]}]\n",
	                   gone, d_c, d_c) > 0);
	db = F("%s/compile_commands.json", prog);
	put(db, keep(text));
	start();
	cr_expect(t_until_in_file(d.log, F("%s: cannot compile in %s, the unit's directory in the compile database: No such "
	                                   "file or directory", d_c, gone), 1, WAIT_MS), "the log does not say why");
	cr_expect(!t_until_in_file(d.log, "out of memory", 1, 1));
}

/* The database rewritten (a save the daemon follows), and the log and status then say why it is refused. */
static void refused(const char *why)
{
	put(db, keep(t_read(db, NULL)));
	cr_assert(t_until_in_file(d.log, why, 1, WAIT_MS), "the log does not say: %s", why);
	char *reason = query((const char *const[]){"status", "--json", NULL}, ".watcher.reason");
	cr_expect(strstr(reason, why) && strstr(reason, "the units of the last good one stay"), "%s", reason);
}

Test(patchd, a_database_another_user_can_write_is_refused_and_the_last_good_one_stays)
{
	/* its commands run as the daemon's user: whoever can write it, or swap it in its folder, could run theirs */
	program();
	start();
	t_peer *p = subscribe_all();
	cr_assert_eq(chmod(db, 0646), 0);
	refused(F("%s: the compile database is refused: it belongs to root (uid 0) and has mode 0646", db));
	cr_assert_eq(chmod(db, 0644), 0);
	cr_assert_eq(chown(db, 65534, 65534), 0);
	refused(F("%s: the compile database is refused: it belongs to nobody (uid 65534)", db));
	cr_assert_eq(chown(db, 0, 0), 0);
	cr_assert_eq(chmod(prog, 0777), 0);
	refused(F("%s: the compile database is refused: it is in %s, which belongs to root (uid 0) and has mode 0777", db,
	          prog));
	/* the last good database: a.c is still a unit */
	put(a_c, "int FNAME(void) { return 9; }\n");
	cr_assert_eq(next_build(p, a_c, HRP_KIND_OK, NULL), 1);
	/* a sticky folder, as /tmp: no one else can rename or remove what is ours there */
	cr_assert_eq(chmod(prog, 01777), 0);
	put(db, keep(t_read(db, NULL)));
	cr_assert(t_until_in_file(d.log, "3 translation units to patch", 2, WAIT_MS), "the database was not taken again");
}

Test(patchd, a_database_of_another_users_at_the_start_is_refused_and_no_unit_is_built)
{
	program();
	cr_assert_eq(chown(db, 65534, 65534), 0);
	start();
	char *why = F("%s: the compile database is refused: it belongs to nobody (uid 65534)", db);
	cr_assert(t_until_in_file(d.log, why, 1, WAIT_MS), "the log does not say why");
	char *reason = query((const char *const[]){"status", "--json", NULL}, ".watcher.reason");
	cr_expect(strstr(reason, why), "%s", reason);
	char *st = query((const char *const[]){"status", "--json", NULL},
	                 "[.modules[].module | select(startswith(\"/\"))] | join(\",\")");
	cr_expect_str_eq(st, "", "a unit of the refused database is followed: %s", st);
}

Test(patchd, a_subscriber_to_every_unit_hears_each_of_hundreds)
{
	/* a compiler that copies one object (the build's a.o) and names the source in its dependency file: cheap */
	enum { UNITS = 250 };
	program();
	char *cc = F("%s/fastcc", dir), *text = NULL, path[4096];
	put(cc, keep(t_fmt("#!/bin/sh\n"
	                   "for a; do case $prev in -o) o=$a;; -MF) d=$a;; esac; case $a in *.c) s=$a;; esac; prev=$a; done\n"
	                   "cp %s/a.o \"$o\" && printf '%%s: %%s\\n' \"$o\" \"$s\" > \"$d\"\n", prog)));
	cr_assert_eq(chmod(cc, 0755), 0);
	size_t cap = UNITS * 512, len = 0;
	cr_assert_not_null(text = malloc(cap));
	len += (size_t)snprintf(text, cap, "[");
	for (int i = 0; i < UNITS; i++) {
		snprintf(path, sizeof path, "%s/src/u%d.c", prog, i);
		put(path, "int u;\n");
		len += (size_t)snprintf(text + len, cap - len, "%s{\"directory\": \"%s\", \"file\": \"src/u%d.c\", \"arguments\": "
		                        "[\"%s\", \"-c\", \"src/u%d.c\"]}", i ? ",\n" : "", prog, i, cc, i);
	}
	snprintf(text + len, cap - len, "]\n");
	put(db, keep(text));
	start();
	cr_assert(t_until_in_file(d.log, "as built", UNITS, WAIT_MS), "the units' first compiles did not end");
	t_peer *p = subscribe_all();
	for (int i = 0; i < UNITS; i++) {
		snprintf(path, sizeof path, "%s/src/u%d.c", prog, i);
		put(path, "int u = 1;\n");
	}
	for (int i = 0; i < UNITS;) {
		int fd;
		hrp_msg m = next(p, &fd);
		if (fd >= 0)
			close(fd);
		cr_assert_eq(m.type, HRP_BUILD, "failed: %s", m.type == HRP_FAILED ? m.u.failed.message : "");
		i++;
	}
	/* a program that starts now catches up with every unit at once */
	t_peer *late = subscribe_all();
	char *seen = calloc(UNITS, 1), *pattern = F("%s/src/u%%d.c", prog);
	cr_assert_not_null(seen);
	for (int i = 0; i < UNITS; i++) {
		int fd, k = -1;
		hrp_msg m = next(late, &fd);
		if (fd >= 0)
			close(fd);
		cr_assert_eq(m.type, HRP_BUILD);
		cr_assert_eq(sscanf(m.u.build.module, pattern, &k), 1, "%s", m.u.build.module);
		cr_assert(k >= 0 && k < UNITS && !seen[k], "%s twice", m.u.build.module);
		seen[k] = 1;
	}
	free(seen);
}
