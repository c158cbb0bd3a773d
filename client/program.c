/* program.c: the running executable's symbols, DWARF and tables, and hrc_prog_apply's batch over several patches. */
#include "patch_impl.h"
#include "gdbjit.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <linux/membarrier.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const hrc_xsym *)a)->name, ((const hrc_xsym *)b)->name);
}

static int cmp_addr(const void *a, const void *b)
{
	const hrc_xsym *x = *(hrc_xsym *const *)a, *y = *(hrc_xsym *const *)b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int cmp_var(const void *a, const void *b)
{
	return strcmp(((const hrc_var *)a)->key, ((const hrc_var *)b)->key);
}

/* The main program's load bias and image range, from the loader's first entry. */
static int main_image(struct dl_phdr_info *info, size_t sz, void *arg)
{
	(void)sz;
	hrc_prog *p = arg;
	uint64_t lo = ~0ull, hi = 0;
	for (unsigned i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		if (ph->p_vaddr < lo)
			lo = ph->p_vaddr;
		if (ph->p_vaddr + ph->p_memsz > hi)
			hi = ph->p_vaddr + ph->p_memsz;
	}
	p->bias = info->dlpi_addr;
	p->lo = info->dlpi_addr + lo;
	p->hi = info->dlpi_addr + hi;
	return 1; /* the first entry is the executable */
}

static void sec(const hrc_elf *e, const char *name, const uint8_t **d, size_t *n)
{
	const Elf64_Shdr *s = hrc_elf_section(e, name);
	*d = s ? hrc_elf_data(e, s) : NULL;
	*n = *d ? s->sh_size : 0;
}

char *hrc_var_key(const hrc_dw_var *v)
{
	size_t n = strlen(v->cu) + strlen(v->func) + strlen(v->name) + 16;
	char *k = malloc(n);
	if (k)
		snprintf(k, n, "%s\n%s\n%s\n%u", v->cu, v->func, v->name, v->ord);
	return k;
}

static int read_symbols(hrc_prog *p, char *err, size_t errsz)
{
	const hrc_elf *e = &p->exe;
	const Elf64_Shdr *st = NULL;
	for (unsigned i = 0; i < e->eh->e_shnum; i++)
		if (e->sh[i].sh_type == SHT_SYMTAB)
			st = &e->sh[i];
	if (!st || st->sh_link >= e->eh->e_shnum) {
		snprintf(err, errsz, "the executable is stripped (no .symtab): do not strip a program to be patched");
		return -ENOEXEC;
	}
	const Elf64_Shdr *ss = &e->sh[st->sh_link];
	const char *str = (const char *)hrc_elf_data(e, ss);
	if (!str || str[ss->sh_size - 1]) {
		snprintf(err, errsz, "the executable's symbol names are unreadable");
		return -ENOEXEC;
	}
	const Elf64_Sym *sy = (const Elf64_Sym *)hrc_elf_data(e, st);
	size_t n = st->sh_size / sizeof *sy;
	p->syms = calloc(n ? n : 1, sizeof *p->syms);
	p->byaddr = calloc(n ? n : 1, sizeof *p->byaddr);
	if (!p->syms || !p->byaddr)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		unsigned t = ELF64_ST_TYPE(sy[i].st_info);
		if ((t != STT_FUNC && t != STT_OBJECT) || sy[i].st_shndx == SHN_UNDEF || sy[i].st_name >= ss->sh_size)
			continue;
		hrc_xsym *x = &p->syms[p->nsyms++];
		x->name = str + sy[i].st_name;
		x->addr = sy[i].st_value + p->bias;
		x->size = sy[i].st_size;
		x->type = (unsigned char)t;
		x->bind = (unsigned char)ELF64_ST_BIND(sy[i].st_info);
	}
	qsort(p->syms, p->nsyms, sizeof *p->syms, cmp_name);
	for (size_t i = 0; i < p->nsyms; i++)
		if (p->syms[i].type == STT_OBJECT)
			p->byaddr[p->nbyaddr++] = &p->syms[i];
	qsort(p->byaddr, p->nbyaddr, sizeof *p->byaddr, cmp_addr);
	return 0;
}

static uint64_t object_size(const hrc_prog *p, uint64_t addr, int *found)
{
	size_t lo = 0, hi = p->nbyaddr;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;
		if (p->byaddr[m]->addr < addr)
			lo = m + 1;
		else
			hi = m;
	}
	*found = lo < p->nbyaddr && p->byaddr[lo]->addr == addr;
	return *found ? p->byaddr[lo]->size : 0;
}

