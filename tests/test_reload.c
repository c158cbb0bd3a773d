/* test_reload.c: the reloader inside the game: crashes caught, kept globals, reconnects, notes, threads, end to end. */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"

TestSuite(reload, .init = e2e_setup, .fini = e2e_teardown, .timeout = 240);

/* A module whose hr_on_load runs code (and returns 0 if it comes back), and whose value() is tag. */
static void loader(const char *rel, int tag, const char *code)
{
	char *src = t_fmt("#include <stdint.h>\n#include <stdlib.h>\n#include <sys/mman.h>\n#include <unistd.h>\n"
	                  "int value(void) { return %d; }\n"
	                  "static int deep(int n) { volatile char pad[4096]; pad[0] = (char)n; return deep(n + 1) + pad[0]; }\n"
	                  "int hr_on_load(void *ud, uint64_t prev) { (void)ud; (void)prev; (void)deep; %s; return 0; }\n",
	                  tag, code);
	e2e_put(rel, src);
	free(src);
}

Test(reload, a_crash_in_hr_on_load_refuses_the_build_for_each_signal_and_the_old_one_stays)
{
	static const struct {
		const char *sig, *code;
	} crash[] = {
		{ "SIGSEGV", "*(volatile int *)8 = 1" },
		/* A read past the end of a file that was mapped and then truncated. */
		{ "SIGBUS", "int fd = memfd_create(\"t\", 0); if (ftruncate(fd, 4096)) return 1;"
		            "volatile char *p = mmap(0, 4096, PROT_READ, MAP_SHARED, fd, 0);"
		            "if (ftruncate(fd, 0)) return 1; (void)p[0]" },
		{ "SIGILL", "__builtin_trap()" },
		/* Not 1 / zero, which gcc turns into a comparison. */
		{ "SIGFPE", "volatile int n = 7, zero = 0, r = n / zero; (void)r" },
		{ "SIGABRT", "abort()" },
		/* A stack overflow: caught on the alternate stack the library lends the thread. */
		{ "SIGSEGV", "deep(0)" },
	};
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){ "a", NULL });
	e2e_expect(h, "first a 1 v=1 value=1");
	for (size_t i = 0; i < sizeof crash / sizeof crash[0]; i++) {
		int v = (int)i + 2;
		loader("a.c", v, crash[i].code);
		/* The old build's hr_on_load runs again, with its own version, and it stays live. */
		e2e_expect(h, "load a 1 prev=1");
		e2e_expect_next(h, "update", "update a -125 v=1 value=1 sym=NULL");
		char *filter = t_fmt("[.[] | select(.status == \"refused\" and .version == %d)][0].message"
		                     " | startswith(\"hr_on_load crashed: %s\")", v, crash[i].sig);
		e2e_wait_history(filter, "true");
		free(filter);
	}
	e2e_module("a.c", 9, 0);
	e2e_expect_next(h, "update", "update a 1 v=8 value=9 sym=NULL");
	cr_assert_str_eq(e2e_end_at(h, "stats"), "stats switches=2 refusals=6 crashes=0 reconnects=0");
}

Test(reload, hr_guard_survives_a_crash_in_module_code_and_says_so)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, (const char *const[]){ "--notes", NULL }, (const char *const[]){ "a", NULL });
	e2e_expect(h, "first a 1 v=1 value=1");
	e2e_put("a.c", "int value(void) { return *(volatile int *)8; }\n");
	/* The note comes from the library's thread: before or after the host's line. */
	e2e_expect_all(h, (const char *const[]){ "update a 1 v=2 value=crashed sym=NULL",
	                                         "note crashed error a v2: a v2 crashed: SIGSEGV (Segmentation fault) at address 0x8",
	                                         NULL });
	e2e_module("a.c", 3, 0);
	e2e_expect_next(h, "update", "update a 1 v=3 value=3 sym=NULL");
	cr_assert_str_eq(e2e_end_at(h, "stats"), "stats switches=3 refusals=0 crashes=1 reconnects=0");
}

