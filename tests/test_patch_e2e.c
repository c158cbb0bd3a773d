/* test_patch_e2e.c: program patching end to end: the real daemon (--patch), real cc, a real program built with the contract's flags calling hr_open_program and hr_update each frame. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../client/hotreload.h"
#include "e2e.h"

/* The program lives in ROOT/prog: its units are inside the daemon's root, and never built as modules. */
static char *prog;

/* One frame's line. */
typedef struct frame {
	long f, u, v, game, value, cb, other;
} frame;

/* The notes the programs printed, for the tests to look in. */
static char notes[8192];

/* The last frame read of each program. */
static frame seen[2];

static void setup(void)
{
	e2e_setup();
	prog = t_fmt("%s/prog", e2e_dir);
	cr_assert_eq(mkdir(prog, 0755), 0);
}

static void teardown(void)
{
	e2e_teardown();
	free(prog);
	memset(seen, 0, sizeof seen);
	notes[0] = '\0';
}

TestSuite(patche2e, .init = setup, .fini = teardown, .timeout = 180);

typedef struct cfg {
	const char *cc, *opt;
} cfg;

static const cfg GCC_O0 = {"gcc", "-O0"}, GCC_O2 = {"gcc", "-O2"}, CLANG_O0 = {"clang", "-O0"}, CLANG_O2 = {"clang", "-O2"};

#define NEEDS(c)                                                                 \
	do {                                                                     \
		if (!t_have((c)->cc)) {                                            \
			cr_log_info("%s not installed: skipped", (c)->cc);       \
			return;                                                  \
		}                                                                \
	} while (0)

/*
 * The program's frame loop (main.c, never saved): each frame hr_update, then one line of what its functions return.
 * cb is a function pointer taken before any patch; notes come through the sink, on the library's thread.
 */
static const char *MAIN =
	"#include <signal.h>\n#include <stdio.h>\n#include <string.h>\n#include <unistd.h>\n#include <hotreload.h>\n"
	"int game(void); int value(void); int other(void);\n"
	"static int (*cb)(void);\n"
	"static volatile sig_atomic_t stop;\n"
	"static void on_term(int s) { (void)s; stop = 1; }\n"
	"static void sink(const hr_note *n, void *arg) { (void)arg; printf(\"note %d %s\\n\", n->kind, n->text); fflush(stdout); }\n"
	"static void frame(hr_module *m, unsigned long f) {\n"
	"	int u = hr_update(m);\n"
	"	int g = game(), v = value(), c = cb(), o = other();\n"
	"	printf(\"f=%lu u=%d v=%llu game=%d value=%d cb=%d other=%d\\n\", f, u, (unsigned long long)hr_version(m), g, v, c, o);\n"
	"	fflush(stdout);\n}\n"
	"int main(int argc, char **argv) {\n"
	"	struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_term; sigaction(SIGTERM, &sa, NULL);\n"
	"	cb = value;\n"
	"	hr_client *c = hr_connect(argc > 1 ? argv[1] : NULL);\n"
	"	if (!c) { printf(\"connect: %m\\n\"); return 1; }\n"
	"	hr_set_note_sink(c, sink, NULL);\n"
	"	hr_module *m = hr_open_program(c);\n"
	"	if (!m) { printf(\"open: %s\\n\", hr_last_error()); return 1; }\n"
	"	for (unsigned long f = 0; !stop; f++) { frame(m, f); usleep(20000); }\n"
	"	hr_close(m);\n	hr_disconnect(c);\n	printf(\"bye\\n\");\n	return 0;\n}\n";

/* game.c: a static counter (game), value() = TAG * 100 + TUNE, a global table of `table` ints. */
static char *game_src(int tag, int table)
{
	return t_fmt("#include \"tune.h\"\n"
	             "static int counter;\n"
	             "int table[%d];\n"
	             "static int bump(void) { table[0]++; return ++counter; }\n"
	             "int game(void) { return bump(); }\n"
	             "int value(void) { return %d * 100 + TUNE; }\n",
	             table, tag);
}

/* Functions other.c carries besides other(), so that its compile takes longer than game.c's (0: none). */
static int ballast;

static char *other_src(int tag)
{
	char *src = t_fmt("#include \"tune.h\"\nint other(void) { return %d * 100 + TUNE; }\n", tag);
	for (int i = 0; i < ballast; i++) {
		char *more = t_fmt("%sint other%d(int x);\nint other%d(int x) { return x %% %d + TUNE; }\n", src, i, i, i + 7);
		free(src);
		src = more;
	}
	return src;
}