static int index_vars(hrc_prog *p)
{
	p->vars = calloc(p->dw.nvars ? p->dw.nvars : 1, sizeof *p->vars);
	if (!p->vars)
		return -ENOMEM;
	p->capvars = p->dw.nvars ? p->dw.nvars : 1;
	for (size_t i = 0; i < p->dw.nvars; i++) {
		int found;
		uint64_t size = object_size(p, p->dw.vars[i].addr, &found);
		if (!found)
			continue; /* no symbol: nothing to match its size with */
		hrc_var *v = &p->vars[p->nvars];
		if (!(v->key = hrc_var_key(&p->dw.vars[i])))
			return -ENOMEM;
		v->addr = p->dw.vars[i].addr;
		v->size = size;
		p->nvars++;
	}
	qsort(p->vars, p->nvars, sizeof *p->vars, cmp_var);
	p->nsorted = p->nvars;
	return 0;
}

static pthread_mutex_t prog_lock = PTHREAD_MUTEX_INITIALIZER; /* the one program, and every apply */
static hrc_prog *the_prog;

static void prog_free(hrc_prog *p);

int hrc_prog_open(hrc_prog **out, char *err, size_t errsz)
{
	pthread_mutex_lock(&prog_lock);
	if (the_prog) {
		*out = the_prog;
		pthread_mutex_unlock(&prog_lock);
		return 0;
	}
	hrc_prog *p = calloc(1, sizeof *p);
	if (!p) {
		pthread_mutex_unlock(&prog_lock);
		return -ENOMEM;
	}
	int rc, fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errsz, "/proc/self/exe: %s", strerror(errno));
		goto fail;
	}
	rc = hrc_elf_open(&p->exe, fd, err, errsz);
	close(fd);
	if (rc < 0)
		goto fail;
	dl_iterate_phdr(main_image, p);
	if (!hrc_elf_section(&p->exe, "__patchable_function_entries")) {
		snprintf(err, errsz,
			 "the program was not built with -fpatchable-function-entry=7,5 (see pkg-config --cflags hotreload-patch)");
		rc = -ENOEXEC;
		goto fail;
	}
	if ((rc = read_symbols(p, err, errsz)) < 0)
		goto fail;
	hrc_dw_sections s;
	memset(&s, 0, sizeof s);
	sec(&p->exe, ".debug_info", &s.info, &s.info_n);
	sec(&p->exe, ".debug_abbrev", &s.abbrev, &s.abbrev_n);
	sec(&p->exe, ".debug_str", &s.str, &s.str_n);
	sec(&p->exe, ".debug_line_str", &s.line_str, &s.line_str_n);
	sec(&p->exe, ".debug_str_offsets", &s.str_offsets, &s.str_offsets_n);
	sec(&p->exe, ".debug_addr", &s.addr, &s.addr_n);
	sec(&p->exe, ".debug_rnglists", &s.rnglists, &s.rnglists_n);
	sec(&p->exe, ".debug_ranges", &s.ranges, &s.ranges_n);
	const Elf64_Shdr *di = hrc_elf_section(&p->exe, ".debug_info");
	if (di && (di->sh_flags & SHF_COMPRESSED)) {
		snprintf(err, errsz, "the program's debug information is compressed (-gz): build without it");
		rc = -ENOEXEC;
		goto fail;
	}
	if ((rc = hrc_dwarf_read(&p->dw, &s, p->bias, err, errsz)) < 0)
		goto fail;
	const hrc_xsym *m = hrc_prog_global(p, "main");
	if (!p->dw.ncus || (m && !hrc_dwarf_unit_of(&p->dw, m->addr))) {
		snprintf(err, errsz, "no DWARF debug information for the program's own code (main): build it with -g");
		rc = -ENOEXEC;
		goto fail;
	}
	if ((rc = index_vars(p)) < 0)
		goto fail;
	p->membarrier_ok = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0) == 0;
	if (!p->membarrier_ok) /* once per process: the program is opened once (the_prog) */
		fprintf(stderr,
			"hotreload: membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE): %s (Linux 4.16 or "
			"later has it; a seccomp profile may deny it): patches serialise the cores by a page's TLB flush "
			"instead, which a thread in a system call may miss; allow membarrier for the guarantee\n",
			strerror(errno));
	*out = the_prog = p;
	pthread_mutex_unlock(&prog_lock);
	return 0;
fail:
	prog_free(p);
	pthread_mutex_unlock(&prog_lock);
	return rc;
}

void hrc_prog_close(hrc_prog *p)
{
	(void)p;
}