/* A module that keeps count (of type type) across reloads, and counts its loads in a plain global too. */
static void keeper(int tag, const char *type)
{
	char *src = t_fmt("#include <hotreload.h>\n"
	                  "HR_KEEP(%s, count) = 0;\n"
	                  "int plain = 0;\n"
	                  "int value(void) { return %d * 1000 + (int)count * 10 + plain; }\n"
	                  "int hr_on_load(void *ud, uint64_t prev) { (void)ud; (void)prev; count++; plain++; return 0; }\n",
	                  type, tag);
	e2e_put("a.c", src);
	free(src);
}

Test(reload, hr_keep_globals_survive_a_reload_and_start_afresh_when_their_size_changes)
{
	keeper(1, "int");
	e2e_start_daemon((const char *const[]){ "CFLAGS=-I" HR_SOURCE_DIR "/client", NULL });
	t_proc *h = e2e_host(0, (const char *const[]){ "--notes", NULL }, (const char *const[]){ "a", NULL });
	e2e_expect(h, "first a 1 v=1 value=1011");
	/* count was kept (1, then 2 after this load); plain is new at each build. */
	keeper(2, "int");
	e2e_expect_next(h, "update", "update a 1 v=2 value=2021 sym=NULL");
	keeper(3, "long long");
	e2e_expect_all(h, (const char *const[]){ "update a 1 v=3 value=3011 sym=NULL",
	                                         "note reset warning a v3: a v3: kept global 'count' started afresh: its size changed",
	                                         NULL });
	keeper(4, "long long");
	e2e_expect_next(h, "update", "update a 1 v=4 value=4021 sym=NULL");
	/* Declared const, it is in read-only memory: the build is refused, not the game crashed. */
	e2e_put("a.c", "#include <hotreload.h>\nHR_KEEP(const long long, count) = 5;\n"
	               "int value(void) { return 5000 + (int)count; }\n");
	/* v4's hr_on_load ran again: one more load counted, in both. */
	e2e_expect_next(h, "update", "update a -125 v=4 value=4032 sym=NULL");
	e2e_wait_history("[.[] | select(.status == \"refused\")][0].message | startswith(\"its kept globals could not be written\")",
	                 "true");
}

Test(reload, the_game_runs_on_when_the_daemon_is_killed_and_reconnects_when_it_is_back)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, (const char *const[]){ "--notes", NULL }, (const char *const[]){ "a", NULL });
	e2e_expect(h, "first a 1 v=1 value=1");
	kill(e2e_d.pid, SIGKILL);
	cr_assert(t_wait_gone(e2e_d.pidfd, E2E_WAIT_MS));
	t_daemon_stop(&e2e_d);
	e2e_expect_next(h, "note d", "note disconnected warning - v0: hotreloadd went away: what is live stays live until it is back");
	e2e_start_daemon(NULL);
	e2e_expect_next(h, "note c", "note connected info - v0: reconnected to hotreloadd");
	e2e_module("a.c", 5, 0);
	e2e_expect(h, "value=5 sym=NULL");
	e2e_end_at(h, "reconnects=1");
}

Test(reload, a_lazy_game_starts_before_the_daemon_and_loads_once_it_answers)
{
	/* "-": the socket is looked for going up from the game's folder, at each attempt. */
	const char *args[] = { "--lazy", "--notes", "-", "a", NULL };
	t_proc *h = &e2e_hosts[0];
	cr_assert_eq(t_host_start(h, e2e_dir, args), 0);
	e2e_expect_next(h, "open", "open a v=0 sym=NULL");
	e2e_expect_next(h, "first", "first a 0 v=0 value=-1");
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	e2e_expect_next(h, "note connected", "note connected info - v0: connected to hotreloadd");
	e2e_expect_next(h, "update", "update a 1 v=1 value=1 sym=NULL");
}

Test(reload, notes_carry_the_first_compiler_error_and_the_default_sink_prints_to_stderr)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, (const char *const[]){ "--notes", NULL }, (const char *const[]){ "a", NULL });
	t_proc *quiet = e2e_host(1, NULL, (const char *const[]){ "a", NULL });
	e2e_expect(h, "first a 1 v=1");
	e2e_expect(quiet, "first a 1 v=1");
	e2e_put("a.c", "int value(void) { return 1 }\n");
	const char *note = e2e_expect(h, "note failed");
	cr_assert(strstr(note, "note failed error a v0: a build failed: ") && strstr(note, "a.c:1:"), "%s", note);
	/* The host without --notes keeps the default sink: one line each on its stderr. */
	cr_assert(t_until_in_file(quiet->errpath, "hotreload: a build failed: ", 1, E2E_WAIT_MS),
	          "no failure note on the host's stderr");
	cr_assert(t_file_count(quiet->errpath, "hotreload: a v1 live\n"), "no success note on the host's stderr");
}

