/* test_cdb.c: reading compile_commands.json (the JSON reader, entries, commands split as a shell would) and a unit's patch command. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../daemon/cdb.h"
#include "../daemon/json.h"
#include "../daemon/words.h"
#include "../proto/hrp.h"

static char *joined(char **argv)
{
	static char buf[2048];
	buf[0] = '\0';
	for (size_t i = 0; argv && argv[i]; i++)
		snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s[%s]", i ? " " : "", argv[i]);
	return buf;
}

static void bad_json(const char *text, const char *want)
{
	char err[512];
	hrd_json *v = hrd_json_parse(text, strlen(text), 1000, err, sizeof err);
	cr_expect_null(v, "parsed: %s", text);
	hrd_json_free(v);
	cr_expect(strstr(err, want), "for %s: \"%s\" lacks \"%s\"", text, err, want);
}

Test(cdb, json_values_and_errors_at_line_and_column)
{
	char err[256];
	const char *text = "\xef\xbb\xbf [ {\"a\": \"x\\u00e9\\ud83d\\ude00\\n\", \"b\": [1, -2.5e3, true, false, null]} ]";
	hrd_json *v = hrd_json_parse(text, strlen(text), 1000, err, sizeof err);
	cr_assert_not_null(v, "%s", err);
	cr_assert_eq(v->type, HRD_JSON_ARRAY);
	const hrd_json *o = v->kids[0];
	cr_expect_str_eq(hrd_json_get(o, "a")->str, "x\xc3\xa9\xf0\x9f\x98\x80\n");
	cr_expect_eq(hrd_json_get(o, "b")->n, 5);
	cr_expect_str_eq(hrd_json_get(o, "b")->kids[1]->str, "-2.5e3");
	hrd_json_free(v);
	bad_json("[\n  {\"a\": 1,}\n]", "2:11: expected a member's name");
	bad_json("[1 2]", "1:4: expected ',' or ']'");
	bad_json("[\"abc", "the string does not end");
	bad_json("[\"a\\u0000\"]", "NUL");
	bad_json("[01]", "not a number");
	bad_json("{} x", "more after the value");
	bad_json("", "1:1: expected a value");
	bad_json("[\"\\ud800\"]", "lone surrogate");
	char deep[200];
	memset(deep, '[', sizeof deep - 1);
	deep[sizeof deep - 1] = '\0';
	bad_json(deep, "nested more than 64 deep");
	/* the caller's bound on values, said where the one too many starts */
	v = hrd_json_parse("[1,\n [2, 3]]", 12, 3, err, sizeof err);
	cr_expect_null(v);
	hrd_json_free(v);
	cr_expect(strstr(err, "2:3: more than 3 values"), "%s", err);
}

Test(cdb, commands_split_as_a_shell_would)
{
	char **argv, err[256];
	cr_assert_eq(hrd_cdb_split("cc  -DNAME='\"a b\"' \"-I/x y\" a\\ b.c -DQ=\"\\$\\\\\" ''", &argv, err, sizeof err), 0);
	cr_expect_str_eq(joined(argv), "[cc] [-DNAME=\"a b\"] [-I/x y] [a b.c] [-DQ=$\\] []");
	hrd_words_free(argv);
	cr_expect_eq(hrd_cdb_split("cc 'a", &argv, err, sizeof err), -1);
	cr_expect(strstr(err, "the ' opened at character 4 of the command does not close"), "%s", err);
	cr_expect_eq(hrd_cdb_split("cc \"a", &argv, err, sizeof err), -1);
}

Test(cdb, entries_with_arguments_or_command_relative_files_normalised)
{
	const char *text = "[\n"
	                   " {\"directory\": \"/p/build\", \"file\": \"../src/./a.c\", \"arguments\": [\"cc\", \"-DX=1\", \"-c\", \"../src/a.c\", \"-o\", \"a.o\"]},\n"
	                   " {\"directory\": \"/p/build\", \"file\": \"/q/b.c\", \"command\": \"gcc -DY='2 3' -o b.o -c /q/b.c\", \"output\": \"b.o\"},\n"
	                   " {\"directory\": \"/p/build\", \"file\": \"/q/b.c\", \"command\": \"other\"}\n"
	                   "]";
	hrd_cdb c;
	char err[512];
	cr_assert_eq(hrd_cdb_parse(text, strlen(text), "/p/build/compile_commands.json", &c, err, sizeof err), 0, "%s", err);
	cr_assert_eq(c.n, 2); /* the second entry of /q/b.c is not a unit of its own */
	cr_expect_str_eq(c.u[0].file, "/p/src/a.c");
	cr_expect_str_eq(c.u[0].dir, "/p/build");
	cr_expect_str_eq(c.u[1].file, "/q/b.c");
	cr_expect_str_eq(joined(c.u[1].argv), "[gcc] [-DY=2 3] [-o] [b.o] [-c] [/q/b.c]");
	cr_expect_not_null(hrd_cdb_find(&c, "/q/b.c"));
	cr_expect_null(hrd_cdb_find(&c, "/q/c.c"));
	hrd_cdb_free(&c);
}