static void prog_free(hrc_prog *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nvars; i++)
		free(p->vars[i].key);
	for (size_t i = 0; i < p->nfns; i++) {
		free(p->fns[i].unit);
		free(p->fns[i].name);
	}
	free(p->vars);
	free(p->fns);
	free(p->syms);
	free(p->byaddr);
	hrc_dwarf_free(&p->dw);
	hrc_elf_close(&p->exe);
	free(p);
}

int hrc_prog_has_unit(const hrc_prog *p, const char *unit)
{
	return hrc_dwarf_has_unit(&p->dw, unit);
}

unsigned hrc_prog_version(const hrc_prog *p)
{
	return p->version;
}

const hrc_var *hrc_prog_var(const hrc_prog *p, const char *key)
{
	hrc_var k = { (char *)key, 0, 0 };
	const hrc_var *v = bsearch(&k, p->vars, p->nsorted, sizeof *p->vars, cmp_var);
	if (v)
		return v;
	for (size_t i = p->nvars; i-- > p->nsorted;)
		if (!strcmp(p->vars[i].key, key))
			return &p->vars[i];
	return NULL;
}

/* The first of the executable's symbols named name. */
static const hrc_xsym *first_named(const hrc_prog *p, const char *name, size_t *n)
{
	size_t lo = 0, hi = p->nsyms;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;
		if (strcmp(p->syms[m].name, name) < 0)
			lo = m + 1;
		else
			hi = m;
	}
	size_t e = lo;
	while (e < p->nsyms && !strcmp(p->syms[e].name, name))
		e++;
	*n = e - lo;
	return p->syms + lo;
}

const hrc_xsym *hrc_prog_global(const hrc_prog *p, const char *name)
{
	size_t n;
	const hrc_xsym *s = first_named(p, name, &n);
	for (size_t i = 0; i < n; i++)
		if (s[i].bind == STB_GLOBAL || s[i].bind == STB_WEAK)
			return &s[i];
	return NULL;
}

uint64_t hrc_prog_func(const hrc_prog *p, const char *unit, const char *name)
{
	size_t n;
	const hrc_xsym *s = first_named(p, name, &n);
	for (size_t i = 0; i < n; i++) {
		const char *u = s[i].type == STT_FUNC ? hrc_dwarf_unit_of(&p->dw, s[i].addr) : NULL;
		if (u && !strcmp(u, unit))
			return s[i].addr;
	}
	return 0;
}

/*
 * The record of unit's function name, looked for from *from on and then from the start; *from is left after it.
 * A unit's functions come in the same order patch after patch, so that a search from after the last one found
 * is one comparison, where a search from the start made applying a 100-function unit quadratic.
 */
static hrc_fn *find_fn(hrc_prog *p, const char *unit, const char *name, size_t *from)
{
	for (size_t k = 0; k < p->nfns; k++) {
		size_t i = (*from + k) % p->nfns;
		if (!strcmp(p->fns[i].name, name) && !strcmp(p->fns[i].unit, unit)) {
			*from = i + 1;
			return &p->fns[i];
		}
	}
	return NULL;
}

static int grow(void **a, size_t *cap, size_t need, size_t each)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *q = realloc(*a, n * each);
	if (!q)
		return -ENOMEM;
	*a = q;
	*cap = n;
	return 0;
}

static int apply(hrc_prog *p, const int *fds, hrc_preload **pre, size_t n, char *err, size_t errsz);

int hrc_prog_apply(hrc_prog *p, const int *fds, size_t n, char *err, size_t errsz)
{
	return hrc_prog_apply_loaded(p, fds, NULL, n, err, errsz);
}

int hrc_prog_apply_loaded(hrc_prog *p, const int *fds, hrc_preload **pre, size_t n, char *err, size_t errsz)
{
	pthread_mutex_lock(&prog_lock);
	int rc = apply(p, fds, pre, n, err, errsz);
	pthread_mutex_unlock(&prog_lock);
	for (size_t i = 0; pre && i < n; i++) { /* those a failure left */
		hrc_preload_drop(pre[i]);
		pre[i] = NULL;
	}
	return rc;
}

struct hrc_preload {
	hrc_patch pt;
	unsigned version; /* p->version when it was loaded: binding read the variables of the patches so far */
};

hrc_preload *hrc_prog_preload(hrc_prog *p, int fd)
{
	hrc_preload *pl = calloc(1, sizeof *pl);
	char why[256]; /* a failure is said by the apply, which loads it again */
	if (!pl)
		return NULL;
	pthread_mutex_lock(&prog_lock);
	int rc = hrc_patch_load(p, fd, &pl->pt, why, sizeof why);
	pl->version = p->version;
	pthread_mutex_unlock(&prog_lock);
	if (rc < 0) {
		free(pl);
		return NULL;
	}
	return pl;
}

