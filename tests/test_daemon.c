/* test_daemon.c: the real hotreloadd, the real cc, on a temp root: scan, edit, fail, fix, bursts, peers, stopping. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../daemon/build.h"
#include "util.h"

#define WAIT_MS 30000 /* a deadline, not a delay: every wait ends as soon as its condition holds */

static char *dir;
static t_daemon d;
static t_peer peer; /* the first connection: status and announcements of its own */
/* One connection per subscribed module, so that waiting for one module's
 * announcement never passes over another's. */
static struct sub {
	const char *module;
	t_peer p;
} subs[8];
static size_t nsubs;

static void setup(void)
{
	dir = t_tmpdir();
	peer.fd = -1;
	d.pidfd = -1;
	nsubs = 0;
}

static void teardown(void)
{
	for (size_t i = 0; i < nsubs; i++)
		t_peer_close(&subs[i].p);
	t_peer_close(&peer);
	if (d.pidfd >= 0) {
		char *log = strdup(d.log);
		t_daemon_stop(&d);
		/* Under SAN=1 the daemon is instrumented too: what it reports lands in its log. */
		char *text = t_read(log, NULL);
		cr_expect(!text || (!strstr(text, "Sanitizer") && !strstr(text, "runtime error")), "the daemon's log: %s", text);
		free(text);
		free(log);
	}
	t_rmtree(dir);
	free(dir);
}

TestSuite(daemon, .init = setup, .fini = teardown, .timeout = 120);

/* Write a source file under the root, as an editor writing in place would. */
static void put(const char *rel, const char *text)
{
	char *p = t_fmt("%s/%s", dir, rel);
	cr_assert_eq(t_write(p, text, strlen(text)), 0, "cannot write %s", p);
	free(p);
}

static const char *daemon_exe(void)
{
	return getenv("HR_DAEMON") ? getenv("HR_DAEMON") : HR_BUILD_DIR "/hotreloadd";
}

static void mkd(const char *rel)
{
	char *p = t_fmt("%s/%s", dir, rel);
	cr_assert_eq(mkdir(p, 0755), 0, "cannot create %s", p);
	free(p);
}

static void start_under(const char *const *wrap, const char *const *env, const char *const *args)
{
	t_run r;
	int rc = t_daemon_start_under(&d, wrap, dir, env, args, &r);
	cr_assert_eq(rc, 0, "hotreloadd did not start (exit %d): %s", r.status, r.err);
	cr_assert(!strstr(r.err, "Sanitizer") && !strstr(r.err, "runtime error"), "%s", r.err);
	t_run_free(&r);
	cr_assert_eq(t_peer_open(&peer, d.sock), 0, "cannot talk to the daemon");
}

static void start(const char *const *env, const char *const *args)
{
	start_under(NULL, env, args);
}

static void subscribe(const char *module)
{
	cr_assert_lt(nsubs, sizeof subs / sizeof *subs);
	struct sub *s = &subs[nsubs++];
	s->module = module;
	cr_assert_eq(t_peer_open(&s->p, d.sock), 0, "cannot talk to the daemon");
	hrp_msg m = { .type = HRP_SUBSCRIBE, .u.sub.module = module };
	cr_assert_eq(t_peer_send(&s->p, &m), 0);
}

static t_peer *peer_of(const char *module)
{
	for (size_t i = 0; i < nsubs; i++)
		if (strcmp(subs[i].module, module) == 0)
			return &subs[i].p;
	cr_assert_fail("not subscribed to %s", module);
	return NULL;
}

/* The next BUILD of module; its version and the value of "int f(void)" in it. */
static uint64_t next_build(const char *module, int *value)
{
	hrp_msg m;
	int rc = t_peer_next(peer_of(module), 1u << HRP_BUILD | 1u << HRP_FAILED, module, WAIT_MS, &m);
	cr_assert_eq(rc, 0, "no announcement for %s: %s", module, strerror(-rc));
	cr_assert_eq(m.type, HRP_BUILD, "%s failed: %s", module, m.type == HRP_FAILED ? m.u.failed.message : "");
	cr_assert_eq(m.u.build.kind, HRP_KIND_OK);
	if (value)
		*value = t_call(m.u.build.path, "f");
	return m.u.build.version;
}

/* The next FAILED of module; its message, copied. */
static char *next_failure(const char *module)
{
	hrp_msg m;
	int rc = t_peer_next(peer_of(module), 1u << HRP_BUILD | 1u << HRP_FAILED, module, WAIT_MS, &m);
	cr_assert_eq(rc, 0, "no announcement for %s: %s", module, strerror(-rc));
	cr_assert_eq(m.type, HRP_FAILED, "%s built v%llu where it should fail", module, (unsigned long long)m.u.build.version);
	return strdup(m.u.failed.message);
}

static char *cli_json(const char *cmd, const char *arg)
{
	const char *args[] = { "--state-dir", d.state, "--socket", d.sock, cmd, "--json", arg, NULL };
	t_run r = t_cli(dir, NULL, args);
	cr_assert_eq(r.status, 0, "hotreload %s: %s", cmd, r.err);
	free(r.err);
	return r.out;
}

/* jq over `hotreload CMD --json [ARG]`. */
static char *query(const char *cmd, const char *arg, const char *filter)
{
	char *json = cli_json(cmd, arg);
	int st;
	char *out = t_jq(json, filter, &st);
	free(json);
	return out;
}

Test(daemon, first_scan_builds_every_module)
{
	put("enemy.c", "int f(void) { return 1; }\n");
	mkd("ai");
	put("ai/think.c", "int g(void);\nint f(void) { return 10 + g(); }\n");
	put("ai/plan.c", "int g(void) { return 5; }\n");
	put("notes.txt", "not a module\n");
	start(NULL, NULL);
	subscribe("enemy");
	subscribe("ai");
	int v;
	/* Each comes once: at once if built already, else when it lands. */
	cr_assert_eq(next_build("enemy", &v), 1);
	cr_assert_eq(v, 1);
	cr_assert_eq(next_build("ai", &v), 1);
	cr_assert_eq(v, 15, "the folder module is built from both of its files");
	char *h = query("history", NULL, "map(\"\\(.module) \\(.version) \\(.status)\") | sort | join(\",\")");
	cr_assert_str_eq(h, "ai 1 ok,enemy 1 ok");
	free(h);
	char *st = query("status", NULL, ".modules | map(.module) | join(\",\")");
	cr_assert_str_eq(st, "ai,enemy", "status lists the modules, not notes.txt");
	free(st);
}

