/* symtab.h: a loaded object's exported symbols, resolved once, looked up without the loader's lock. */
#ifndef HRC_SYMTAB_H
#define HRC_SYMTAB_H

#include <stddef.h>

typedef struct hrc_sym {
	const char *name; /* in the object's own string table: valid while it is mapped */
	void *addr;
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

#endif
