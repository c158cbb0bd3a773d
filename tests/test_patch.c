/* test_patch.c: the patch engine on real programs built with the patching flags (gcc and clang, -O0 and -O2): calls, statics, refusals, stacks, threads. */
#include <criterion/criterion.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "patchutil.h"
#include "util.h"

TestSuite(patch, .init = tp_setup, .fini = tp_teardown, .timeout = 240);

static const tp_cfg CFGS[] = { { "gcc", "-O0" }, { "gcc", "-O2" }, { "clang", "-O0" }, { "clang", "-O2" } };

/* The program: main.c and game.c, with the harness, linked to the library as a user would. */
static void program(const tp_cfg *c, const char *main_src, const char *game_src, const char *linkextra)
{
	tp_compile(c, "game.c", game_src, "game.o", NULL);
	tp_compile(c, "main.c", main_src, "main.o", NULL);
	char *inc = t_fmt("-I" HR_SOURCE_DIR "/client %s", t_lib_san());
	tp_compile(c, "harness.c", tp_harness, "harness.o", inc);
	free(inc);
	tp_sh("%s %s -o prog main.o game.o harness.o %s %s/libhotreload.a -ldl -lpthread", c->cc, t_lib_san(),
	      linkextra ? linkextra : "", t_lib_dir());
}

#define EACH_CFG(c)                                                                        \
	for (const tp_cfg *c = CFGS; c < CFGS + sizeof CFGS / sizeof *CFGS; c++)                 \
		if (!t_have(c->cc))                                                                  \
			cr_log_info("%s not installed: skipped", c->cc);                           \
		else

static const char *CALLS_MAIN =
	"#include <stdio.h>\n"
	"int apply(const char *path);\n"
	"int tick(void); int base(void);\n"
	"static int (*cb)(void);\n"
	"static void show(void) { int t = tick(); printf(\"tick %d cb %d base %d\\n\", t, cb(), base()); }\n"
	"int main(int argc, char **argv) {\n"
	"	cb = base; /* a callback taken before any patch */\n"
	"	show();\n"
	"	for (int i = 1; i < argc; i++) { apply(argv[i]); show(); }\n"
	"	return 0;\n}\n";

/* tp_calls_v1 patched with v2 then v3, in each configuration: every kind of call reaches the newest code. */
static void calls_in_each_cfg(void)
{
	EACH_CFG(c)
	{
		program(c, CALLS_MAIN, tp_calls_v1, NULL);
		tp_patch(c, tp_calls_v2, "p1.o");
		tp_patch(c, tp_calls_v3, "p2.o");
		char *out = tp_run((const char *const[]){ "p1.o", "p2.o", NULL });
		cr_expect_str_eq(out,
				 "tick 1002 cb 1 base 1\n"
				 "applied 1 v1\n"
				 "tick 2055 cb 5 base 5\n"
				 "applied 1 v2\n"
				 "tick 3062 cb 7 base 7\n",
				 "%s %s", c->cc, c->opt);
		free(out);
	}
}

Test(patch, calls_from_everywhere_reach_the_new_code_and_statics_keep_their_values)
{
	calls_in_each_cfg();
}

static const char *LOCALS_MAIN =
	"#include <stdio.h>\n"
	"int apply(const char *path);\n"
	"int f(void); int g(void);\n"
	"int main(int argc, char **argv) {\n"
	"	int a = f(); a = f(); int b = g();\n"
	"	printf(\"f %d g %d\\n\", a, b);\n"
	"	apply(argv[1]);\n"
	"	a = f(); b = g();\n"
	"	printf(\"f %d g %d\\n\", a, b);\n"
	"	return 0;\n}\n";

static const char *LOCALS_V1 =
	"int f(void) { static int n = 0; return ++n; }\n"
	"int g(void) { static int n = 100; return ++n; }\n";