/* Every line of h until both a and b said they run version v. */
static void expect_both(t_proc *h, int v)
{
	char *a = t_fmt("update a 1 v=%d value=%d ", v, v), *b = t_fmt("update b 1 v=%d value=%d ", v, v);
	int seen_a = 0, seen_b = 0;
	while (!(seen_a && seen_b)) {
		cr_assert(t_proc_expect(h, "update ", E2E_WAIT_MS), "the host stopped at \"%s\" before v%d of both", h->line, v);
		cr_assert(!strstr(h->line, " -"), "a build was refused: %s", h->line);
		seen_a |= strstr(h->line, a) == h->line;
		seen_b |= strstr(h->line, b) == h->line;
	}
	free(a);
	free(b);
}

Test(reload, two_hundred_builds_while_two_threads_call_hr_update_in_tight_loops)
{
	e2e_module("a.c", 1, 0);
	e2e_module("b.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, (const char *const[]){ "--threads", NULL }, (const char *const[]){ "a", "b", NULL });
	e2e_expect(h, "first b 1 v=1");
	t_peer p;
	cr_assert_eq(t_peer_open(&p, e2e_d.sock), 0);
	for (int m = 0; m < 2; m++) {
		hrp_msg sub = { .type = HRP_SUBSCRIBE, .u.sub = { m ? "b" : "a" } };
		cr_assert_eq(t_peer_send(&p, &sub), 0);
	}
	/* Each save is built (waiting for both builds to be announced before the next), not settled into fewer. */
	for (int v = 2; v <= 101; v++) {
		e2e_module("a.c", v, 0);
		e2e_module("b.c", v, 0);
		for (int got = 0; got != 3;) {
			hrp_msg m;
			int rc = t_peer_next(&p, 1u << HRP_BUILD, NULL, E2E_WAIT_MS, &m);
			if (rc != 0) {
				size_t n = 0;
				char *log = t_read(e2e_d.log, &n);
				cr_assert_fail("no build v%d of %s (%s); the daemon's log ends:\n%s", v, got & 1 ? "b" : "a",
				               strerror(-rc), log ? log + (n > 3000 ? n - 3000 : 0) : "(none)");
			}
			if (m.u.build.version == (uint64_t)v)
				got |= m.u.build.module[0] == 'a' ? 1 : 2;
		}
	}
	t_peer_close(&p);
	expect_both(h, 101);
}

Test(reload, the_window_of_mapped_builds_can_be_none_or_for_ever)
{
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *none = e2e_host(0, (const char *const[]){ "--window", "0", NULL }, (const char *const[]){ "a", NULL });
	t_proc *all = e2e_host(1, (const char *const[]){ "--window", "forever", NULL }, (const char *const[]){ "a", NULL });
	e2e_expect(none, "first a 1 v=1");
	e2e_expect(all, "first a 1 v=1");
	for (int v = 2; v <= 12; v++) {
		e2e_module("a.c", v, 0);
		char *line = t_fmt("update a 1 v=%d value=%d sym=NULL", v, v);
		e2e_expect_next(none, "update", line);
		e2e_expect_next(all, "update", line);
		free(line);
	}
	e2e_wait_reported(12, 2);
	int has;
	cr_assert_eq(e2e_mapped(all->pid, 1, &has), 12, "for ever: every build stays mapped");
	cr_assert_eq(e2e_mapped(none->pid, 12, &has), 1, "a window of 0: only the live build is mapped");
	cr_assert(has);
}

Test(reload, hr_disconnect_returns_when_the_daemon_is_absent_or_stuck)
{
	/* Absent: a lazy client's thread is between attempts. */
	const char *absent[] = { "--lazy", "/nonexistent/hotreloadd.sock", "a", NULL };
	t_proc *h = &e2e_hosts[0];
	cr_assert_eq(t_host_start(h, e2e_dir, absent), 0);
	e2e_expect(h, "first a 0 v=0");
	e2e_end(h);
	/* Stuck: a socket whose listener never accepts; the kernel takes the connection and the HELLO, and no answer comes. */
	char *path = t_fmt("%s/stuck.sock", e2e_dir);
	int fd = hrp_listen(path, 4);
	cr_assert_geq(fd, 0);
	const char *stuck[] = { "--lazy", path, "a", NULL };
	t_proc *s = &e2e_hosts[1];
	cr_assert_eq(t_host_start(s, e2e_dir, stuck), 0);
	e2e_expect(s, "first a 0 v=0");
	e2e_end(s);
	close(fd);
	free(path);
}

Test(reload, a_daemon_back_with_a_new_history_is_followed_even_past_a_refusal)
{
	char *sock = t_fmt("%s/.t.sock", e2e_dir), *other = t_fmt("%s.other", e2e_dir);
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_daemon_stop(&e2e_d);
	t_run r;
	cr_assert_eq(t_daemon_start(&e2e_d, e2e_dir, NULL, (const char *const[]){ "--socket", sock, NULL }, &r), 0, "%s", r.err);
	t_run_free(&r);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){ "a", NULL });
	e2e_expect(h, "first a 1 v=");
	for (int v = 2; v <= 3; v++) {
		e2e_module("a.c", v, 0);
		char *want = t_fmt("value=%d", v);
		e2e_expect(h, want);
		free(want);
	}
	unsigned long live = 0;
	sscanf(strstr(h->line, " v=") + 3, "%lu", &live);
	t_daemon_stop(&e2e_d);
	/* Another state dir: a new database, whose v1 is refused by its hr_on_load. */
	e2e_module("a.c", 10, 1);
	cr_assert_eq(t_daemon_start(&e2e_d, e2e_dir, NULL, (const char *const[]){ "--socket", sock, "--state-dir", other, NULL },
	                            &r), 0, "%s", r.err);
	t_run_free(&r);
	char *refused = t_fmt("update a -125 v=%lu value=3 ", live);
	e2e_expect(h, refused);
	/* Its v2 is newer than the refused v1, whatever the old history's numbers were. */
	e2e_module("a.c", 11, 0);
	e2e_expect_next(h, "update", "update a 1 v=2 value=11 sym=NULL");
	t_rmtree(other);
	free(refused);
	free(other);
	free(sock);
}