Test(daemon, edit_fail_fix)
{
	put("enemy.c", "int f(void) { return 1; }\n");
	start(NULL, NULL);
	subscribe("enemy");
	int v;
	cr_assert_eq(next_build("enemy", &v), 1);

	put("enemy.c", "int f(void) { return 2; }\n");
	cr_assert_eq(next_build("enemy", &v), 2);
	cr_assert_eq(v, 2);

	put("enemy.c", "int f(void) { return 3 }\n");
	char *msg = next_failure("enemy");
	cr_assert(strstr(msg, "enemy.c:1:") && strstr(msg, "error"), "the first compiler error, with file:line: %s", msg);
	free(msg);
	char *h = query("history", "enemy", ".[0] | \"\\(.status) \\(.version) \\(.message)\"");
	cr_assert(strncmp(h, "failed null enemy.c:1:", 22) == 0, "%s", h);
	free(h);
	char *st = query("status", NULL, ".modules[] | select(.module == \"enemy\") | \"\\(.version) \\(.status)\"");
	cr_assert_str_eq(st, "2 failed", "v2 stays the newest good build");
	free(st);
	/* A new subscriber is handed the newest good build, not the failure. */
	t_peer late;
	cr_assert_eq(t_peer_open(&late, d.sock), 0);
	hrp_msg m = { .type = HRP_SUBSCRIBE, .u.sub.module = "enemy" };
	cr_assert_eq(t_peer_send(&late, &m), 0);
	cr_assert_eq(t_peer_next(&late, 1u << HRP_BUILD, "enemy", WAIT_MS, &m), 0);
	cr_assert_eq(m.u.build.version, 2);
	t_peer_close(&late);

	put("enemy.c", "int f(void) { return 4; }\n");
	cr_assert_eq(next_build("enemy", &v), 3);
	cr_assert_eq(v, 4);
	char *rows = query("history", "enemy", "map(.status) | join(\",\")");
	cr_assert_str_eq(rows, "ok,failed,ok,ok");
	free(rows);
}

Test(daemon, burst_of_saves_builds_the_final_content_few_times)
{
	put("enemy.c", "int f(void) { return 0; }\n");
	start(NULL, NULL);
	subscribe("enemy");
	cr_assert_eq(next_build("enemy", NULL), 1);
	for (int i = 1; i <= 20; i++) {
		char src[64];
		snprintf(src, sizeof src, "int f(void) { return %d; }\n", i);
		put("enemy.c", src);
	}
	int v = 0;
	uint64_t last = 1;
	while (v != 20) {
		uint64_t ver = next_build("enemy", &v);
		cr_assert_gt(ver, last);
		last = ver;
	}
	char *n = query("history", "enemy", "map(select(.status == \"ok\")) | length");
	cr_assert_lt(atoi(n), 10, "20 saves gave %s builds", n);
	free(n);
}

Test(daemon, touch_and_same_content_build_nothing)
{
	put("a.c", "int f(void) { return 1; }\n");
	put("b.c", "int f(void) { return 1; }\n");
	/* One job: had the touch started a build of a, it would land before b's. */
	start(NULL, (const char *const[]){ "--jobs", "1", NULL });
	subscribe("a");
	subscribe("b");
	next_build("a", NULL);
	next_build("b", NULL);
	char *a = t_fmt("%s/a.c", dir);
	cr_assert_eq(utimensat(AT_FDCWD, a, NULL, 0), 0);
	int fd = open(a, O_WRONLY); /* opened for writing and closed: IN_CLOSE_WRITE, same bytes */
	cr_assert_geq(fd, 0);
	close(fd);
	put("a.c", "int f(void) { return 1; }\n");
	free(a);
	put("b.c", "int f(void) { return 2; }\n");
	cr_assert_eq(next_build("b", NULL), 2);
	char *n = query("history", "a", "length");
	cr_assert_str_eq(n, "1", "a was rebuilt without a change");
	free(n);
}

Test(daemon, new_folder_and_file_after_start)
{
	put("enemy.c", "int f(void) { return 1; }\n");
	start(NULL, NULL);
	subscribe("ai");
	subscribe("boss");
	/* A folder made and filled at once: watched first, then scanned. */
	mkd("ai");
	put("ai/x.c", "int f(void) { return 7; }\n");
	int v;
	cr_assert_eq(next_build("ai", &v), 1);
	cr_assert_eq(v, 7);
	/* A file renamed into place, as vim and emacs save. */
	put(".boss.c.tmp", "int f(void) { return 8; }\n");
	char *from = t_fmt("%s/.boss.c.tmp", dir), *to = t_fmt("%s/boss.c", dir);
	cr_assert_eq(rename(from, to), 0);
	free(from);
	free(to);
	cr_assert_eq(next_build("boss", &v), 1);
	cr_assert_eq(v, 8);
	/* A folder moved within the root: every watch under it has a new path. */
	subscribe("brain");
	char *ai = t_fmt("%s/ai", dir), *brain = t_fmt("%s/brain", dir);
	cr_assert_eq(rename(ai, brain), 0);
	free(ai);
	free(brain);
	cr_assert_eq(next_build("brain", &v), 1);
	cr_assert_eq(v, 7);
	put("brain/x.c", "int f(void) { return 9; }\n");
	cr_assert_eq(next_build("brain", &v), 2);
	cr_assert_eq(v, 9);
	char *st = query("status", NULL, ".modules | map(\"\\(.module):\\(.status)\") | join(\",\")");
	cr_assert_str_eq(st, "ai:removed,boss:ok,brain:ok,enemy:ok");
	free(st);
}

Test(daemon, bad_names_and_conflicts_are_reported)
{
	put("bad name.c", "int f(void) { return 1; }\n");
	put("enemy.c", "int f(void) { return 1; }\n");
	mkd("enemy");
	put("enemy/e.c", "int f(void) { return 2; }\n");
	put("ok.c", "int f(void) { return 3; }\n");
	start(NULL, NULL);
	subscribe("ok");
	next_build("ok", NULL);
	char *st = query("status", NULL, ".modules | map(\"\\(.module):\\(.status):\\(.version)\") | join(\",\")");
	cr_assert_str_eq(st, "bad name:skipped:null,enemy:conflict:null,ok:ok:1");
	free(st);
	char *msg = query("status", NULL, ".modules[] | select(.module == \"enemy\") | .message");
	cr_assert(strstr(msg, "enemy.c") && strstr(msg, "enemy/"), "%s", msg);
	free(msg);
	char *h = query("history", NULL, "map(.module) | join(\",\")");
	cr_assert_str_eq(h, "ok", "neither side of a conflict is built");
	free(h);
	char *log = t_read(d.log, NULL);
	cr_assert(log && strstr(log, "warn  skipped 'bad name'"), "the log says why: %s", log);
	free(log);
}

