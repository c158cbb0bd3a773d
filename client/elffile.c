/* elffile.c: map an ELF64 x86-64 file read-only and check that every section lies within it. */
#include "elffile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

int hrc_elf_open(hrc_elf *e, int fd, char *err, size_t errsz)
{
	struct stat st;
	memset(e, 0, sizeof *e);
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof(Elf64_Ehdr)) {
		snprintf(err, errsz, "not an ELF file (too small or not a regular file)");
		return -ENOEXEC;
	}
	if ((uint64_t)st.st_size > HRC_ELF_MAX_FILE) {
		snprintf(err, errsz, "file of %lld bytes is larger than the %llu MB limit", (long long)st.st_size,
			 HRC_ELF_MAX_FILE >> 20);
		return -EFBIG;
	}
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	e->map = m;
	e->size = (size_t)st.st_size;
	e->eh = m;
	const Elf64_Ehdr *h = e->eh;
	if (memcmp(h->e_ident, ELFMAG, SELFMAG) || h->e_ident[EI_CLASS] != ELFCLASS64 ||
	    h->e_ident[EI_DATA] != ELFDATA2LSB) {
		snprintf(err, errsz, "not a 64-bit little-endian ELF file");
		goto bad;
	}
	if (h->e_machine != EM_X86_64) {
		snprintf(err, errsz, "not x86-64 (ELF machine %u): patching is built for x86-64 only", h->e_machine);
		goto bad;
	}
	if (h->e_shentsize != sizeof(Elf64_Shdr) || h->e_shoff > e->size || h->e_shoff % 8 ||
	    (uint64_t)h->e_shnum * sizeof(Elf64_Shdr) > e->size - h->e_shoff || h->e_shstrndx >= h->e_shnum) {
		snprintf(err, errsz, "section headers out of the file");
		goto bad;
	}
	e->sh = (const Elf64_Shdr *)(e->map + h->e_shoff);
	for (unsigned i = 0; i < h->e_shnum; i++) {
		const Elf64_Shdr *s = &e->sh[i];
		if (s->sh_type != SHT_NOBITS && (s->sh_offset > e->size || s->sh_size > e->size - s->sh_offset)) {
			snprintf(err, errsz, "section %u out of the file", i);
			goto bad;
		}
	}
	const Elf64_Shdr *ss = &e->sh[h->e_shstrndx];
	if (ss->sh_type == SHT_NOBITS) { /* its offset was not checked: no bytes in the file */
		snprintf(err, errsz, "section name table out of the file");
		goto bad;
	}
	e->shstr = (const char *)e->map + ss->sh_offset;
	e->shstrsz = ss->sh_size;
	if (!e->shstrsz || e->shstr[e->shstrsz - 1]) {
		snprintf(err, errsz, "section name table not terminated");
		goto bad;
	}
	return 0;
bad:
	hrc_elf_close(e);
	return -ENOEXEC;
}

void hrc_elf_close(hrc_elf *e)
{
	if (e->map)
		munmap((void *)e->map, e->size);
	memset(e, 0, sizeof *e);
}

const char *hrc_elf_secname(const hrc_elf *e, const Elf64_Shdr *s)
{
	return s->sh_name < e->shstrsz ? e->shstr + s->sh_name : "";
}

const Elf64_Shdr *hrc_elf_section(const hrc_elf *e, const char *name)
{
	for (unsigned i = 0; i < e->eh->e_shnum; i++)
		if (!strcmp(hrc_elf_secname(e, &e->sh[i]), name))
			return &e->sh[i];
	return NULL;
}

const uint8_t *hrc_elf_data(const hrc_elf *e, const Elf64_Shdr *s)
{
	if (s->sh_type == SHT_NOBITS || !s->sh_size)
		return NULL;
	return e->map + s->sh_offset;
}
