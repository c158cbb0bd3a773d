/* fuzz_patch.c: libFuzzer driver for the patch loader's checks of a relocatable object (hrc_patch_check: sections, symbols, relocations), then a dry run of what the loader reads from them: any bytes, no crash, and an accepted object's every reference lies within it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../client/patchcheck.h"
#include "elfinput.h"

/* What the loader takes for granted once the check passed (the file is mapped, which ASan does not watch: so asserted). */
static void walk(const hrc_elf *e)
{
	const Elf64_Shdr *st = NULL;
	for (unsigned i = 0; i < e->eh->e_shnum; i++)
		if (e->sh[i].sh_type == SHT_SYMTAB)
			st = &e->sh[i];
	const Elf64_Sym *sy = (const Elf64_Sym *)hrc_elf_data(e, st);
	size_t nsym = sy ? st->sh_size / sizeof *sy : 0;
	const Elf64_Shdr *ss = &e->sh[st->sh_link];
	const char *str = (const char *)hrc_elf_data(e, ss);
	volatile size_t sink = 0;
	for (size_t i = 1; i < nsym; i++) {
		if (sy[i].st_name < ss->sh_size)
			sink += strlen(str + sy[i].st_name);
		unsigned x = sy[i].st_shndx;
		if (x && x < e->eh->e_shnum && (e->sh[x].sh_flags & SHF_ALLOC) &&
		    (sy[i].st_value > e->sh[x].sh_size || sy[i].st_size > e->sh[x].sh_size - sy[i].st_value))
			abort();
	}
	for (unsigned i = 0; i < e->eh->e_shnum; i++) {
		const Elf64_Shdr *rs = &e->sh[i];
		if (rs->sh_type != SHT_RELA || !(e->sh[rs->sh_info].sh_flags & SHF_ALLOC))
			continue;
		const Elf64_Shdr *ts = &e->sh[rs->sh_info];
		const Elf64_Rela *ra = (const Elf64_Rela *)hrc_elf_data(e, rs);
		for (size_t k = 0; ra && k < rs->sh_size / sizeof *ra; k++) {
			unsigned t = ELF64_R_TYPE(ra[k].r_info);
			if (t == R_X86_64_NONE)
				continue;
			if (ELF64_R_SYM(ra[k].r_info) >= nsym || ts->sh_type == SHT_NOBITS || ts->sh_size > HRC_PATCH_MAX_LOAD)
				abort();
			unsigned w = t == R_X86_64_64 || t == R_X86_64_PC64 ? 8 : 4;
			if (ra[k].r_offset + w > ts->sh_size || ts->sh_offset + ts->sh_size > e->size)
				abort();
		}
	}
	(void)sink;
}

/* The check, then the walk of an object it accepted. */
static void check(const hrc_elf *e, size_t size)
{
	char err[512] = "";
	(void)size;
	if (hrc_patch_check(e, err, sizeof err) == 0)
		walk(e);
	else if (!err[0])
		abort(); /* a refusal says why */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_elf_input(data, size, check);
	return 0;
}