/* h inserted first: gcc renames f's n.0 to n.1 and g's n.1 to n.2, at the same size. */
static const char *LOCALS_V2 =
	"__attribute__((noinline)) int h(void) { static int n = 50; return ++n; }\n"
	"int f(void) { static int n = 0; return ++n + 1000 * h(); }\n"
	"int g(void) { static int n = 100; return ++n; }\n";

Test(patch, function_local_statics_are_matched_by_function_not_by_gcc_numbering)
{
	EACH_CFG(c)
	{
		program(c, LOCALS_MAIN, LOCALS_V1, NULL);
		tp_patch(c, LOCALS_V2, "p1.o");
		char *out = tp_run((const char *const[]){ "p1.o", NULL });
		cr_expect_str_eq(out, "f 2 g 101\napplied 1 v1\nf 51003 g 102\n", "%s %s", c->cc, c->opt);
		free(out);
	}
}

static const char *SIZE_MAIN =
	"#include <stdio.h>\n"
	"int apply(const char *path);\n"
	"int get(void);\n"
	"int main(int argc, char **argv) {\n"
	"	printf(\"get %d\\n\", get());\n"
	"	apply(argv[1]);\n"
	"	printf(\"get %d\\n\", get());\n"
	"	return 0;\n}\n";

Test(patch, a_variable_that_changed_size_is_refused_and_the_old_code_runs_on)
{
	EACH_CFG(c)
	{
		program(c, SIZE_MAIN, "int hp_table[4] = { 1, 2, 3, 4 };\nint get(void) { return hp_table[3]; }\n", NULL);
		tp_patch(c, "int hp_table[6] = { 1, 2, 3, 4, 5, 6 };\nint get(void) { return hp_table[5]; }\n", "p1.o");
		char *out = tp_run((const char *const[]){ "p1.o", NULL });
		char *want = t_fmt("get 4\nrefused: %s/game.c: variable 'hp_table' changed size (16 \xe2\x86\x92 24 bytes): "
				   "its storage cannot be kept; restart the program\nget 4\n", tp_dir);
		cr_expect_str_eq(out, want, "%s %s", c->cc, c->opt);
		free(want);
		free(out);
	}
}

/* The program forbids itself writable code, as SELinux's execmod or a PaX-style MPROTECT would: a seccomp
 * filter makes every mprotect asking for write and execute together fail with EACCES. */
static const char *NOWX_MAIN =
	"#include <errno.h>\n#include <stddef.h>\n#include <stdio.h>\n#include <sys/mman.h>\n#include <sys/prctl.h>\n"
	"#include <sys/syscall.h>\n#include <linux/audit.h>\n#include <linux/filter.h>\n#include <linux/seccomp.h>\n"
	"int apply(const char *path);\nint get(void);\n"
	"int main(int argc, char **argv) {\n"
	"	struct sock_filter f[] = {\n"
	"		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),\n"
	"		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),\n"
	"		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),\n"
	"		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),\n"
	"		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 1, 0),\n"
	"		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),\n"
	"		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),\n"
	"		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, PROT_WRITE | PROT_EXEC),\n"
	"		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROT_WRITE | PROT_EXEC, 0, 1),\n"
	"		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),\n"
	"		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),\n"
	"	};\n"
	"	struct sock_fprog fp = { sizeof f / sizeof *f, f };\n"
	"	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp)) return 3;\n"
	"	printf(\"get %d\\n\", get());\n"
	"	for (int i = 1; i < argc; i++) { apply(argv[i]); printf(\"get %d\\n\", get()); }\n"
	"	return 0;\n}\n";

Test(patch, a_program_whose_code_the_system_will_not_let_it_write_is_refused_and_runs_on)
{
	tp_cfg c = { "gcc", "-O2" };
	program(&c, NOWX_MAIN, "int get(void) { return 1; }\n", NULL);
	tp_patch(&c, "int get(void) { return 2; }\n", "p1.o");
	char *out = tp_run((const char *const[]){ "p1.o", NULL });
	cr_expect(strstr(out, "refused: the system will not let the program write its code (mprotect: Permission denied;"),
		  "%s", out);
	cr_expect(!strncmp(out, "get 1\n", 6) && strstr(out, "\nget 1\n"), "the old code runs on: %s", out);
	free(out);
}