Test(daemon, module_names_with_slash_or_dots_are_rejected)
{
	start(NULL, NULL);
	const char *bad[] = { "../etc", "a/b", "..", "", "x y" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		t_peer p;
		cr_assert_eq(t_peer_open(&p, d.sock), 0);
		hrp_msg m = { .type = HRP_SUBSCRIBE, .u.sub.module = bad[i] };
		cr_assert_eq(t_peer_send(&p, &m), 0);
		cr_assert_eq(t_peer_next(&p, 1u << HRP_ERROR, NULL, WAIT_MS, &m), 0, "'%s' was accepted", bad[i]);
		cr_assert_eq(m.u.error.code, HRP_E_INVALID);
		cr_assert_eq(t_peer_next(&p, ~0u, NULL, WAIT_MS, &m), -ECONNRESET, "the daemon closes after ERROR");
		t_peer_close(&p);
	}
}

Test(daemon, a_garbled_frame_drops_only_that_client)
{
	put("enemy.c", "int f(void) { return 1; }\n");
	start(NULL, NULL);
	subscribe("enemy");
	next_build("enemy", NULL);
	const uint8_t garbage[][12] = {
		{ 0, 0, 0, 12, 0, 99, 0, 0, 1, 2, 3, 4 },   /* unknown type */
		{ 0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0 },     /* length past the maximum */
		{ 0, 0, 0, 8, 0, 9, 0, 1 },                 /* flags set */
	};
	for (size_t i = 0; i < sizeof garbage / sizeof *garbage; i++) {
		t_peer p;
		cr_assert_eq(t_peer_open(&p, d.sock), 0);
		cr_assert_eq(send(p.fd, garbage[i], i == 0 ? 12 : 8, MSG_NOSIGNAL), i == 0 ? 12 : 8);
		hrp_msg m;
		cr_assert_eq(t_peer_next(&p, 1u << HRP_ERROR, NULL, WAIT_MS, &m), 0);
		cr_assert_eq(m.u.error.code, HRP_E_PROTOCOL);
		cr_assert_eq(t_peer_next(&p, ~0u, NULL, WAIT_MS, &m), -ECONNRESET);
		t_peer_close(&p);
	}
	/* A client that speaks before HELLO is dropped too. */
	int fd = hrp_connect(d.sock, 5000);
	cr_assert_geq(fd, 0);
	hrp_msg m = { .type = HRP_STATUS_REQ };
	cr_assert_eq(hrp_send(fd, &m), 0);
	t_peer raw = { .fd = fd };
	cr_assert_eq(t_peer_next(&raw, 1u << HRP_ERROR, NULL, WAIT_MS, &m), 0);
	t_peer_close(&raw);
	/* The well-behaved client still gets every build. */
	put("enemy.c", "int f(void) { return 2; }\n");
	int v;
	cr_assert_eq(next_build("enemy", &v), 2);
	cr_assert_eq(v, 2);
}

Test(daemon, a_second_daemon_on_the_same_state_dir_is_refused)
{
	start(NULL, NULL);
	t_daemon second;
	t_run r;
	cr_assert_neq(t_daemon_start(&second, dir, NULL, NULL, &r), 0);
	cr_assert_eq(r.status, 1);
	char *want = t_fmt("already serves %s", d.state);
	cr_assert(strstr(r.err, "another hotreloadd") && strstr(r.err, want), "%s", r.err);
	free(want);
	t_run_free(&r);
	t_daemon_stop(&second);
	/* The first one still answers. */
	char *n = query("status", NULL, ".clients");
	cr_assert_str_eq(n, "1", "the test's one connection");
	free(n);
}

static int gone(int pid)
{
	char *stat = t_fmt("/proc/%d/stat", pid), *s = t_read(stat, NULL);
	free(stat);
	/* Gone, or a zombie that its new parent has yet to reap. */
	int dead = !s || (strrchr(s, ')') && strrchr(s, ')')[2] == 'Z');
	free(s);
	return dead;
}

static int gone_arg(void *arg)
{
	return gone(*(int *)arg);
}

Test(daemon, sigterm_ends_builds_in_flight_and_leaves_no_child)
{
	/* The compiler starts a child of its own, as cc starts cc1, as and ld. */
	char *env[4] = { NULL };
	cr_assert_eq(t_slow_cc(dir, "sleep 1000 &\necho \"$$ $!\" > \"$HR_T_READY\"\nwait", env), 0, "the stand-in compiler");
	put("enemy.c", "int f(void) { return 1; }\n");
	start((const char *const *)env, NULL);
	int pid, child;
	cr_assert_eq(t_slow_started(dir, &pid, &child), 0, "the stand-in compiler");
	cr_assert(pid > 0 && child > 0);
	char *state = strdup(d.state), *log = strdup(d.log);
	cr_assert_eq(t_daemon_stop(&d), 0, "hotreloadd did not stop on SIGTERM");
	cr_assert(gone(pid), "the compiler %d outlived the daemon", pid);
	/* SIGKILL to its process group is sent, not yet done, when kill() returns: the grandchild, which the daemon
	 * does not reap, may still be dying. Wait for it, with a deadline. */
	cr_assert(t_until(gone_arg, &child, WAIT_MS), "the compiler's child %d outlived the daemon", child);
	char *text = t_read(log, NULL);
	cr_assert(text && strstr(text, "info  stopped"), "it stopped cleanly: %s", text);
	free(text);
	/* Nothing was recorded for the build it ended. */
	t_run r = t_cli(dir, NULL, (const char *const[]){ "--state-dir", state, "history", "--json", NULL });
	cr_assert_str_eq(r.out, "[]\n");
	t_run_free(&r);
	free(state);
	free(log);
	for (int i = 0; i < 3; i++)
		free(env[i]);
}

Test(daemon, a_source_that_vanishes_mid_build_gives_a_failed_row)
{
	char *env[4] = { NULL };
	cr_assert_eq(t_slow_cc(dir, T_WAIT_THEN_CC, env), 0, "the stand-in compiler");
	put("enemy.c", "int f(void) { return 1; }\n");
	start((const char *const *)env, NULL);
	subscribe("enemy");
	int pid, child;
	cr_assert_eq(t_slow_started(dir, &pid, &child), 0, "the stand-in compiler");
	char *src = t_fmt("%s/enemy.c", dir);
	cr_assert_eq(unlink(src), 0);
	free(src);
	cr_assert_eq(t_slow_go(dir), 0, "the stand-in compiler");
	char *msg = next_failure("enemy");
	cr_assert(strstr(msg, "enemy.c") && strstr(msg, "No such file"), "%s", msg);
	free(msg);
	for (int i = 0; i < 3; i++)
		free(env[i]);
}