Test(reload, a_daemon_that_turns_the_game_away_is_named_in_a_note)
{
	char *path = t_fmt("%s/other.sock", e2e_dir);
	int lfd = hrp_listen(path, 4);
	cr_assert_geq(lfd, 0);
	const char *args[] = { "--lazy", "--notes", path, "a", NULL };
	t_proc *h = &e2e_hosts[0];
	cr_assert_eq(t_host_start(h, e2e_dir, args), 0);
	/* A stand-in that answers the HELLO as a daemon of another protocol version would: at hr_connect_lazy's
	 * attempt, then at its thread's. */
	hrp_reader r = { 0 };
	int fd = -1;
	for (int i = 0; i < 2; i++) {
		struct pollfd p = { lfd, POLLIN, 0 };
		cr_assert_eq(poll(&p, 1, E2E_WAIT_MS), 1, "the game never connected");
		if (fd >= 0)
			close(fd);
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		cr_assert_geq(fd, 0);
		hrp_msg m;
		hrp_reader_free(&r);
		r = (hrp_reader){ 0 };
		cr_assert_eq(hrp_recv(fd, &r, &m, E2E_WAIT_MS), 0);
		cr_assert_eq(m.type, HRP_HELLO);
		hrp_msg e = { .type = HRP_ERROR, .u.error = { HRP_E_VERSION, "protocol version 2 expected" } };
		cr_assert_eq(hrp_send(fd, &e), 0);
	}
	e2e_expect_next(h, "note",
	                "note disconnected warning - v0: hotreloadd does not take this client: protocol version 2 expected");
	hrp_reader_free(&r);
	close(fd);
	close(lfd);
	free(path);
}
