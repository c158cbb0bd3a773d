/* test_saves.c: editor-save reliability: every way an editor, a tool or git saves, against every watcher backend. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"

/*
 * Each case below runs once per backend, the same way each time (the tables
 * at the end make one test of each pair: saves/BACKEND_CASE). A case ends
 * when a real host runs the final content, and then the history must hold
 * exactly the builds the save calls for, one new ok row a changed module,
 * and no failed row: a build of a half-written file would show as one or
 * the other. The poll backend looks every 100 ms (a tick is half of it).
 */

#define POLL_MS "100"

static char *aside; /* a folder outside the root: what cp copies from, git's HOME */

static void setup(void)
{
	e2e_setup();
	aside = t_tmpdir();
}

static void teardown(void)
{
	e2e_teardown();
	t_rmtree(aside);
	free(aside);
}

TestSuite(saves, .init = setup, .fini = teardown, .timeout = 120);

/* ROOT/rel, in one of a few static buffers, so that a case has nothing to free. */
static const char *at(const char *rel)
{
	static char buf[4][4096];
	static unsigned i;
	char *b = buf[i++ % 4];
	snprintf(b, sizeof buf[0], "%s/%s", e2e_dir, rel);
	return b;
}

/* The end of the daemon's log, for a failure message: what it saw and did. */
static const char *log_tail(void)
{
	static char tail[8192];
	size_t n = 0;
	char *text = e2e_d.log ? t_read(e2e_d.log, &n) : NULL;
	snprintf(tail, sizeof tail, "\n--- the end of %s ---\n%s", e2e_d.log ? e2e_d.log : "the daemon's log",
	         text ? text + (n > 7000 ? n - 7000 : 0) : "(none)");
	free(text);
	return tail;
}

/* A module whose value() is tag, cut by case_chunked where no prefix compiles. */
static char *source(int tag)
{
	return t_fmt("int value(void)\n{\n\treturn %d;\n}\n", tag);
}

static void put_module(const char *rel, int tag)
{
	char *src = source(tag);
	e2e_put(rel, src);
	free(src);
}

static void expect_content(const char *rel, int tag)
{
	char *want = source(tag), *got = t_read(at(rel), NULL);
	cr_assert(got && strcmp(got, want) == 0, "%s holds \"%s\", not \"%s\"", rel, got, want);
	free(want);
	free(got);
}

static void write_all(int fd, const char *text)
{
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text), "write: %s", strerror(errno));
}

/* A pause inside a save, as a slow writer makes: part of what is done to the file, never a wait for a result. */
static void pause_ms(long ms)
{
	nanosleep(&(struct timespec){ 0, ms * 1000000L }, NULL);
}

/* Skip, saying why, where the fanotify backend cannot run. */
static void need_fanotify(void)
{
	char why[300];
	if (!t_fanotify_unusable(e2e_dir, why, sizeof why))
		return;
	/* A skip shows only in verbose runs: a warning shows in every run. */
	cr_log_warn("%s::%s skipped: %s", criterion_current_suite->name, criterion_current_test->name, why);
	cr_skip_test("%s", why);
}

/* Start the daemon with backend and more options, and check that it uses that backend. */
static void start(const char *backend, const char *const *more)
{
	if (strcmp(backend, "fanotify") == 0)
		need_fanotify();
	const char *args[16] = { "--watcher", backend, "--poll-interval", POLL_MS };
	size_t n = 4;
	for (size_t i = 0; more && more[i] && n < 15; i++)
		args[n++] = more[i];
	args[n] = NULL;
	t_run r;
	int rc = t_daemon_start(&e2e_d, e2e_dir, NULL, args, &r);
	cr_assert_eq(rc, 0, "hotreloadd --watcher %s did not start (exit %d): %s", backend, r.status, r.err);
	t_run_free(&r);
	e2e_wait_cli("status", ".watcher.backend", backend);
}

/* Wait until the history holds n ok rows in all. */
static void wait_ok_rows(int n)
{
	char *want = t_fmt("%d", n);
	e2e_wait_history("map(select(.status == \"ok\")) | length", want);
	free(want);
}