Test(daemon, a_missing_compiler_gives_a_failed_row)
{
	put("enemy.c", "int f(void) { return 1; }\n");
	start((const char *const[]){ "CC=/nonexistent/cc -O2", NULL }, NULL);
	subscribe("enemy");
	char *msg = next_failure("enemy");
	cr_assert_str_eq(msg, "cannot run the compiler '/nonexistent/cc': not found; set CC to a C compiler");
	free(msg);
	char *h = query("history", NULL, "map(.status) | join(\",\")");
	cr_assert_str_eq(h, "failed");
	free(h);
}

Test(daemon, a_full_disk_fails_the_build_and_keeps_the_last_good_one)
{
	put("enemy.c", "int f(void) { return 1; }\n");
	/* The file size limit stands in for a full disk; the daemon, the compiler and the linker all inherit it. */
	start_under((const char *const[]){ "prlimit", "--fsize=2000000", NULL }, NULL, NULL);
	subscribe("enemy");
	int v;
	cr_assert_eq(next_build("enemy", &v), 1);
	/* 4 MB of initialised data: the object cannot be written. */
	put("enemy.c", "char big[4 << 20] = {1};\nint f(void) { return big[0] + 1; }\n");
	char *msg = next_failure("enemy");
	cr_assert(strstr(msg, "File size limit") || strstr(msg, "too large") || strstr(msg, "No space"), "%s", msg);
	free(msg);
	char *st = query("status", NULL, ".modules[0] | \"\\(.version) \\(.status)\"");
	cr_assert_str_eq(st, "1 failed");
	free(st);
	/* And the daemon goes on: a smaller fix lands. */
	put("enemy.c", "int f(void) { return 2; }\n");
	cr_assert_eq(next_build("enemy", &v), 2);
	cr_assert_eq(v, 2);
}

Test(daemon, a_restart_serves_the_last_build_and_builds_only_what_changed)
{
	put("enemy.c", "int f(void) { return 1; }\n");
	put("boss.c", "int f(void) { return 1; }\n");
	start(NULL, NULL);
	subscribe("enemy");
	subscribe("boss");
	next_build("enemy", NULL);
	next_build("boss", NULL);
	char *db_id = strdup(peer.db_id);
	t_peer_close(&peer);
	for (size_t i = 0; i < nsubs; i++)
		t_peer_close(&subs[i].p);
	nsubs = 0;
	cr_assert_eq(t_daemon_stop(&d), 0);

	put("boss.c", "int f(void) { return 2; }\n"); /* changed while no daemon ran */
	start(NULL, NULL);
	cr_assert_str_eq(peer.db_id, db_id, "the same history");
	free(db_id);
	subscribe("boss");
	subscribe("enemy");
	int v;
	cr_assert_eq(next_build("enemy", &v), 1, "served from the history, not rebuilt");
	cr_assert_eq(v, 1);
	uint64_t boss = next_build("boss", &v);
	if (boss == 1) /* the old one first, then the rebuild */
		boss = next_build("boss", &v);
	cr_assert_eq(boss, 2);
	cr_assert_eq(v, 2);
	char *h = query("history", NULL, "map(\"\\(.module)\\(.version)\") | sort | join(\",\")");
	cr_assert_str_eq(h, "boss1,boss2,enemy1");
	free(h);
}

Test(daemon, after_sigkill_the_next_daemon_takes_over_the_stale_socket)
{
	put("enemy.c", "int f(void) { return 1; }\n");
	start(NULL, NULL);
	subscribe("enemy");
	next_build("enemy", NULL);
	kill(d.pid, SIGKILL);
	cr_assert(t_wait_gone(d.pidfd, WAIT_MS));
	struct stat st;
	cr_assert_eq(stat(d.sock, &st), 0, "the socket file is left behind");
	t_peer_close(&peer);
	for (size_t i = 0; i < nsubs; i++)
		t_peer_close(&subs[i].p);
	nsubs = 0;
	close(d.pidfd);
	d.pidfd = -1;
	t_daemon_stop(&d); /* only forgets it */
	start(NULL, NULL);
	put("enemy.c", "int f(void) { return 2; }\n");
	subscribe("enemy");
	int v;
	uint64_t ver = next_build("enemy", &v);
	if (ver == 1)
		ver = next_build("enemy", &v);
	cr_assert_eq(ver, 2);
	cr_assert_eq(v, 2);
}

/* As uid, connect and say HELLO: the type of the daemon's first reply, or -errno. */
static int hello_as(const char *sock, uid_t uid)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (setgid(uid) < 0 || setuid(uid) < 0)
			_exit(100);
		hrp_msg m;
		int fd = hrp_connect(sock, 5000);
		hrp_msg h = { .type = HRP_HELLO, .u.hello = { HRP_VERSION, HRP_ROLE_LIBRARY, 1, "", "t" } };
		hrp_reader r = { 0 };
		/* A refused peer may find the socket closed before its HELLO goes
		 * out; the ERROR is waiting for it all the same. */
		if (fd < 0)
			_exit(101);
		(void)hrp_send(fd, &h);
		if (hrp_recv(fd, &r, &m, 5000) < 0)
			_exit(102);
		if (m.type == HRP_HELLO)
			_exit(HRP_HELLO);
		_exit(m.type == HRP_ERROR && m.u.error.code == HRP_E_DENIED ? HRP_ERROR : 103);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(daemon, peers_of_other_users_are_refused_unless_allowed)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to act as another user");
	char sockdir[] = "/tmp/hr-sock-XXXXXX";
	cr_assert_not_null(mkdtemp(sockdir));
	chmod(sockdir, 0711);
	char *sock = t_fmt("%s/s", sockdir);
	start(NULL, (const char *const[]){ "--socket", sock, "--allow-uid", "12345", NULL });
	int got = hello_as(sock, 65534);
	cr_assert_eq(got, HRP_ERROR, "uid 65534 was not refused (%d)", got);
	got = hello_as(sock, 12346);
	cr_assert_eq(got, HRP_ERROR, "uid 12346 was not refused (%d)", got);
	cr_assert_eq(hello_as(sock, 12345), HRP_HELLO, "an allowed uid was refused");
	/* And it can reach what it is told to load. */
	struct stat st;
	char *objects = t_fmt("%s/objects", d.state);
	cr_assert_eq(stat(d.state, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0711);
	cr_assert_eq(stat(objects, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0711);
	free(objects);
	free(sock);
	t_peer_close(&peer);
	t_daemon_stop(&d);
	rmdir(sockdir);
}

Test(daemon, a_socket_path_taken_by_something_else_is_left_alone)
{
	char *file = t_fmt("%s/precious", dir);
	cr_assert_eq(t_write(file, "keep me", 7), 0);
	t_daemon other;
	t_run r;
	cr_assert_neq(t_daemon_start(&other, dir, NULL, (const char *const[]){ "--socket", file, NULL }, &r), 0);
	cr_assert(strstr(r.err, "is not a socket"), "%s", r.err);
	t_run_free(&r);
	t_daemon_stop(&other);
	char *text = t_read(file, NULL);
	cr_assert_str_eq(text, "keep me");
	free(text);
	free(file);
}

Test(daemon, usage_errors_and_bad_roots)
{
	const char *bad[][4] = {
		{ "--jobs", "0", NULL }, { "--watcher", "carrier-pigeon", "--foreground", NULL },
		{ "--bogus", NULL }, { "extra", NULL }, { "--poll-interval", "5", NULL },
	};
	int want[] = { 2, 2, 2, 2, 2 };
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		const char *argv[8] = { daemon_exe(), "--root", dir };
		for (size_t j = 0; bad[i][j]; j++)
			argv[3 + j] = bad[i][j];
		t_run r = t_exec(dir, NULL, argv);
		cr_assert_eq(r.status, want[i], "%s: exit %d: %s", bad[i][0], r.status, r.err);
		cr_assert(strstr(r.err, "hotreloadd: "), "%s", r.err);
		t_run_free(&r);
		struct stat st;
		char *state = t_fmt("%s/.hotreload", dir);
		cr_assert_neq(stat(state, &st), 0, "%s: nothing is created before the options are checked", bad[i][0]);
		free(state);
	}
	t_run r = t_exec(dir, NULL, (const char *const[]){ daemon_exe(), "--root", "/nonexistent/x", NULL });
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "/nonexistent/x"), "%s", r.err);
	t_run_free(&r);
	put("file", "not a folder\n");
	char *file = t_fmt("%s/file", dir);
	r = t_exec(dir, NULL, (const char *const[]){ daemon_exe(), "--root", file, NULL });
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, file) && strstr(r.err, "is not a folder"), "%s", r.err);
	t_run_free(&r);
	free(file);
}

