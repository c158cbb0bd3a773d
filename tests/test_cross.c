/* test_cross.c: a game on another architecture (aarch64 under qemu-user, modules built by a cross cc), and the library's ELF check. */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../client/elfcheck.h"
#include "e2e.h"

/* Built by make check when the cross tools are here: tests/host.c for aarch64, against a cross install of the library. */
#define XHOST HR_BUILD_DIR "/cross/host"
#define XPREFIX HR_BUILD_DIR "/cross/prefix"
#define SYSROOT "/usr/aarch64-linux-gnu"
#define XCC "aarch64-linux-gnu-gcc"

static int have(const char *cmd)
{
	char *c = t_fmt("command -v %s >/dev/null 2>&1", cmd);
	int ok = system(c) == 0;
	free(c);
	return ok;
}

static void cross_setup(void)
{
	e2e_setup();
	if (!have(XCC) || !have("qemu-aarch64") || access(XHOST, X_OK) != 0) {
		e2e_teardown();
		cr_skip_test("the cross tools are absent (" XCC ", qemu-aarch64, or " XHOST ", which make check builds with "
		             "them): scripts/deps.sh cross installs them");
	}
}

TestSuite(cross, .init = cross_setup, .fini = e2e_teardown, .timeout = 240);

/* The aarch64 game under qemu-user, as host 0, finding the daemon through HOTRELOAD_SOCKET; --notes, on module a. */
static t_proc *xgame(void)
{
	char *env = t_fmt("HOTRELOAD_SOCKET=%s", e2e_d.sock);
	const char *argv[] = {"qemu-aarch64", "-L", SYSROOT, XHOST, "--notes", "-", "a", NULL};
	cr_assert_eq(t_proc_start(&e2e_hosts[0], e2e_dir, (const char *const[]){env, NULL}, argv), 0,
	             "cannot start the aarch64 game");
	free(env);
	return &e2e_hosts[0];
}

/* Module a: value() is tag * 10 + the loads so far, counted in a global that HR_KEEP (from <hotreload.h>) carries over. */
static void kept_module(int tag)
{
	char *src = t_fmt("#include <stdint.h>\n#include <hotreload.h>\n"
	                  "HR_KEEP(int, loads);\n"
	                  "int hr_on_load(void *ud, uint64_t prev) { (void)ud; (void)prev; loads++; return 0; }\n"
	                  "int value(void) { return %d * 10 + loads; }\n", tag);
	e2e_put("a.c", src);
	free(src);
}

/* The ELF machine of the file at path (0 if unreadable). */
static unsigned machine_of(const char *path)
{
	size_t len = 0;
	unsigned char *h = (unsigned char *)t_read(path, &len);
	unsigned em = h && len >= sizeof(Elf64_Ehdr) ? (unsigned)h[18] | (unsigned)h[19] << 8 : 0;
	free(h);
	return em;
}

Test(cross, the_cross_install_holds_the_library_for_aarch64_and_nothing_of_the_daemon)
{
	cr_expect_eq(machine_of(XPREFIX "/lib/libhotreload.so.0.1.0"), EM_AARCH64, "the shared library is aarch64's");
	cr_expect_eq(access(XPREFIX "/lib/libhotreload.a", R_OK), 0, "the static library");
	cr_expect_eq(access(XPREFIX "/include/hotreload.h", R_OK), 0, "the header");
	cr_expect_eq(access(XPREFIX "/lib/pkgconfig/hotreload.pc", R_OK), 0, "the pkg-config file");
	cr_expect_neq(access(XPREFIX "/bin", F_OK), 0, "no daemon or CLI: they need sqlite3 and libinotifytools");
	cr_expect_eq(machine_of(XHOST), EM_AARCH64, "the game is aarch64's");
	/* its own build folder: the native build's objects stay the native machine's */
	cr_expect_eq(machine_of(HR_BUILD_DIR "/cross/build/client/thread.o"), EM_AARCH64);
	cr_expect_neq(machine_of(HR_BUILD_DIR "/client/thread.o"), EM_AARCH64);
}