/* Start host 0 on modules, and check each one's first value (tags[i]; -1: not built yet). */
static t_proc *host(const char *const *modules, const int *tags)
{
	t_proc *h = e2e_host(0, NULL, modules);
	for (size_t i = 0; modules[i]; i++) {
		char *prefix = t_fmt("first %s ", modules[i]);
		char *line = tags[i] < 0 ? t_fmt("first %s 0 v=0 value=-1", modules[i])
		                         : t_fmt("first %s 1 v=1 value=%d", modules[i], tags[i]);
		e2e_expect_next(h, prefix, line);
		free(prefix);
		free(line);
	}
	return h;
}

/*
 * Read h's lines until it switched module to a build whose value() is tag
 * (h->line is that line); the version it switched to. A switch of a module
 * named in never (NULL-terminated; NULL for none) on the way fails the test.
 */
static int live(t_proc *h, const char *module, int tag, const char *const *never)
{
	char *prefix = t_fmt("update %s ", module), *value = t_fmt(" value=%d sym=", tag);
	for (;;) {
		cr_assert(t_proc_expect(h, "", E2E_WAIT_MS), "%s never went live with value %d (the host's last line: \"%s\")%s",
		          module, tag, h->line, log_tail());
		for (size_t i = 0; never && never[i]; i++) {
			char *no = t_fmt("update %s ", never[i]);
			int bad = strncmp(h->line, no, strlen(no)) == 0;
			free(no);
			cr_assert(!bad, "the host switched %s, which should not change: \"%s\"%s", never[i], h->line, log_tail());
		}
		if (strncmp(h->line, prefix, strlen(prefix)) == 0 && strstr(h->line, value))
			break;
	}
	int rc = 0, v = 0;
	cr_assert_eq(sscanf(h->line + strlen(prefix), "%d v=%d", &rc, &v), 2, "\"%s\"", h->line);
	cr_assert_eq(rc, 1, "\"%s\"", h->line);
	free(prefix);
	free(value);
	return v;
}

/* Wait until the daemon has nothing building or queued: whatever the save set off has landed. */
static void idle(void)
{
	e2e_wait_cli("status", "\"\\(.queue.building) \\(.queue.queued)\"", "0 0");
}

/* One look at `hotreload history --json` through filter. */
static char *history(const char *filter)
{
	t_run r = t_cli(e2e_dir, NULL, (const char *const[]){ "--state-dir", e2e_d.state, "history", "--json", NULL });
	cr_assert_eq(r.status, 0, "hotreload history: %s", r.err);
	int st;
	char *out = t_jq(r.out, filter, &st);
	t_run_free(&r);
	return out;
}

/* Once the daemon is idle: module's rows, newest first, are want ("STATUS VERSION,..."), and no row failed. */
static void expect_rows(const char *module, const char *want)
{
	idle();
	char *filter = t_fmt("map(select(.module == \"%s\") | \"\\(.status) \\(.version)\") | join(\",\")", module);
	char *got = history(filter);
	cr_assert_str_eq(got, want, "%s's history is \"%s\", not \"%s\"%s", module, got, want, log_tail());
	char *failed = history("map(select(.status == \"failed\") | \"\\(.module): \\(.message)\") | join(\"; \")");
	cr_assert_str_eq(failed, "", "failed builds: %s%s", failed, log_tail());
	free(filter);
	free(got);
	free(failed);
}

static void expect_status(const char *module, const char *want)
{
	char *filter = t_fmt(".modules | map(select(.module == \"%s\") | .status) | join(\",\")", module);
	e2e_wait_cli("status", filter, want);
	free(filter);
}

/* ---- the single saves: m.c goes from value 1 to value 2 ---- */

/* m.c with value 1, the daemon on backend, and a host running it. */
static t_proc *one_module(const char *backend, const char *const *more)
{
	put_module("m.c", 1);
	start(backend, more);
	wait_ok_rows(1);
	return host((const char *const[]){ "m", NULL }, (const int[]){ 1 });
}

/* After a single save of value 2: the host switched once, straight to it, and the history holds one new ok row. */
static void saved_once(t_proc *h)
{
	expect_content("m.c", 2);
	live(h, "m", 2, NULL);
	cr_assert_str_eq(h->line, "update m 1 v=2 value=2 sym=NULL", "not one build of the final content: \"%s\"%s",
	                 h->line, log_tail());
	expect_rows("m", "ok 2,ok 1");
}