static const char *TLS_V1 = "__thread int tls_hp;\nint get(void) { return ++tls_hp; }\n";

Test(patch, a_thread_local_variable_is_refused)
{
	EACH_CFG(c)
	{
		program(c, SIZE_MAIN, TLS_V1, NULL);
		tp_patch(c, "__thread int tls_hp;\nint get(void) { return tls_hp += 10; }\n", "p1.o");
		char *out = tp_run((const char *const[]){ "p1.o", NULL });
		cr_expect(strstr(out, "refused: ") && strstr(out, "game.c: thread-local variable 'tls_hp' cannot be patched"),
			  "%s %s: %s", c->cc, c->opt, out);
		cr_expect(strstr(out, "get 1\n") && strstr(out, "get 2\n"), "%s", out);
		free(out);
	}
}

static const char *REC_MAIN =
	"#include <stdio.h>\n"
	"int apply(const char *path);\n"
	"int depth(int n);\n"
	"static const char *patch_path;\n"
	"void trigger(void);\n"
	"void trigger(void) { if (patch_path) { apply(patch_path); patch_path = NULL; } }\n"
	"int main(int argc, char **argv) {\n"
	"	(void)argc; patch_path = argv[1];\n"
	"	printf(\"depth %d\\n\", depth(3)); /* patched at the bottom of the recursion */\n"
	"	printf(\"depth %d\\n\", depth(3));\n"
	"	return 0;\n}\n";

Test(patch, a_recursive_function_on_the_stack_finishes_its_calls_in_old_code)
{
	EACH_CFG(c)
	{
		program(c, REC_MAIN, "void trigger(void);\nint depth(int n) { if (!n) { trigger(); return 0; } return 1 + depth(n - 1); }\n",
			NULL);
		tp_patch(c, "void trigger(void);\nint depth(int n) { if (!n) { trigger(); return 0; } return 10 + depth(n - 1); }\n",
		      "p1.o");
		char *out = tp_run((const char *const[]){ "p1.o", NULL });
		cr_expect_str_eq(out, "applied 1 v1\ndepth 3\ndepth 30\n", "%s %s", c->cc, c->opt);
		free(out);
	}
}

Test(patch, an_object_of_another_unit_is_skipped_silently)
{
	EACH_CFG(c)
	{
		program(c, SIZE_MAIN, "int get(void) { return 4; }\n", NULL);
		tp_compile(c, "other.c", "int other(void) { return 1; }\n", "other.o", NULL);
		char *out = tp_run((const char *const[]){ "other.o", NULL });
		cr_expect_str_eq(out, "get 4\napplied 0 v0\nget 4\n", "%s %s", c->cc, c->opt);
		free(out);
	}
}

/* The three units built with cflags and linked: a program built in some wrong way. */
static void build_with(const char *cflags)
{
	tp_sh("for u in game main; do gcc %s -c $u.c -o $u.o || exit 1; done && "
	      "gcc %s -I" HR_SOURCE_DIR "/client %s -c harness.c -o harness.o && "
	      "gcc %s -o prog main.o game.o harness.o %s/libhotreload.a -ldl -lpthread",
	      cflags, cflags, t_lib_san(), t_lib_san(), t_lib_dir());
}