static void put(const char *rel, char *text)
{
	char *p = t_fmt("prog/%s", rel);
	e2e_put(p, text);
	free(p);
	free(text);
}

static void save_game(int tag, int table)
{
	put("game.c", game_src(tag, table));
}

static char *unit(const char *name)
{
	return t_fmt("%s/%s", prog, name);
}

/* The command the build compiles name with: the contract's flags, as hotreload-patch(-clang).pc gives them. */
static char *command(const cfg *c, const char *name)
{
	const char *flags = t_patch_cflags(c->cc);
	char base[64];
	snprintf(base, sizeof base, "%.*s", (int)(strrchr(name, '.') - name), name);
	return t_fmt("%s %s %s -Wall -I%s/client -c %s -o %s.o", c->cc, flags, c->opt, HR_SOURCE_DIR, name, base);
}

static void sh(const char *cmd)
{
	t_run r = t_exec(prog, NULL, (const char *const[]){"sh", "-c", cmd, NULL});
	cr_assert_eq(r.status, 0, "%s: %s", cmd, r.err);
	t_run_free(&r);
}

/* Write the program's sources, build it as its build would, and write its compile_commands.json with those commands. */
static void build(const cfg *c)
{
	put("tune.h", strdup("#define TUNE 1\n"));
	put("main.c", strdup(MAIN));
	save_game(1, 4);
	put("other.c", other_src(1));
	const char *units[] = {"main.c", "game.c", "other.c"};
	char *db = strdup("[\n");
	for (size_t i = 0; i < 3; i++) {
		char *cmd = command(c, units[i]);
		sh(cmd);
		char *more = t_fmt("%s {\"directory\": \"%s\", \"file\": \"%s\", \"command\": \"%s\"}%s\n", db, prog, units[i],
		                   cmd, i < 2 ? "," : "");
		free(db);
		free(cmd);
		db = more;
	}
	char *all = t_fmt("%s]\n", db);
	free(db);
	put("compile_commands.json", all);
	/* a sanitized library (make test-san, test-tsan) needs its own compiler's runtime: gcc's, whatever compiled the units */
	char *link = t_fmt("%s %s -o game main.o game.o other.o -L%s -lhotreload -ldl -lpthread -Wl,-rpath,%s",
	                   *t_lib_san() ? "gcc" : c->cc, t_lib_san(), t_lib_dir(), t_lib_dir());
	sh(link);
	free(link);
}

/* The daemon on the root, with --patch on the program's database (conf: through hotreload.conf instead). */
static void start_daemon(int conf)
{
	char *db = t_fmt("%s/compile_commands.json", prog);
	const char *args[] = {"--log-level", "debug", conf ? NULL : "--patch", db, NULL};
	t_run r;
	int rc = t_daemon_start(&e2e_d, e2e_dir, NULL, args, &r);
	cr_assert_eq(rc, 0, "hotreloadd did not start (exit %d): %s", r.status, r.err);
	t_run_free(&r);
	free(db);
	/* each unit is compiled once as built, to learn the headers it reads: saves are followed from then on */
	cr_assert(t_until_in_file(e2e_d.log, "as built", 3, E2E_WAIT_MS), "the units were not compiled as built");
}

static t_proc *run_program(int i)
{
	char *exe = t_fmt("%s/game", prog);
	t_proc *h = &e2e_hosts[i];
	cr_assert_eq(t_proc_start(h, prog, (const char *const[]){"HOTRELOAD_SOCKET=", NULL},
	                          (const char *const[]){exe, e2e_d.sock, NULL}),
	             0, "cannot start the program");
	free(exe);
	return h;
}


/* The next frame of h (notes before it are kept in notes). */
static frame next_frame(t_proc *h)
{
	for (;;) {
		cr_assert(t_proc_expect(h, "", E2E_WAIT_MS), "the program stopped (last line: \"%s\")", h->line);
		cr_assert(strncmp(h->line, "open:", 5) && strncmp(h->line, "connect:", 8), "%s", h->line);
		if (strncmp(h->line, "note ", 5) == 0) {
			size_t n = strlen(notes);
			snprintf(notes + n, sizeof notes - n, "%s\n", h->line);
			continue;
		}
		frame fr;
		if (sscanf(h->line, "f=%ld u=%ld v=%ld game=%ld value=%ld cb=%ld other=%ld", &fr.f, &fr.u, &fr.v, &fr.game,
		           &fr.value, &fr.cb, &fr.other) == 7)
			return seen[h - e2e_hosts] = fr;
	}
}

