/* test_adopt.c: adding hotreload to an existing game (issue 22): finding the daemon, its include folder, headers beside the host, globals that restart, stop, the state dir in git. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define WAIT_MS 30000 /* a deadline, not a delay */

static char *dir;
static t_daemon d;

static void setup(void)
{
	dir = t_tmpdir();
	d.pidfd = -1;
}

static void teardown(void)
{
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
}

TestSuite(adopt, .init = setup, .fini = teardown, .timeout = 120);

static void put(const char *rel, const char *text)
{
	char *p = t_fmt("%s/%s", dir, rel);
	cr_assert_eq(t_write(p, text, strlen(text)), 0, "cannot write %s", p);
	free(p);
}

static void mkd(const char *rel)
{
	char *p = t_fmt("%s/%s", dir, rel);
	cr_assert_eq(mkdir(p, 0755), 0, "cannot create %s", p);
	free(p);
}

/* Start the daemon on root (under dir) with args. */
static void start_on(const char *root, const char *const *args)
{
	t_run r;
	int rc = t_daemon_start(&d, root, NULL, args, &r);
	cr_assert_eq(rc, 0, "hotreloadd did not start (exit %d): %s", r.status, r.err);
	t_run_free(&r);
}

/* Run argv in dir/cwd; it must succeed; its stdout. */
static char *run_ok(const char *cwd, const char *const *argv)
{
	char *where = t_fmt("%s/%s", dir, cwd);
	t_run r = t_exec(where, NULL, argv);
	cr_assert_eq(r.status, 0, "%s: exit %d: %s", argv[0], r.status, r.err);
	free(r.err);
	free(where);
	return r.out;
}

Test(adopt, the_state_dir_the_daemon_makes_is_ignored_by_git)
{
	mkd("game");
	mkd("game/modules");
	put("game/modules/colors.c", "int f(void) { return 1; }\n");
	free(run_ok("game", (const char *const[]){"git", "init", "-q", NULL}));
	char *root = t_fmt("%s/game/modules", dir);
	start_on(root, NULL);
	char *gi = t_fmt("%s/.gitignore", d.state), *text = t_read(gi, NULL);
	cr_assert(text && strstr(text, "\n*\n"), "the state dir's .gitignore holds *: %s", text ? text : "(none)");
	char *st = run_ok("game", (const char *const[]){"git", "status", "--porcelain", "--untracked-files=all", NULL});
	cr_assert(strstr(st, "?? modules/colors.c\n") && !strstr(st, ".hotreload"), "git sees the module, not modules/.hotreload/: %s", st);
	free(st);
	free(text);
	free(gi);
	free(root);
}

Test(adopt, a_state_dir_that_was_there_gets_no_gitignore)
{
	mkd("modules");
	mkd("modules/.hotreload");
	chmod(t_fmt("%s/modules/.hotreload", dir), 0700);
	char *root = t_fmt("%s/modules", dir);
	start_on(root, NULL);
	char *gi = t_fmt("%s/.gitignore", d.state);
	struct stat st;
	cr_assert(lstat(gi, &st) < 0 && errno == ENOENT, "a folder the user made is left as it is");
	free(gi);
	free(root);
}