static void bad_db(const char *text, const char *want)
{
	hrd_cdb c;
	char err[512];
	cr_expect_eq(hrd_cdb_parse(text, strlen(text), "/d/cc.json", &c, err, sizeof err), -1, "parsed %s", text);
	cr_expect(strstr(err, want), "for %s: \"%s\" lacks \"%s\"", text, err, want);
}

Test(cdb, a_bad_database_says_where_and_what_to_do)
{
	bad_db("{}", "/d/cc.json:1:1: the database is an object; a compile database is an array of entries");
	bad_db("[\n 3]", "/d/cc.json:2:2: an entry is a number; each entry is an object");
	bad_db("[{\"directory\": \"/x\", \"file\": \"a.c\"}]", "/d/cc.json:1:2: the entry lacks \"arguments\" and \"command\"");
	bad_db("[{\"directory\": \"/x\", \"file\": 7, \"command\": \"cc\"}]", "1:30: \"file\" is a number; it must be a string");
	bad_db("[{\"directory\": \"/x\", \"file\": \"a.c\", \"command\": \"cc 'a\"}]", "\"command\": the ' opened");
	bad_db("[{\"directory\": \"/x\", \"file\": \"a.c\", \"arguments\": [\"cc\", 1]}]", "an argument is a number");
	bad_db("[{\"directory\": \"/x\",", "fix it, or let the build write it again");
	/* a unit goes by its path on the wire: "/" is every unit's, and a control character is no name there */
	bad_db("[{\"directory\": \"/\", \"file\": \".\", \"command\": \"cc\"}]", "1:2: \"file\" names /");
	bad_db("[{\"directory\": \"/x\", \"file\": \"a\\n.c\", \"command\": \"cc\"}]", "1:2: \"file\" names /x/a");
}

Test(cdb, the_patch_command_replaces_outputs_and_drops_the_link)
{
	hrd_cdb_unit u = {.file = "/p/src/a.c", .dir = "/p/build"};
	char *argv[] = {"cc", "-O2", "-DX=1", "-I", "inc", "-MD", "-MT", "a.o", "-MF", "a.d", "-MMD", "-o", "a.o", "-c",
	                "../src/a.c", "other.c", "lib.o", "-lm", "-L", "/l", "-Wl,-z,now", "-MFx.d", "-oa2.o", NULL};
	u.argv = argv;
	char **p = hrd_cdb_patch_argv(&u, "/s/obj.o", "/s/obj.d");
	cr_assert_not_null(p);
	cr_expect_str_eq(joined(p), "[cc] [-O2] [-DX=1] [-I] [inc] [../src/a.c] [-c] [-MMD] [-MF] [/s/obj.d] [-o] [/s/obj.o]");
	hrd_words_free(p);
}

Test(cdb, a_units_name_on_the_wire_is_an_absolute_normal_path)
{
	cr_expect(hrp_valid_unit("/p/src/a.c"));
	cr_expect(hrp_valid_unit("/a b/é.c"));
	cr_expect(!hrp_valid_unit("/"), "/ is every unit, not one");
	cr_expect(!hrp_valid_unit("enemy"));
	cr_expect(!hrp_valid_unit("p/a.c"));
	cr_expect(!hrp_valid_unit("/p//a.c"));
	cr_expect(!hrp_valid_unit("/p/./a.c"));
	cr_expect(!hrp_valid_unit("/p/../a.c"));
	cr_expect(!hrp_valid_unit("/p/a.c/"));
	cr_expect(!hrp_valid_unit("/p/a\n.c"));
	cr_expect(!hrp_valid_name("/p/a.c"), "no module name is a unit's");
}

Test(cdb, the_patch_command_writes_no_output_of_the_build)
{
	/* clang's -MJ (a database fragment), gcc's --output, and -Wp,-MD,FILE (Kbuild) all write into the build's tree */
	hrd_cdb_unit u = {.file = "/p/src/a.c", .dir = "/p/build"};
	char *argv[] = {"clang", "-c", "../src/a.c", "-MJ", "a.o.json", "-MJb.json", "-Wp,-MMD,.a.o.d", "-Wp,-MD,x.d",
	                "-Wp,-MF,y.d", "--output", "a.o", "--output=a2.o", "-Wp,-DKEEP", "-O2", NULL};
	u.argv = argv;
	char **p = hrd_cdb_patch_argv(&u, "/s/obj.o", "/s/obj.d");
	cr_assert_not_null(p);
	cr_expect_str_eq(joined(p), "[clang] [../src/a.c] [-Wp,-DKEEP] [-O2] [-c] [-MMD] [-MF] [/s/obj.d] [-o] [/s/obj.o]");
	hrd_words_free(p);
}