static long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Frames of h until one whose hr_update returned nonzero (within the deadline); the frame before it in *prev. */
static frame next_update(t_proc *h, frame *prev)
{
	long end = now_ms() + E2E_WAIT_MS;
	for (;;) {
		frame last = seen[h - e2e_hosts], fr = next_frame(h);
		if (fr.u != 0) {
			if (prev)
				*prev = last;
			return fr;
		}
		cr_assert_lt(now_ms(), end, "no hr_update returned nonzero (last line: \"%s\")", h->line);
	}
}

/* Frames of h until one where value() returns want (within the deadline). */
static frame until_value(t_proc *h, long want)
{
	long end = now_ms() + E2E_WAIT_MS;
	for (;;) {
		frame fr = next_frame(h);
		if (fr.value == want)
			return fr;
		cr_assert_lt(now_ms(), end, "value() never returned %ld (last line: \"%s\")", want, h->line);
	}
}

/* A saved unit goes live at the next hr_update: 1 then 0, hr_version counts, the counter keeps counting, cb follows. */
static void saved_unit_goes_live(const cfg *c)
{
	NEEDS(c);
	build(c);
	start_daemon(0);
	t_proc *h = run_program(0);
	frame fr = until_value(h, 101);
	cr_expect_eq(fr.v, 0);
	cr_expect_eq(fr.cb, 101);
	for (int tag = 2; tag <= 3; tag++) {
		save_game(tag, 4);
		frame prev, up = next_update(h, &prev);
		cr_assert_eq(up.u, 1, "%s %s: hr_update returned %ld", c->cc, c->opt, up.u);
		cr_expect_eq(up.v, tag - 1, "hr_version %ld after %d patches", up.v, tag - 1);
		cr_expect_eq(prev.value, (tag - 1) * 100 + 1);
		cr_expect_eq(up.value, tag * 100 + 1, "%s %s: value() %ld after the patch", c->cc, c->opt, up.value);
		cr_expect_eq(up.cb, tag * 100 + 1, "%s %s: the pointer taken before reached %ld", c->cc, c->opt, up.cb);
		cr_expect_eq(up.game, prev.game + 1, "%s %s: the static counter went from %ld to %ld", c->cc, c->opt,
		             prev.game, up.game);
		frame after = next_frame(h);
		cr_expect_eq(after.u, 0, "the next hr_update returned %ld", after.u);
		cr_expect_eq(after.v, tag - 1);
		cr_expect_eq(after.game, up.game + 1);
		cr_expect_eq(after.value, tag * 100 + 1);
	}
	char *u = unit("game.c");
	char *filter = t_fmt("[.[] | select(.module == \"%s\") | .status] | join(\",\")", u);
	e2e_wait_history(filter, "ok,ok");
	free(filter);
	free(u);
}

Test(patche2e, a_saved_unit_goes_live_gcc_O0)
{
	saved_unit_goes_live(&GCC_O0);
}

Test(patche2e, a_saved_unit_goes_live_gcc_O2)
{
	saved_unit_goes_live(&GCC_O2);
}

Test(patche2e, a_saved_unit_goes_live_clang_O0)
{
	saved_unit_goes_live(&CLANG_O0);
}

Test(patche2e, a_saved_unit_goes_live_clang_O2)
{
	saved_unit_goes_live(&CLANG_O2);
}

/* Frames of h until a note that contains want was printed (within the deadline). */
static void until_note(t_proc *h, const char *want)
{
	long end = now_ms() + E2E_WAIT_MS;
	while (!strstr(notes, want)) {
		next_frame(h);
		cr_assert_lt(now_ms(), end, "no note said \"%s\"; the notes:\n%s", want, notes);
	}
}

/* The history's rows of a unit of the program, newest first, through a jq filter over them (. is the array). */
static void wait_unit_history(const char *name, const char *filter, const char *want)
{
	char *u = unit(name);
	char *f = t_fmt("[.[] | select(.module == \"%s\")] | %s", u, filter);
	e2e_wait_history(f, want);
	free(f);
	free(u);
}

