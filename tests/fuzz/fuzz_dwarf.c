/* fuzz_dwarf.c: libFuzzer driver for the DWARF reader on an ELF image (an executable, or a relocatable object whose debug relocations are applied as the loader does): any bytes, no crash, every result within the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../client/dwarf.h"
#include "elfinput.h"

/* A copy of section name, with R_X86_64_64/32 relocations against section symbols at address 0 applied. */
static uint8_t *sec(const hrc_elf *e, const char *name, const uint8_t **d, size_t *n)
{
	const Elf64_Shdr *s = hrc_elf_section(e, name);
	*d = s ? hrc_elf_data(e, s) : NULL;
	*n = *d ? s->sh_size : 0;
	if (!*d)
		return NULL;
	uint8_t *c = malloc(*n);
	memcpy(c, *d, *n);
	unsigned idx = (unsigned)(s - e->sh);
	for (unsigned i = 0; i < e->eh->e_shnum; i++) {
		const Elf64_Shdr *rs = &e->sh[i];
		if (rs->sh_type != SHT_RELA || rs->sh_info != idx || rs->sh_offset % 8)
			continue;
		const Elf64_Rela *ra = (const Elf64_Rela *)hrc_elf_data(e, rs);
		for (size_t k = 0; ra && k < rs->sh_size / sizeof *ra; k++) {
			unsigned w = ELF64_R_TYPE(ra[k].r_info) == R_X86_64_64 ? 8 : 4;
			if (ra[k].r_offset <= *n && w <= *n - ra[k].r_offset)
				memcpy(c + ra[k].r_offset, &ra[k].r_addend, w);
		}
	}
	*d = c;
	return c;
}

/* The DWARF read from the image's sections; every name within the input, every function in a unit. */
static void check(const hrc_elf *e, size_t size)
{
	char err[256];
	hrc_dw_sections s;
	uint8_t *own[8];
	own[0] = sec(e, ".debug_info", &s.info, &s.info_n);
	own[1] = sec(e, ".debug_abbrev", &s.abbrev, &s.abbrev_n);
	own[2] = sec(e, ".debug_str", &s.str, &s.str_n);
	own[3] = sec(e, ".debug_line_str", &s.line_str, &s.line_str_n);
	own[4] = sec(e, ".debug_str_offsets", &s.str_offsets, &s.str_offsets_n);
	own[5] = sec(e, ".debug_addr", &s.addr, &s.addr_n);
	own[6] = sec(e, ".debug_rnglists", &s.rnglists, &s.rnglists_n);
	own[7] = sec(e, ".debug_ranges", &s.ranges, &s.ranges_n);
	hrc_dwarf d;
	if (hrc_dwarf_read(&d, &s, 0x1000, err, sizeof err) == 0) {
		for (size_t i = 0; i < d.nvars; i++)
			if (strlen(d.vars[i].name) >= size || !hrc_dwarf_has_unit(&d, d.vars[i].cu))
				abort();
		for (size_t i = 0; i < d.nfuncs; i++)
			if (hrc_dwarf_unit_of(&d, d.funcs[i].addr) == NULL)
				abort();
		hrc_dwarf_free(&d);
	} else if (!err[0]) {
		abort(); /* a refusal says why */
	}
	for (int i = 0; i < 8; i++)
		free(own[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_elf_input(data, size, check);
	return 0;
}
