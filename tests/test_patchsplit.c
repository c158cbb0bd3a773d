/* test_patchsplit.c: the patch engine on functions compiled in hot and cold parts (DW_AT_ranges in their DWARF). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "patchutil.h"
#include "util.h"

TestSuite(patchsplit, .init = tp_setup, .fini = tp_teardown, .timeout = 240);

#ifdef __SANITIZE_ADDRESS__
#define SAN " -fsanitize=address,undefined"
#else
#define SAN ""
#endif

/* Flags added to every compile. */
static const char *more = "";

/* Compile src saved as name to obj with the patching flags at -O2, split into hot and cold parts where gcc can. */
static void compile(const char *cc, const char *name, const char *src, const char *obj, const char *extra)
{
	tp_put(name, src);
	const char *fl = strcmp(cc, "gcc") ? "-g -fpatchable-function-entry=7,5 -fno-omit-frame-pointer"
					   : "-g -fpatchable-function-entry=7,5 -flive-patching=inline-clone "
					     "-fno-omit-frame-pointer -freorder-blocks-and-partition";
	tp_sh("%s %s -O2 %s %s -c %s -o %s", cc, fl, more, extra ? extra : "", name, obj);
}

/* main's and step's unlikely paths call a cold function: gcc moves them to main.cold and step.cold. */
static const char *MAIN =
	"#include <stdio.h>\n#include <stdlib.h>\n"
	"int apply(const char *path);\n"
	"int step(int x, const char *patch);\n"
	"__attribute__((cold, noinline)) static void usage(void) { fprintf(stderr, \"usage: prog patch\\n\"); }\n"
	"int main(int argc, char **argv) {\n"
	"	if (argc != 2) { usage(); exit(2); }\n"
	"	printf(\"%d\\n\", step(1, NULL));\n"
	"	printf(\"%d\\n\", step(-1, argv[1])); /* the old step applies the patch, then runs its cold part */\n"
	"	printf(\"%d\\n\", step(1, NULL));\n"
	"	printf(\"%d\\n\", step(-1, NULL));\n"
	"	return 0;\n}\n";

static const char *GAME =
	"#include <stdio.h>\n"
	"int apply(const char *path);\n"
	"__attribute__((cold, noinline)) static void report(int n) { printf(\"cold %d\\n\", n); }\n"
	"int step(int x, const char *patch) {\n"
	"	static int counter; /* a function-local static of a function in pieces */\n"
	"	counter++;\n"
	"	if (patch) apply(patch);\n"
	"	if (x < 0) { report(counter); printf(\"v1 cold\\n\"); return -counter; }\n"
	"	return counter * 1000 + x;\n}\n";

static const char *GAME2 =
	"#include <stdio.h>\n"
	"int apply(const char *path);\n"
	"__attribute__((cold, noinline)) static void report(int n) { printf(\"cold %d\\n\", n); }\n"
	"int step(int x, const char *patch) {\n"
	"	static int counter; /* a function-local static of a function in pieces */\n"
	"	counter++;\n"
	"	if (patch) apply(patch);\n"
	"	if (x < 0) { report(counter); printf(\"v2 cold\\n\"); return -counter; }\n"
	"	return counter * 1000 + x + 500;\n}\n";

/* Whether the object or program has a symbol named name. */
static int has_sym(const char *file, const char *name)
{
	char *out = tp_sh_out("readelf -sW %s", file);
	char *want = t_fmt(" %s\n", name);
	int r = strstr(out, want) != NULL;
	free(want);
	free(out);
	return r;
}

Test(patchsplit, a_function_in_hot_and_cold_parts_runs_its_new_code_and_keeps_its_statics)
{
	/* DWARF 5 (.debug_rnglists) and 4 (.debug_ranges); clang splits nothing but its units' code is in pieces */
	static const char *const CFGS[][2] = { { "gcc", "" }, { "gcc", "-gdwarf-4" }, { "clang", "-ffunction-sections" },
					       { "clang", "-gdwarf-4 -ffunction-sections" } };
	for (size_t i = 0; i < sizeof CFGS / sizeof *CFGS; i++) {
		const char *cc = CFGS[i][0];
		more = CFGS[i][1];
		if (!t_have(cc)) {
			cr_log_info("%s not installed: skipped", cc);
			continue;
		}
		compile(cc, "main.c", MAIN, "main.o", NULL);
		compile(cc, "game.c", GAME, "game.o", NULL);
		compile(cc, "harness.c", tp_harness, "harness.o", "-I" HR_SOURCE_DIR "/client" SAN);
		tp_sh("%s" SAN " -o prog main.o game.o harness.o %s/libhotreload.a -ldl -lpthread", cc, HR_BUILD_DIR);
		compile(cc, "game.c", GAME2, "p1.o", NULL);
		if (!strcmp(cc, "gcc")) { /* what this test is about: the split happened */
			cr_assert(has_sym("prog", "main.cold"), "gcc did not split main");
			cr_assert(has_sym("prog", "step.cold"), "gcc did not split step");
			cr_assert(has_sym("p1.o", "step.cold"), "gcc did not split the patch's step");
		}
		t_run r = t_exec(tp_dir, NULL, (const char *const[]){ "./prog", "p1.o", NULL });
		cr_expect_eq(r.status, 0, "%s %s: prog exited %d:\n%s\n%s", cc, more, r.status, r.out, r.err);
		cr_expect_str_eq(r.out,
				 "1001\n"
				 "applied 1 v1\n"
				 "cold 2\nv1 cold\n" /* the old code's cold part, left in place */
				 "-2\n"
				 "3501\n" /* the new code, with the old counter */
				 "cold 4\nv2 cold\n"
				 "-4\n",
				 "%s %s:\n%s", cc, more, r.out);
		t_run_free(&r);
	}
}