Test(daemon, objects_deleted_while_stopped_are_written_back_from_the_history)
{
	put("enemy.c", "int f(void) { return 1; }\n");
	start(NULL, NULL);
	subscribe("enemy");
	cr_assert_eq(next_build("enemy", NULL), 1);
	char *objects = t_fmt("%s/objects", d.state);
	t_peer_close(&peer);
	t_peer_close(&subs[0].p);
	nsubs = 0;
	cr_assert_eq(t_daemon_stop(&d), 0);
	t_rmtree(objects);
	free(objects);
	start(NULL, NULL);
	subscribe("enemy");
	int v;
	cr_assert_eq(next_build("enemy", &v), 1, "the same version, its object back from the history, no compile");
	cr_assert_eq(v, 1);
	char *log = t_read(d.log, NULL);
	cr_assert(log && strstr(log, "enemy: the object of v1 was gone; restored from the history"), "%s", log);
	free(log);
}

Test(daemon, the_same_text_saved_again_during_a_build_is_built_again)
{
	char *env[4] = { NULL };
	cr_assert_eq(t_slow_cc(dir, T_WAIT_THEN_CC, env), 0, "the stand-in compiler");
	put("enemy.c", "int f(void) { return 1; }\n");
	start((const char *const *)env, NULL);
	subscribe("enemy");
	int pid, child, v;
	cr_assert_eq(t_slow_started(dir, &pid, &child), 0, "the stand-in compiler");
	cr_assert_eq(t_slow_go(dir), 0, "the stand-in compiler");
	cr_assert_eq(next_build("enemy", &v), 1);
	put("enemy.c", "int f(void) { return 2; }\n");
	cr_assert_eq(t_slow_started(dir, &pid, &child), 0, "the stand-in compiler");
	/* Saved again, in place, with the same bytes, while the compiler may be reading. */
	put("enemy.c", "int f(void) { return 2; }\n");
	int again;
	cr_assert_eq(t_slow_started(dir, &again, &child), 0, "the stand-in compiler");
	cr_assert_neq(again, pid, "a second compile, not the first one going on");
	cr_assert_eq(t_slow_go(dir), 0, "the stand-in compiler");
	cr_assert_eq(next_build("enemy", &v), 2);
	cr_assert_eq(v, 2);
	char *h = query("history", "enemy", "map(.status) | join(\",\")");
	cr_assert_str_eq(h, "ok,ok", "the interrupted compile is not recorded");
	free(h);
	for (int i = 0; i < 3; i++)
		free(env[i]);
}

Test(daemon, a_file_renamed_away_and_back_during_a_build_is_built)
{
	char *env[4] = { NULL };
	cr_assert_eq(t_slow_cc(dir, T_WAIT_THEN_CC, env), 0, "the stand-in compiler");
	put("enemy.c", "int f(void) { return 1; }\n");
	start((const char *const *)env, NULL);
	subscribe("enemy");
	int pid, child, v;
	cr_assert_eq(t_slow_started(dir, &pid, &child), 0, "the stand-in compiler");
	cr_assert_eq(t_slow_go(dir), 0, "the stand-in compiler");
	cr_assert_eq(next_build("enemy", &v), 1);
	put("enemy.c", "int f(void) { return 2; }\n");
	cr_assert_eq(t_slow_started(dir, &pid, &child), 0, "the stand-in compiler");
	/* vim's save: the old file is renamed away, the new one written. */
	char *from = t_fmt("%s/enemy.c", dir), *to = t_fmt("%s/enemy.c~", dir);
	cr_assert_eq(rename(from, to), 0);
	cr_assert_eq(t_slow_go(dir), 0, "the stand-in compiler");
	char *msg = next_failure("enemy");
	cr_assert(strstr(msg, "No such file"), "%s", msg);
	free(msg);
	put("enemy.c", "int f(void) { return 2; }\n");
	cr_assert_eq(t_slow_started(dir, &pid, &child), 0, "the stand-in compiler");
	cr_assert_eq(t_slow_go(dir), 0, "the stand-in compiler");
	cr_assert_eq(next_build("enemy", &v), 2, "the same text as the failed compile still builds");
	cr_assert_eq(v, 2);
	free(from);
	free(to);
	for (int i = 0; i < 3; i++)
		free(env[i]);
}

