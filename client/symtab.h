/* symtab.h: a loaded object's exported symbols, resolved once, looked up without the loader's lock. */
#ifndef HRC_SYMTAB_H
#define HRC_SYMTAB_H

#include <stddef.h>

typedef struct hrc_sym {
	const char *name; /* in the object's own string table: valid while it is mapped */
	void *addr;
	size_t size; /* st_size: a variable's size in bytes */
} hrc_sym;

typedef struct hrc_symtab {
	hrc_sym *syms; /* sorted by name */
	size_t n;
} hrc_symtab;

/*
 * Every symbol that the object behind handle (from dlopen) defines and
 * exports, thread-local ones excepted (their address is per thread). Call it
 * on the thread that loads; it takes the loader's lock. Returns 0, or -ENOMEM,
 * or -ENOEXEC when the object's dynamic section is not one it can read.
 */
int hrc_symtab_make(hrc_symtab *t, void *handle);
void hrc_symtab_free(hrc_symtab *t);
/* The address of name, or NULL. No lock, no system call. */
void *hrc_symtab_find(const hrc_symtab *t, const char *name);
/* The entry of name, or NULL. */
const hrc_sym *hrc_symtab_get(const hrc_symtab *t, const char *name);
/* The entries whose names start with prefix: the first, and their number in *n. */
const hrc_sym *hrc_symtab_prefixed(const hrc_symtab *t, const char *prefix, size_t *n);

#endif