static void run(const char *const *argv)
{
	t_run r = t_exec(e2e_dir, NULL, argv);
	cr_assert_eq(r.status, 0, "%s exited %d: %s%s", argv[0], r.status, r.out, r.err);
	t_run_free(&r);
}

/* open(O_WRONLY | O_TRUNC), write, close: most editors, and shell redirections. */
static void case_in_place(const char *backend)
{
	t_proc *h = one_module(backend, NULL);
	char *src = source(2);
	int fd = open(at("m.c"), O_WRONLY | O_TRUNC);
	cr_assert_geq(fd, 0, "%s", strerror(errno));
	write_all(fd, src);
	cr_assert_eq(close(fd), 0);
	free(src);
	saved_once(h);
}

/*
 * Truncated, then written in chunks over 600 ms through the same descriptor.
 * The empty file compiles to no value() and every prefix at a cut fails to
 * compile, so a build of any stage would leave an ok row too many or a
 * failed row; and the verbose log must show that no build started before
 * the writer closed it. Each pause outlasts two poll ticks and a compile,
 * so the poller sees every stage hold still, and a build of one would
 * finish: only the writer's open descriptor may keep the daemon from it.
 */
static void case_chunked(const char *backend)
{
	t_proc *h = one_module(backend, (const char *const[]){ "--verbose", NULL });
	static const char *const chunks[] = { "int val", "ue(void)\n{\n\tret", "urn 2", ";\n", "}\n" };
	int fd = open(at("m.c"), O_WRONLY | O_TRUNC);
	cr_assert_geq(fd, 0, "%s", strerror(errno));
	for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
		pause_ms(120);
		write_all(fd, chunks[i]);
	}
	/* Until the close, any build would have read part of the file: none but the first scan's may have started. */
	int started = t_file_count(e2e_d.log, "m: building (");
	cr_assert_eq(close(fd), 0);
	cr_assert_eq(started, 1, "%d builds started before the writer closed the file%s", started - 1, log_tail());
	saved_once(h);
}

/* A new file written beside the source and renamed over it (gedit's and GLib's temp name, vim's and emacs' way). */
static void case_rename_over(const char *backend)
{
	t_proc *h = one_module(backend, NULL);
	char *src = source(2);
	cr_assert_eq(t_write(at(".goutputstream-T35T"), src, strlen(src)), 0);
	cr_assert_eq(rename(at(".goutputstream-T35T"), at("m.c")), 0, "%s", strerror(errno));
	free(src);
	saved_once(h);
}

/* JetBrains' safe write: X___jb_tmp___ written, X renamed to X___jb_old___, the tmp renamed to X, the old deleted. */
static void case_jetbrains(const char *backend)
{
	t_proc *h = one_module(backend, NULL);
	char *src = source(2);
	cr_assert_eq(t_write(at("m.c___jb_tmp___"), src, strlen(src)), 0);
	cr_assert_eq(rename(at("m.c"), at("m.c___jb_old___")), 0, "%s", strerror(errno));
	cr_assert_eq(rename(at("m.c___jb_tmp___"), at("m.c")), 0, "%s", strerror(errno));
	cr_assert_eq(unlink(at("m.c___jb_old___")), 0, "%s", strerror(errno));
	free(src);
	saved_once(h);
}

/* unlink, then a new file with the same name. */
static void case_delete_recreate(const char *backend)
{
	t_proc *h = one_module(backend, NULL);
	char *src = source(2);
	cr_assert_eq(unlink(at("m.c")), 0);
	int fd = open(at("m.c"), O_WRONLY | O_CREAT | O_EXCL, 0644);
	cr_assert_geq(fd, 0, "%s", strerror(errno));
	write_all(fd, src);
	cr_assert_eq(close(fd), 0);
	free(src);
	saved_once(h);
}

/* The real sed -i: a temp file "sedXXXXXX" beside it, renamed over it. */
static void case_sed_i(const char *backend)
{
	t_proc *h = one_module(backend, NULL);
	run((const char *const[]){ "sed", "-i", "s/return 1;/return 2;/", "m.c", NULL });
	saved_once(h);
}