Test(daemon, links_and_symlinks_are_modules_at_once)
{
	mkd(".t");
	put(".t/ext.c", "int f(void) { return 5; }\n");
	start(NULL, NULL);
	subscribe("hard");
	subscribe("soft");
	char *ext = t_fmt("%s/.t/ext.c", dir), *hard = t_fmt("%s/hard.c", dir), *soft = t_fmt("%s/soft.c", dir);
	/* Neither is ever closed after writing: the name appears whole. */
	cr_assert_eq(link(ext, hard), 0);
	cr_assert_eq(symlink(ext, soft), 0);
	int v;
	cr_assert_eq(next_build("hard", &v), 1);
	cr_assert_eq(v, 5);
	cr_assert_eq(next_build("soft", &v), 1);
	cr_assert_eq(v, 5);
	free(ext);
	free(hard);
	free(soft);
}

Test(daemon, saves_are_seen_across_many_folder_moves)
{
	mkd("m0");
	put("m0/x.c", "int f(void) { return 0; }\n");
	start(NULL, NULL);
	subscribe("m0");
	next_build("m0", NULL);
	char *names[] = { "m0", "m1", "m2", "m3", "m4", "m5" };
	for (int i = 1; i < 6; i++) {
		char *from = t_fmt("%s/%s", dir, names[i - 1]), *to = t_fmt("%s/%s", dir, names[i]);
		char *file = t_fmt("%s/x.c", names[i]), *src = t_fmt("int f(void) { return %d; }\n", i);
		subscribe(names[i]);
		cr_assert_eq(rename(from, to), 0);
		put(file, src); /* written right after the move, while the watches start over */
		int v = -1;
		while (v != i)
			next_build(names[i], &v);
		free(from);
		free(to);
		free(file);
		free(src);
	}
	char *st = query("status", NULL, ".watcher.reason");
	cr_assert(!strstr(st, "not watched"), "%s", st);
	free(st);
}

Test(daemon, a_hidden_module_name_is_skipped_with_a_warning)
{
	put(".secret.c", "int f(void) { return 1; }\n");
	put("ok.c", "int f(void) { return 1; }\n");
	start(NULL, NULL);
	subscribe("ok");
	next_build("ok", NULL);
	char *st = query("status", NULL, ".modules | map(\"\\(.module):\\(.status)\") | join(\",\")");
	cr_assert_str_eq(st, ".secret:skipped,ok:ok");
	free(st);
}

Test(daemon, a_file_saved_through_o_tmpfile_and_linkat_is_built)
{
	put("a.c", "int f(void) { return 1; }\n");
	start(NULL, NULL);
	subscribe("b");
	int fd = open(dir, O_TMPFILE | O_WRONLY, 0644);
	cr_assert_geq(fd, 0);
	const char *src = "int f(void) { return 2; }\n";
	cr_assert_eq(write(fd, src, strlen(src)), (ssize_t)strlen(src));
	char *proc = t_fmt("/proc/self/fd/%d", fd), *to = t_fmt("%s/b.c", dir);
	cr_assert_eq(linkat(AT_FDCWD, proc, AT_FDCWD, to, AT_SYMLINK_FOLLOW), 0);
	close(fd);
	int v;
	cr_assert_eq(next_build("b", &v), 1);
	cr_assert_eq(v, 2);
	free(proc);
	free(to);
}

Test(daemon, a_module_folder_linked_into_the_root_is_watched_through_the_link)
{
	char *elsewhere = t_tmpdir(), *real = t_fmt("%s/boss", elsewhere), *link = t_fmt("%s/boss", dir);
	char *file = t_fmt("%s/boss.c", real);
	cr_assert_eq(mkdir(real, 0755), 0);
	cr_assert_eq(t_write(file, "int f(void) { return 1; }\n", 26), 0);
	cr_assert_eq(symlink(real, link), 0);
	const char *follow[] = {"--follow-links", NULL};
	start(NULL, follow);
	subscribe("boss");
	int v;
	cr_assert_eq(next_build("boss", &v), 1);
	put("boss/boss.c", "int f(void) { return 2; }\n"); /* saved through the link */
	cr_assert_eq(next_build("boss", &v), 2);
	cr_assert_eq(v, 2);
	t_rmtree(elsewhere);
	free(elsewhere);
	free(real);
	free(link);
	free(file);
}

