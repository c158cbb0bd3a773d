/* test_statedir_trust.c: the real daemon, as root, refuses a state dir or socket folder another user planted, and writes objects only into its own objects/. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define WAIT_MS 30000 /* a deadline, not a delay */

static char *top; /* 0711, root's: nobody can pass through it, not write in it */
static char *nb;  /* top/nb: nobody's own folder */
static t_daemon d;
static t_proc host;

static void setup(void)
{
	top = t_tmpdir();
	d.pidfd = -1;
	host.pid = 0;
	host.out = host.pidfd = -1;
	cr_assert_eq(chmod(top, 0711), 0);
	nb = t_fmt("%s/nb", top);
	cr_assert_eq(mkdir(nb, 0755), 0);
	cr_assert_eq(chown(nb, 65534, 65534), 0);
}

static void teardown(void)
{
	if (host.pid > 0)
		t_proc_end(&host, NULL);
	if (d.pidfd >= 0)
		t_daemon_stop(&d);
	t_rmtree(top);
	free(top);
	free(nb);
}

TestSuite(statedir, .init = setup, .fini = teardown, .timeout = 120);

static void need_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root, to be planted upon by another user");
}

/* Run a shell script as nobody; it must succeed. */
static void as_nobody(const char *script)
{
	t_run r = t_exec(top, NULL, (const char *const[]){ "setpriv", "--reuid=nobody", "--regid=nogroup",
	                                                   "--clear-groups", "sh", "-ec", script, NULL });
	cr_assert_eq(r.status, 0, "as nobody: %s: %s", script, r.err);
	t_run_free(&r);
}

static void put(const char *path, const char *text)
{
	cr_assert_eq(t_write(path, text, strlen(text)), 0, "cannot write %s", path);
}

/* Root's files that a planted link points at: they must come through untouched. */
static char *victim(const char *name)
{
	char *p = t_fmt("%s/%s", top, name);
	put(p, "precious\n");
	cr_assert_eq(chmod(p, 0644), 0);
	return p;
}

static void untouched(const char *path)
{
	char *text = t_read(path, NULL);
	cr_assert_str_eq(text, "precious\n", "%s was written through a planted link", path);
	free(text);
}

/* Start the daemon on root with args; it must refuse, and say why on stderr, naming each of names. */
static void refused(const char *root, const char *const *args, const char *const *names)
{
	t_run r;
	int rc = t_daemon_start(&d, root, NULL, args, &r);
	cr_assert_neq(rc, 0, "the daemon started on a planted folder: %s", r.err);
	cr_assert_neq(r.status, 0);
	t_daemon_stop(&d); /* frees what the start kept: no daemon ran */
	for (size_t i = 0; names[i]; i++)
		cr_assert(strstr(r.err, names[i]), "the message does not say \"%s\": %s", names[i], r.err);
	t_run_free(&r);
}

static char *make_root(void)
{
	char *root = t_fmt("%s/root", top);
	cr_assert_eq(mkdir(root, 0755), 0);
	char *a = t_fmt("%s/a.c", root);
	put(a, "int value(void) { return 1; }\n");
	free(a);
	return root;
}

Test(statedir, a_state_dir_given_that_another_user_made_is_refused)
{
	need_root();
	char *lock = victim("lock"), *log = victim("log"), *root = make_root(), *state = t_fmt("%s/state", nb);
	char *plant = t_fmt("mkdir -m 0777 %s && chmod 0777 %s && ln -s %s %s/hotreloadd.lock && ln -s %s %s/hotreloadd.log",
	                    state, state, lock, state, log, state);
	as_nobody(plant);
	refused(root, (const char *const[]){ "--state-dir", state, NULL },
	        (const char *const[]){ state, "nobody", "0777", "--state-dir", NULL });
	untouched(lock);
	untouched(log);
	char *db = t_fmt("%s/history.db", state);
	cr_assert_neq(access(db, F_OK), 0, "a history was made in nobody's folder");
	free(db);
	free(plant);
	free(state);
	free(root);
	free(lock);
	free(log);
}

Test(statedir, a_dot_hotreload_planted_in_a_root_of_another_user_is_refused)
{
	need_root();
	char *lock = victim("lock"), *log = victim("log"), *root = t_fmt("%s/root", nb);
	char *plant = t_fmt("mkdir %s && echo 'int value(void) { return 1; }' > %s/a.c && mkdir -m 0777 %s/.hotreload && "
	                    "chmod 0777 %s/.hotreload && ln -s %s %s/.hotreload/hotreloadd.lock && "
	                    "ln -s %s %s/.hotreload/hotreloadd.log",
	                    root, root, root, root, lock, root, log, root);
	as_nobody(plant);
	char *state = t_fmt("%s/.hotreload", root);
	refused(root, NULL, (const char *const[]){ state, "nobody", NULL });
	untouched(lock);
	untouched(log);
	free(state);
	free(plant);
	free(root);
	free(lock);
	free(log);
}

