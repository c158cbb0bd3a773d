/* elfcheck.c: refuse a built object of another machine, class or type with a reason, before dlopen tries it. */
#include "elfcheck.h"

#include <elf.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The linker's name for the ELF header of the object it links: this library's own (the program's, when linked statically). */
extern const unsigned char __ehdr_start[] __attribute__((visibility("hidden")));

/* The machines a game is likely to run on, and a cross compiler that builds for each. */
static const struct machine {
	unsigned em;
	const char *name, *cc;
} machines[] = {
	{EM_X86_64, "x86-64", "x86_64-linux-gnu-gcc"},
	{EM_AARCH64, "aarch64", "aarch64-linux-gnu-gcc"},
	{EM_386, "i386", "i686-linux-gnu-gcc"},
	{EM_ARM, "arm", "arm-linux-gnueabihf-gcc"},
	{EM_RISCV, "riscv", "riscv64-linux-gnu-gcc"},
	{EM_PPC64, "ppc64", "powerpc64le-linux-gnu-gcc"},
	{EM_PPC, "ppc", "powerpc-linux-gnu-gcc"},
	{EM_S390, "s390x", "s390x-linux-gnu-gcc"},
	{EM_MIPS, "mips", "mips-linux-gnu-gcc"},
	{EM_LOONGARCH, "loongarch", "loongarch64-linux-gnu-gcc"},
};

/* A 16-bit field of a header, in its own byte order. */
static unsigned half(const unsigned char *h, size_t at)
{
	return h[EI_DATA] == ELFDATA2MSB ? (unsigned)h[at] << 8 | h[at + 1] : (unsigned)h[at + 1] << 8 | h[at];
}

static const struct machine *machine_of(unsigned em)
{
	for (size_t i = 0; i < sizeof machines / sizeof *machines; i++)
		if (machines[i].em == em)
			return &machines[i];
	return NULL;
}

/* "aarch64 (ELF64)", "ppc64 (ELF64, big-endian)", "machine 1234 (ELF32)". */
static void describe(const unsigned char *h, char *out, size_t n)
{
	const struct machine *m = machine_of(half(h, offsetof(Elf64_Ehdr, e_machine)));
	char num[32];
	snprintf(num, sizeof num, "machine %u", half(h, offsetof(Elf64_Ehdr, e_machine)));
	snprintf(out, n, "%s (ELF%s%s)", m ? m->name : num,
	         h[EI_CLASS] == ELFCLASS64 ? "64" : h[EI_CLASS] == ELFCLASS32 ? "32" : "?",
	         h[EI_DATA] == ELFDATA2MSB ? ", big-endian" : "");
}

int hrc_elf_check_with(const unsigned char *own, int fd, char *why, size_t whysz)
{
	/* e_type and e_machine sit at the same offsets in both classes' headers: 16 and 18. */
	unsigned char h[64];
	ssize_t n;
	while ((n = pread(fd, h, sizeof h, 0)) < 0 && errno == EINTR)
		;
	if (n < 0) {
		int e = errno;
		snprintf(why, whysz, "cannot read the object's ELF header: %s", strerror(e));
		return -e;
	}
	if (n < (ssize_t)sizeof(Elf32_Ehdr) || memcmp(h, ELFMAG, SELFMAG) != 0) {
		snprintf(why, whysz, "object is not an ELF file (%s): what built it?",
		         n < (ssize_t)sizeof(Elf32_Ehdr) ? "too short for an ELF header" : "no ELF magic");
		return -ENOEXEC;
	}
	char obj[64], game[64];
	describe(h, obj, sizeof obj);
	describe(own, game, sizeof game);
	unsigned em = half(own, offsetof(Elf64_Ehdr, e_machine));
	if (h[EI_CLASS] != own[EI_CLASS] || h[EI_DATA] != own[EI_DATA] || half(h, offsetof(Elf64_Ehdr, e_machine)) != em) {
		const struct machine *m = machine_of(em);
		snprintf(why, whysz, "object is %s, this game is %s: build it with a compiler for the game's machine "
		         "(cc = %s in hotreload.conf)", obj, game, m ? m->cc : "...");
		return -ENOEXEC;
	}
	unsigned type = half(h, offsetof(Elf64_Ehdr, e_type));
	if (type != ET_DYN) {
		char num[32];
		snprintf(num, sizeof num, "ELF type %u", type);
		snprintf(why, whysz, "object is not a shared object (%s): link it with -shared",
		         type == ET_REL ? "ET_REL, an object not linked" : type == ET_EXEC ? "ET_EXEC, a program" : num);
		return -ENOEXEC;
	}
	return 0;
}

int hrc_elf_check(int fd, char *why, size_t whysz)
{
	return hrc_elf_check_with(__ehdr_start, fd, why, whysz);
}
