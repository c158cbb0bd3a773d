/* test_config.c: hotreload.conf's parser: settings, scopes, words, and a clear file:line for each mistake. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../daemon/config.h"
#include "util.h"

static int join(void *arg, const char *word)
{
	char *all = arg;
	size_t n = strlen(all);
	snprintf(all + n, 512 - n, "%s[%s]", n ? " " : "", word);
	return 0;
}

static const char *words(const hrd_config *c, const char *module, enum hrd_key k)
{
	static char all[512];
	all[0] = '\0';
	hrd_config_words(c, module, k, join, all);
	return all;
}

static void parse_ok(const char *text, hrd_config *c)
{
	char err[512] = "";
	cr_assert_eq(hrd_config_parse(text, strlen(text), "hotreload.conf", c, err, sizeof err), 0, "%s", err);
}

static void parse_fails(const char *text, const char *want)
{
	char err[512] = "";
	hrd_config c;
	cr_expect_eq(hrd_config_parse(text, strlen(text), "hotreload.conf", &c, err, sizeof err), -1, "accepted: %s", text);
	cr_expect(strstr(err, want), "for \"%s\": \"%s\" has no \"%s\"", text, err, want);
	cr_expect_eq(c.nmods, 0, "a failed parse leaves nothing");
}

Test(config, project_and_module_scopes_set_and_add)
{
	hrd_config c;
	parse_ok("# the project\n"
	         "cc = ccache gcc\n"
	         "cflags = -O0 -Wall   # a comment after the words\n"
	         "cflags += -Wextra\n"
	         "include = include ../engine\n"
	         "define = DEBUG NAME=\"two words\" HASH=a#b\n"
	         "libs = -lm\n"
	         "exclude = main.c tools/\n"
	         "jobs = 3\n"
	         "keep = 300\n"
	         "compile_commands = build/compile_commands.json\n"
	         "patch = ../game/build/compile_commands.json\n"
	         "\n"
	         "[physics]\n"
	         "  cflags += -O2\n"
	         "libs = -lpthread\n"
	         "[ ai ]  # spaces inside the brackets\n"
	         "cflags = -O3\n"
	         "[physics]\n"
	         "ldflags += -Wl,-z,now\r\n",
	         &c);
	cr_expect_str_eq(words(&c, NULL, HRD_CC), "[ccache] [gcc]");
	cr_expect_str_eq(words(&c, NULL, HRD_CFLAGS), "[-O0] [-Wall] [-Wextra]");
	cr_expect_str_eq(words(&c, "physics", HRD_CFLAGS), "[-O0] [-Wall] [-Wextra] [-O2]");
	cr_expect_str_eq(words(&c, "ai", HRD_CFLAGS), "[-O3]", "a module's '=' replaces the project's words, += too");
	cr_expect_str_eq(words(&c, "other", HRD_CFLAGS), "[-O0] [-Wall] [-Wextra]");
	cr_expect_str_eq(words(&c, "physics", HRD_LIBS), "[-lpthread]");
	cr_expect_str_eq(words(&c, "physics", HRD_LDFLAGS), "[-Wl,-z,now]");
	cr_expect_str_eq(words(&c, NULL, HRD_DEFINE), "[DEBUG] [NAME=two words] [HASH=a#b]");
	cr_expect_str_eq(words(&c, NULL, HRD_INCLUDE), "[include] [../engine]");
	cr_expect_eq(c.jobs, 3);
	cr_expect_eq(c.keep, 300);
	cr_expect_str_eq(c.compile_commands, "build/compile_commands.json");
	cr_expect_str_eq(c.patch, "../game/build/compile_commands.json");
	cr_expect(hrd_config_excluded(&c, "main.c"));
	cr_expect(hrd_config_excluded(&c, "tools"));
	cr_expect(hrd_config_excluded(&c, "tools/gen.c"));
	cr_expect(!hrd_config_excluded(&c, "toolsx.c"));
	cr_expect(!hrd_config_excluded(&c, "main.cc"));
	cr_expect_eq(c.nmods, 2, "a second [physics] goes on with the first");
	hrd_config_free(&c);
}

Test(config, empty_and_quoted)
{
	hrd_config c;
	parse_ok("", &c);
	cr_expect_str_eq(words(&c, "x", HRD_CFLAGS), "");
	cr_expect_null(c.compile_commands, "unset: the default");
	hrd_config_free(&c);
	parse_ok("compile_commands =\ncflags = \"-DQ=\\\"q\\\"\" \"\"\n", &c);
	cr_expect_str_eq(c.compile_commands, "", "set to nothing: none written");
	cr_expect_str_eq(words(&c, NULL, HRD_CFLAGS), "[-DQ=\"q\"] []");
	hrd_config_free(&c);
}

Test(config, each_mistake_names_its_line_and_what_to_do)
{
	parse_fails("cflags = -O2\ncflag = -g\n", "hotreload.conf:2: unknown setting 'cflag': did you mean 'cflags'?");
	parse_fails("colour = red\n", "hotreload.conf:1: unknown setting 'colour': the settings are cc");
	parse_fails("\n\ncflags -O2\n", "hotreload.conf:3: expected 'setting = value'");
	parse_fails("[physics\n", "hotreload.conf:1: a section is one module's name in brackets");
	parse_fails("[phys ics]\n", "[phys ics] is not a module name");
	parse_fails("[physics]\nexclude = x\n", "hotreload.conf:2: 'exclude' is a setting of the whole project");
	parse_fails("jobs = many\n", "jobs is a number of compilers at once, from 1 to 256");
	parse_fails("jobs = 0\n", "from 1 to 256");
	parse_fails("jobs += 2\n", "'jobs' takes one value");
	parse_fails("patch = a.json b.json\n", "hotreload.conf:1: patch is one path: the program's compile_commands.json");
	parse_fails("[m]\npatch = a.json\n", "hotreload.conf:2: 'patch' is a setting of the whole project");
	parse_fails("keep = 0\n", "hotreload.conf:1: keep is how many of each module's newest good objects");
	parse_fails("jobs = 300\n", "jobs is a number of compilers at once, from 1 to 256");
	parse_fails("define = \"open\n", "hotreload.conf:1: a quote is not closed");
	parse_fails("cc =\n", "cc names a compiler");
	parse_fails("exclude = /etc\n", "give paths inside the root");
	parse_fails("compile_commands = a b\n", "compile_commands is one path");
	parse_fails("compile_commands = ../out.json\n", "inside the root");
	parse_fails("sources = *.c\n", "hotreload.conf:1: 'sources' is a setting of one module");
	parse_fails("[game]\nsources = ../src/*.c\n", "hotreload.conf:2: sources '../src/*.c': give patterns inside the root");
	parse_fails("quick = gcc\n", "hotreload.conf:1: quick is tcc (a quick build with tcc goes live first) or off");
	parse_fails("[game]\nquick += tcc\n", "hotreload.conf:2: quick is tcc");
	parse_fails("quick = tcc tcc\n", "hotreload.conf:1: quick is tcc");
	char err[512];
	hrd_config c;
	cr_expect_eq(hrd_config_parse("\ncflags = a\0b\n", 14, "hotreload.conf", &c, err, sizeof err), -1);
	cr_expect(strstr(err, "hotreload.conf:2: a NUL byte"), "%s", err);
}

/* A text of at most n bytes: line (with %d for its number) again and again. */
static char *repeat(const char *line, size_t n, size_t *len, int *lines)
{
	char *text = malloc(n + 1), one[64];
	size_t at = 0;
	*lines = 0;
	for (;;) {
		int k = snprintf(one, sizeof one, line, *lines);
		if (at + (size_t)k > n)
			break;
		memcpy(text + at, one, (size_t)k);
		at += (size_t)k;
		++*lines;
	}
	text[at] = '\0';
	*len = at;
	return text;
}