Test(statedir, a_dot_hotreload_link_of_another_user_is_not_followed_even_to_a_folder_of_ours)
{
	need_root();
	char *ours = t_fmt("%s/ours", top), *root = t_fmt("%s/root", nb);
	cr_assert_eq(mkdir(ours, 0700), 0);
	char *plant = t_fmt("mkdir %s && echo 'int value(void) { return 1; }' > %s/a.c && ln -s %s %s/.hotreload", root, root,
	                    ours, root);
	as_nobody(plant);
	char *link = t_fmt("%s/.hotreload", root), *db = t_fmt("%s/history.db", ours);
	refused(root, NULL, (const char *const[]){ link, "uid 65534", NULL });
	cr_assert_neq(access(db, F_OK), 0, "the daemon kept its history where nobody's link chose");
	free(db);
	free(link);
	free(plant);
	free(root);
	free(ours);
}

Test(statedir, a_lock_or_log_planted_as_a_link_in_a_state_dir_of_our_own_is_never_followed)
{
	need_root();
	char *root = make_root();
	const char *names[] = { "hotreloadd.lock", "hotreloadd.log" };
	for (int i = 0; i < 2; i++) {
		char *target = victim(names[i]), *state = t_fmt("%s/state%d", top, i), *link = t_fmt("%s/%s", state, names[i]);
		cr_assert_eq(mkdir(state, 0700), 0);
		cr_assert_eq(symlink(target, link), 0);
		refused(root, (const char *const[]){ "--state-dir", state, NULL }, (const char *const[]){ link, NULL });
		untouched(target);
		free(target);
		free(state);
		free(link);
	}
	free(root);
}

Test(statedir, a_history_or_its_log_planted_as_a_link_is_never_followed)
{
	char *root = make_root();
	const char *names[] = { "history.db", "history.db-wal", "history.db-shm" };
	for (int i = 0; i < 3; i++) {
		char *target = victim(names[i]), *state = t_fmt("%s/state%d", top, i), *link = t_fmt("%s/%s", state, names[i]);
		cr_assert_eq(mkdir(state, 0700), 0);
		cr_assert_eq(symlink(target, link), 0);
		refused(root, (const char *const[]){ "--state-dir", state, NULL },
		        (const char *const[]){ link, "symbolic link", NULL });
		untouched(target);
		free(target);
		free(state);
		free(link);
	}
	free(root);
}

Test(statedir, a_socket_folder_other_users_can_write_to_is_refused)
{
	need_root();
	char *root = make_root(), *open_dir = t_fmt("%s/open", top), *sock = t_fmt("%s/s.sock", open_dir);
	cr_assert_eq(mkdir(open_dir, 0777), 0);
	cr_assert_eq(chmod(open_dir, 0777), 0);
	refused(root, (const char *const[]){ "--socket", sock, NULL }, (const char *const[]){ open_dir, "0777", NULL });
	cr_assert_neq(access(sock, F_OK), 0, "the socket was made there");
	free(sock);
	free(open_dir);
	free(root);
}

/* The file at path holds text (the condition of t_until). */
struct holds {
	const char *path, *text;
};

static int file_holds(void *arg)
{
	struct holds *h = arg;
	char *got = t_read(h->path, NULL);
	int ok = got && strstr(got, h->text);
	free(got);
	return ok;
}

Test(statedir, compile_commands_json_is_never_written_through_a_planted_link)
{
	char *root = make_root(), *target = victim("target"), *path = t_fmt("%s/compile_commands.json", root);
	t_run r;
	cr_assert_eq(t_daemon_start(&d, root, NULL, NULL, &r), 0, "%s", r.err);
	t_run_free(&r);
	cr_assert(t_until(file_holds, &(struct holds){ path, "a.c" }, WAIT_MS), "no compile_commands.json");
	/* Whoever can write the root can guess the name of the file it is written to first. */
	char *tmp = t_fmt("%s.%d.tmp", path, d.pid), *b = t_fmt("%s/b.c", root);
	cr_assert_eq(symlink(target, tmp), 0);
	put(b, "int value(void) { return 2; }\n");
	cr_assert(t_until(file_holds, &(struct holds){ path, "b.c" }, WAIT_MS), "compile_commands.json has no b.c");
	untouched(target);
	struct stat st;
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISREG(st.st_mode), "compile_commands.json is a link now");
	free(b);
	free(tmp);
	free(path);
	free(target);
	free(root);
}

/* Run SQL on a history, read-write. */
static void sql(const char *db, const char *q)
{
	sqlite3 *h;
	char *err = NULL;
	cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, q, NULL, NULL, &err), SQLITE_OK, "%s: %s", q, err);
	sqlite3_close(h);
}

static void start(const char *root)
{
	t_run r;
	int rc = t_daemon_start(&d, root, NULL, NULL, &r);
	cr_assert_eq(rc, 0, "hotreloadd did not start (exit %d): %s", r.status, r.err);
	t_run_free(&r);
}

/* The history of root's state dir, as `hotreload history --json | jq filter`, is want within the deadline. */
struct hist {
	const char *state, *filter, *want;
};