/* The real cp over it, from outside the root: truncated and written in place. */
static void case_cp(const char *backend)
{
	t_proc *h = one_module(backend, NULL);
	char *src = source(2), *from = t_fmt("%s/m.c", aside);
	cr_assert_eq(t_write(from, src, strlen(src)), 0);
	run((const char *const[]){ "cp", from, "m.c", NULL });
	free(src);
	free(from);
	saved_once(h);
}

/*
 * A real vim saves with backupcopy=mode: yes copies the file to m.c~ and
 * writes it in place; no renames it to m.c~ and writes a new m.c; auto
 * first writes a test file, 4913, to see whether it may do as no does.
 */
static void vim_save(const char *backend, const char *mode)
{
	t_proc *h = one_module(backend, NULL);
	struct stat before, after;
	cr_assert_eq(stat(at("m.c"), &before), 0);
	char *set = t_fmt("set backupcopy=%s", mode);
	/* -u NONE: no vimrc, writebackup on (a backup m.c~ while it writes); -i NONE: no viminfo; backupskip=
	 * because its default skips the backup under /tmp, where vim would then write in place whatever the mode. */
	run((const char *const[]){ "vim", "-u", "NONE", "-i", "NONE", "-es", "-c", "set backupskip=", "-c", set, "-c",
	                           "%s/return 1;/return 2;/", "-c", "wq", "m.c", NULL });
	free(set);
	cr_assert_eq(stat(at("m.c"), &after), 0);
	if (strcmp(mode, "yes") == 0)
		cr_assert_eq(after.st_ino, before.st_ino, "backupcopy=yes writes the file itself");
	if (strcmp(mode, "no") == 0)
		cr_assert_neq(after.st_ino, before.st_ino, "backupcopy=no writes a new file");
	saved_once(h);
}

static void case_vim_backupcopy_yes(const char *backend)
{
	vim_save(backend, "yes");
}

static void case_vim_backupcopy_no(const char *backend)
{
	vim_save(backend, "no");
}

static void case_vim_backupcopy_auto(const char *backend)
{
	vim_save(backend, "auto");
}

/* ---- many modules, bursts, modules that come and go ---- */

#define NGIT 10

