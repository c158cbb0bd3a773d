/* test_conf.c: hotreload.conf end to end: per-module settings, reloads that rebuild only what changed, bad files, exclusions, compile_commands.json. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e.h"

TestSuite(conf, .init = e2e_setup, .fini = e2e_teardown, .timeout = 240);

static void two_modules(void)
{
	e2e_put("a.c", "int value(void) { return BASE; }\n");
	e2e_put("b.c", "int value(void) { return BASE + EXTRA; }\n");
}

Test(conf, project_and_module_settings_build_and_a_change_rebuilds_only_the_modules_it_touches)
{
	e2e_put("hotreload.conf", "# one define for all, one more for b\ndefine = BASE=1\n[b]\ndefine += EXTRA=5\n");
	two_modules();
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", "b", NULL});
	e2e_expect_all(h, (const char *const[]){"first a 1 v=1 value=1", "first b 1 v=1 value=6", NULL});
	e2e_put("hotreload.conf", "define = BASE=1\n[b]\ndefine += EXTRA=7\n");
	e2e_expect(h, "update b 1 v=2 value=8");
	e2e_put("hotreload.conf", "define = BASE=2\n[b]\ndefine += EXTRA=7\n");
	e2e_expect_all(h, (const char *const[]){"update a 1 v=2 value=2", "update b 1 v=3 value=9", NULL});
	/* a built twice, for two settings; b three times */
	e2e_wait_history("map(select(.module == \"a\")) | length", "2");
	e2e_wait_history("map(select(.module == \"b\")) | length", "3");
	char *log = t_read(e2e_d.log, NULL);
	cr_assert(log && strstr(log, "hotreload.conf: read again (hotreload.conf changed)"), "%s", log);
	free(log);
}

Test(conf, a_bad_file_keeps_the_last_good_settings_and_says_where_and_why)
{
	e2e_put("hotreload.conf", "define = BASE=1 EXTRA=2\n");
	two_modules();
	e2e_start_daemon(NULL);
	e2e_wait_history("map(select(.status == \"ok\")) | length", "2");
	e2e_put("hotreload.conf", "define = BASE=1 EXTRA=2\ncflag = -O2\n");
	e2e_wait_cli("status", ".watcher.reason | test(\"hotreload.conf:2: unknown setting 'cflag': did you mean 'cflags'\")",
	             "true");
	/* The daemon goes on with the settings it had: a save builds with them. */
	e2e_put("a.c", "int value(void) { return BASE + EXTRA; }\n");
	e2e_wait_history(".[0] | \"\\(.module) \\(.status) \\(.version)\"", "a ok 2");
	e2e_put("hotreload.conf", "define = BASE=1 EXTRA=2\ncflags = -O2\n");
	e2e_wait_cli("status", ".watcher.reason | test(\"hotreload.conf\")", "false");
}

Test(conf, a_bad_file_stops_a_daemon_from_starting_with_its_line)
{
	e2e_put("hotreload.conf", "cflags = -O2\njobs = lots\n");
	e2e_put("a.c", "int value(void) { return 1; }\n");
	t_run r;
	cr_assert_neq(t_daemon_start(&e2e_d, e2e_dir, NULL, NULL, &r), 0, "it started");
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "hotreload.conf:2: jobs is a number of compilers at once"), "%s", r.err);
	t_run_free(&r);
	e2e_d.pidfd = -1;
}

Test(conf, excluded_files_and_folders_are_not_modules)
{
	e2e_put("hotreload.conf", "exclude = main.c tools/ game/debug.c\n");
	e2e_put("main.c", "int main(void) { return 0; }\n");
	e2e_put("a.c", "int value(void) { return 1; }\n");
	char *tools = t_fmt("%s/tools", e2e_dir), *game = t_fmt("%s/game", e2e_dir);
	cr_assert_eq(mkdir(tools, 0755), 0);
	cr_assert_eq(mkdir(game, 0755), 0);
	free(tools);
	free(game);
	e2e_put("tools/gen.c", "int main(void) { return 0; }\n");
	e2e_put("game/play.c", "int value(void) { return 2; }\n");
	e2e_put("game/debug.c", "this is not C\n");
	e2e_start_daemon(NULL);
	e2e_wait_cli("status", "[.modules[] | \"\\(.module) \\(.status)\"] | join(\",\")", "a ok,game ok");
	/* No longer excluded: main.c is a module again. */
	e2e_put("hotreload.conf", "exclude = tools game/debug.c\n");
	e2e_wait_cli("status", "[.modules[] | .module] | join(\",\")", "a,game,main");
}

