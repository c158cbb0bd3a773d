/* test_incremental.c: a folder module compiles only what changed: its sources' objects kept in STATE/cache, bounded by gc. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"

TestSuite(incremental, .init = e2e_setup, .fini = e2e_teardown, .timeout = 240);

static char *runs; /* every compiler run, one line each, as the wrapper cc logs them */

static const char *const srcs[] = {"m/a.c", "m/b.c", "m/c.c"};
static int before[4]; /* compiles of each source, then in all, when the test began */

static int count(int i)
{
	return t_file_count(runs, i < 3 ? srcs[i] : " -c ");
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 100 ms past *arg: the files written then are older than any compile's start by more than a clock tick. */
static int passed(void *arg)
{
	return now_ms() >= *(int64_t *)arg + 100;
}

/* A folder module m of three sources, a.c and b.c reading m/h.h, c.c reading nothing; built by a cc that logs its runs. */
static t_proc *start(void)
{
	char *tools = t_fmt("%s/.t", e2e_dir), *cc = t_fmt("%s/cc", tools);
	runs = t_fmt("%s/runs", tools);
	cr_assert_eq(mkdir(tools, 0700), 0);
	const char *script = "#!/bin/sh\necho \"$*\" >> \"$HR_T_LOG\"\nexec cc \"$@\"\n";
	cr_assert_eq(t_write(cc, script, strlen(script)), 0);
	cr_assert_eq(chmod(cc, 0755), 0);
	char *m = t_fmt("%s/m", e2e_dir);
	cr_assert_eq(mkdir(m, 0755), 0);
	e2e_put("m/h.h", "#define H 1\n");
	e2e_put("m/a.c", "#include \"h.h\"\nint b(void);\nint c(void);\nint value(void) { return H * 100 + b() + c(); }\n");
	e2e_put("m/b.c", "#include \"h.h\"\nint b(void) { return H * 10; }\n");
	e2e_put("m/c.c", "int c(void) { return 3; }\n");
	/* A header written a tick before a compile may have been read half-written: it would be built twice, and not kept. */
	int64_t written = now_ms();
	cr_assert(t_until(passed, &written, E2E_WAIT_MS));
	char *env_cc = t_fmt("CC=%s", cc), *env_log = t_fmt("HR_T_LOG=%s", runs);
	e2e_start_daemon((const char *const[]){env_cc, env_log, NULL});
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"m", NULL});
	e2e_expect(h, "first m 1 v=1 value=113");
	for (int i = 0; i < 4; i++)
		before[i] = count(i);
	cr_assert_eq(before[3], 3, "every source compiles at first");
	free(tools);
	free(cc);
	free(m);
	free(env_cc);
	free(env_log);
	return h;
}

/* Since the test began, each source compiled this many times more (a, b, c). */
static void compiled(int a, int b, int c)
{
	char *log = t_read(runs, NULL);
	int want[4] = {a, b, c, a + b + c};
	for (int i = 0; i < 4; i++)
		cr_assert_eq(count(i) - before[i], want[i], "%s: %d compiles more, not %d:\n%s", i < 3 ? srcs[i] : "in all",
		             count(i) - before[i], want[i], log);
	free(log);
}

static int objects_cached(void)
{
	char *path = t_fmt("%s/cache", e2e_d.state);
	DIR *d = opendir(path);
	cr_assert(d, "no %s", path);
	int n = 0;
	struct dirent *ent;
	while ((ent = readdir(d))) {
		size_t len = strlen(ent->d_name);
		n += len > 2 && strcmp(ent->d_name + len - 2, ".o") == 0;
	}
	closedir(d);
	free(path);
	return n;
}

Test(incremental, only_the_changed_source_of_a_folder_module_compiles)
{
	t_proc *h = start();
	e2e_put("m/c.c", "int c(void) { return 4; }\n");
	e2e_expect(h, "update m 1 v=2 value=114");
	compiled(0, 0, 1);
	/* hotreload build: what no key sees may have changed, so every source compiles */
	const char *args[] = {"--state-dir", e2e_d.state, "--socket", e2e_d.sock, "build", "m", NULL};
	t_run r = t_cli(NULL, NULL, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	e2e_expect(h, "update m 1 v=3 value=114");
	compiled(1, 1, 2);
}

Test(incremental, a_saved_header_rebuilds_only_the_sources_that_read_it)
{
	t_proc *h = start();
	e2e_put("m/h.h", "#define H 2\n");
	e2e_expect(h, "update m 1 v=2 value=223");
	compiled(1, 1, 0);
	/* and back: the objects of the first content are still there, nothing compiles (a reuse of v1, in fact) */
	e2e_put("m/h.h", "#define H 1\n");
	e2e_expect(h, "update m 1 v=3 value=113");
	compiled(1, 1, 0);
}

Test(incremental, gc_keeps_only_the_objects_of_the_sources_as_they_are)
{
	t_proc *h = start();
	for (int v = 4; v <= 7; v++) {
		char *src = t_fmt("int c(void) { return %d; }\n", v), *want = t_fmt("update m 1 v=%d value=%d", v - 2, 110 + v);
		e2e_put("m/c.c", src);
		e2e_expect(h, want);
		free(src);
		free(want);
	}
	cr_assert_eq(objects_cached(), 7, "a.c, b.c, and c.c's five contents");
	const char *args[] = {"--state-dir", e2e_d.state, "--socket", e2e_d.sock, "gc", NULL};
	t_run r = t_cli(NULL, NULL, args);
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	cr_assert_eq(objects_cached(), 3, "one object per source, as it is now");
	cr_assert(t_until_in_file(e2e_d.log, "gc: 8 files of compiled sources removed from cache/", 1, E2E_WAIT_MS),
	          "c.c's four older objects and their dependency files");
	/* what gc kept is what the next save links */
	e2e_put("m/b.c", "#include \"h.h\"\nint b(void) { return H * 20; }\n");
	e2e_expect(h, "update m 1 v=6 value=127");
	compiled(0, 1, 4);
}