Test(daemon, a_file_still_being_written_when_its_folder_appears_waits_for_its_close)
{
	put("a.c", "int f(void) { return 1; }\n");
	start(NULL, NULL);
	subscribe("foo");
	/* Made aside, half written, then moved in with the file still open. */
	mkd(".t");
	mkd(".t/foo");
	char *x = t_fmt("%s/.t/foo/x.c", dir), *from = t_fmt("%s/.t/foo", dir), *to = t_fmt("%s/foo", dir);
	int fd = open(x, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	const char *half = "int g(void) { return 0; }\n", *rest = "int f(void) { return 7; }\n";
	cr_assert_eq(write(fd, half, strlen(half)), (ssize_t)strlen(half));
	cr_assert_eq(rename(from, to), 0);
	/* Wait until the daemon has seen the folder (and passed over the open file). */
	for (int tries = 0;; tries++) {
		char *st = query("status", NULL, "[.modules[] | select(.module == \"foo\")] | length");
		int seen = strcmp(st, "1") == 0;
		free(st);
		if (seen)
			break;
		cr_assert_lt(tries, 3000, "the daemon never saw the folder");
	}
	cr_assert_eq(write(fd, rest, strlen(rest)), (ssize_t)strlen(rest));
	close(fd);
	int v;
	cr_assert_eq(next_build("foo", &v), 1, "one build, of the whole file");
	cr_assert_eq(v, 7);
	free(x);
	free(from);
	free(to);
}

/*
 * The kernel reports a close before it lets go of the file's write access, so
 * the daemon may read the close of the last writer and still find the file
 * open for writing. Here that moment is held: the writer's close comes through
 * a hard link outside the root, which no watch reports.
 */
Test(daemon, a_module_found_open_for_writing_is_looked_at_again_without_another_close)
{
	mkd("foo");
	put("foo/x.c", "int f(void) { return 1; }\n");
	put("foo/y.c", "int g(void) { return 2; }\n");
	char *y = t_fmt("%s/foo/y.c", dir), *aside = t_fmt("%s.y-link", dir);
	cr_assert_eq(link(y, aside), 0, "a hard link beside the root");
	start(NULL, (const char *const[]){ "--verbose", NULL });
	subscribe("foo");
	int v;
	cr_assert_eq(next_build("foo", &v), 1);
	int fd = open(aside, O_WRONLY);
	cr_assert_geq(fd, 0);
	put("foo/x.c", "int f(void) { return 3; }\n");
	cr_assert(t_until_in_file(d.log, "foo: a source is still open for writing", 1, WAIT_MS), "the daemon never found it open");
	close(fd); /* no event in the root: only the daemon's second look builds it */
	cr_assert_eq(next_build("foo", &v), 2);
	cr_assert_eq(v, 3);
	unlink(aside);
	free(y);
	free(aside);
}

Test(daemon, a_refusal_is_answered_with_the_newest_older_build_that_client_did_not_refuse)
{
	put("a.c", "int f(void) { return 1; }\n");
	start(NULL, NULL);
	subscribe("a");
	cr_assert_eq(next_build("a", NULL), 1);
	for (int v = 2; v <= 4; v++) {
		char *src = t_fmt("int f(void) { return %d; }\n", v);
		put("a.c", src);
		free(src);
		cr_assert_eq(next_build("a", NULL), (uint64_t)v);
	}
	/* v3 does not load here: v2 is offered */
	hrp_msg m = { .type = HRP_REFUSED, .u.refused = { "a", 3, "undefined symbol: g" } };
	cr_assert_eq(t_peer_send(peer_of("a"), &m), 0);
	int value;
	cr_assert_eq(next_build("a", &value), 2);
	cr_assert_eq(value, 2);
	/* v4 came in before v2 went live, and its hr_on_load failed: v2 again, not v3, which it refused */
	m.u.refused.version = 4;
	m.u.refused.reason = "hr_on_load returned 1";
	cr_assert_eq(t_peer_send(peer_of("a"), &m), 0);
	cr_assert_eq(next_build("a", &value), 2);
	cr_assert_eq(value, 2);
}

/*
 * A request whose announce reaches the client that made it, and finds it
 * gone (it shut down its reading side): the client is dropped there, inside
 * its own request's handler, which must not then touch it (found under ASan:
 * a use after free). Every request that can announce, in turn.
 */
static int three_compiles(void *arg)
{
	(void)arg;
	char *n = query("history", "a", "[.[] | select(.status == \"ok\")] | length");
	int done = n && atoi(n) == 3;
	free(n);
	return done;
}

Test(daemon, a_client_dropped_by_its_own_request_is_not_used_after)
{
	put("a.c", "int f(void) { return 1; }\n");
	start(NULL, NULL);
	subscribe("a");
	cr_assert_eq(next_build("a", NULL), 1);
	put("a.c", "int f(void) { return 2; }\n");
	cr_assert_eq(next_build("a", NULL), 2);
	const hrp_msg reqs[] = {
		{ .type = HRP_ROLLBACK_REQ, .u.rollback = { "a", 1, HRP_ROLLBACK } },
		{ .type = HRP_ROLLBACK_REQ, .u.rollback = { "a", 2, HRP_ROLLBACK_PIN } },
		{ .type = HRP_ROLLBACK_REQ, .u.rollback = { "a", 0, HRP_UNPIN } },
		{ .type = HRP_BUILD_REQ, .u.sub = { "a" } },
		{ .type = HRP_REFUSED, .u.refused = { "a", 2, "does not load here" } },
		{ .type = HRP_SUBSCRIBE, .u.sub = { "a" } },
	};
	for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
		t_peer p;
		cr_assert_eq(t_peer_open(&p, d.sock), 0);
		hrp_msg m = { .type = HRP_SUBSCRIBE, .u.sub = { "a" } };
		cr_assert_eq(t_peer_send(&p, &m), 0);
		cr_assert_eq(t_peer_next(&p, 1u << HRP_BUILD, "a", WAIT_MS, &m), 0);
		cr_assert_eq(shutdown(p.fd, SHUT_RD), 0);
		if (reqs[i].type == HRP_ROLLBACK_REQ && reqs[i].u.rollback.action == HRP_UNPIN) {
			/* a save while pinned: recorded, not served, until the unpin announces it */
			put("a.c", "int f(void) { return 3; }\n");
			cr_assert(t_until(three_compiles, NULL, WAIT_MS), "the save while pinned was not recorded");
		}
		cr_assert_eq(t_peer_send(&p, &reqs[i]), 0, "request %zu", i);
		/* The other subscriber hears what the request announced: the daemon handled it and lives on. */
		if (reqs[i].type != HRP_REFUSED && reqs[i].type != HRP_SUBSCRIBE)
			cr_assert_eq(t_peer_next(peer_of("a"), 1u << HRP_BUILD, "a", WAIT_MS, &m), 0, "request %zu", i);
		hrp_msg st = { .type = HRP_STATUS_REQ };
		cr_assert_eq(t_peer_send(&peer, &st), 0);
		cr_assert_eq(t_peer_next(&peer, 1u << HRP_STATUS, NULL, WAIT_MS, &st), 0, "no status after request %zu", i);
		t_peer_close(&p);
	}
}

static int count_fds(int pid)
{
	char *p = t_fmt("/proc/%d/fd", pid);
	DIR *dp = opendir(p);
	int n = 0;
	for (struct dirent *e; dp && (e = readdir(dp));)
		n += e->d_name[0] != '.';
	if (dp)
		closedir(dp);
	free(p);
	return n;
}

/*
 * A game that does not read: builds pile up for it, each with its object's
 * descriptor. At most a few descriptors go in flight to it (the kernel counts
 * them against the daemon's user), the daemon opens no object for what waits,
 * and one BUILD per module waits: a newer takes the older's place. So of 300
 * builds it reads a handful, the newest last.
 */
Test(daemon, a_game_that_does_not_read_holds_one_unsent_object_per_module)
{
	put("a.c", "int f(void) { return 1; }\n");
	start(NULL, NULL);
	subscribe("a");
	cr_assert_eq(next_build("a", NULL), 1);
	t_peer lazy;
	cr_assert_eq(t_peer_open(&lazy, d.sock), 0);
	hrp_msg m = { .type = HRP_SUBSCRIBE, .u.sub = { "a" } };
	cr_assert_eq(t_peer_send(&lazy, &m), 0);
	int before = count_fds(d.pid), most = before;
	uint64_t v = 1;
	for (int i = 0; i < 300; i++) {
		m = (hrp_msg){ .type = HRP_ROLLBACK_REQ, .u.rollback = { "a", 1, HRP_ROLLBACK } };
		cr_assert_eq(t_peer_send(&peer, &m), 0);
		cr_assert_eq(t_peer_next(peer_of("a"), 1u << HRP_BUILD, "a", WAIT_MS, &m), 0);
		v = m.u.build.version;
		int n = count_fds(d.pid);
		most = n > most ? n : most;
	}
	cr_assert_leq(most, before + 4, "the daemon held %d descriptors, %d before", most, before);
	/* What it reads at last is a few builds, ending with the newest. */
	uint64_t last = 0;
	int builds = 0;
	m = (hrp_msg){ .type = HRP_STATUS_REQ };
	cr_assert_eq(t_peer_send(&lazy, &m), 0);
	while (t_peer_next(&lazy, 1u << HRP_BUILD | 1u << HRP_STATUS, NULL, WAIT_MS, &m) == 0 && m.type == HRP_BUILD) {
		last = m.u.build.version;
		builds++;
	}
	cr_assert_eq(m.type, HRP_STATUS, "the status after the builds never came");
	cr_assert_eq(last, v);
	cr_assert_leq(builds, 12, "%d of 300 builds were sent to a game that did not read", builds);
	t_peer_close(&lazy);
}