static int history_is(void *arg)
{
	struct hist *h = arg;
	t_run r = t_cli(top, NULL, (const char *const[]){ "--state-dir", h->state, "history", "--json", NULL });
	int st;
	char *got = r.status == 0 ? t_jq(r.out, h->filter, &st) : NULL;
	int ok = got && strcmp(got, h->want) == 0;
	free(got);
	t_run_free(&r);
	return ok;
}

static void wait_history(const char *state, const char *filter, const char *want)
{
	struct hist h = { state, filter, want };
	cr_assert(t_until(history_is, &h, WAIT_MS), "the history of %s never had %s = %s", state, filter, want);
}

/* Remove every file in dir. */
static void empty(const char *dir)
{
	char *cmd = t_fmt("rm -f %s/*", dir);
	t_run r = t_exec(NULL, NULL, (const char *const[]){ "sh", "-c", cmd, NULL });
	t_run_free(&r);
	free(cmd);
}

Test(statedir, a_history_row_naming_a_path_outside_objects_is_never_written)
{
	char *root = make_root(), *state = t_fmt("%s/.hotreload", root), *db = t_fmt("%s/history.db", state);
	char *objects = t_fmt("%s/objects", state), *outside = t_fmt("%s/outside.so", top);
	start(root);
	wait_history(state, ".[0] | \"\\(.status) \\(.version)\"", "ok 1");
	cr_assert_eq(t_daemon_stop(&d), 0);
	/* A history that says v1's object is a file elsewhere; the file itself gone, so that a start would restore it. */
	char *q = t_fmt("UPDATE builds SET artifact = '%s' WHERE module = 'a'", outside);
	sql(db, q);
	empty(objects);
	start(root);
	cr_assert(t_until_in_file(d.log, "not a file of its own objects/", 1, WAIT_MS), "no word of the row: %s",
	          t_read(d.log, NULL));
	wait_history(state, ".[0] | \"\\(.status) \\(.version)\"", "ok 2"); /* built again instead */
	cr_assert_neq(access(outside, F_OK), 0, "%s was written from the history", outside);
	free(q);
	free(outside);
	free(objects);
	free(db);
	free(state);
	free(root);
}

/* The build of a that the host maps: it must be in objects, and only there. */
static void maps_only_from(int pid, const char *objects, const char *not)
{
	char *path = t_fmt("/proc/%d/maps", pid), *maps = t_read(path, NULL);
	cr_assert(maps);
	char *mine = t_fmt("%s/a.1.", objects);
	cr_assert(strstr(maps, mine), "the host does not map %s*: %s", mine, maps);
	cr_assert(!strstr(maps, not), "the host maps a file of %s", not);
	free(mine);
	free(maps);
	free(path);
}

Test(statedir, a_copied_project_never_serves_nor_writes_the_originals_objects)
{
	char *root = make_root(), *state = t_fmt("%s/.hotreload", root), *objects = t_fmt("%s/objects", state);
	start(root);
	wait_history(state, ".[0] | \"\\(.status) \\(.version)\"", "ok 1");
	cr_assert_eq(t_daemon_stop(&d), 0);
	char *copy = t_fmt("%s/copy", top), *cstate = t_fmt("%s/.hotreload", copy), *cobjects = t_fmt("%s/objects", cstate);
	t_run r = t_exec(NULL, NULL, (const char *const[]){ "cp", "-a", root, copy, NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	/* The original's object gone: a copy that followed its history's paths would write it back there. */
	empty(objects);
	start(copy);
	cr_assert_eq(t_host_start(&host, copy, (const char *const[]){ d.sock, "a", NULL }), 0);
	cr_assert(t_proc_expect(&host, "first a 1 v=1 value=1", WAIT_MS), "the host got no v1: %s", host.line);
	maps_only_from(host.pid, cobjects, objects);
	empty(cobjects);
	/* and with the copy's own object gone too: restored into the copy's objects/ */
	t_proc_end(&host, NULL);
	host.pid = 0;
	cr_assert_eq(t_daemon_stop(&d), 0);
	start(copy);
	cr_assert(t_until_in_file(d.log, "a: the object of v1 was gone; restored from the history", 1, WAIT_MS),
	          "%s", t_read(d.log, NULL));
	cr_assert_eq(t_host_start(&host, copy, (const char *const[]){ d.sock, "a", NULL }), 0);
	cr_assert(t_proc_expect(&host, "first a 1 v=1 value=1", WAIT_MS), "the host got no v1: %s", host.line);
	maps_only_from(host.pid, cobjects, objects);
	char *cmd = t_fmt("ls -A %s", objects);
	r = t_exec(NULL, NULL, (const char *const[]){ "sh", "-c", cmd, NULL });
	cr_assert_str_eq(r.out, "", "the copy wrote into the original's objects/");
	t_run_free(&r);
	free(cmd);
	free(cobjects);
	free(cstate);
	free(copy);
	free(objects);
	free(state);
	free(root);
}