static int count(void *arg, const char *word)
{
	(void)word;
	++*(int *)arg;
	return 0;
}

/*
 * A megabyte of each shape the parser once went over again and again for
 * every line (a new section looked for among all, a word appended after
 * counting all): each parses, whole. The parser is linear in its input;
 * scripts/bench/bench_config.c shows the time per megabyte for each shape.
 */
Test(config, a_megabyte_of_sections_or_words_parses_whole, .timeout = 120)
{
	const char *shapes[] = {"[m%d]\n", "cflags += -D%d\n", "exclude += d%d\n", "[m]\ncflags += -D%d\n"};
	for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
		size_t len;
		int lines, n = 0;
		char *text = repeat(shapes[i], HRD_CONFIG_MAX, &len, &lines), err[512] = "";
		hrd_config c;
		cr_assert_eq(hrd_config_parse(text, len, "hotreload.conf", &c, err, sizeof err), 0, "%s", err);
		if (i == 0)
			cr_expect_eq(c.nmods, (size_t)lines);
		if (i == 1) {
			hrd_config_words(&c, "x", HRD_CFLAGS, count, &n);
			cr_expect_eq(n, lines);
		}
		if (i == 2)
			cr_expect_eq(c.nexclude, (size_t)lines);
		if (i == 3) {
			hrd_config_words(&c, "m", HRD_CFLAGS, count, &n);
			cr_expect_eq(n, lines);
			cr_expect_eq(c.nmods, 1);
		}
		hrd_config_free(&c);
		free(text);
	}
	/* One word of many "./": as the watcher names paths, all of them go. */
	size_t len;
	int lines;
	char *dots = repeat("./", HRD_CONFIG_MAX - 64, &len, &lines), err[512] = "";
	char *text = t_fmt("[m]\nsources = %sa.c\n", dots);
	hrd_config c;
	cr_assert_eq(hrd_config_parse(text, strlen(text), "hotreload.conf", &c, err, sizeof err), 0, "%s", err);
	cr_expect_str_eq(words(&c, "m", HRD_SOURCES), "[a.c]");
	hrd_config_free(&c);
	free(text);
	free(dots);
}