/* Reports a client makes become rows only about builds it was sent, with a reason cut to 1 KiB, at a bounded rate. */
Test(daemon, refusals_are_recorded_only_for_builds_sent_cut_short_and_rate_limited)
{
	put("a.c", "int f(void) { return 1; }\n");
	start(NULL, NULL);
	subscribe("a");
	cr_assert_eq(next_build("a", NULL), 1);
	t_peer *p = peer_of("a");
	char *huge = malloc(100000);
	memset(huge, 'x', 99999);
	huge[99999] = '\0';
	const hrp_msg reports[] = {
		{ .type = HRP_REFUSED, .u.refused = { "nosuch", 1, "a module that does not exist" } },
		{ .type = HRP_REFUSED, .u.refused = { "a", 99, "a version it was never sent" } },
		{ .type = HRP_LOADED, .u.loaded = { "nosuch", 1, 1 } },
		{ .type = HRP_REFUSED, .u.refused = { "a", 1, huge } },
	};
	for (size_t i = 0; i < sizeof reports / sizeof *reports; i++)
		cr_assert_eq(t_peer_send(p, &reports[i]), 0);
	hrp_msg again = { .type = HRP_REFUSED, .u.refused = { "a", 1, "again" } };
	for (int i = 0; i < 200; i++)
		cr_assert_eq(t_peer_send(p, &again), 0);
	hrp_msg st = { .type = HRP_STATUS_REQ };
	cr_assert_eq(t_peer_send(p, &st), 0);
	cr_assert_eq(t_peer_next(p, 1u << HRP_STATUS, NULL, WAIT_MS, &st), 0, "the daemon did not answer after them");
	char *modules = query("history", NULL, "[.[] | select(.status == \"refused\") | .module] | unique | join(\",\")");
	cr_assert_str_eq(modules, "a");
	char *versions = query("history", NULL, "[.[] | select(.status == \"refused\") | .version] | unique | join(\",\")");
	cr_assert_str_eq(versions, "1");
	char *longest = query("history", NULL, "[.[] | select(.status == \"refused\") | .message | length] | max");
	cr_assert_leq(atoi(longest), 1100, "a reason of %s bytes was recorded", longest);
	cr_assert_geq(atoi(longest), 1000);
	char *rows = query("history", NULL, "[.[] | select(.status == \"refused\")] | length");
	cr_assert_leq(atoi(rows), 60, "%s refusals were recorded out of 201 in a burst", rows);
	/* A new connection of the same uid does not start a new allowance. */
	t_peer again_peer;
	cr_assert_eq(t_peer_open(&again_peer, d.sock), 0);
	hrp_msg sub = { .type = HRP_SUBSCRIBE, .u.sub = { "a" } };
	cr_assert_eq(t_peer_send(&again_peer, &sub), 0);
	cr_assert_eq(t_peer_next(&again_peer, 1u << HRP_BUILD, "a", WAIT_MS, &sub), 0);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(t_peer_send(&again_peer, &again), 0);
	st = (hrp_msg){ .type = HRP_STATUS_REQ };
	cr_assert_eq(t_peer_send(&again_peer, &st), 0);
	cr_assert_eq(t_peer_next(&again_peer, 1u << HRP_STATUS, NULL, WAIT_MS, &st), 0);
	char *more = query("history", NULL, "[.[] | select(.status == \"refused\")] | length");
	cr_assert_leq(atoi(more), atoi(rows) + 10, "%s refusals after a reconnection, %s before", more, rows);
	t_peer_close(&again_peer);
	free(more);
	free(modules);
	free(versions);
	free(longest);
	free(rows);
	free(huge);
}

Test(daemon, the_compilers_output_is_bounded_per_build_not_per_compiler_run)
{
	/* A compiler that says 300 kB before each run: a folder of three sources and its link say 1.2 MB. */
	mkd(".t");
	put(".t/cc", "#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\0' w >&2\necho >&2\nexec cc \"$@\"\n");
	char *cc = t_fmt("CC=%s/.t/cc", dir);
	cr_assert_eq(chmod(cc + 3, 0755), 0);
	mkd("big");
	put("big/a.c", "int g(void);\nint f(void) { return g(); }\n");
	put("big/b.c", "int g(void) { return 2; }\n");
	put("big/c.c", "int h(void) { return 3; }\n");
	start((const char *const[]){ cc, NULL }, NULL);
	subscribe("big");
	int v;
	cr_assert_eq(next_build("big", &v), 1);
	cr_assert_eq(v, 2);
	char *n = query("show", "big", ".output | length");
	cr_assert_leq(atol(n), HRD_JOB_OUTPUT_MAX + 200, "the row keeps %s bytes of output", n);
	cr_assert_geq(atol(n), HRD_JOB_OUTPUT_MAX, "%s", n);
	free(n);
	char *end = query("show", "big", ".output[-120:]");
	cr_assert(strstr(end, "256 KiB"), "the cut says so: %s", end);
	free(end);
	free(cc);
}

Test(daemon, allow_uid_is_parsed_strictly_and_never_allows_nobody)
{
	/* 4294968296 is 2^32 + 1000: read as a long and cast, it was uid 1000. */
	const char *bad[] = { "4294968296", "4294967295", "-1", " 5", "5x", "", "nobody", "65534", "+7", "99999999999999999999" };
	const char *says[] = { "from 0 to 4294967294", "from 0 to 4294967294", "from 0 to 4294967294", "from 0 to 4294967294",
			       "from 0 to 4294967294", "from 0 to 4294967294", "nobody (65534)", "nobody (65534)",
			       "from 0 to 4294967294", "from 0 to 4294967294" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		t_run r = t_exec(dir, NULL, (const char *const[]){ daemon_exe(), "--root", dir, "--allow-uid", bad[i], NULL });
		cr_assert_eq(r.status, 2, "--allow-uid '%s': exit %d: %s", bad[i], r.status, r.err);
		cr_assert(strstr(r.err, "hotreloadd: --allow-uid") && strstr(r.err, says[i]), "'%s': %s", bad[i], r.err);
		t_run_free(&r);
		struct stat st;
		char *state = t_fmt("%s/.hotreload", dir);
		cr_assert_neq(stat(state, &st), 0, "'%s': nothing is created before the options are checked", bad[i]);
		free(state);
	}
}