Test(cdb, of_entries_of_one_file_the_first_wins_whatever_the_sort)
{
	/* many entries of a few files, interleaved: an unstable sort would mix up which of a file's entries comes first */
	enum { FILES = 7, EACH = 300 };
	size_t cap = FILES * EACH * 96 + 4, len = 0;
	char *text = malloc(cap), err[512];
	cr_assert_not_null(text);
	len += (size_t)snprintf(text + len, cap - len, "[");
	for (int i = 0; i < FILES * EACH; i++)
		len += (size_t)snprintf(text + len, cap - len, "%s{\"directory\": \"/p\", \"file\": \"f%d.c\", \"command\": \"cc -DN=%d\"}",
		                        i ? ",\n" : "", i % FILES, i);
	len += (size_t)snprintf(text + len, cap - len, "]");
	hrd_cdb c;
	cr_assert_eq(hrd_cdb_parse(text, len, "/p/cc.json", &c, err, sizeof err), 0, "%s", err);
	free(text);
	cr_assert_eq(c.n, FILES);
	for (int f = 0; f < FILES; f++) {
		char name[32], want[32];
		snprintf(name, sizeof name, "/p/f%d.c", f);
		snprintf(want, sizeof want, "-DN=%d", f);
		const hrd_cdb_unit *u = hrd_cdb_find(&c, name);
		cr_assert_not_null(u, "%s", name);
		cr_expect_str_eq(u->argv[1], want, "%s: not its first entry's command", name);
	}
	hrd_cdb_free(&c);
}

Test(cdb, a_unit_whose_command_uses_a_response_file_is_refused_and_said)
{
	/* @FILE holds more flags (-I, -D...): compiled without them the patch would not match the build */
	const char *text = "[\n"
	                   " {\"directory\": \"/p\", \"file\": \"a.c\", \"arguments\": [\"cc\", \"-c\", \"a.c\"]},\n"
	                   " {\"directory\": \"/p\", \"file\": \"b.c\", \"arguments\": [\"cc\", \"@b.rsp\", \"-c\", \"b.c\"]},\n"
	                   " {\"directory\": \"/p\", \"file\": \"c.c\", \"command\": \"cc @flags/c.rsp -c c.c\"}\n"
	                   "]";
	hrd_cdb c;
	char err[512];
	cr_assert_eq(hrd_cdb_parse(text, strlen(text), "/p/cc.json", &c, err, sizeof err), 0, "%s", err);
	cr_expect_eq(c.n, 1);
	cr_expect_not_null(hrd_cdb_find(&c, "/p/a.c"));
	cr_expect_null(hrd_cdb_find(&c, "/p/b.c"), "a unit without its response file's flags");
	cr_expect_eq(c.refused, 2);
	cr_expect(strstr(c.why, "/p/cc.json:3:2: /p/b.c uses a response file, @b.rsp: not supported, so it is not patched; "
	                        "have the build write its flags into the database"), "%s", c.why);
	hrd_cdb_free(&c);
}

Test(cdb, a_database_of_tiny_values_is_refused_at_its_place_not_held)
{
	/* 7 MiB of [[],[],...]: each value costs ~80 bytes held for 3 of text; refused past one value per 6 bytes */
	size_t n = 7u << 20, len = 0;
	char *text = malloc(n + 2), err[512];
	cr_assert_not_null(text);
	text[len++] = '[';
	while (len + 3 < n) {
		memcpy(text + len, "[],", 3);
		len += 3;
	}
	memcpy(text + len, "[]]", 3);
	len += 3;
	hrd_cdb c;
	cr_assert_eq(hrd_cdb_parse(text, len, "/d/cc.json", &c, err, sizeof err), -1);
	free(text);
	cr_expect(strstr(err, "/d/cc.json:1:") && strstr(err, "more than 1223402 values, the most held for a text of this size; fix it"), "%s",
	          err);
	/* a real one of the same size is read: long paths, short flags */
	size_t cap = 8u << 20;
	text = malloc(cap);
	cr_assert_not_null(text);
	len = (size_t)snprintf(text, cap, "[");
	for (int i = 0; len + 400 < cap - (1u << 20); i++)
		len += (size_t)snprintf(text + len, cap - len, "%s{\"directory\":\"/p/b\",\"file\":\"s/f%d.c\",\"arguments\":"
		                        "[\"cc\",\"-c\",\"-g\",\"-O2\",\"-Wall\",\"-I\",\"i\",\"-D\",\"X\",\"s/f%d.c\",\"-o\",\"f.o\"]}",
		                        i ? "," : "", i, i);
	len += (size_t)snprintf(text + len, cap - len, "]");
	cr_expect_eq(hrd_cdb_parse(text, len, "/d/cc.json", &c, err, sizeof err), 0, "%s", err);
	hrd_cdb_free(&c);
	free(text);
}