Test(patch, a_program_that_lacks_what_patching_needs_is_told_what)
{
	tp_cfg c = { "gcc", "-O0" };
	tp_patch(&c, "int get(void) { return 5; }\n", "p1.o");
	program(&c, SIZE_MAIN, "int get(void) { return 4; }\n", NULL);
	tp_sh("strip -o stripped prog && cp stripped prog");
	char *out = tp_run((const char *const[]){ "p1.o", NULL });
	cr_expect(strstr(out, "open: the executable is stripped (no .symtab)"), "%s", out);
	free(out);

	build_with("-g");
	out = tp_run((const char *const[]){ "p1.o", NULL });
	cr_expect(strstr(out, "open: the program was not built with -fpatchable-function-entry=7,5"), "%s", out);
	free(out);

	build_with("-fpatchable-function-entry=7,5");
	out = tp_run((const char *const[]){ "p1.o", NULL });
	cr_expect(strstr(out, "open: no DWARF debug information for the program's own code (main): build it with -g"), "%s", out);
	free(out);
}

Test(patch, a_function_built_without_the_flags_is_refused_by_name)
{
	tp_cfg c = { "gcc", "-O2" };
	tp_patch(&c, "int get(void) { return 5; }\n", "p1.o");
	program(&c, SIZE_MAIN, "int get(void) { return 4; }\n", NULL);
	/* game.c alone built without room at its entries; main.c has them */
	tp_sh("gcc -g -O2 -c game.c -o game.o && gcc %s -o prog main.o game.o harness.o %s/libhotreload.a -ldl -lpthread",
			  t_lib_san(), t_lib_dir());
	char *out = tp_run((const char *const[]){ "p1.o", NULL });
	cr_expect(strstr(out, "refused: ") && strstr(out, "game.c: function 'get' has no room at its entry: built without the patching flags"),
		  "%s", out);
	cr_expect(strstr(out, "get 4\nrefused") && strstr(out, "\nget 4\n"), "%s", out);
	free(out);
}

static const char *THREADS_MAIN =
	"#include <pthread.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
	"int apply(const char *path);\n"
	"int work(int x); int other(int x);\n"
	"static volatile int stop;\n"
	"static long calls;\n"
	"static void *loop(void *arg) {\n"
	"	(void)arg; long n = 0;\n"
	"	while (!stop) {\n"
	"		int w = work(1), o = other(1);\n"
	"		if ((w != 2 && w != 3 && w != 4) || (o != 12 && o != 13 && o != 14)) { printf(\"bad %d %d\\n\", w, o); fflush(stdout); abort(); }\n"
	"		n++;\n"
	"	}\n"
	"	__atomic_add_fetch(&calls, n, __ATOMIC_RELAXED);\n"
	"	return NULL;\n}\n"
	"int main(int argc, char **argv) {\n"
	"	pthread_t t[3];\n"
	"	for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, loop, NULL);\n"
	"	int ok = 0;\n"
	"	for (int i = 0; i < 200; i++) ok += apply(argv[1 + i % (argc - 1)]) == 1;\n"
	"	stop = 1;\n"
	"	for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);\n"
	"	printf(\"patches %d calls %s work %d\\n\", ok, calls > 0 ? \"some\" : \"none\", work(1));\n"
	"	return 0;\n}\n";

static const char *THREADS_SRC =
	"int work(int x) { return x + %d; }\n"
	"int other(int x) { return work(x) + 10; }\n";

Test(patch, threads_calling_the_patched_functions_while_200_patches_land)
{
	EACH_CFG(c)
	{
		char *v1 = t_fmt(THREADS_SRC, 1), *v2 = t_fmt(THREADS_SRC, 2), *v3 = t_fmt(THREADS_SRC, 3);
		program(c, THREADS_MAIN, v1, "-pthread");
		tp_patch(c, v2, "p2.o");
		tp_patch(c, v3, "p3.o");
		char *out = tp_run((const char *const[]){ "p2.o", "p3.o", NULL });
		cr_expect(strstr(out, "patches 200 calls some work 4\n"), "%s %s: %.300s", c->cc, c->opt,
			  strstr(out, "patches") ? strstr(out, "patches") : out);
		free(out);
		free(v1);
		free(v2);
		free(v3);
	}
}

/*
 * A store of a constant into a kept static: the reference is S + A + 4 + the
 * immediate's size. A new variable inserted before it shifts the patch's own
 * layout, so taking the wrong variable would write the patch's copy.
 */