Test(cross, a_save_goes_live_in_the_aarch64_game_and_a_compile_error_keeps_it_running)
{
	/* quick = tcc too: tcc builds for this machine only, so a cross module is never built quick */
	e2e_put("hotreload.conf", "cc = " XCC "\nquick = tcc\n");
	kept_module(1);
	e2e_start_daemon(NULL);
	t_proc *g = xgame();
	e2e_expect(g, "first a 1 v=1 value=11");
	kept_module(2);
	e2e_expect(g, "update a 1 v=2 value=22"); /* the kept global came over: 2 loads */
	e2e_put("a.c", "int value(void) { return }\n");
	e2e_wait_history(".[0].status", "failed");
	kept_module(3);
	e2e_expect(g, "value=33");
	cr_assert(strstr(g->line, "update a 1 v="), "%s", g->line);
	e2e_wait_history("map(.tier) | unique | join(\",\")", "final");
	cr_expect_eq(t_file_count(e2e_d.log, "refused"), 0, "a build was refused (see %s)", e2e_d.log);
	e2e_end(g);
}

Test(cross, x86_64_objects_sent_to_the_aarch64_game_are_refused_with_the_reason_and_the_old_build_stays)
{
	e2e_put("hotreload.conf", "cc = " XCC "\n");
	kept_module(1);
	e2e_start_daemon(NULL);
	t_proc *g = xgame();
	e2e_expect(g, "first a 1 v=1 value=11");
	/* a daemon with the native compiler */
	e2e_put("hotreload.conf", "cc = cc\n");
	e2e_expect(g, "note refused error a v2: a v2 refused: object is x86-64 (ELF64), this game is aarch64 (ELF64): "
	              "build it with a compiler for the game's machine (cc = aarch64-linux-gnu-gcc in hotreload.conf)");
	e2e_expect(g, "update a -8 v=1 value=11"); /* refused: v1 is still live */
	cr_assert(t_until_in_file(e2e_d.log, "a: v2 refused by client", 1, E2E_WAIT_MS), "the daemon was not told");
	/* and the cross compiler again: live, with the kept global of v1 */
	e2e_put("hotreload.conf", "cc = " XCC "\n");
	kept_module(3);
	e2e_expect(g, "value=32");
	cr_assert(strstr(g->line, "update a 1 v="), "%s", g->line);
	e2e_end(g);
}

Test(cross, a_folder_modules_cached_objects_are_kept_apart_by_compiler)
{
	/* Two sources: objects are cached per source, and their key must name the compiler. */
	char *dir = t_fmt("%s/a", e2e_dir);
	cr_assert_eq(mkdir(dir, 0755), 0);
	free(dir);
	e2e_put("a/x.c", "int y(void);\nint value(void) { return 40 + y(); }\n");
	e2e_put("a/y.c", "int y(void) { return 2; }\n");
	e2e_put("hotreload.conf", "cc = " XCC "\n");
	e2e_start_daemon(NULL);
	t_proc *g = xgame();
	e2e_expect(g, "first a 1 v=1 value=42");
	/* The native compiler: it must compile both again (linking aarch64 objects would fail), and the game refuses its build. */
	e2e_put("hotreload.conf", "cc = cc\n");
	e2e_expect(g, "refused: object is x86-64 (ELF64)");
	e2e_wait_history(".[0] | \"\\(.version) \\(.status)\"", "2 refused"); /* built, not failed */
	/* Back to the cross compiler, one source changed: its objects are aarch64's again. */
	e2e_put("hotreload.conf", "cc = " XCC "\n");
	e2e_put("a/y.c", "int y(void) { return 3; }\n");
	e2e_expect(g, "value=43");
	cr_assert(strstr(g->line, "update a 1 v="), "%s", g->line);
	e2e_end(g);
}