Test(patche2e, a_compile_error_leaves_the_program_running_and_the_next_good_save_goes_live)
{
	build(&GCC_O0);
	start_daemon(0);
	t_proc *h = run_program(0);
	until_value(h, 101);
	put("game.c", strdup("#include \"tune.h\"\nint game(void) { return 1 }\n"));
	/* history: the failed row, with file:line:col */
	wait_unit_history("game.c", ".[0].status + \" \" + (.[0].message | test(\"^game\\\\.c:2:[0-9]+: error\") | tostring)",
	                  "failed true");
	/* the HUD: a FAILED note (kind 2) naming the unit and where */
	char *want = t_fmt("note %d ", HR_NOTE_FAILED);
	until_note(h, want);
	free(want);
	cr_expect(strstr(notes, "/prog/game.c") && strstr(notes, "game.c:2:"), "%s", notes);
	/* the program runs on, unpatched */
	frame fr = next_frame(h), fr2 = next_frame(h);
	cr_expect(fr.u == 0 && fr.value == 101 && fr.v == 0 && fr2.game == fr.game + 1, "%s", h->line);
	save_game(2, 4);
	frame up = next_update(h, NULL);
	cr_expect_eq(up.u, 1);
	cr_expect_eq(up.value, 201);
	cr_expect_eq(up.v, 1);
}

Test(patche2e, a_size_change_is_refused_and_the_program_runs_on_the_old_code)
{
	build(&GCC_O0);
	start_daemon(0);
	t_proc *h = run_program(0);
	until_value(h, 101);
	save_game(2, 8); /* table: 4 ints to 8 */
	frame up = next_update(h, NULL);
	cr_expect_lt(up.u, 0, "hr_update returned %ld for a refused patch", up.u);
	cr_expect_eq(up.value, 101, "the refused patch's code runs");
	cr_expect_eq(up.v, 0);
	frame fr = next_frame(h);
	cr_expect(fr.u == 0 && fr.value == 101 && fr.game == up.game + 1, "%s", h->line);
	/* REFUSED reached the daemon: a refused row whose reason names the variable */
	wait_unit_history("game.c", "[.[] | select(.status == \"refused\") | .message | test(\"'table'\")] | any | tostring",
	                  "true");
	char *want = t_fmt("note %d ", HR_NOTE_REFUSED);
	until_note(h, want);
	free(want);
	cr_expect(strstr(notes, "table"), "%s", notes);
}

/* A header that both game.c and other.c read: both patched in one hr_update. */
static void shared_header(const cfg *c)
{
	NEEDS(c);
	ballast = 1000; /* other.c's patch comes well after game.c's, unless the daemon holds game.c's back */
	build(c);
	start_daemon(0);
	t_proc *h = run_program(0);
	until_value(h, 101);
	put("tune.h", strdup("#define TUNE 2\n"));
	frame prev, up = next_update(h, &prev);
	cr_expect_eq(up.u, 1);
	cr_expect(prev.value == 101 && prev.other == 101, "before: value %ld other %ld", prev.value, prev.other);
	cr_expect(up.value == 102 && up.other == 102, "%s %s: the units were not patched together: value %ld other %ld",
	          c->cc, c->opt, up.value, up.other);
	cr_expect_eq(up.v, 2, "two units patched: hr_version %ld", up.v);
	frame fr = next_frame(h);
	cr_expect(fr.u == 0 && fr.value == 102 && fr.other == 102, "%s", h->line);
}

Test(patche2e, a_header_shared_by_two_units_patches_both_in_one_update_gcc)
{
	shared_header(&GCC_O0);
}

Test(patche2e, a_header_shared_by_two_units_patches_both_in_one_update_clang_O2)
{
	shared_header(&CLANG_O2);
}

Test(patche2e, two_processes_of_the_program_each_apply_every_patch)
{
	build(&GCC_O2);
	start_daemon(0);
	t_proc *h[2] = {run_program(0), run_program(1)};
	for (int i = 0; i < 2; i++)
		until_value(h[i], 101);
	for (int tag = 2; tag <= 3; tag++) {
		save_game(tag, 4);
		for (int i = 0; i < 2; i++) {
			frame up = next_update(h[i], NULL);
			cr_expect(up.u == 1 && up.value == tag * 100 + 1 && up.v == tag - 1, "program %d: %s", i, h[i]->line);
		}
	}
}