Test(patch, a_constant_stored_into_a_kept_static_reaches_its_old_storage)
{
	EACH_CFG(c)
	{
		program(c, SIZE_MAIN,
			"static int a = 1, b = 2;\n"
			"int get(void) { return a * 100 + b; }\n",
			NULL);
		tp_patch(c,
		      "static int a = 1;\nstatic int z = 5;\nstatic int b = 2;\n"
		      "int get(void) { z++; b = 7; return a * 100 + b * 10 + z; }\n",
		      "p1.o");
		char *out = tp_run((const char *const[]){ "p1.o", NULL });
		cr_expect_str_eq(out, "get 102\napplied 1 v1\nget 176\n", "%s %s", c->cc, c->opt);
		free(out);
	}
}

static const char *GDB_MAIN =
	"#include <stdio.h>\n"
	"int apply(const char *path);\n"
	"int value(void);\n"
	"int main(int argc, char **argv) {\n"
	"	(void)argc;\n"
	"	value();\n"
	"	apply(argv[1]);\n"
	"	printf(\"value %d\\n\", value());\n"
	"	return 0;\n}\n";

/* gdb sees the patch through its JIT interface: a breakpoint at a line that only the patch has stops there. */
Test(patch, gdb_stops_at_a_line_of_a_patched_function)
{
	if (!t_have("gdb")) {
		cr_log_info("gdb not installed: skipped");
		return;
	}
	tp_cfg c = { "gcc", "-O0" };
	program(&c, GDB_MAIN, "static int hits;\nint value(void) { return ++hits; }\n", NULL);
	tp_patch(&c, "static int hits;\nint value(void)\n{\n\tint v = 40 + hits;\n\tv += 2;\n\treturn ++hits + v;\n}\n", "p1.o");
	t_run r = t_exec(tp_dir, NULL,
			 (const char *const[]){ "gdb", "-nx", "-batch", "-ex", "set breakpoint pending on", "-ex",
						/* LeakSanitizer cannot run under ptrace: in the SAN=1 build it would fail the exit */
						"set environment ASAN_OPTIONS=detect_leaks=0", "-ex", "break game.c:5",
						"-ex", "run", "-ex", "bt", "-ex", "print v", "-ex", "print hits", "-ex", "continue", "--args", "./prog",
						"p1.o", NULL });
	cr_expect(strstr(r.out, "Breakpoint 1, value () at game.c:5"), "%s\n%s", r.out, r.err);
	/* hits is the program's kept storage, seen by gdb in the patched frame */
	cr_expect(strstr(r.out, "in main (") && strstr(r.out, "$1 = 41") && strstr(r.out, "$2 = 1\n") && strstr(r.out, "value 45"),
		  "%s", r.out);
	t_run_free(&r);
}

/* Through the public API: NULL, errno and hr_last_error naming what the program lacks. */
static const char *TWO_MAIN =
	"#include <stdio.h>\n"
	"int apply(const char *path);\n"
	"int game(void);\n"
	"int main(int argc, char **argv) {\n"
	"	(void)argc;\n"
	"	printf(\"game %d\\n\", game());\n"
	"	apply(argv[1]);\n"
	"	printf(\"game %d\\n\", game());\n"
	"	return 0;\n}\n";

/* A header shared by two units: both patches land in one apply, as one hr_update does. */
Test(patch, two_units_of_one_change_are_applied_together)
{
	EACH_CFG(c)
	{
		char *h = t_fmt("%s/rules.h", tp_dir);
		cr_assert_eq(t_write(h, "#define SCALE 2\n", 16), 0);
		tp_compile(c, "other.c", "#include \"rules.h\"\nint scaled(int x) { return x * SCALE; }\n", "other.o", NULL);
		program(c, TWO_MAIN, "#include \"rules.h\"\nint scaled(int x);\nint game(void) { return scaled(10) + SCALE; }\n",
			"other.o");
		cr_assert_eq(t_write(h, "#define SCALE 3\n", 16), 0);
		tp_compile(c, "other.c", "#include \"rules.h\"\nint scaled(int x) { return x * SCALE; }\n", "p_other.o", NULL);
		tp_patch(c, "#include \"rules.h\"\nint scaled(int x);\nint game(void) { return scaled(10) + SCALE; }\n", "p_game.o");
		char *out = tp_run((const char *const[]){ "p_game.o,p_other.o", NULL });
		cr_expect_str_eq(out, "game 22\napplied 1 v2\ngame 33\n", "%s %s", c->cc, c->opt);
		free(out);
		free(h);
	}
}