Test(conf, the_compiler_is_words_with_no_shell_and_compile_commands_json_has_each_command)
{
	/* A wrapper before the compiler, as ccache gcc would be; quotes keep a word with a blank whole. */
	e2e_put("hotreload.conf", "cc = env \"HR_WORD=two words\" cc\ninclude = include\n[a]\ncflags += -O1\n");
	e2e_put("a.c", "int value(void) { return 3; }\n");
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"a", NULL});
	e2e_expect(h, "first a 1 v=1 value=3");
	char *path = t_fmt("%s/compile_commands.json", e2e_dir);
	cr_assert(t_until_in_file(path, "a.c", 1, E2E_WAIT_MS), "no compile_commands.json");
	char *json = t_read(path, NULL);
	int st;
	char *args = t_jq(json, ".[0].arguments | join(\"|\")", &st);
	cr_expect_str_eq(args, "env|HR_WORD=two words|cc|-fPIC|-g|-O1|-Iinclude|-I" HR_SOURCE_DIR "/client|-c|a.c");
	char *file = t_jq(json, ".[0] | .file == \"\\(.directory)/a.c\"", &st);
	cr_expect_str_eq(file, "true");
	free(args);
	free(file);
	free(json);
	/* Written where the file says, the old one taken away; and none when it says nothing. */
	e2e_put("hotreload.conf", "cc = env \"HR_WORD=two words\" cc\ninclude = include\ncompile_commands = cc.json\n[a]\ncflags += -O1\n");
	char *moved = t_fmt("%s/cc.json", e2e_dir);
	cr_assert(t_until_in_file(moved, "a.c", 1, E2E_WAIT_MS), "not moved");
	cr_assert_neq(access(path, F_OK), 0, "the old compile_commands.json is still there");
	e2e_put("hotreload.conf", "compile_commands =\n");
	cr_assert(t_until_in_file(e2e_d.log, "hotreload.conf: read again", 2, E2E_WAIT_MS));
	e2e_wait_cli("status", ".modules[0].status", "ok");
	cr_assert_neq(access(moved, F_OK), 0, "cc.json is still there with none asked for");
	free(moved);
	free(path);
}

Test(conf, sighup_reads_the_file_again)
{
	e2e_put("hotreload.conf", "define = BASE=1 EXTRA=0\n");
	two_modules();
	e2e_start_daemon(NULL);
	e2e_wait_history("map(select(.status == \"ok\")) | length", "2");
	kill(e2e_d.pid, SIGHUP);
	cr_assert(t_until_in_file(e2e_d.log, "hotreload.conf: read again (SIGHUP)", 1, E2E_WAIT_MS));
}

Test(conf, a_good_build_with_warnings_says_so_and_keeps_them)
{
	e2e_put("hotreload.conf", "cflags = -Wall\n");
	e2e_put("a.c", "int value(void) { int unused; return 1; }\n");
	e2e_start_daemon(NULL);
	e2e_wait_history(".[0] | \"\\(.status) \\(.message)\"", "ok ");
	cr_assert(t_until_in_file(e2e_d.log, "a: v1 built in", 1, E2E_WAIT_MS));
	cr_assert_eq(t_file_count(e2e_d.log, "; 1 warning, the first: a.c:1:"), 1, "the log names the warning");
	e2e_wait_cli("status", ".modules[0].message | test(\"^a.c:1:[0-9]+: warning: unused variable\")", "true");
}

Test(conf, a_module_with_sources_of_its_own_is_built_from_what_its_patterns_match)
{
	e2e_put("hotreload.conf", "[game]\nsources = src/game/*.c src/shared/vec.c\n");
	const char *dirs[] = {"src", "src/game", "src/shared", NULL};
	for (size_t i = 0; dirs[i]; i++) {
		char *p = t_fmt("%s/%s", e2e_dir, dirs[i]);
		cr_assert_eq(mkdir(p, 0755), 0);
		free(p);
	}
	e2e_put("src/game/a.c", "int part(void);\nint vec(void);\nint value(void) { return 10 * vec() + part(); }\n");
	e2e_put("src/game/b.c", "int part(void) { return 1; }\n");
	e2e_put("src/shared/vec.c", "int vec(void) { return 5; }\n");
	e2e_put("src/shared/other.c", "this is not C, and no pattern takes it\n");
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, NULL, (const char *const[]){"game", NULL});
	e2e_expect(h, "first game 1 v=1 value=51");
	e2e_put("src/shared/vec.c", "int vec(void) { return 6; }\n");
	e2e_expect(h, "update game 1 v=2 value=61");
	/* a new file that a pattern takes */
	e2e_put("src/game/c.c", "int part(void);\nint twice(void) { return 2 * part(); }\n");
	e2e_expect(h, "update game 1 v=3 value=61");
	e2e_wait_cli("status", "[.modules[] | .module] | join(\",\")", "game");
}
