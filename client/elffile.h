/* elffile.h: an ELF64 x86-64 file mapped read-only, with its section headers checked against its size. */
#ifndef HRC_ELFFILE_H
#define HRC_ELFFILE_H

#include <elf.h>
#include <stddef.h>
#include <stdint.h>

/* What a program or patch file may be: bounds the mapping. */
#define HRC_ELF_MAX_FILE (1024ull << 20)

typedef struct hrc_elf {
	const uint8_t *map;
	size_t size;
	const Elf64_Ehdr *eh;
	const Elf64_Shdr *sh; /* eh->e_shnum entries, each range checked */
	const char *shstr;
	size_t shstrsz;
} hrc_elf;

/*
 * Map the file on fd (pread-free: mmap of the whole file) and check the
 * header: ELF64, little-endian, x86-64, sections within the file. 0, or
 * -ENOEXEC (with why in err), -EFBIG, -errno.
 */
int hrc_elf_open(hrc_elf *e, int fd, char *err, size_t errsz);
void hrc_elf_close(hrc_elf *e);
/* The section called name, or NULL. */
const Elf64_Shdr *hrc_elf_section(const hrc_elf *e, const char *name);
/* A section's name ("" if out of range). */
const char *hrc_elf_secname(const hrc_elf *e, const Elf64_Shdr *s);
/* A section's bytes (NULL for SHT_NOBITS or an empty one). */
const uint8_t *hrc_elf_data(const hrc_elf *e, const Elf64_Shdr *s);

#endif