static void git(const char *const *args)
{
	const char *argv[24] = { "git", "-c", "user.name=hotreload tests", "-c", "user.email=tests@hotreload.invalid",
	                         "-c", "init.defaultBranch=main", "-c", "advice.detachedHead=false" };
	size_t n = 9;
	for (size_t i = 0; args[i] && n < 23; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	char *home = t_fmt("HOME=%s", aside);
	/* Nothing from the machine's or the user's git settings. */
	const char *env[] = { home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", NULL };
	t_run r = t_exec(e2e_dir, env, argv);
	cr_assert_eq(r.status, 0, "git %s exited %d: %s%s", args[0], r.status, r.out, r.err);
	t_run_free(&r);
	free(home);
}

/*
 * A real git repository in the root, with two branches that differ in ten
 * modules; checking out the other one changes them all at once (git unlinks
 * each file and writes a new one). Each module is built once, and .git, whose
 * files change too, is no module's business.
 */
static void case_git_checkout(const char *backend)
{
	char names[NGIT][8];
	const char *modules[NGIT + 1] = { NULL };
	int tags[NGIT];
	for (int i = 0; i < NGIT; i++) {
		snprintf(names[i], sizeof names[i], "m%d", i);
		modules[i] = names[i];
		tags[i] = 100 + i;
		char *rel = t_fmt("m%d.c", i);
		put_module(rel, tags[i]);
		free(rel);
	}
	git((const char *const[]){ "init", "-q", NULL });
	git((const char *const[]){ "add", "-A", NULL });
	git((const char *const[]){ "commit", "-q", "-m", "main", NULL });
	git((const char *const[]){ "checkout", "-q", "-b", "other", NULL });
	for (int i = 0; i < NGIT; i++) {
		char *rel = t_fmt("m%d.c", i);
		put_module(rel, 200 + i);
		free(rel);
	}
	git((const char *const[]){ "commit", "-q", "-a", "-m", "other", NULL });
	git((const char *const[]){ "checkout", "-q", "main", NULL });
	for (int i = 0; i < NGIT; i++) {
		char *rel = t_fmt("m%d.c", i);
		expect_content(rel, tags[i]);
		free(rel);
	}
	start(backend, NULL);
	wait_ok_rows(NGIT);
	t_proc *h = host(modules, tags);
	git((const char *const[]){ "checkout", "-q", "other", NULL });
	char *wants[NGIT + 1] = { NULL };
	for (int i = 0; i < NGIT; i++)
		wants[i] = t_fmt("update m%d 1 v=2 value=%d sym=NULL", i, 200 + i);
	e2e_expect_all(h, (const char *const *)wants);
	for (int i = 0; i < NGIT; i++) {
		expect_rows(names[i], "ok 2,ok 1");
		free(wants[i]);
	}
	e2e_wait_cli("status", ".modules | map(.module) | join(\",\")", "m0,m1,m2,m3,m4,m5,m6,m7,m8,m9");
}

/*
 * Fifty saves in place within about 100 ms (2 ms apart), each a new value.
 * Not exactly one build: a lone save is built at once, with no delay to wait
 * for more, and a newer save cancels the build in flight, so a build lands in
 * between only when a gap outlasts a compile; on a loaded machine a gap can
 * (the test's own process is descheduled), and the poller may find one stage
 * holding still for a tick. The final content must be live all the same.
 */
static void case_burst(const char *backend)
{
	t_proc *h = one_module(backend, NULL);
	for (int i = 0; i < 50; i++) {
		char *src = source(1000 + i);
		int fd = open(at("m.c"), O_WRONLY | O_TRUNC);
		cr_assert_geq(fd, 0, "%s", strerror(errno));
		write_all(fd, src);
		cr_assert_eq(close(fd), 0);
		free(src);
		if (i < 49)
			pause_ms(2);
	}
	int v = live(h, "m", 1049, NULL);
	idle();
	char *n = history("map(select(.module == \"m\" and .status == \"ok\")) | length");
	int builds = atoi(n) - 1;
	free(n);
	cr_log_info("%s: %d builds for 50 saves", backend, builds);
	cr_assert(builds >= 1 && builds <= 3, "%d ok builds for a burst of 50 saves%s", builds, log_tail());
	cr_assert_eq(v, 1 + builds, "the final content is the newest build (v%d of %d)", v, 1 + builds);
	expect_rows("m", builds == 1 ? "ok 2,ok 1" : builds == 2 ? "ok 3,ok 2,ok 1" : "ok 4,ok 3,ok 2,ok 1");
}

/* A new module file, created while a host waits for it. */
static void case_new_module(const char *backend)
{
	put_module("a.c", 1);
	start(backend, NULL);
	wait_ok_rows(1);
	t_proc *h = host((const char *const[]){ "a", "n", NULL }, (const int[]){ 1, -1 });
	char *src = source(7);
	int fd = open(at("n.c"), O_WRONLY | O_CREAT | O_EXCL, 0644);
	cr_assert_geq(fd, 0, "%s", strerror(errno));
	write_all(fd, src);
	cr_assert_eq(close(fd), 0);
	free(src);
	live(h, "n", 7, (const char *const[]){ "a", NULL });
	cr_assert_str_eq(h->line, "update n 1 v=1 value=7 sym=NULL");
	expect_rows("n", "ok 1");
	expect_rows("a", "ok 1");
}

/* A module file deleted: the daemon says it is gone and builds nothing; the host that runs it goes on, with it. */
static void case_delete_module(const char *backend)
{
	put_module("m.c", 1);
	put_module("k.c", 1);
	start(backend, NULL);
	wait_ok_rows(2);
	t_proc *h = host((const char *const[]){ "m", "k", NULL }, (const int[]){ 1, 1 });
	cr_assert_eq(unlink(at("m.c")), 0);
	expect_status("m", "removed");
	/* The host's loop goes on: it takes a save of k, and never switched m. */
	put_module("k.c", 2);
	live(h, "k", 2, (const char *const[]){ "m", NULL });
	char *maps = t_fmt("/proc/%d/maps", h->pid), *text = t_read(maps, NULL);
	cr_assert(text && strstr(text, "/objects/m.1."), "the host let go of m's build");
	free(maps);
	free(text);
	expect_rows("m", "ok 1");
}

/* mv ROOT/enemy ROOT/boss: a folder module renamed is module boss, built from the files it holds. */
static void case_folder_rename(const char *backend)
{
	cr_assert_eq(mkdir(at("enemy"), 0755), 0);
	e2e_put("enemy/x.c", "int g(void);\nint value(void) { return 10 + g(); }\n");
	e2e_put("enemy/y.c", "int g(void) { return 5; }\n");
	start(backend, NULL);
	wait_ok_rows(1);
	t_proc *h = host((const char *const[]){ "enemy", "boss", NULL }, (const int[]){ 15, -1 });
	cr_assert_eq(rename(at("enemy"), at("boss")), 0, "%s", strerror(errno));
	live(h, "boss", 15, (const char *const[]){ "enemy", NULL });
	cr_assert_str_eq(h->line, "update boss 1 v=1 value=15 sym=NULL");
	expect_rows("boss", "ok 1");
	expect_rows("enemy", "ok 1");
	expect_status("enemy", "removed");
	expect_status("boss", "ok");
}

struct reacted {
	int unchanged, building; /* how many times the log said each before the touch */
};

/* The daemon looked at m since: it found it unchanged, or it started a build or published a v2 (the history shows). */
static int reacted(void *arg)
{
	const struct reacted *r = arg;
	return t_file_count(e2e_d.log, "m: unchanged (") > r->unchanged ||
	       t_file_count(e2e_d.log, "m: building (") > r->building || t_file_count(e2e_d.log, "m: v2 ") > 0;
}

/*
 * A touch (utimensat, no content change) builds nothing. The kernel backends
 * may not report it at all; the poller does (its stamp changed), and the
 * daemon must find the content unchanged, which its verbose log says. Then a
 * save of k, after the touch: once it is live and the daemon is idle,
 * anything the touch set off has landed.
 */
static void case_touch(const char *backend)
{
	put_module("m.c", 1);
	put_module("k.c", 1);
	start(backend, (const char *const[]){ "--verbose", NULL });
	wait_ok_rows(2);
	t_proc *h = host((const char *const[]){ "m", "k", NULL }, (const int[]){ 1, 1 });
	int seen = t_file_count(e2e_d.log, "m: unchanged (");
	struct stat before, after;
	cr_assert_eq(stat(at("m.c"), &before), 0);
	cr_assert_eq(utimensat(AT_FDCWD, at("m.c"), NULL, 0), 0, "%s", strerror(errno)); /* now, as touch does */
	cr_assert_eq(stat(at("m.c"), &after), 0);
	cr_assert(after.st_mtim.tv_sec != before.st_mtim.tv_sec || after.st_mtim.tv_nsec != before.st_mtim.tv_nsec,
	          "the touch left the time as it was");
	if (strcmp(backend, "poll") == 0) {
		struct reacted r = { seen, t_file_count(e2e_d.log, "m: building (") };
		cr_assert(t_until(reacted, &r, E2E_WAIT_MS), "the poller never reported the touch%s", log_tail());
	}
	put_module("k.c", 2);
	live(h, "k", 2, (const char *const[]){ "m", NULL });
	expect_rows("m", "ok 1");
	expect_rows("k", "ok 2,ok 1");
}

/* ---- the tables: every case against every backend ---- */

#define BACKENDS(X, c) X(inotify, c) X(fanotify, c) X(poll, c)

#define CASES(X)                                                                                                       \
	X(in_place)                                                                                                    \
	X(chunked)                                                                                                     \
	X(rename_over)                                                                                                 \
	X(jetbrains)                                                                                                   \
	X(delete_recreate)                                                                                             \
	X(sed_i)                                                                                                       \
	X(cp)                                                                                                          \
	X(git_checkout)                                                                                                \
	X(burst)                                                                                                       \
	X(new_module)                                                                                                  \
	X(delete_module)                                                                                               \
	X(folder_rename)                                                                                               \
	X(vim_backupcopy_yes)                                                                                          \
	X(vim_backupcopy_no)                                                                                           \
	X(vim_backupcopy_auto)                                                                                         \
	X(touch)

#define ONE(backend, c)                                                                                                \
	Test(saves, backend##_##c)                                                                                     \
	{                                                                                                              \
		case_##c(#backend);                                                                                    \
	}
#define EVERY_BACKEND(c) BACKENDS(ONE, c)

CASES(EVERY_BACKEND)
