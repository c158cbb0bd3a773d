/* test_build.c: what a compiler run's result says: the message, the verdict, the recorded command line. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../daemon/build.h"

#define EXITED(n) ((n) << 8)
#define KILLED(sig) (sig)

Test(build, the_message_is_the_first_compiler_error)
{
	struct { const char *out, *want; } cases[] = {
		{ "enemy.c: In function 'f':\nenemy.c:3:12: error: expected ';' before '}' token\n    3 | return 1 }\n"
		  "enemy.c:4:1: error: second\n",
		  "enemy.c:3:12: error: expected ';' before '}' token" },
		{ "enemy.c:1:10: fatal error: missing.h: No such file or directory\ncompilation terminated.\n",
		  "enemy.c:1:10: fatal error: missing.h: No such file or directory" },
		{ "/usr/bin/ld: /tmp/cc.o: in function `f':\nenemy.c:(.text+0x5): undefined reference to `g'\n"
		  "collect2: error: ld returned 1 exit status\n",
		  "enemy.c:(.text+0x5): undefined reference to `g'" },
		{ "something odd happened\n", "something odd happened" },
		{ "\n\nenemy.c:2:1: warning: unused\ncc1: error: bad option\n", "cc1: error: bad option" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char msg[256];
		hrd_job_message(cases[i].out, EXITED(1), msg, sizeof msg);
		cr_assert_str_eq(msg, cases[i].want, "case %zu", i);
	}
	char msg[256];
	hrd_job_message("", KILLED(9), msg, sizeof msg);
	cr_assert_str_eq(msg, "the compiler ended (killed by signal 9 (Killed)) without a message");
	hrd_job_message(NULL, EXITED(4), msg, sizeof msg);
	cr_assert_str_eq(msg, "the compiler ended (exited with status 4) without a message");
}

Test(build, only_the_compilers_verdict_on_the_sources_pins_them)
{
	cr_assert(hrd_job_verdict(EXITED(1), "enemy.c:3:12: error: expected ';'\n"));
	cr_assert(!hrd_job_verdict(EXITED(4), "enemy.c:3:12: internal compiler error: Segmentation fault\n"));
	cr_assert(!hrd_job_verdict(KILLED(9), ""));
	const char *elsewhere[] = {
		"enemy.c:1:10: fatal error: missing.h: No such file or directory\n",
		"cc: fatal error: Killed signal terminated program cc1\n",
		"/usr/bin/ld: final link failed: No space left on device\n",
		"as: fatal error: File size limit exceeded\n",
		"cc1: out of memory allocating 65536 bytes\n",
	};
	for (size_t i = 0; i < sizeof elsewhere / sizeof *elsewhere; i++)
		cr_assert(!hrd_job_verdict(EXITED(1), elsewhere[i]), "%s", elsewhere[i]);
}

Test(build, the_command_line_is_quoted_where_a_shell_needs_it)
{
	char *argv[] = { "cc", "-shared", "-DNAME=\"x y\"", "-o", "/tmp/a b.so", "it's.c", "", NULL };
	char *line = hrd_job_cmdline(argv);
	cr_assert_str_eq(line, "cc -shared '-DNAME=\"x y\"' -o '/tmp/a b.so' 'it'\\''s.c' ''");
	free(line);
}
