/* test_client.c: the first loop end to end: the real daemon, the real cc, and a real host process linked to libhotreload. */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define WAIT_MS 30000 /* a deadline, not a delay */

static char *dir;
static t_daemon d;
static t_proc hosts[2];

static void setup(void)
{
	dir = t_tmpdir();
	d.pidfd = -1;
	for (int i = 0; i < 2; i++)
		hosts[i].pid = 0, hosts[i].out = hosts[i].pidfd = -1;
}

static void teardown(void)
{
	for (int i = 0; i < 2; i++)
		if (hosts[i].pid > 0) {
			char *err = NULL;
			int rc = t_proc_end(&hosts[i], &err);
			cr_expect_eq(rc, 0, "host %d ended with %d: %s", i, rc, err);
			free(err);
		}
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

TestSuite(client, .init = setup, .fini = teardown, .timeout = 120);

static void put(const char *rel, const char *text)
{
	char *p = t_fmt("%s/%s", dir, rel);
	cr_assert_eq(t_write(p, text, strlen(text)), 0, "cannot write %s", p);
	free(p);
}

/* A module whose value() is tag, and whose hooks say so; hr_on_load returns rc. */
static void module(const char *rel, int tag, int rc)
{
	char *src = t_fmt("#include <stdio.h>\n#include <stdint.h>\n"
	                  "int value(void) { return %d; }\n"
	                  "int hr_on_load(void *ud, uint64_t prev) {\n"
	                  "\tprintf(\"load %%s %d prev=%%llu\\n\", (const char *)ud, (unsigned long long)prev);\n"
	                  "\treturn %d;\n}\n"
	                  "void hr_on_unload(void *ud) { printf(\"unload %%s %d\\n\", (const char *)ud); }\n",
	                  tag, tag, rc, tag);
	put(rel, src);
	free(src);
}

static void start_daemon(void)
{
	t_run r;
	int rc = t_daemon_start(&d, dir, NULL, NULL, &r);
	cr_assert_eq(rc, 0, "hotreloadd did not start (exit %d): %s", r.status, r.err);
	t_run_free(&r);
}

/* Start host i on modules (NULL-terminated). */
static t_proc *host(int i, const char *const *modules)
{
	const char *args[16] = { d.sock };
	size_t n = 1;
	for (size_t k = 0; modules[k] && n < 15; k++)
		args[n++] = modules[k];
	args[n] = NULL;
	cr_assert_eq(t_host_start(&hosts[i], dir, args), 0, "cannot start the host");
	return &hosts[i];
}

/* The next line of h that contains want: it must come within the deadline. */
static const char *expect(t_proc *h, const char *want)
{
	cr_assert(t_proc_expect(h, want, WAIT_MS), "the host never printed \"%s\" (last line: \"%s\")", want, h->line);
	return h->line;
}

/* The next line of h that starts with prefix must be exactly line. */
static void expect_next(t_proc *h, const char *prefix, const char *line)
{
	expect(h, prefix);
	cr_assert_str_eq(h->line, line);
}

/* A CLI query, and what jq's filter over its --json output must print. */
struct query {
	const char *cmd, *filter, *want;
	char *got; /* the last answer, for the failure message */
};

static int answers(void *arg)
{
	struct query *q = arg;
	t_run r = t_cli(dir, NULL, (const char *const[]){ "--state-dir", d.state, q->cmd, "--json", NULL });
	int st;
	free(q->got);
	q->got = r.status == 0 ? t_jq(r.out, q->filter, &st) : strdup(r.err);
	t_run_free(&r);
	return q->got && strcmp(q->got, q->want) == 0;
}

/* Wait until `hotreload CMD --json`, through jq's filter, prints want. */
static void wait_cli(const char *cmd, const char *filter, const char *want)
{
	struct query q = { cmd, filter, want, NULL };
	cr_assert(t_until(answers, &q, WAIT_MS), "%s: %s, never %s", cmd, q.got, want);
	free(q.got);
}

static void wait_history(const char *filter, const char *want)
{
	wait_cli("history", filter, want);
}

Test(client, the_first_load_happens_in_hr_update_and_an_edit_goes_live)
{
	module("a.c", 1, 0);
	start_daemon();
	t_proc *h = host(0, (const char *const[]){ "a", NULL });
	/* hr_open loaded it in the background but switched nothing. */
	expect_next(h, "open", "open a v=0 sym=NULL");
	expect_next(h, "load", "load a 1 prev=0");
	expect_next(h, "first", "first a 1 v=1 value=1");
	module("a.c", 2, 0);
	expect_next(h, "update", "update a 1 v=2 value=2 sym=NULL");
	module("a.c", 3, 0);
	expect_next(h, "update", "update a 1 v=3 value=3 sym=NULL");
}

Test(client, hooks_run_in_order_at_a_switch_and_at_the_end)
{
	module("a.c", 1, 0);
	start_daemon();
	t_proc *h = host(0, (const char *const[]){ "a", NULL });
	expect(h, "first a 1 v=1");
	module("a.c", 2, 0);
	/* The old build's unload, then the new build's load with the old version, then the switch is seen. */
	expect_next(h, "", "unload a 1");
	expect_next(h, "", "load a 2 prev=1");
	expect_next(h, "", "update a 1 v=2 value=2 sym=NULL");
	kill(h->pid, SIGTERM);
	expect_next(h, "", "unload a 2");
	expect_next(h, "", "bye");
}

Test(client, a_compile_error_keeps_the_old_build_and_a_fix_goes_live)
{
	module("a.c", 1, 0);
	start_daemon();
	t_proc *h = host(0, (const char *const[]){ "a", NULL });
	expect(h, "first a 1 v=1");
	put("a.c", "int value(void) { return 2 }\n");
	wait_history(".[0] | \"\\(.status) \\(.version) \\(.message | test(\"a.c:1:.*error\"))\"", "failed null true");
	module("a.c", 3, 0);
	/* The next switch is the fix, numbered right after the last good build: nothing went live in between. */
	expect_next(h, "update", "update a 1 v=2 value=3 sym=NULL");
}

Test(client, a_build_with_an_unresolved_symbol_is_refused_and_recorded)
{
	module("a.c", 1, 0);
	start_daemon();
	t_proc *h = host(0, (const char *const[]){ "a", NULL });
	expect(h, "first a 1 v=1");
	put("a.c", "int no_such_function(void);\nint value(void) { return no_such_function(); }\n");
	/* -ENOEXEC: it did not load; the old build is still the live one. */
	expect_next(h, "update", "update a -8 v=1 value=1 sym=NULL");
	wait_history(".[0] | \"\\(.status) \\(.version) \\(.message | test(\"no_such_function\"))\"", "refused 2 true");
	put("a.c", "int no_such_function(void);\nint value(void) { return no_such_function() + 1; }\n");
	expect_next(h, "update", "update a -8 v=1 value=1 sym=NULL");
	module("a.c", 4, 0);
	expect_next(h, "update", "update a 1 v=4 value=4 sym=NULL");
	/* v3's refusal was answered with an offer of v2, which this host had refused already: not tried again. */
	wait_history("map(select(.status == \"refused\") | .version) | join(\",\")", "3,2");
}

Test(client, a_failing_hr_on_load_is_refused_and_the_old_build_loads_again)
{
	module("a.c", 1, 0);
	start_daemon();
	t_proc *h = host(0, (const char *const[]){ "a", NULL });
	expect(h, "first a 1 v=1");
	module("a.c", 2, 7);
	expect_next(h, "", "unload a 1");
	expect_next(h, "", "load a 2 prev=1");
	/* The old build's hr_on_load again, with its own version; then -ECANCELED. */
	expect_next(h, "", "load a 1 prev=1");
	expect_next(h, "", "update a -125 v=1 value=1 sym=NULL");
	wait_history(".[0] | \"\\(.status) \\(.version) \\(.message)\"", "refused 2 hr_on_load returned 7");
	module("a.c", 3, 0);
	expect_next(h, "update", "update a 1 v=3 value=3 sym=NULL");
}

Test(client, a_build_that_does_not_load_is_passed_over_for_an_older_one)
{
	module("a.c", 1, 0);
	start_daemon();
	t_proc *h = host(0, (const char *const[]){ "a", NULL });
	expect(h, "first a 1 v=1");
	put("a.c", "int no_such_function(void);\nint value(void) { return no_such_function(); }\n");
	wait_history(".[0].status", "refused");
	/* A host that starts now hears of v2 first, refuses it, and gets v1. */
	t_proc *late = host(1, (const char *const[]){ "a", NULL });
	expect_next(late, "open", "open a v=0 sym=NULL");
	expect_next(late, "first", "first a 1 v=1 value=1");
	/* Refused once by each host, and only once: the offer of v1 is not v2 again. */
	wait_history("map(select(.status == \"refused\")) | length", "2");
}

Test(client, two_modules_in_one_host_and_a_folder_module)
{
	module("a.c", 1, 0);
	char *p = t_fmt("%s/b", dir);
	cr_assert_eq(mkdir(p, 0755), 0);
	free(p);
	put("b/main.c", "int part(void);\nint value(void) { return 100 + part(); }\n");
	put("b/part.c", "int part(void) { return 5; }\n");
	start_daemon();
	t_proc *h = host(0, (const char *const[]){ "a", "b", NULL });
	expect_next(h, "first", "first a 1 v=1 value=1");
	expect_next(h, "first", "first b 1 v=1 value=105");
	put("b/part.c", "int part(void) { return 6; }\n");
	expect_next(h, "update", "update b 1 v=2 value=106 sym=NULL");
	module("a.c", 2, 0);
	expect_next(h, "update", "update a 1 v=2 value=2 sym=NULL");
}

Test(client, one_module_opened_twice_in_one_host)
{
	module("a.c", 1, 0);
	start_daemon();
	t_proc *h = host(0, (const char *const[]){ "a", "a", NULL });
	expect_next(h, "first", "first a 1 v=1 value=1");
	expect_next(h, "first", "first a 1 v=1 value=1");
	module("a.c", 2, 0);
	expect_next(h, "update", "update a 1 v=2 value=2 sym=NULL");
	expect_next(h, "update", "update a 1 v=2 value=2 sym=NULL");
}

Test(client, two_hosts_on_one_module)
{
	module("a.c", 1, 0);
	start_daemon();
	t_proc *h1 = host(0, (const char *const[]){ "a", NULL }), *h2 = host(1, (const char *const[]){ "a", NULL });
	expect(h1, "first a 1 v=1");
	expect(h2, "first a 1 v=1");
	module("a.c", 2, 0);
	expect_next(h1, "update", "update a 1 v=2 value=2 sym=NULL");
	expect_next(h2, "update", "update a 1 v=2 value=2 sym=NULL");
}

Test(client, a_module_with_no_build_yet_opens_at_once_and_loads_when_it_appears)
{
	start_daemon();
	t_proc *h = host(0, (const char *const[]){ "later", NULL });
	expect_next(h, "open", "open later v=0 sym=NULL");
	expect_next(h, "first", "first later 0 v=0 value=-1");
	module("later.c", 4, 0);
	expect_next(h, "update", "update later 1 v=1 value=4 sym=NULL");
}

Test(client, hr_connect_finds_the_socket_going_up_and_fails_clearly_without_a_daemon)
{
	const char *none[] = { "-", "a", NULL };
	cr_assert_eq(t_host_start(&hosts[0], dir, none), 0);
	expect(&hosts[0], "connect failed: No such file or directory");
	cr_assert_eq(t_proc_end(&hosts[0], NULL), 3);
	module("a.c", 1, 0);
	start_daemon();
	char *sub = t_fmt("%s/b", dir);
	cr_assert_eq(mkdir(sub, 0755), 0);
	cr_assert_eq(t_host_start(&hosts[0], sub, none), 0, "a host in a folder under the root");
	free(sub);
	expect(&hosts[0], "first a 1 v=1");
}

Test(client, hr_update_with_nothing_new_makes_no_system_call)
{
	if (getenv("HR_HOST"))
		cr_skip_test("ThreadSanitizer's runtime handles signals itself");
	module("a.c", 1, 0);
	start_daemon();
	const char *args[] = { "--syscalls", d.sock, "a", NULL };
	cr_assert_eq(t_host_start(&hosts[0], dir, args), 0);
	/* control=1: the same counter saw the one getppid() made under the same filter. */
	expect_next(&hosts[0], "syscalls=", "syscalls=0 control=1 rc=0");
}

Test(client, the_demo_runs_and_ctrl_c_stops_the_game_and_the_daemon)
{
	char *state = t_fmt("%s/state", dir), *env_state = t_fmt("DEMO_STATE=%s", state);
	const char *env[] = { env_state, "HOTRELOAD_SOCKET=", NULL };
	const char *argv[] = { "sh", HR_SOURCE_DIR "/scripts/demo.sh", HR_BUILD_DIR, NULL };
	t_proc *p = &hosts[0];
	cr_assert_eq(t_proc_start(p, dir, env, argv), 0);
	/* The first line shows both modules live: the single file and the folder. */
	const char *line = expect(p, "[   0s]");
	cr_assert(strstr(line, "greeting v1: \"Hello") && strstr(line, "physics v1: x = "), "%s", line);
	char *lock = t_fmt("%s/hotreloadd.lock", state), *pid = t_read(lock, NULL);
	cr_assert(pid, "no daemon lock in %s", state);
	int daemon = (int)syscall(SYS_pidfd_open, atoi(pid), 0);
	cr_assert_geq(daemon, 0);
	kill(-p->pid, SIGINT);
	cr_assert(t_wait_gone(p->pidfd, WAIT_MS), "Ctrl-C did not stop the demo");
	cr_assert(t_wait_gone(daemon, WAIT_MS), "Ctrl-C did not stop the daemon");
	int st;
	cr_assert_eq(waitpid(p->pid, &st, 0), p->pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "the demo's status: %#x", st);
	p->pid = 0;
	t_proc_end(p, NULL);
	close(daemon);
	free(lock);
	free(pid);
	free(state);
	free(env_state);
}

Test(client, hr_open_waits_for_a_first_build_under_way)
{
	char *env[3];
	cr_assert_eq(t_slow_cc(dir, T_WAIT_THEN_CC, env), 0);
	module("a.c", 1, 0);
	t_run r;
	cr_assert_eq(t_daemon_start(&d, dir, (const char *const[]){ env[0], env[1], env[2], NULL }, NULL, &r), 0,
	             "hotreloadd did not start: %s", r.err);
	t_run_free(&r);
	int pid, child;
	cr_assert_eq(t_slow_started(dir, &pid, &child), 0, "the first build never started");
	t_proc *h = host(0, (const char *const[]){ "a", NULL });
	/* Let the compiler go once the host is connected, and so waiting in hr_open. */
	wait_cli("status", ".clients", "1");
	cr_assert_eq(t_slow_go(dir), 0);
	expect_next(h, "open", "open a v=0 sym=NULL");
	expect_next(h, "first", "first a 1 v=1 value=1");
	for (int i = 0; i < 3; i++)
		free(env[i]);
}

/* How many builds of module a the process maps, and whether version v is one of them. */
static int mapped(int pid, int v, int *has)
{
	char *path = t_fmt("/proc/%d/maps", pid), *maps = t_read(path, NULL), *want = t_fmt("/objects/a.%d.", v);
	cr_assert(maps);
	int n = 0;
	char seen[64][160];
	*has = strstr(maps, want) != NULL;
	for (char *line = strtok(maps, "\n"); line; line = strtok(NULL, "\n")) {
		char *so = strstr(line, "/objects/a.");
		if (!so)
			continue;
		int dup = 0;
		for (int i = 0; i < n; i++)
			dup |= strcmp(seen[i], so) == 0;
		if (!dup && n < 64)
			snprintf(seen[n++], sizeof seen[0], "%s", so);
	}
	free(path);
	free(maps);
	free(want);
	return n;
}

/*
 * Wait until the daemon logged that version v of a is live in the host. The
 * library's thread unmaps the builds a switch retired before it sends that
 * report, so from then on the host's mappings are settled.
 */
static int logged(void *want)
{
	char *log = t_read(d.log, NULL);
	int found = log && strstr(log, want);
	free(log);
	return found;
}

static void wait_reported(int v)
{
	char *want = t_fmt("a: v%d live in client", v);
	cr_assert(t_until(logged, want, WAIT_MS), "the daemon never logged \"%s\"", want);
	free(want);
}

Test(client, old_builds_stay_mapped_for_eight_switches_then_go)
{
	module("a.c", 1, 0);
	start_daemon();
	t_proc *h = host(0, (const char *const[]){ "a", NULL });
	expect(h, "first a 1 v=1");
	for (int v = 2; v <= 9; v++) {
		module("a.c", v, 0);
		char *line = t_fmt("update a 1 v=%d value=%d sym=NULL", v, v);
		expect_next(h, "update", line);
		free(line);
	}
	/* Eight switches after v1 was live, its pointers are still good: nine builds are mapped. */
	wait_reported(9);
	int has;
	cr_assert_eq(mapped(h->pid, 1, &has), 9);
	cr_assert(has, "v1 was unmapped early");
	module("a.c", 10, 0);
	expect_next(h, "update", "update a 1 v=10 value=10 sym=NULL");
	/* The ninth: v1 goes, v2 stays. */
	wait_reported(10);
	cr_assert_eq(mapped(h->pid, 1, &has), 9);
	cr_assert(!has, "v1 is still mapped");
	mapped(h->pid, 2, &has);
	cr_assert(has, "v2 was unmapped early");
}