Test(patche2e, a_program_started_after_a_save_applies_the_newest_patch_unless_it_is_newer)
{
	build(&GCC_O0);
	start_daemon(0);
	save_game(2, 4);
	wait_unit_history("game.c", ".[0].status", "ok");
	save_game(3, 4);
	wait_unit_history("game.c", ".[0].status + \" \" + (.[0].version | tostring)", "ok 2");
	t_proc *h = run_program(0);
	frame fr = until_value(h, 301);
	cr_expect(fr.u == 1 && fr.v == 1, "the newest patch came as one update: %s", h->line);
	/* an executable built after the patch: its code is newer, the patch is not applied */
	char *exe = t_fmt("%s/game", prog);
	cr_assert_eq(utimensat(AT_FDCWD, exe, NULL, 0), 0);
	free(exe);
	t_proc *late = run_program(1);
	until_value(late, 101);
	/* a save after it is applied; the older patch of game.c would have come before it */
	put("other.c", other_src(2));
	frame up = next_update(late, NULL);
	cr_expect(up.u == 1 && up.other == 201 && up.value == 101 && up.v == 1, "%s", late->line);
	up = next_update(h, NULL);
	cr_expect(up.u == 1 && up.other == 201 && up.value == 301 && up.v == 2, "%s", h->line);
}

Test(patche2e, a_rollback_with_the_cli_puts_the_old_code_back_live)
{
	build(&GCC_O0);
	start_daemon(0);
	t_proc *h = run_program(0);
	until_value(h, 101);
	save_game(2, 4);
	cr_expect_eq(next_update(h, NULL).value, 201);
	save_game(3, 4);
	cr_expect_eq(next_update(h, NULL).value, 301);
	char *u = unit("game.c");
	t_run r = t_cli(e2e_dir, NULL, (const char *const[]){"--state-dir", e2e_d.state, "--socket", e2e_d.sock, "rollback", u, NULL});
	cr_assert_eq(r.status, 0, "hotreload rollback %s: %s%s", u, r.out, r.err);
	t_run_free(&r);
	free(u);
	frame prev, up = next_update(h, &prev);
	cr_expect_eq(prev.value, 301);
	cr_expect(up.u == 1 && up.value == 201 && up.cb == 201 && up.v == 3, "after the rollback: %s", h->line);
	cr_expect_eq(up.game, prev.game + 1, "the counter kept counting through the rollback");
}

Test(patche2e, patch_in_hotreload_conf_works_as_the_option_does)
{
	build(&GCC_O2);
	e2e_put("hotreload.conf", "patch = prog/compile_commands.json\n");
	start_daemon(1);
	t_proc *h = run_program(0);
	until_value(h, 101);
	save_game(2, 4);
	frame up = next_update(h, NULL);
	cr_expect(up.u == 1 && up.value == 201 && up.v == 1, "%s", h->line);
}

Test(patche2e, a_program_started_after_a_saved_header_applies_both_units_in_its_first_update)
{
	ballast = 1000;
	build(&GCC_O0);
	start_daemon(0);
	put("tune.h", strdup("#define TUNE 2\n"));
	wait_unit_history("other.c", ".[0].status", "ok");
	wait_unit_history("game.c", ".[0].status", "ok");
	t_proc *h = run_program(0);
	frame up = next_update(h, NULL);
	cr_expect(up.u == 1 && up.value == 102 && up.other == 102 && up.v == 2, "the first update: %s", h->line);
}

/* prog/mycc, the compiler of the database's commands: gcc, told apart by gen; written over in place, another compiler. */
static void unit_compiler(int gen)
{
	char *path = unit("mycc"), *script = t_fmt("#!/bin/sh\n# generation %d\nexec gcc \"$@\"\n", gen);
	cr_assert_eq(t_write(path, script, strlen(script)), 0);
	cr_assert_eq(chmod(path, 0755), 0);
	free(path);
	free(script);
}

Test(patche2e, a_unit_saved_back_to_content_built_by_a_compiler_since_changed_is_compiled_again)
{
	build(&GCC_O0);
	/* The database names the compiler relative to the unit's directory, where it runs. */
	unit_compiler(1);
	sh("sed -i 's|\"command\": \"gcc |\"command\": \"./mycc |' compile_commands.json");
	start_daemon(0);
	t_proc *h = run_program(0);
	until_value(h, 101);
	save_game(2, 4);
	cr_expect_eq(next_update(h, NULL).value, 201);
	save_game(3, 4);
	cr_expect_eq(next_update(h, NULL).value, 301);
	unit_compiler(2);
	save_game(2, 4);
	cr_expect_eq(next_update(h, NULL).value, 201);
	wait_unit_history("game.c", "map(.status) | join(\",\")", "ok,ok,ok");
}
