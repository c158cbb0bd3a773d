/* test_adopt.c: adding hotreload to an existing game (issue 22): finding the daemon, its include folder, headers beside the host, globals that restart, stop, the state dir in git. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../client/elfvars.h"
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

/* hotreload ARGS... run in dir/cwd without the environment's socket or state dir. */
static t_run cli_in(const char *cwd, const char *const *args)
{
	const char *env[] = {"HOTRELOAD_STATE_DIR=", "HOTRELOAD_SOCKET=", NULL};
	char *where = t_fmt("%s/%s", dir, cwd);
	t_run r = t_cli(where, env, args);
	free(where);
	return r;
}

Test(adopt, stop_ends_the_daemon_and_waits_until_it_is_gone)
{
	mkd("modules");
	put("modules/colors.c", "int f(void) { return 1; }\n");
	char *root = t_fmt("%s/modules", dir);
	start_on(root, NULL);
	t_run r = cli_in("modules", (const char *const[]){"stop", "--json", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	int st;
	char *pid = t_jq(r.out, "select(.stopped == true) | .pid", &st), *want = t_fmt("%d", d.pid);
	cr_assert_str_eq(pid, want, "%s", r.out);
	cr_assert(t_wait_gone(d.pidfd, 0), "the daemon is gone when stop returns");
	struct stat sb;
	cr_assert(stat(d.sock, &sb) < 0, "its socket is removed");
	char *log = t_read(d.log, NULL);
	cr_assert(log && strstr(log, "stopping at the request of uid 0") && strstr(log, "stopped"), "%s", log);
	t_run_free(&r);
	/* Again: no daemon answers. */
	r = cli_in("modules", (const char *const[]){"stop", NULL});
	cr_assert_eq(r.status, 3, "%s", r.err);
	cr_assert(strstr(r.err, "no daemon"), "%s", r.err);
	t_run_free(&r);
	r = cli_in("modules", (const char *const[]){"stop", "extra", NULL});
	cr_assert_eq(r.status, 2, "a usage error: %s", r.err);
	t_run_free(&r);
	free(log);
	free(pid);
	free(want);
	free(root);
}

Test(adopt, stop_is_for_the_daemons_own_user_and_root)
{
	mkd("modules");
	chmod(dir, 0755);
	char *root = t_fmt("%s/modules", dir);
	start_on(root, (const char *const[]){"--allow-uid", "4321", NULL});
	/* a copy of the CLI: that user may not be able to reach the build dir */
	char *bin = t_fmt("%s/hotreload", dir);
	size_t n;
	char *exe = t_read(HR_BUILD_DIR "/hotreload", &n);
	cr_assert(exe && t_write(bin, exe, n) == 0);
	chmod(bin, 0755);
	t_run r = t_exec(dir, NULL, (const char *const[]){"setpriv", "--reuid=4321", "--regid=4321", "--clear-groups", bin,
	                                                  "--socket", d.sock, "stop", NULL});
	cr_assert_eq(r.status, 1, "%s", r.err);
	cr_assert(strstr(r.err, "stop is for the daemon's own user"), "%s", r.err);
	cr_assert(!t_wait_gone(d.pidfd, 0), "the daemon still runs");
	t_run_free(&r);
	free(exe);
	free(bin);
	free(root);
}

/* Wait until `hotreload CMD --json` (in dir/cwd), through jq's filter, prints want. */
static int cli_says(const char *cwd, const char *cmd, const char *arg, const char *filter, const char *want)
{
	for (int i = 0; i < WAIT_MS / 50; i++) {
		t_run r = cli_in(cwd, (const char *const[]){cmd, "--json", arg, NULL});
		int st;
		char *got = r.status == 0 ? t_jq(r.out, filter, &st) : NULL;
		int ok = got && strcmp(got, want) == 0;
		free(got);
		t_run_free(&r);
		if (ok)
			return 1;
		usleep(50 * 1000); /* polling for a condition, under the deadline */
	}
	return 0;
}

Test(adopt, a_module_includes_hotreload_h_whatever_the_daemons_cflags)
{
	mkd("modules");
	put("modules/score.c", "#include <hotreload.h>\nHR_KEEP(int, lines);\nint f(void) { return ++lines; }\n");
	char *root = t_fmt("%s/modules", dir);
	/* No CFLAGS at all, as after a restart from another shell. */
	const char *env[] = {"CFLAGS=", "CPATH=", "C_INCLUDE_PATH=", NULL};
	t_run r;
	cr_assert_eq(t_daemon_start(&d, root, env, NULL, &r), 0, "%s", r.err);
	t_run_free(&r);
	cr_assert(cli_says("modules", "history", "score", ".[0].status", "ok"), "score.c, which uses HR_KEEP, builds");
	char *want = t_fmt("true");
	const char *inc = "-I" HR_SOURCE_DIR "/client";
	char *filter = t_fmt(".command | contains(\"%s\")", inc);
	cr_assert(cli_says("modules", "show", "score", filter, want), "the build's command (its key) names %s", inc);
	char *cc = t_fmt("%s/compile_commands.json", root);
	cr_assert(t_until_in_file(cc, inc, 1, WAIT_MS), "compile_commands.json names it too");
	cr_assert(t_until_in_file(d.log, "modules find <hotreload.h> in " HR_SOURCE_DIR "/client", 1, WAIT_MS));
	free(cc);
	free(filter);
	free(want);
	free(root);
}

/* A game run from its project's root (dir/cwd) with "-" (hr_connect(NULL)) and options, on modules. */
static void game_start(t_proc *h, const char *cwd, const char *const *args)
{
	char *where = t_fmt("%s/%s", dir, cwd);
	cr_assert_eq(t_host_start(h, where, args), 0);
	free(where);
}

Test(adopt, a_game_run_from_the_project_root_finds_the_daemon_of_its_modules_folder)
{
	mkd("game");
	mkd("game/modules");
	mkd("game/assets");
	put("game/modules/colors.c", "int value(void) { return 7; }\n");
	char *root = t_fmt("%s/game/modules", dir);
	start_on(root, NULL);
	t_proc h;
	game_start(&h, "game", (const char *const[]){"-", "colors", NULL});
	cr_assert(t_proc_expect(&h, "first colors 1 v=1 value=7", WAIT_MS), "the game found modules/.hotreload: %s", h.line);
	char *err = NULL;
	t_proc_end(&h, &err);
	free(err);
	/* The CLI, from the same folder, finds the same daemon. */
	t_run r = cli_in("game", (const char *const[]){"status", "--json", NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	int st;
	char *got = t_jq(r.out, ".modules[0].module", &st);
	cr_assert_str_eq(got, "colors");
	free(got);
	t_run_free(&r);
	free(root);
}

/* A socket file bound at path, owned by uid: a daemon's that is not ours. */
static void foreign_socket(const char *rel, unsigned uid)
{
	char *state = t_fmt("%s/%s", dir, rel), *path = t_fmt("%s/hotreloadd.sock", state);
	cr_assert_eq(mkdir(state, 0700), 0);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0, "%s: %s", path, strerror(errno));
	close(fd);
	cr_assert_eq(chown(path, uid, uid), 0);
	cr_assert_eq(chown(state, uid, uid), 0);
	free(path);
	free(state);
}

Test(adopt, with_no_daemon_the_library_says_where_it_looked_and_names_hotreload_socket)
{
	mkd("game");
	mkd("game/other");
	foreign_socket("game/other/.hotreload", 4321);
	t_proc h;
	game_start(&h, "game", (const char *const[]){"-", "colors", NULL});
	cr_assert(t_proc_expect(&h, "connect failed: No such file or directory", WAIT_MS), "%s", h.line);
	char *err = NULL;
	t_proc_end(&h, &err);
	char *want = t_fmt("hotreload: no hotreloadd found (start one, or set HOTRELOAD_SOCKET): looked for "
	                   ".hotreload/hotreloadd.sock in %s/game, the folders directly under it, and those above it; "
	                   "passed over, as not trusted: %s/game/other/.hotreload\n", dir, dir);
	cr_assert(err && strstr(err, want), "want: %s\ngot: %s", want, err);
	free(err);
	/* A lazy game says it as a note, once. */
	game_start(&h, "game", (const char *const[]){"--lazy", "--notes", "-", "colors", NULL});
	cr_assert(t_proc_expect(&h, "set HOTRELOAD_SOCKET", WAIT_MS), "%s", h.line);
	t_proc_end(&h, &err);
	free(err);
	free(want);
}

/* A gameplay module written the way a game's file is: state in file statics. */
static const char gameplay[] = "#include <hotreload.h>\n"
                               "static int bag[7], bag_idx;\n"
                               "int lines;\n"
                               "static int frames;\n"
                               "HR_FRESH(frames);\n"
                               "HR_KEEP(int, score);\n"
                               "int value(void) { frames++; return %d + bag[bag_idx] + lines + score%s; }\n";

Test(adopt, globals_that_restart_at_each_reload_are_named_once_per_set)
{
	mkd("modules");
	char *src = t_fmt(gameplay, 1, "");
	put("modules/gameplay.c", src);
	free(src);
	char *root = t_fmt("%s/modules", dir);
	start_on(root, NULL);
	t_proc h;
	char *sock = strdup(d.sock);
	cr_assert_eq(t_host_start(&h, dir, (const char *const[]){"--notes", sock, "gameplay", NULL}), 0);
	const char *want = "note globals warning gameplay v1: gameplay: 3 globals restart at each reload: bag, bag_idx, "
	                   "lines (HR_KEEP keeps them; HR_FRESH(name) says one is meant to)";
	cr_assert(t_proc_expect(&h, want, WAIT_MS), "at the first load: %s", h.line);
	cr_assert(t_until_in_file(d.log, "gameplay: 3 globals restart at each reload: bag, bag_idx, lines (HR_KEEP", 1,
	                          WAIT_MS), "and the daemon's log says it");
	/* The same set: said no more. Its note would come before the switch's. */
	src = t_fmt(gameplay, 2, "");
	put("modules/gameplay.c", src);
	free(src);
	cr_assert(t_proc_expect(&h, "note loaded info gameplay v2", WAIT_MS), "%s", h.line);
	cr_assert_eq(t_file_count(d.log, "globals restart"), 1);
	/* A new one: said again. */
	src = t_fmt(gameplay, 3, "");
	char *more = t_fmt("%s%s", src, "static int combo;\nint combo_of(void) { return ++combo; }\n");
	put("modules/gameplay.c", more);
	cr_assert(t_proc_expect(&h, "gameplay v3: gameplay: 4 globals restart at each reload: bag, bag_idx, combo, lines",
	                        WAIT_MS), "%s", h.line);
	char *err = NULL;
	t_proc_end(&h, &err);
	free(err);
	free(more);
	free(src);
	free(sock);
	free(root);
}

/* hrc_elfvars on gameplay built by cc (with flags, e.g. "-fdata-sections"): "N: names", or "rc N". */
static char *unkept_of(const char *cc, const char *flags, int strip)
{
	char *src = t_fmt("%s/g.c", dir), *so = t_fmt("%s/g-%s.so", dir, cc), *text = t_fmt(gameplay, 1, "");
	cr_assert_eq(t_write(src, text, strlen(text)), 0);
	char *cmd = t_fmt("%s -shared -fPIC -g %s -I%s/client -o %s %s%s%s", cc, flags, HR_SOURCE_DIR, so, src,
	                  strip ? " && strip " : "", strip ? so : "");
	t_run r = t_exec(dir, NULL, (const char *const[]){"sh", "-c", cmd, NULL});
	cr_assert_eq(r.status, 0, "%s: %s", cmd, r.err);
	t_run_free(&r);
	int fd = open(so, O_RDONLY | O_CLOEXEC);
	char names[256];
	size_t n;
	int rc = hrc_elfvars(fd, names, sizeof names, &n);
	close(fd);
	free(cmd);
	free(text);
	free(so);
	free(src);
	return rc < 0 ? t_fmt("rc %d", rc) : t_fmt("%zu: %s", n, names);
}

Test(adopt, the_globals_that_restart_come_from_the_builds_own_symbol_table)
{
	char *got = unkept_of("cc", "", 0);
	cr_expect_str_eq(got, "3: bag, bag_idx, lines", "the kept, the fresh, the C runtime's and the code are left out");
	free(got);
	got = unkept_of("cc", "-fdata-sections", 0);
	cr_expect_str_eq(got, "3: bag, bag_idx, lines", "each in a section of its own in the object files");
	free(got);
	got = unkept_of("cc", "", 1);
	cr_expect_str_eq(got, "1: lines", "stripped: only what .dynsym has");
	free(got);
	if (access("/usr/bin/clang", X_OK) == 0) {
		got = unkept_of("clang", "", 0);
		cr_expect_str_eq(got, "3: bag, bag_idx, lines");
		free(got);
	}
	/* Not an object: said, never guessed. */
	char *junk = t_fmt("%s/junk", dir);
	cr_assert_eq(t_write(junk, "\177ELF not really", 15), 0);
	int fd = open(junk, O_RDONLY | O_CLOEXEC);
	char names[64];
	size_t n;
	cr_expect_eq(hrc_elfvars(fd, names, sizeof names, &n), -ENOEXEC);
	close(fd);
	free(junk);
}

Test(adopt, a_long_list_is_cut_with_an_ellipsis_but_counted_whole)
{
	char *src = t_fmt("%s/many.c", dir), *so = t_fmt("%s/many.so", dir);
	FILE *f = fopen(src, "w");
	for (int i = 0; i < 50; i++)
		fprintf(f, "int global_number_%02d;\n", i);
	fclose(f);
	t_run r = t_exec(dir, NULL, (const char *const[]){"cc", "-shared", "-fPIC", "-o", so, src, NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	int fd = open(so, O_RDONLY | O_CLOEXEC);
	char names[120];
	size_t n;
	cr_assert_eq(hrc_elfvars(fd, names, sizeof names, &n), 0);
	close(fd);
	cr_expect_eq(n, 50);
	cr_expect(strlen(names) < sizeof names && strstr(names, "global_number_00, ") && strstr(names, "..."), "%s", names);
	free(so);
	free(src);
}

Test(adopt, a_header_beside_the_host_outside_the_root_rebuilds_the_modules_that_read_it)
{
	mkd("game");
	mkd("game/modules");
	put("game/game.h", "#define COLOR 7\n");
	put("game/modules/colors.c", "#include \"../game.h\"\nint value(void) { return COLOR; }\n");
	put("game/modules/score.c", "int value(void) { return 1; }\n");
	char *root = t_fmt("%s/game/modules", dir);
	start_on(root, NULL);
	t_proc h;
	game_start(&h, "game", (const char *const[]){"-", "colors", NULL});
	cr_assert(t_proc_expect(&h, "first colors 1 v=1 value=7", WAIT_MS), "%s", h.line);
	char *want = t_fmt("%s/game", dir);
	cr_assert(cli_says("game", "status", NULL, ".watcher.outside | join(\",\")", want), "status lists %s", want);
	t_run r = cli_in("game", (const char *const[]){"status", NULL});
	char *line = t_fmt("outside  %s (headers that modules read)\n", want);
	cr_assert(strstr(r.out, line), "%s", r.out);
	t_run_free(&r);
	/* Saved as editors do: in place, then through a rename. */
	put("game/game.h", "#define COLOR 8\n");
	cr_assert(t_proc_expect(&h, "update colors 1 v=2 value=8", WAIT_MS), "%s", h.line);
	char *tmp = t_fmt("%s/game/.game.h.swp", dir), *to = t_fmt("%s/game/game.h", dir);
	cr_assert_eq(t_write(tmp, "#define COLOR 9\n", 16), 0);
	cr_assert_eq(rename(tmp, to), 0);
	cr_assert(t_proc_expect(&h, "update colors 1 v=3 value=9", WAIT_MS), "%s", h.line);
	cr_assert(cli_says("game", "history", "score", "length", "1"), "score, which does not read it, is not rebuilt");
	char *err = NULL;
	t_proc_end(&h, &err);
	free(err);
	free(tmp);
	free(to);
	free(line);
	free(want);
	free(root);
}