Test(config, a_file_past_a_megabyte_is_refused_with_its_limit)
{
	char *dir = t_tmpdir(), *path = t_fmt("%s/" HRD_CONFIG_FILE, dir), err[512] = "";
	size_t len;
	int lines;
	char *text = repeat("cflags += -D%d\n", 4 * HRD_CONFIG_MAX, &len, &lines);
	cr_assert_eq(t_write(path, text, len), 0);
	int rootfd = open(dir, O_PATH | O_DIRECTORY);
	hrd_config c;
	cr_assert_eq(hrd_config_load(rootfd, &c, err, sizeof err), -1);
	cr_expect(strstr(err, "hotreload.conf: over 1 MiB") && strstr(err, "cut it down"), "%s", err);
	/* One megabyte is taken. */
	size_t mib = HRD_CONFIG_MAX;
	while (text[mib - 1] != '\n')
		mib--;
	cr_assert_eq(t_write(path, text, mib), 0);
	cr_assert_eq(hrd_config_load(rootfd, &c, err, sizeof err), 0, "%s", err);
	hrd_config_free(&c);
	close(rootfd);
	t_rmtree(dir);
	free(text);
	free(path);
	free(dir);
}

Test(config, quick_is_off_by_default_and_a_module_may_set_it_either_way)
{
	hrd_config c;
	parse_ok("[a]\nquick = tcc\n[b]\n", &c);
	cr_expect_eq(hrd_config_quick(&c, "a"), 1);
	cr_expect_eq(hrd_config_quick(&c, "b"), 0);
	hrd_config_free(&c);
	parse_ok("quick = tcc\n[a]\nquick = off\n", &c);
	cr_expect_eq(hrd_config_quick(&c, "a"), 0);
	cr_expect_eq(hrd_config_quick(&c, "b"), 1);
	hrd_config_free(&c);
}
