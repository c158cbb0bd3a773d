/* symtab.c: read a loaded object's dynamic symbol table into a sorted array, so that hr_sym never calls dlsym. */
#include "symtab.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * glibc relocates the addresses in a loaded object's dynamic section on most
 * architectures, and not on those where it is read-only (MIPS, RISC-V):
 * an address below the load base is still relative.
 */
static uintptr_t at(const struct link_map *lm, ElfW(Addr) p)
{
	return p < lm->l_addr ? lm->l_addr + p : p;
}

/* The number of entries in .dynsym, which the dynamic section does not give: count them from a hash table. */
static size_t count_gnu(const uint32_t *h)
{
	uint32_t nbuckets = h[0], symoffset = h[1], bloom = h[2];
	const uint32_t *buckets = (const uint32_t *)((const ElfW(Addr) *)(h + 4) + bloom);
	const uint32_t *chain = buckets + nbuckets;
	uint32_t last = 0;
	for (uint32_t i = 0; i < nbuckets; i++)
		if (buckets[i] > last)
			last = buckets[i];
	if (last < symoffset)
		return symoffset;
	while (!(chain[last - symoffset] & 1))
		last++;
	return (size_t)last + 1;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const hrc_sym *)a)->name, ((const hrc_sym *)b)->name);
}

int hrc_symtab_make(hrc_symtab *t, void *handle)
{
	struct link_map *lm = NULL;
	const ElfW(Sym) *sym = NULL;
	const ElfW(Half) *versym = NULL;
	const char *str = NULL;
	size_t count = 0;
	*t = (hrc_symtab){0};
	if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || !lm)
		return -ENOEXEC;
	for (const ElfW(Dyn) *d = lm->l_ld; d->d_tag != DT_NULL; d++) {
		if (d->d_tag == DT_SYMTAB)
			sym = (const ElfW(Sym) *)at(lm, d->d_un.d_ptr);
		else if (d->d_tag == DT_STRTAB)
			str = (const char *)at(lm, d->d_un.d_ptr);
		else if (d->d_tag == DT_GNU_HASH)
			count = count_gnu((const uint32_t *)at(lm, d->d_un.d_ptr));
		else if (d->d_tag == DT_HASH)
			count = ((const uint32_t *)at(lm, d->d_un.d_ptr))[1]; /* nchain */
		else if (d->d_tag == DT_VERSYM)
			versym = (const ElfW(Half) *)at(lm, d->d_un.d_ptr);
	}
	if (!sym || !str || !count)
		return -ENOEXEC;
	if (!(t->syms = malloc(count * sizeof *t->syms)))
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		const ElfW(Sym) *s = &sym[i];
		int bind = ELF64_ST_BIND(s->st_info), type = ELF64_ST_TYPE(s->st_info);
		if (s->st_shndx == SHN_UNDEF || s->st_shndx == SHN_ABS || bind == STB_LOCAL || type == STT_TLS ||
		    ELF64_ST_VISIBILITY(s->st_other) > STV_PROTECTED || !str[s->st_name])
			continue;
		/* foo@V1 beside foo@@V2: only the default version is what dlsym would give. */
		if (versym && (versym[i] & 0x8000))
			continue;
		hrc_sym *e = &t->syms[t->n++];
		e->name = str + s->st_name;
		/* An indirect function's address is what its resolver returns: dlsym calls it. */
		e->addr = type == STT_GNU_IFUNC ? dlsym(handle, e->name) : (void *)(lm->l_addr + s->st_value);
		e->size = s->st_size;
	}
	qsort(t->syms, t->n, sizeof *t->syms, by_name);
	return 0;
}

void hrc_symtab_free(hrc_symtab *t)
{
	free(t->syms);
	*t = (hrc_symtab){0};
}

/* The index of the first entry not below name. */
static size_t lower(const hrc_symtab *t, const char *name)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(t->syms[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const hrc_sym *hrc_symtab_get(const hrc_symtab *t, const char *name)
{
	size_t i = lower(t, name);
	return i < t->n && strcmp(t->syms[i].name, name) == 0 ? &t->syms[i] : NULL;
}

void *hrc_symtab_find(const hrc_symtab *t, const char *name)
{
	const hrc_sym *s = hrc_symtab_get(t, name);
	return s ? s->addr : NULL;
}

const hrc_sym *hrc_symtab_prefixed(const hrc_symtab *t, const char *prefix, size_t *n)
{
	size_t first = lower(t, prefix), len = strlen(prefix), i = first;
	while (i < t->n && strncmp(t->syms[i].name, prefix, len) == 0)
		i++;
	*n = i - first;
	return t->syms + first;
}
