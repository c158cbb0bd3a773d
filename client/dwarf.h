/* dwarf.h: the static variables and function entries of each compile unit, from DWARF 4 or 5 debug sections. */
#ifndef HRC_DWARF_H
#define HRC_DWARF_H

#include <stddef.h>
#include <stdint.h>

/* The debug sections to read (already relocated for a relocatable object). */
typedef struct hrc_dw_sections {
	const uint8_t *info, *abbrev, *str, *line_str, *str_offsets, *addr;
	size_t info_n, abbrev_n, str_n, line_str_n, str_offsets_n, addr_n;
	const uint8_t *rnglists, *ranges; /* DW_AT_ranges: DWARF 5's lists, DWARF 4's pairs */
	size_t rnglists_n, ranges_n;
} hrc_dw_sections;

/*
 * A variable with static storage. It is identified by its unit (cu), the
 * function that encloses it (func, "" at file scope; an inlined copy counts
 * as the inlined function), its name, and ord: its place among variables of
 * the same name in that scope (two blocks of one function may each have an
 * `n`). Never by the symbol's name: gcc's n.0/n.1 change when a function is
 * added. Strings point into the sections or into cus; valid while both are.
 */
typedef struct hrc_dw_var {
	const char *cu, *func, *name;
	unsigned ord;
	uint64_t addr; /* with the bias added */
} hrc_dw_var;

/*
 * A function's entry (DW_AT_low_pc, size 0), or one range of a function in pieces (DW_AT_ranges: gcc's hot and
 * cold parts), of any name, clones included: tells which unit a function symbol's address belongs to. A range's
 * start is not necessarily the entry; the ELF symbol of the function's name within it is.
 */
typedef struct hrc_dw_func {
	const char *cu;
	uint64_t addr, size;
} hrc_dw_func;

typedef struct hrc_dwarf {
	hrc_dw_var *vars;
	size_t nvars, capv;
	hrc_dw_func *funcs; /* sorted by addr after hrc_dwarf_read */
	size_t nfuncs, capf;
	char **cus; /* each unit's path: comp_dir joined with its name, normalised */
	size_t ncus, capc;
} hrc_dwarf;

/*
 * Index every compile unit of s, adding bias to each address. Thread-local
 * variables are left out. 0, or -ENOEXEC with what is wrong in err, or -ENOMEM.
 */
int hrc_dwarf_read(hrc_dwarf *d, const hrc_dw_sections *s, uint64_t bias, char *err, size_t errsz);
void hrc_dwarf_free(hrc_dwarf *d);
/* The unit whose function entry is exactly addr, or one of whose functions' ranges holds addr; or NULL. */
const char *hrc_dwarf_unit_of(const hrc_dwarf *d, uint64_t addr);
/* Whether the unit path is one of d's. */
int hrc_dwarf_has_unit(const hrc_dwarf *d, const char *cu);
/* Normalise a path in place: "//", "/./" and "dir/.." removed (lexically). */
void hrc_dwarf_normpath(char *p);

#endif