static const char *CONST_MAIN =
	"#include <stdio.h>\n"
	"int apply(const char *path);\n"
	"const char *name(int i); int val(int i);\n"
	"int main(int argc, char **argv) {\n"
	"	(void)argc;\n"
	"	printf(\"%s %d\\n\", name(1), val(2));\n"
	"	apply(argv[1]);\n"
	"	printf(\"%s %d\\n\", name(1), val(2));\n"
	"	return 0;\n}\n";

static const char *CONST_SRC =
	"static const int table[3] = { %d, %d, %d };\n"
	"static const char *const names[2] = { \"%s\", \"%s\" };\n"
	"const char *name(int i) { return names[i]; }\n"
	"int val(int i) { return table[i]; }\n";

/* Constants are never kept: a const table, and a const table of pointers (.data.rel.ro), are the new code's. */
Test(patch, constant_tables_and_strings_are_the_new_codes)
{
	EACH_CFG(c)
	{
		char *v1 = t_fmt(CONST_SRC, 1, 2, 3, "one", "two"), *v2 = t_fmt(CONST_SRC, 7, 8, 9, "uno", "dos");
		program(c, CONST_MAIN, v1, NULL);
		tp_patch(c, v2, "p1.o");
		char *out = tp_run((const char *const[]){ "p1.o", NULL });
		cr_expect_str_eq(out, "two 3\napplied 1 v1\ndos 9\n", "%s %s", c->cc, c->opt);
		free(out);
		free(v1);
		free(v2);
	}
}

/* -fcf-protection (some distributions' default) puts endbr64 before the entry's NOPs: switched after it. */
Test(patch, entries_that_start_with_endbr64_are_switched_too)
{
	tp_more_cflags = "-fcf-protection";
	calls_in_each_cfg();
}

static const char *INLINE_MAIN =
	"#include <stdio.h>\n"
	"int apply(const char *path);\n"
	"int a(void); int b(void);\n"
	"int main(int argc, char **argv) {\n"
	"	(void)argc;\n"
	"	int x = a(); int y = b();\n"
	"	printf(\"%d %d\\n\", x, y);\n"
	"	apply(argv[1]);\n"
	"	x = a(); y = b();\n"
	"	printf(\"%d %d\\n\", x, y);\n"
	"	return 0;\n}\n";

/* At -O2 the static of an inlined function lives in its abstract instance's DWARF: still the same storage. */
Test(patch, a_static_of_an_inlined_function_keeps_counting)
{
	EACH_CFG(c)
	{
		program(c, INLINE_MAIN,
			"static inline int bump(void) { static int k; return ++k; }\n"
			"int a(void) { return bump(); }\nint b(void) { return bump() * 10; }\n",
			NULL);
		tp_patch(c,
		      "static int other = 5;\n"
		      "static inline int bump(void) { static int k; return ++k; }\n"
		      "int a(void) { return bump() + other; }\nint b(void) { return bump() * 100; }\n",
		      "p1.o");
		char *out = tp_run((const char *const[]){ "p1.o", NULL });
		cr_expect_str_eq(out, "1 20\napplied 1 v1\n8 400\n", "%s %s", c->cc, c->opt);
		free(out);
	}
}