void hrc_preload_drop(hrc_preload *pl)
{
	if (!pl)
		return;
	hrc_patch_drop(&pl->pt);
	free(pl);
}

/* Under prog_lock: the patch on fd into *out, from its preload when that is still valid. */
static int load(hrc_prog *p, int fd, hrc_preload **pre, hrc_patch *out, char *err, size_t errsz)
{
	hrc_preload *pl = pre ? *pre : NULL;
	if (pre)
		*pre = NULL;
	if (pl && pl->version == p->version) {
		*out = pl->pt;
		free(pl);
		return 0;
	}
	hrc_preload_drop(pl); /* bound before another patch added its variables */
	return hrc_patch_load(p, fd, out, err, errsz);
}

static int apply(hrc_prog *p, const int *fds, hrc_preload **pre, size_t n, char *err, size_t errsz)
{
	hrc_patch *pt = calloc(n ? n : 1, sizeof *pt);
	hrc_redir *r = NULL;
	size_t np = 0, nr = 0, capr = 0, nfns0 = p->nfns, from = 0;
	int rc = 0;
	if (!pt)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		rc = load(p, fds[i], pre ? &pre[i] : NULL, &pt[np], err, errsz);
		if (rc == -ENOENT) {
			rc = 0; /* a unit of another program: not ours, not an error */
			continue;
		}
		if (rc < 0)
			goto fail;
		np++;
	}
	if (!np)
		goto out;
	/* records for functions seen for the first time; undone on failure (nfns0) */
	for (size_t i = 0; i < np; i++) {
		for (size_t j = 0; j < pt[i].nfns; j++) {
			hrc_pfn *f = &pt[i].fns[j];
			hrc_fn *fn = find_fn(p, pt[i].unit, f->name, &from);
			if (!fn) {
				if ((rc = grow((void **)&p->fns, &p->capfns, p->nfns + 1, sizeof *p->fns)) < 0)
					goto fail;
				fn = &p->fns[p->nfns];
				memset(fn, 0, sizeof *fn);
				fn->unit = strdup(pt[i].unit);
				fn->name = strdup(f->name);
				p->nfns++;
				if (!fn->unit || !fn->name) {
					rc = -ENOMEM;
					goto fail;
				}
				fn->current = hrc_prog_func(p, pt[i].unit, f->name);
			}
			if ((rc = grow((void **)&r, &capr, nr + 1, sizeof *r)) < 0)
				goto fail;
			hrc_redir *x = &r[nr++];
			memset(x, 0, sizeof *x);
			x->thunk = fn->thunk;
			if (!x->thunk) {
				if (!(x->thunk = hrc_thunk_new(p))) {
					rc = -errno;
					snprintf(err, errsz, "no memory for a thunk near the program: %s", strerror(errno));
					goto fail;
				}
				x->fresh = 1;
			}
			x->target = f->addr;
			x->entry = (uint8_t *)fn->current;
			x->switch_entry = fn->current != 0;
			x->unit = fn->unit;
			x->name = fn->name;
		}
	}
	size_t nadd = 0;
	for (size_t i = 0; i < np; i++)
		nadd += pt[i].nnew;
	if ((rc = grow((void **)&p->vars, &p->capvars, p->nvars + nadd, sizeof *p->vars)) < 0)
		goto fail;
	if ((rc = hrc_redirect(p, r, nr, err, errsz)) < 0)
		goto fail;
	/* switched: commit the records and the new variables */
	for (size_t k = 0, i = 0; i < np; i++) {
		for (size_t j = 0; j < pt[i].nfns; j++, k++) {
			hrc_fn *fn = find_fn(p, pt[i].unit, pt[i].fns[j].name, &from);
			fn->thunk = r[k].thunk;
			fn->current = pt[i].fns[j].addr;
		}
		for (size_t j = 0; j < pt[i].nnew; j++) {
			p->vars[p->nvars++] = pt[i].newvars[j];
			pt[i].newvars[j].key = NULL;
		}
		if (pt[i].image) /* the debugger sees the new code from now on */
			hrc_gdbjit_register(pt[i].image, pt[i].image_size);
		hrc_patch_forget(&pt[i]);
	}
	p->version += (unsigned)np;
	rc = 1;
	goto out;
fail:
	for (size_t i = 0; i < np; i++)
		hrc_patch_drop(&pt[i]);
	for (size_t i = nfns0; i < p->nfns; i++) {
		free(p->fns[i].unit);
		free(p->fns[i].name);
	}
	p->nfns = nfns0;
out:
	free(r);
	free(pt);
	return rc;
}
