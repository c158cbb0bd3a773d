/* test_patchparse.c: the patch engine's parsers (client/elffile.c, client/dwarf.c) on hostile input: bounded in reach, depth, memory and time. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "../client/dwarf.h"
#include "../client/elffile.h"
#include "util.h"

/* A DWARF 4 compile unit of one DIE of abbreviation code 1 whose bytes after the code are body. */
static uint8_t *unit(const uint8_t *body, size_t n, size_t *len)
{
	*len = 4 + 2 + 4 + 1 + 1 + n;
	uint8_t *u = calloc(1, *len);
	uint32_t l = (uint32_t)(*len - 4);
	memcpy(u, &l, 4);
	u[4] = 4; /* version */
	u[10] = 8; /* address size; abbreviation offset 0 */
	u[11] = 1; /* the DIE's code */
	memcpy(u + 12, body, n);
	return u;
}

Test(patchparse, a_chain_of_indirect_forms_is_refused_not_followed)
{
	/* compile_unit, no children, DW_AT_name in DW_FORM_indirect; the value names indirect again, a million times */
	static const uint8_t abbrev[] = { 1, 0x11, 0, 0x03, 0x16, 0, 0, 0 };
	size_t n = 1u << 20, len;
	uint8_t *body = malloc(n + 3);
	memset(body, 0x16, n);
	memcpy(body + n, "\x08x", 3);
	uint8_t *info = unit(body, n + 3, &len);
	hrc_dw_sections s = { .info = info, .info_n = len, .abbrev = abbrev, .abbrev_n = sizeof abbrev };
	hrc_dwarf d;
	char err[256] = "";
	int rc = hrc_dwarf_read(&d, &s, 0, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_expect_eq(d.ncus, 0, "the unit's name is unreadable: no unit");
	hrc_dwarf_free(&d);
	free(info);
	free(body);
}

Test(patchparse, an_abbreviation_code_beyond_its_table_is_refused)
{
	/* code 2^20 in an 8-byte table: a table of 2^20 slots for one entry, for each unit that names it */
	static const uint8_t abbrev[] = { 0x80, 0x80, 0x40, 0x11, 0, 0, 0, 0 };
	size_t len;
	uint8_t *info = unit((const uint8_t *)"", 0, &len);
	hrc_dw_sections s = { .info = info, .info_n = len, .abbrev = abbrev, .abbrev_n = sizeof abbrev };
	hrc_dwarf d;
	char err[256] = "";
	cr_assert_eq(hrc_dwarf_read(&d, &s, 0, err, sizeof err), -ENOEXEC);
	cr_expect_str_eq(err, "unreadable DWARF abbreviations at .debug_abbrev+0x0");
	free(info);
}

Test(patchparse, codes_numbered_from_one_as_compilers_write_them_are_read)
{
	/* codes 1 and 2; the unit's DIE (code 1) names it in DW_FORM_string, with children: one variable DIE (code 2) */
	static const uint8_t abbrev[] = { 1, 0x11, 1, 0x03, 0x08, 0, 0, 2, 0x34, 0, 0x03, 0x08, 0x02, 0x18, 0, 0, 0 };
	static const uint8_t body[] = { '/', 'u', '.', 'c', 0, 2, 'v', 0, 9, 0x03, 0x10, 0, 0, 0, 0, 0, 0, 0, 0 };
	size_t len;
	uint8_t *info = unit(body, sizeof body, &len);
	hrc_dw_sections s = { .info = info, .info_n = len, .abbrev = abbrev, .abbrev_n = sizeof abbrev };
	hrc_dwarf d;
	char err[256] = "";
	cr_assert_eq(hrc_dwarf_read(&d, &s, 0x1000, err, sizeof err), 0, "%s", err);
	cr_assert_eq(d.ncus, 1);
	cr_expect_str_eq(d.cus[0], "/u.c");
	cr_assert_eq(d.nvars, 1);
	cr_expect_str_eq(d.vars[0].name, "v");
	cr_expect_eq(d.vars[0].addr, 0x1010);
	hrc_dwarf_free(&d);
	free(info);
}

Test(patchparse, a_section_name_table_without_bytes_is_refused)
{
	/* a real object whose .shstrtab claims to be .bss-like (no bytes) at an offset far outside the file */
	char *dir = t_tmpdir(), *src = t_fmt("%s/a.c", dir), *obj = t_fmt("%s/a.o", dir);
	cr_assert_eq(t_write(src, "int a;\n", 7), 0);
	t_run r = t_exec(dir, NULL, (const char *const[]){ "cc", "-c", "a.c", "-o", "a.o", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	t_run_free(&r);
	size_t n;
	uint8_t *img = (uint8_t *)t_read(obj, &n);
	const Elf64_Ehdr *h = (const Elf64_Ehdr *)img;
	Elf64_Shdr *ss = (Elf64_Shdr *)(img + h->e_shoff) + h->e_shstrndx;
	ss->sh_type = SHT_NOBITS;
	ss->sh_offset = 1ull << 44;
	cr_assert_eq(t_write(obj, img, n), 0);
	int fd = open(obj, O_RDONLY | O_CLOEXEC);
	hrc_elf e;
	char err[256] = "";
	cr_expect_eq(hrc_elf_open(&e, fd, err, sizeof err), -ENOEXEC);
	cr_expect_str_eq(err, "section name table out of the file");
	close(fd);
	free(img);
	free(src);
	free(obj);
	t_rmtree(dir);
	free(dir);
}