/* A patch object's bytes, to be made hostile: its sections by name, its symbols by name. */
typedef struct img {
	uint8_t *b;
	size_t n;
	Elf64_Ehdr *h;
	Elf64_Shdr *sh;
} img;

static img img_read(const char *name)
{
	img m;
	char *p = t_fmt("%s/%s", tp_dir, name);
	m.b = (uint8_t *)t_read(p, &m.n);
	free(p);
	cr_assert(m.b);
	m.h = (Elf64_Ehdr *)m.b;
	m.sh = (Elf64_Shdr *)(m.b + m.h->e_shoff);
	return m;
}

static void img_write(img *m, const char *name)
{
	char *p = t_fmt("%s/%s", tp_dir, name);
	cr_assert_eq(t_write(p, m->b, m->n), 0);
	free(p);
	free(m->b);
}

static unsigned img_sec(const img *m, const char *name)
{
	const char *shstr = (const char *)m->b + m->sh[m->h->e_shstrndx].sh_offset;
	for (unsigned i = 0; i < m->h->e_shnum; i++)
		if (!strcmp(shstr + m->sh[i].sh_name, name))
			return i;
	cr_assert_fail("no section %s", name);
	return 0;
}

static Elf64_Sym *img_sym(const img *m, const char *name)
{
	const Elf64_Shdr *st = &m->sh[img_sec(m, ".symtab")];
	const char *str = (const char *)m->b + m->sh[st->sh_link].sh_offset;
	Elf64_Sym *sy = (Elf64_Sym *)(m->b + st->sh_offset);
	for (size_t i = 0; i < st->sh_size / sizeof *sy; i++)
		if (!strcmp(str + sy[i].st_name, name))
			return &sy[i];
	cr_assert_fail("no symbol %s", name);
	return NULL;
}

static void rela_into_bss(img *m)
{
	m->sh[img_sec(m, ".rela.text")].sh_info = img_sec(m, ".bss");
	m->sh[img_sec(m, ".bss")].sh_size = 4096; /* room for every offset: the writes would land in the block's zero pages */
}

static void bss_wraps(img *m)
{
	m->sh[img_sec(m, ".bss")].sh_size = 0ull - 4096; /* the block's size wraps to a page or two */
}

static void func_outside_text(img *m)
{
	img_sym(m, "get")->st_value = 1u << 20; /* the program's entry would jump a megabyte past the patch's text */
}

static void rel_not_rela(img *m)
{
	m->sh[img_sec(m, ".rela.text")].sh_type = SHT_REL; /* was skipped: the code ran unrelocated */
}

Test(patch, a_hostile_object_is_refused_before_anything_is_mapped_or_written)
{
	static const struct {
		void (*fn)(img *);
		const char *why;
	} cases[] = {
		{ rela_into_bss, "malformed patch object: relocations into a section that has no bytes (section .rela.text): rebuild it" },
		{ bss_wraps, "the patch object asks for more than 256 MB of memory (section .bss): refused" },
		{ func_outside_text, "malformed patch object: a symbol that lies outside its section (section .text): rebuild it" },
		{ rel_not_rela, "malformed patch object: REL relocations (x86-64 objects use RELA) (section .rela.text): rebuild it" },
	};
	const tp_cfg *c = &CFGS[0];
	const char *src = "static int n;\nstatic int *p = &n;\nint get(void) { return ++*p; }\n";
	program(c, SIZE_MAIN, src, NULL);
	tp_patch(c, src, "good.o");
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		img m = img_read("good.o");
		cases[i].fn(&m);
		img_write(&m, "bad.o");
		char *out = tp_run((const char *const[]){ "bad.o", NULL });
		char *want = t_fmt("get 1\nrefused: %s\nget 2\n", cases[i].why);
		cr_expect_str_eq(out, want, "case %zu", i);
		free(want);
		free(out);
	}
}

/* ---- a kernel without membarrier's SYNC_CORE (before 4.16, or a seccomp profile that denies it) ---- */

