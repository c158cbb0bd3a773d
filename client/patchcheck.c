/* patchcheck.c: a patch object's section, symbol and relocation tables checked against the file, before loading. */
#include "patchcheck.h"

#include <errno.h>
#include <stdio.h>

static int bad(char *err, size_t errsz, int rc, const char *what, const char *sec)
{
	snprintf(err, errsz, "malformed patch object: %s (section %s): rebuild it", what, sec);
	return rc;
}

/* Bytes a relocation of type t writes: as the loader applies it. */
static uint64_t width(unsigned t)
{
	return t == R_X86_64_64 || t == R_X86_64_PC64 ? 8 : 4;
}

static int check_symbols(const hrc_elf *e, const Elf64_Shdr *st, char *err, size_t errsz)
{
	unsigned nsec = e->eh->e_shnum;
	const char *sn = hrc_elf_secname(e, st);
	if (st->sh_link >= nsec || !hrc_elf_data(e, &e->sh[st->sh_link])) {
		snprintf(err, errsz, "the patch object has no symbol table");
		return -ENOEXEC;
	}
	const Elf64_Shdr *ss = &e->sh[st->sh_link];
	const char *str = (const char *)hrc_elf_data(e, ss);
	if (str[ss->sh_size - 1])
		return bad(err, errsz, -ENOEXEC, "symbol names not terminated", hrc_elf_secname(e, ss));
	if (st->sh_offset % 8 || st->sh_size % sizeof(Elf64_Sym))
		return bad(err, errsz, -ENOEXEC, "symbol table not a whole number of aligned entries", sn);
	const Elf64_Sym *sy = (const Elf64_Sym *)hrc_elf_data(e, st);
	size_t n = sy ? st->sh_size / sizeof *sy : 0;
	for (size_t i = 1; i < n; i++) {
		unsigned x = sy[i].st_shndx;
		if (x == SHN_UNDEF || x == SHN_ABS || x == SHN_COMMON)
			continue;
		if (x >= nsec)
			return bad(err, errsz, -ENOEXEC, "a symbol in a section that does not exist", sn);
		const Elf64_Shdr *s = &e->sh[x];
		/* the loader places a symbol at its section's address + st_value, and a variable's st_size bytes there */
		if ((s->sh_flags & SHF_ALLOC) &&
		    (sy[i].st_value > s->sh_size || sy[i].st_size > s->sh_size - sy[i].st_value))
			return bad(err, errsz, -ENOEXEC, "a symbol that lies outside its section", hrc_elf_secname(e, s));
	}
	return 0;
}

static int check_relocs(const hrc_elf *e, const Elf64_Shdr *rs, size_t nsym, char *err, size_t errsz)
{
	const char *rn = hrc_elf_secname(e, rs);
	if (rs->sh_info >= e->eh->e_shnum)
		return bad(err, errsz, -ENOEXEC, "relocations for a section that does not exist", rn);
	const Elf64_Shdr *ts = &e->sh[rs->sh_info];
	if (rs->sh_type == SHT_REL) {
		if (ts->sh_flags & SHF_ALLOC)
			return bad(err, errsz, -ENOTSUP, "REL relocations (x86-64 objects use RELA)", rn);
		return 0;
	}
	if (rs->sh_offset % 8 || rs->sh_size % sizeof(Elf64_Rela))
		return bad(err, errsz, -ENOEXEC, "relocation table not a whole number of aligned entries", rn);
	if (!(ts->sh_flags & SHF_ALLOC))
		return 0; /* debug sections: their copies are relocated with checks of their own */
	const Elf64_Rela *ra = (const Elf64_Rela *)hrc_elf_data(e, rs);
	size_t n = ra ? rs->sh_size / sizeof *ra : 0;
	if (n && ts->sh_type == SHT_NOBITS)
		return bad(err, errsz, -ENOEXEC, "relocations into a section that has no bytes", rn);
	for (size_t k = 0; k < n; k++) {
		uint64_t off = ra[k].r_offset, w = width(ELF64_R_TYPE(ra[k].r_info));
		if (ELF64_R_TYPE(ra[k].r_info) == R_X86_64_NONE)
			continue;
		if (ELF64_R_SYM(ra[k].r_info) >= nsym)
			return bad(err, errsz, -ENOEXEC, "a relocation names a symbol past the symbol table", rn);
		if (off > ts->sh_size || w > ts->sh_size - off)
			return bad(err, errsz, -ENOEXEC, "a relocation writes outside the section it relocates", rn);
	}
	return 0;
}

int hrc_patch_check(const hrc_elf *e, char *err, size_t errsz)
{
	unsigned nsec = e->eh->e_shnum;
	if (e->eh->e_type != ET_REL) {
		snprintf(err, errsz, "a patch must be a relocatable object (cc -c), not ELF type %u", e->eh->e_type);
		return -ENOEXEC;
	}
	const Elf64_Shdr *st = NULL;
	uint64_t total = 0;
	for (unsigned i = 0; i < nsec; i++) {
		const Elf64_Shdr *s = &e->sh[i];
		if (s->sh_type == SHT_SYMTAB)
			st = s;
		if (!(s->sh_flags & SHF_ALLOC))
			continue;
		if (s->sh_addralign & (s->sh_addralign - 1))
			return bad(err, errsz, -ENOEXEC, "an alignment that is not a power of two", hrc_elf_secname(e, s));
		/* each section's size alone first, so that the sum (with its alignment) cannot wrap */
		if (s->sh_size > HRC_PATCH_MAX_LOAD || (total += s->sh_size + (s->sh_addralign & 0xffff)) > HRC_PATCH_MAX_LOAD) {
			snprintf(err, errsz, "the patch object asks for more than %llu MB of memory (section %s): refused",
				 HRC_PATCH_MAX_LOAD >> 20, hrc_elf_secname(e, s));
			return -EFBIG;
		}
	}
	if (!st) {
		snprintf(err, errsz, "the patch object has no symbol table");
		return -ENOEXEC;
	}
	int rc = check_symbols(e, st, err, errsz);
	size_t nsym = st->sh_size / sizeof(Elf64_Sym);
	for (unsigned i = 0; i < nsec && !rc; i++)
		if (e->sh[i].sh_type == SHT_RELA || e->sh[i].sh_type == SHT_REL)
			rc = check_relocs(e, &e->sh[i], nsym, err, errsz);
	return rc;
}