/*
 * An installed daemon puts PREFIX/include on each module's include path for
 * <hotreload.h>; with /usr/local that folder holds this machine's headers of
 * other libraries, which must not stand in for the target's own.
 */
Test(cross, an_installed_daemons_include_folder_does_not_shadow_the_targets_headers)
{
	char *pre = t_tmpdir(), *bin = t_fmt("%s/bin", pre), *inc = t_fmt("%s/include", pre);
	cr_assert_eq(mkdir(bin, 0755), 0);
	cr_assert_eq(mkdir(inc, 0755), 0);
	char *exe = t_fmt("%s/hotreloadd", bin), *shadow = t_fmt("%s/stdio.h", inc);
	t_run r = t_exec(NULL, NULL, (const char *const[]){"cp", HR_BUILD_DIR "/hotreloadd", exe, NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	r = t_exec(NULL, NULL, (const char *const[]){"cp", HR_SOURCE_DIR "/client/hotreload.h", inc, NULL});
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	const char *native = "#error \"this machine's stdio.h, not the target's\"\n";
	cr_assert_eq(t_write(shadow, native, strlen(native)), 0);
	setenv("HR_DAEMON", exe, 1);
	e2e_put("hotreload.conf", "cc = " XCC "\n");
	e2e_put("a.c", "#include <stdio.h>\n#include <hotreload.h>\nHR_KEEP(int, n);\n"
	               "int value(void) { return snprintf(NULL, 0, \"%d\", 42) + n; }\n");
	e2e_start_daemon(NULL);
	char *said = t_fmt("modules find <hotreload.h> in %s", inc);
	cr_assert(t_until_in_file(e2e_d.log, said, 1, E2E_WAIT_MS), "the installed daemon's include folder is not %s", inc);
	e2e_wait_history(".[0] | \"\\(.status) \\(.message)\"", "ok ");
	t_proc *g = xgame();
	e2e_expect(g, "first a 1 v=1 value=2");
	e2e_end(g);
	t_rmtree(pre);
	free(said);
	free(exe);
	free(shadow);
	free(bin);
	free(inc);
	free(pre);
}

/* ---- the ELF check, natively ---- */

TestSuite(elfcheck, .init = e2e_setup, .fini = e2e_teardown, .timeout = 120);

/* A 64-byte ELF header: class, byte order, type and machine (little-endian fields unless msb). */
static void header(unsigned char h[64], int cls, int msb, unsigned type, unsigned em)
{
	memset(h, 0, 64);
	memcpy(h, ELFMAG, SELFMAG);
	h[EI_CLASS] = (unsigned char)cls;
	h[EI_DATA] = msb ? ELFDATA2MSB : ELFDATA2LSB;
	h[EI_VERSION] = EV_CURRENT;
	h[16 + !msb] = (unsigned char)(type >> 8), h[16 + msb] = (unsigned char)type;
	h[18 + !msb] = (unsigned char)(em >> 8), h[18 + msb] = (unsigned char)em;
}

/* hrc_elf_check_with against own, of a file holding len bytes of h; the reason in why. */
static int check(const unsigned char *own, const unsigned char *h, size_t len, char *why, size_t n)
{
	char *p = t_fmt("%s/obj", e2e_dir);
	cr_assert_eq(t_write(p, h, len), 0);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	why[0] = '\0';
	int rc = hrc_elf_check_with(own, fd, why, n);
	cr_expect_eq(lseek(fd, 0, SEEK_CUR), 0, "the descriptor's offset moved");
	close(fd);
	free(p);
	return rc;
}

Test(elfcheck, another_machine_class_or_type_is_refused_naming_both)
{
	unsigned char game[64], obj[64];
	char why[512];
	header(game, ELFCLASS64, 0, ET_DYN, EM_AARCH64);
	header(obj, ELFCLASS64, 0, ET_DYN, EM_AARCH64);
	cr_expect_eq(check(game, obj, 64, why, sizeof why), 0, "%s", why);
	header(obj, ELFCLASS64, 0, ET_DYN, EM_X86_64);
	cr_expect_eq(check(game, obj, 64, why, sizeof why), -ENOEXEC);
	cr_expect_str_eq(why, "object is x86-64 (ELF64), this game is aarch64 (ELF64): build it with a compiler for the "
	                      "game's machine (cc = aarch64-linux-gnu-gcc in hotreload.conf)");
	header(game, ELFCLASS64, 0, ET_EXEC, EM_X86_64);
	header(obj, ELFCLASS32, 0, ET_DYN, EM_386);
	cr_expect_eq(check(game, obj, 52, why, sizeof why), -ENOEXEC);
	cr_expect_str_eq(why, "object is i386 (ELF32), this game is x86-64 (ELF64): build it with a compiler for the "
	                      "game's machine (cc = x86_64-linux-gnu-gcc in hotreload.conf)");
	header(obj, ELFCLASS64, 1, ET_DYN, EM_PPC64);
	cr_expect_eq(check(game, obj, 64, why, sizeof why), -ENOEXEC);
	cr_expect(strstr(why, "object is ppc64 (ELF64, big-endian), this game is x86-64"), "%s", why);
	header(obj, ELFCLASS64, 0, ET_DYN, 4321);
	cr_expect_eq(check(game, obj, 64, why, sizeof why), -ENOEXEC);
	cr_expect(strstr(why, "object is machine 4321 (ELF64)"), "%s", why);
	header(obj, ELFCLASS64, 0, ET_REL, EM_X86_64);
	cr_expect_eq(check(game, obj, 64, why, sizeof why), -ENOEXEC);
	cr_expect_str_eq(why, "object is not a shared object (ET_REL, an object not linked): link it with -shared");
	cr_expect_eq(check(game, obj, 40, why, sizeof why), -ENOEXEC);
	cr_expect_str_eq(why, "object is not an ELF file (too short for an ELF header): what built it?");
	const char *script = "#!/bin/sh\nexit 0\n# and some more text, longer than an ELF header\n";
	cr_expect_eq(check(game, (const unsigned char *)script, strlen(script), why, sizeof why), -ENOEXEC);
	cr_expect_str_eq(why, "object is not an ELF file (no ELF magic): what built it?");
}

Test(elfcheck, this_programs_own_shared_objects_pass)
{
	char why[512] = "";
	int fd = open(HR_BUILD_DIR "/libhotreload.so", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_expect_eq(hrc_elf_check(fd, why, sizeof why), 0, "%s", why);
	close(fd);
}

/* A native game, and a daemon whose cc is the aarch64 cross compiler: its objects are refused with the reason, not loaded. */
Test(elfcheck, an_aarch64_object_announced_to_a_native_game_is_refused_with_the_reason)
{
	if (!have(XCC))
		cr_skip_test(XCC " is absent: scripts/deps.sh cross installs it");
	e2e_put("hotreload.conf", "cc = " XCC "\n");
	e2e_module("a.c", 1, 0);
	e2e_start_daemon(NULL);
	t_proc *h = e2e_host(0, (const char *const[]){"--notes", NULL}, (const char *const[]){"a", NULL});
	const char *line = e2e_expect(h, "note refused error a v1: a v1 refused: object is aarch64 (ELF64), this game is ");
	cr_expect(strstr(line, ": build it with a compiler for the game's machine (cc = "), "%s", line);
	cr_assert(t_until_in_file(e2e_d.log, "a: v1 refused by client", 1, E2E_WAIT_MS), "the daemon was not told");
	int has, n = e2e_mapped(h->pid, 1, &has);
	cr_expect_eq(n, 0, "an aarch64 build is mapped in the native game");
	e2e_end(h);
}