static const char *NOSYNC_MAIN =
	"#include <errno.h>\n#include <stddef.h>\n#include <stdio.h>\n#include <linux/filter.h>\n#include <linux/seccomp.h>\n"
	"#include <sys/prctl.h>\n#include <sys/syscall.h>\n"
	"int apply(const char *path);\n"
	"int tick(void); int base(void);\n"
	"int main(int argc, char **argv) {\n"
	"	(void)argc;\n"
	"	struct sock_filter f[] = {\n"
	"		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),\n"
	"		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_membarrier, 0, 1),\n"
	"		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),\n"
	"		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),\n"
	"	};\n"
	"	struct sock_fprog p = { sizeof f / sizeof *f, f };\n"
	"	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p)) return 2;\n"
	"	printf(\"base %d\\n\", base());\n"
	"	apply(argv[1]);\n"
	"	printf(\"base %d\\n\", base());\n"
	"	return 0;\n}\n";

/* Without membarrier the patch still lands, with another way to serialise the cores, and the program is told so. */
Test(patch, without_membarrier_sync_core_the_patch_lands_and_the_program_is_told)
{
	tp_cfg c = { "gcc", "-O2" };
	program(&c, NOSYNC_MAIN, tp_calls_v1, NULL);
	tp_patch(&c, tp_calls_v2, "p1.o");
	t_run r = t_exec(tp_dir, NULL, (const char *const[]){ "./prog", "p1.o", NULL });
	cr_expect_eq(r.status, 0, "%s\n%s", r.out, r.err);
	cr_expect_str_eq(r.out, "base 1\napplied 1 v1\nbase 5\n", "%s", r.err);
	cr_expect(strstr(r.err, "membarrier") && strstr(r.err, "SYNC_CORE"), "%s", r.err);
	t_run_free(&r);
}

static const char *SYNCFAIL_MAIN =
	"#include <errno.h>\n#include <stddef.h>\n#include <stdio.h>\n#include <linux/filter.h>\n#include <linux/membarrier.h>\n"
	"#include <linux/seccomp.h>\n#include <sys/prctl.h>\n#include <sys/syscall.h>\n"
	"int apply(const char *path);\n"
	"int tick(void); int base(void);\n"
	"int main(int argc, char **argv) {\n"
	"	(void)argc;\n"
	"	printf(\"base %d\\n\", base());\n"
	"	apply(argv[1]);\n"
	"	printf(\"base %d\\n\", base());\n"
	"	/* from here membarrier's SYNC_CORE fails, though it was registered */\n"
	"	struct sock_filter f[] = {\n"
	"		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),\n"
	"		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_membarrier, 0, 3),\n"
	"		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),\n"
	"		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 1),\n"
	"		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),\n"
	"		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),\n"
	"	};\n"
	"	struct sock_fprog p = { sizeof f / sizeof *f, f };\n"
	"	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p)) return 2;\n"
	"	apply(argv[2]);\n"
	"	printf(\"base %d\\n\", base());\n"
	"	return 0;\n}\n";

/*
 * A membarrier that fails once the text is written: the patch is not refused
 * then, since a thunk already leads to its code (refused, the code would be
 * unmapped under the next call). The cores are serialised the other way.
 */
Test(patch, a_membarrier_failing_after_the_first_write_does_not_unmap_code_already_reachable)
{
	tp_cfg c = { "gcc", "-O2" };
	program(&c, SYNCFAIL_MAIN, tp_calls_v1, NULL);
	tp_patch(&c, tp_calls_v2, "p1.o");
	tp_patch(&c, tp_calls_v3, "p2.o");
	t_run r = t_exec(tp_dir, NULL, (const char *const[]){ "./prog", "p1.o", "p2.o", NULL });
	cr_expect_eq(r.status, 0, "%s\n%s", r.out, r.err);
	cr_expect_str_eq(r.out, "base 1\napplied 1 v1\nbase 5\napplied 1 v2\nbase 7\n", "%s", r.err);
	t_run_free(&r);
}
