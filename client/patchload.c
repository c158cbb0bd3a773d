/* patchload.c: load one relocatable patch object near the executable, binding its statics to the program's storage. */
#include "patch_impl.h"
#include "gdbjit.h"
#include "patchcheck.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE 4096ull
#define MAX_ALIGN 4096ull

enum { C_NONE, C_TEXT, C_RO, C_DATA };

/* A data object of the patch: where it is in the block, and the storage that new code uses. */
typedef struct pvar {
	unsigned sec;
	uint64_t value, size, newaddr, useaddr;
} pvar;

typedef struct ld {
	hrc_prog *p;
	hrc_elf e;
	const Elf64_Sym *sym;
	size_t nsym;
	const char *str;
	size_t strsz;
	unsigned nsec;
	int *cls;
	uint64_t *secaddr;
	uint64_t *symaddr;
	pvar *vars;
	size_t nvars;
	uint8_t *block;
	size_t size, tsz, rsz, dsz;
	uint8_t *stubs, *got; /* next free stub (in text) and GOT slot (in read-only) */
	uint8_t *dbg[5]; /* relocated copies: info, str_offsets, addr, rnglists, ranges */
	char *err;
	size_t errsz;
	const char *unit;
} ld;

static const char *symname(const ld *l, const Elf64_Sym *s)
{
	if (ELF64_ST_TYPE(s->st_info) == STT_SECTION && s->st_shndx < l->nsec)
		return hrc_elf_secname(&l->e, &l->e.sh[s->st_shndx]);
	return s->st_name < l->strsz ? l->str + s->st_name : "?";
}

static int refuse(ld *l, int rc, const char *fmt, const char *a)
{
	char msg[512];
	snprintf(msg, sizeof msg, fmt, a);
	snprintf(l->err, l->errsz, "%s: %s", l->unit ? l->unit : "patch", msg);
	return rc;
}

static int classify(ld *l)
{
	for (unsigned i = 0; i < l->nsec; i++) {
		const Elf64_Shdr *s = &l->e.sh[i];
		const char *n = hrc_elf_secname(&l->e, s);
		l->cls[i] = C_NONE;
		if (!(s->sh_flags & SHF_ALLOC) || !s->sh_size || !strcmp(n, "__patchable_function_entries"))
			continue;
		if (s->sh_flags & SHF_TLS)
			continue; /* refused in bind(), naming the variable, once the unit is known */
		if (s->sh_addralign > MAX_ALIGN)
			return refuse(l, -ENOTSUP, "section %s asks for an alignment above 4096", n);
		/* .data.rel.ro: const data with pointers, writable only for a loader; the new code's, like all constants */
		int relro = !strncmp(n, ".data.rel.ro", 12);
		l->cls[i] = (s->sh_flags & SHF_EXECINSTR) ? C_TEXT : (s->sh_flags & SHF_WRITE) && !relro ? C_DATA : C_RO;
	}
	return 0;
}

static uint64_t up(uint64_t v, uint64_t a)
{
	return a > 1 ? (v + a - 1) & ~(a - 1) : v;
}

/* Count the relocations that may need a stub or a GOT slot, then place sections. */
static int layout(ld *l)
{
	uint64_t off[4] = { 0, 0, 0, 0 };
	size_t nstub = 0, ngot = 0;
	for (unsigned i = 0; i < l->nsec; i++) {
		const Elf64_Shdr *s = &l->e.sh[i];
		if (s->sh_type != SHT_RELA || s->sh_info >= l->nsec || l->cls[s->sh_info] == C_NONE)
			continue;
		size_t n = s->sh_size / sizeof(Elf64_Rela);
		const Elf64_Rela *ra = (const Elf64_Rela *)hrc_elf_data(&l->e, s);
		for (size_t k = 0; k < n && ra; k++) {
			unsigned t = ELF64_R_TYPE(ra[k].r_info);
			if (t == R_X86_64_PLT32 || t == R_X86_64_PC32)
				nstub++;
			else if (t == R_X86_64_GOTPCREL || t == R_X86_64_GOTPCRELX || t == R_X86_64_REX_GOTPCRELX)
				ngot++;
		}
	}
	uint64_t *place = calloc(l->nsec, sizeof *place);
	if (!place)
		return -ENOMEM;
	for (unsigned i = 0; i < l->nsec; i++) {
		int c = l->cls[i];
		if (c == C_NONE)
			continue;
		off[c] = up(off[c], l->e.sh[i].sh_addralign);
		place[i] = off[c];
		off[c] += l->e.sh[i].sh_size;
	}
	off[C_TEXT] = up(off[C_TEXT], 16);
	uint64_t stubs = off[C_TEXT];
	off[C_TEXT] += 16 * nstub;
	off[C_RO] = up(off[C_RO], 8);
	uint64_t got = off[C_RO];
	off[C_RO] += 8 * ngot;
	l->tsz = up(off[C_TEXT], PAGE);
	l->rsz = up(off[C_RO], PAGE);
	l->dsz = up(off[C_DATA], PAGE);
	l->size = l->tsz + l->rsz + l->dsz;
	if (!l->size)
		l->size = PAGE;
	if (!(l->block = hrc_near_alloc(l->p, l->size))) {
		snprintf(l->err, l->errsz, "no free memory within 2 GB of the program for the patch (%zu bytes): %s", l->size,
			 strerror(errno));
		free(place);
		return -ENOMEM;
	}
	uint64_t base[4] = { 0, (uint64_t)l->block, (uint64_t)l->block + l->tsz, (uint64_t)l->block + l->tsz + l->rsz };
	for (unsigned i = 0; i < l->nsec; i++) {
		int c = l->cls[i];
		if (c == C_NONE)
			continue;
		l->secaddr[i] = base[c] + place[i];
		const uint8_t *d = hrc_elf_data(&l->e, &l->e.sh[i]);
		if (d)
			memcpy((void *)l->secaddr[i], d, l->e.sh[i].sh_size);
	}
	free(place);
	l->stubs = (uint8_t *)(base[C_TEXT] + stubs);
	l->got = (uint8_t *)(base[C_RO] + got);
	memset(l->stubs, 0xcc, 16 * nstub);
	return 0;
}

/* The width a debug relocation writes (R_X86_64_64 or _32), or 0 to leave it: another type, a symbol not in
 * the object, or a place outside the size bytes of the section it applies to. */
static unsigned debug_rel_width(const ld *l, const Elf64_Rela *r, uint64_t size)
{
	unsigned t = ELF64_R_TYPE(r->r_info);
	unsigned w = t == R_X86_64_64 ? 8 : t == R_X86_64_32 ? 4 : 0;
	return w && ELF64_R_SYM(r->r_info) < l->nsym && r->r_offset <= size && w <= size - r->r_offset ? w : 0;
}

/* The debug sections, copied and relocated (their section symbols at 0, loaded ones at their addresses). */
static int debug_copy(ld *l, const char *name, const uint8_t **d, size_t *n, int slot)
{
	const Elf64_Shdr *s = hrc_elf_section(&l->e, name);
	*d = NULL;
	*n = 0;
	if (!s || !hrc_elf_data(&l->e, s))
		return 0;
	if (s->sh_flags & SHF_COMPRESSED)
		return refuse(l, -ENOTSUP, "compressed debug section %s (-gz): build patches without it", name);
	unsigned idx = (unsigned)(s - l->e.sh);
	uint8_t *c = malloc(s->sh_size);
	if (!c)
		return -ENOMEM;
	memcpy(c, hrc_elf_data(&l->e, s), s->sh_size);
	l->dbg[slot] = c;
	for (unsigned i = 0; i < l->nsec; i++) {
		const Elf64_Shdr *rs = &l->e.sh[i];
		if (rs->sh_type != SHT_RELA || rs->sh_info != idx)
			continue;
		const Elf64_Rela *ra = (const Elf64_Rela *)hrc_elf_data(&l->e, rs);
		size_t nr = ra ? rs->sh_size / sizeof *ra : 0;
		for (size_t k = 0; k < nr; k++) {
			unsigned w = debug_rel_width(l, &ra[k], s->sh_size);
			if (!w)
				continue;
			const Elf64_Sym *sy = &l->sym[ELF64_R_SYM(ra[k].r_info)];
			uint64_t v = (sy->st_shndx < l->nsec ? l->secaddr[sy->st_shndx] : 0) +
				     (ELF64_ST_TYPE(sy->st_info) == STT_SECTION ? 0 : sy->st_value) + (uint64_t)ra[k].r_addend;
			memcpy(c + ra[k].r_offset, &v, w);
		}
	}
	*d = c;
	*n = s->sh_size;
	return 0;
}

static void debug_sec(ld *l, const char *name, const uint8_t **d, size_t *n)
{
	const Elf64_Shdr *s = hrc_elf_section(&l->e, name);
	*d = s ? hrc_elf_data(&l->e, s) : NULL;
	*n = *d ? s->sh_size : 0;
}

static int cmp_pvar(const void *a, const void *b)
{
	const pvar *x = a, *y = b;
	if (x->sec != y->sec)
		return x->sec < y->sec ? -1 : 1;
	return x->value < y->value ? -1 : x->value > y->value;
}

/* Bind every symbol: new code, old storage (by DWARF identity), the program's globals, then the libraries. */
static int bind(ld *l, const hrc_dwarf *dw, hrc_patch *out)
{
	for (size_t i = 1; i < l->nsym; i++)
		if (ELF64_ST_TYPE(l->sym[i].st_info) == STT_TLS)
			return refuse(l, -ENOTSUP, "thread-local variable '%s' cannot be patched: restart the program",
				      symname(l, &l->sym[i]));
	for (size_t i = 1; i < l->nsym; i++) {
		const Elf64_Sym *s = &l->sym[i];
		unsigned t = ELF64_ST_TYPE(s->st_info);
		const char *nm = symname(l, s);
		if (t == STT_TLS)
			return refuse(l, -ENOTSUP, "thread-local variable '%s' cannot be patched: restart the program", nm);
		if (t == STT_GNU_IFUNC)
			return refuse(l, -ENOTSUP, "indirect function '%s' (ifunc) cannot be patched", nm);
		if (s->st_shndx == SHN_UNDEF || s->st_shndx == SHN_COMMON) {
			if (!*nm || !strcmp(nm, "_GLOBAL_OFFSET_TABLE_"))
				continue; /* the GOT is the loader's own (GOT slots in the block) */
			const hrc_xsym *g = hrc_prog_global(l->p, nm);
			void *a = g ? (void *)g->addr : dlsym(RTLD_DEFAULT, nm);
			if (!a && ELF64_ST_BIND(s->st_info) != STB_WEAK)
				return refuse(l, -ENXIO,
					      "undefined symbol '%s': neither the program nor its libraries define it "
					      "(a global of the program needs the program's .symtab; a library's must be linked in)",
					      nm);
			l->symaddr[i] = (uint64_t)a;
			continue;
		}
		if (s->st_shndx == SHN_ABS) {
			l->symaddr[i] = s->st_value;
			continue;
		}
		if (s->st_shndx >= l->nsec || l->cls[s->st_shndx] == C_NONE)
			continue;
		l->symaddr[i] = l->secaddr[s->st_shndx] + (t == STT_SECTION ? 0 : s->st_value);
		if (t != STT_OBJECT || l->cls[s->st_shndx] != C_DATA)
			continue;
		pvar *v = &l->vars[l->nvars++];
		v->sec = s->st_shndx;
		v->value = s->st_value;
		v->size = s->st_size;
		v->newaddr = v->useaddr = l->symaddr[i];
		const hrc_dw_var *dv = NULL;
		for (size_t k = 0; k < dw->nvars && !dv; k++)
			if (dw->vars[k].addr == v->newaddr)
				dv = &dw->vars[k];
		if (!dv) {
			/* no DWARF for it: a global of the program by that name is still unambiguous */
			const hrc_xsym *g = ELF64_ST_BIND(s->st_info) == STB_GLOBAL ? hrc_prog_global(l->p, nm) : NULL;
			if (g && g->type == STT_OBJECT && g->size == v->size)
				v->useaddr = l->symaddr[i] = g->addr;
			continue; /* otherwise the compiler's own: the patch's */
		}
		char *key = hrc_var_key(dv);
		if (!key)
			return -ENOMEM;
		const hrc_var *old = hrc_prog_var(l->p, key);
		if (old && old->size != v->size) {
			char msg[512];
			snprintf(msg, sizeof msg,
				 "variable '%s' changed size (%llu \xe2\x86\x92 %llu bytes): its storage cannot be kept; restart the program",
				 dv->name, (unsigned long long)old->size, (unsigned long long)v->size);
			free(key);
			return refuse(l, -EINVAL, "%s", msg);
		}
		if (old) {
			v->useaddr = l->symaddr[i] = old->addr;
			free(key);
		} else {
			hrc_var *nv = &out->newvars[out->nnew++];
			nv->key = key;
			nv->addr = v->newaddr;
			nv->size = v->size;
		}
	}
	qsort(l->vars, l->nvars, sizeof *l->vars, cmp_pvar);
	return 0;
}

/*
 * How far past the end of a RIP-relative displacement its instruction ends:
 * the immediate that follows it. The reference is to S + A + 4 + that. Read
 * from the opcode before the ModRM byte (only what compilers emit with a
 * memory operand and an immediate).
 */
static unsigned imm_after(const uint8_t *sec, uint64_t off)
{
	if (off < 2)
		return 0;
	uint8_t modrm = sec[off - 1], op = sec[off - 2];
	if ((modrm & 0xc7) != 0x05)
		return 0; /* not a ModRM memory operand: a branch or moffs */
	unsigned reg = (modrm >> 3) & 7;
	int two = off >= 3 && sec[off - 3] == 0x0f, three = off >= 4 && sec[off - 4] == 0x0f && sec[off - 3] == 0x3a;
	int osz = (off >= 3 && sec[off - 3] == 0x66) || (off >= 4 && sec[off - 4] == 0x66 && (sec[off - 3] & 0xf0) == 0x40);
	if (three)
		return 1;
	if (two)
		return (op >= 0x70 && op <= 0x73) || op == 0xa4 || op == 0xac || op == 0xba || op == 0xc2 || op == 0xc4 ||
			       op == 0xc5 || op == 0xc6
			       ? 1
			       : 0;
	switch (op) {
	case 0x80: case 0x82: case 0x83: case 0xc0: case 0xc1: case 0xc6: case 0x6b: return 1;
	case 0x81: case 0xc7: case 0x69: return osz ? 2 : 4;
	case 0xf6: return reg <= 1 ? 1 : 0;
	case 0xf7: return reg <= 1 ? (osz ? 2 : 4) : 0;
	default: return 0;
	}
}

/* The patch's variable in section sec that holds offset o, or NULL. */
static const pvar *var_at(const ld *l, unsigned sec, uint64_t o)
{
	for (size_t i = 0; i < l->nvars; i++)
		if (l->vars[i].sec == sec && o >= l->vars[i].value && o - l->vars[i].value < (l->vars[i].size ? l->vars[i].size : 1))
			return &l->vars[i];
	return NULL;
}

static uint8_t *stub(ld *l, uint64_t target)
{
	uint8_t *s = l->stubs;
	static const uint8_t jmp[6] = { 0xff, 0x25, 0x02, 0, 0, 0 }; /* jmp *[rip+2]: the target at s+8 */
	memcpy(s, jmp, 6);
	memcpy(s + 8, &target, 8);
	l->stubs += 16;
	return s;
}

static int relocate(ld *l)
{
	for (unsigned i = 0; i < l->nsec; i++) {
		const Elf64_Shdr *rs = &l->e.sh[i];
		if (rs->sh_type != SHT_RELA || rs->sh_info >= l->nsec || l->cls[rs->sh_info] == C_NONE)
			continue;
		unsigned ti = rs->sh_info;
		const Elf64_Shdr *ts = &l->e.sh[ti];
		uint8_t *base = (uint8_t *)l->secaddr[ti];
		const Elf64_Rela *ra = (const Elf64_Rela *)hrc_elf_data(&l->e, rs);
		size_t n = ra ? rs->sh_size / sizeof *ra : 0;
		for (size_t k = 0; k < n; k++) {
			unsigned t = ELF64_R_TYPE(ra[k].r_info);
			size_t si = ELF64_R_SYM(ra[k].r_info);
			uint64_t off = ra[k].r_offset;
			int64_t A = ra[k].r_addend;
			if (t == R_X86_64_NONE)
				continue;
			if (si >= l->nsym || off > ts->sh_size || ts->sh_size - off < (t == R_X86_64_64 || t == R_X86_64_PC64 ? 8 : 4))
				return refuse(l, -ENOEXEC, "a relocation out of its section (%s)", hrc_elf_secname(&l->e, ts));
			const Elf64_Sym *sy = &l->sym[si];
			uint64_t S = l->symaddr[si], P = (uint64_t)base + off;
			int pcrel = t == R_X86_64_PC32 || t == R_X86_64_PLT32 || t == R_X86_64_PC64;
			/* a reference through a section symbol into a kept variable goes to its old storage */
			if (ELF64_ST_TYPE(sy->st_info) == STT_SECTION && sy->st_shndx < l->nsec && l->cls[sy->st_shndx] == C_DATA) {
				uint64_t o = (uint64_t)A;
				if (pcrel || t == R_X86_64_GOTPCREL || t == R_X86_64_GOTPCRELX || t == R_X86_64_REX_GOTPCRELX)
					o += 4 + (l->cls[ti] == C_TEXT ? imm_after(base, off) : 0);
				const pvar *v = var_at(l, sy->st_shndx, o);
				if (v)
					S += v->useaddr - v->newaddr;
			}
			uint64_t val;
			int64_t d;
			switch (t) {
			case R_X86_64_64:
				val = S + (uint64_t)A;
				memcpy(base + off, &val, 8);
				break;
			case R_X86_64_PC64:
				val = S + (uint64_t)A - P;
				memcpy(base + off, &val, 8);
				break;
			case R_X86_64_PC32:
			case R_X86_64_PLT32:
				d = (int64_t)(S + (uint64_t)A - P);
				if (d != (int32_t)d) {
					int code = ELF64_ST_TYPE(sy->st_info) == STT_FUNC || t == R_X86_64_PLT32 ||
						   (sy->st_shndx == SHN_UNDEF && !hrc_prog_global(l->p, symname(l, sy)));
					if (!code || !S)
						return refuse(l, -ERANGE,
							      "'%s' is out of a 32-bit reference's reach of the patch: "
							      "build with -fPIC or -fPIE", symname(l, sy));
					d = (int64_t)((uint64_t)stub(l, S) + (uint64_t)A - P);
				}
				{
					int32_t v32 = (int32_t)d;
					memcpy(base + off, &v32, 4);
				}
				break;
			case R_X86_64_GOTPCREL:
			case R_X86_64_GOTPCRELX:
			case R_X86_64_REX_GOTPCRELX: {
				uint8_t *g = l->got;
				l->got += 8;
				memcpy(g, &S, 8);
				d = (int64_t)((uint64_t)g + (uint64_t)A - P);
				int32_t v32 = (int32_t)d;
				memcpy(base + off, &v32, 4);
				break;
			}
			case R_X86_64_32:
			case R_X86_64_32S:
				val = S + (uint64_t)A;
				if (t == R_X86_64_32 ? val != (uint32_t)val : (int64_t)val != (int32_t)val)
					return refuse(l, -ERANGE,
						      "an absolute 32-bit reference to '%s' (non-PIC code): build with -fPIC or -fPIE",
						      symname(l, sy));
				{
					uint32_t v32 = (uint32_t)val;
					memcpy(base + off, &v32, 4);
				}
				break;
			default: {
				char what[64];
				snprintf(what, sizeof what, "%u", t);
				return refuse(l, -ENOTSUP, "relocation type %s is not supported (x86-64 psABI number)", what);
			}
			}
		}
	}
	return 0;
}

/*
 * The object as a debugger is to see it: sections at their loaded addresses,
 * and the debug sections' relocations applied here rather than by the
 * debugger, so that a kept variable's DWARF location is its live storage,
 * not the patch's unused copy. NULL: no debugger view (not a refusal).
 */
static void *debug_image(ld *l, size_t *size)
{
	uint8_t *img = hrc_gdbjit_image(&l->e, l->secaddr, size);
	if (!img)
		return NULL;
	Elf64_Shdr *sh = (Elf64_Shdr *)(img + l->e.eh->e_shoff);
	for (unsigned i = 0; i < l->nsec; i++) {
		const Elf64_Shdr *rs = &l->e.sh[i];
		if (rs->sh_type != SHT_RELA || rs->sh_info >= l->nsec || l->cls[rs->sh_info] != C_NONE ||
		    l->e.sh[rs->sh_info].sh_type != SHT_PROGBITS)
			continue;
		const Elf64_Shdr *ts = &l->e.sh[rs->sh_info];
		const Elf64_Rela *ra = (const Elf64_Rela *)hrc_elf_data(&l->e, rs);
		size_t n = ra ? rs->sh_size / sizeof *ra : 0;
		for (size_t k = 0; k < n; k++) {
			size_t si = ELF64_R_SYM(ra[k].r_info);
			unsigned w = debug_rel_width(l, &ra[k], ts->sh_size);
			if (!w)
				continue;
			const Elf64_Sym *sy = &l->sym[si];
			uint64_t S = sy->st_shndx < l->nsec && l->cls[sy->st_shndx] == C_NONE ? 0 : l->symaddr[si];
			if (ELF64_ST_TYPE(sy->st_info) == STT_SECTION && sy->st_shndx < l->nsec && l->cls[sy->st_shndx] == C_DATA) {
				const pvar *v = var_at(l, sy->st_shndx, (uint64_t)ra[k].r_addend);
				if (v)
					S += v->useaddr - v->newaddr;
			} else if (ELF64_ST_TYPE(sy->st_info) != STT_SECTION && sy->st_shndx < l->nsec &&
				   l->cls[sy->st_shndx] == C_NONE) {
				S = sy->st_value;
			}
			uint64_t v = S + (uint64_t)ra[k].r_addend;
			memcpy(img + ts->sh_offset + ra[k].r_offset, &v, w);
		}
		sh[i].sh_type = SHT_NULL; /* applied: the debugger must not apply them again */
	}
	return img;
}

static int funcs(ld *l, hrc_patch *out)
{
	out->fns = calloc(l->nsym ? l->nsym : 1, sizeof *out->fns);
	if (!out->fns)
		return -ENOMEM;
	for (size_t i = 1; i < l->nsym; i++) {
		const Elf64_Sym *s = &l->sym[i];
		const char *nm = symname(l, s);
		if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_shndx >= l->nsec || l->cls[s->st_shndx] != C_TEXT ||
		    strchr(nm, '.') || !*nm)
			continue; /* clones and .cold parts come along with the new code, never redirected */
		hrc_pfn *f = &out->fns[out->nfns];
		if (!(f->name = strdup(nm)))
			return -ENOMEM;
		f->addr = l->symaddr[i];
		out->nfns++;
	}
	return 0;
}

int hrc_patch_load(hrc_prog *p, int fd, hrc_patch *out, char *err, size_t errsz)
{
	ld l;
	memset(&l, 0, sizeof l);
	memset(out, 0, sizeof *out);
	l.p = p;
	l.err = err;
	l.errsz = errsz;
	hrc_dwarf dw;
	memset(&dw, 0, sizeof dw);
	int rc = hrc_elf_open(&l.e, fd, err, errsz);
	if (rc < 0)
		return rc;
	/* the tables, from the file alone: what follows writes only within the block, at checked offsets */
	if ((rc = hrc_patch_check(&l.e, err, errsz)) < 0)
		goto out;
	l.nsec = l.e.eh->e_shnum;
	const Elf64_Shdr *st = NULL;
	for (unsigned i = 0; i < l.nsec; i++)
		if (l.e.sh[i].sh_type == SHT_SYMTAB)
			st = &l.e.sh[i];
	l.sym = (const Elf64_Sym *)hrc_elf_data(&l.e, st);
	l.nsym = l.sym ? st->sh_size / sizeof *l.sym : 0;
	l.str = (const char *)hrc_elf_data(&l.e, &l.e.sh[st->sh_link]);
	l.strsz = l.e.sh[st->sh_link].sh_size;
	rc = -ENOMEM;
	l.cls = calloc(l.nsec, sizeof *l.cls);
	l.secaddr = calloc(l.nsec, sizeof *l.secaddr);
	l.symaddr = calloc(l.nsym ? l.nsym : 1, sizeof *l.symaddr);
	l.vars = calloc(l.nsym ? l.nsym : 1, sizeof *l.vars);
	out->newvars = calloc(l.nsym ? l.nsym : 1, sizeof *out->newvars);
	if (!l.cls || !l.secaddr || !l.symaddr || !l.vars || !out->newvars)
		goto out;
	if ((rc = classify(&l)) < 0 || (rc = layout(&l)) < 0)
		goto out;
	out->block = l.block;
	out->size = l.size;
	hrc_dw_sections s;
	memset(&s, 0, sizeof s);
	if ((rc = debug_copy(&l, ".debug_info", &s.info, &s.info_n, 0)) < 0 ||
	    (rc = debug_copy(&l, ".debug_str_offsets", &s.str_offsets, &s.str_offsets_n, 1)) < 0 ||
	    (rc = debug_copy(&l, ".debug_addr", &s.addr, &s.addr_n, 2)) < 0 ||
	    (rc = debug_copy(&l, ".debug_rnglists", &s.rnglists, &s.rnglists_n, 3)) < 0 ||
	    (rc = debug_copy(&l, ".debug_ranges", &s.ranges, &s.ranges_n, 4)) < 0)
		goto out;
	debug_sec(&l, ".debug_abbrev", &s.abbrev, &s.abbrev_n);
	debug_sec(&l, ".debug_str", &s.str, &s.str_n);
	debug_sec(&l, ".debug_line_str", &s.line_str, &s.line_str_n);
	if ((rc = hrc_dwarf_read(&dw, &s, 0, err, errsz)) < 0)
		goto out;
	if (!dw.ncus) {
		snprintf(err, errsz, "the patch object has no DWARF compile unit: build it with -g");
		rc = -ENOEXEC;
		goto out;
	}
	l.unit = dw.cus[0];
	if (!hrc_dwarf_has_unit(&p->dw, l.unit)) {
		snprintf(err, errsz, "%s: not a unit of this program", l.unit);
		rc = -ENOENT;
		goto out;
	}
	if (!(out->unit = strdup(l.unit))) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = bind(&l, &dw, out)) < 0 || (rc = relocate(&l)) < 0 || (rc = funcs(&l, out)) < 0)
		goto out;
	out->image = debug_image(&l, &out->image_size);
	/* text read+exec, constants read-only, data stays read-write */
	if ((l.tsz && mprotect(l.block, l.tsz, PROT_READ | PROT_EXEC) < 0) ||
	    (l.rsz && mprotect(l.block + l.tsz, l.rsz, PROT_READ) < 0)) {
		rc = -errno;
		snprintf(err, errsz, "%s: mprotect of the loaded patch: %s", l.unit, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		hrc_patch_drop(out);
	hrc_dwarf_free(&dw);
	for (int i = 0; i < 5; i++)
		free(l.dbg[i]);
	free(l.cls);
	free(l.secaddr);
	free(l.symaddr);
	free(l.vars);
	hrc_elf_close(&l.e);
	return rc;
}

void hrc_patch_forget(hrc_patch *pt)
{
	for (size_t i = 0; i < pt->nfns; i++)
		free(pt->fns[i].name);
	for (size_t i = 0; i < pt->nnew; i++)
		free(pt->newvars[i].key);
	free(pt->fns);
	free(pt->newvars);
	free(pt->unit);
	memset(pt, 0, sizeof *pt);
}

void hrc_patch_drop(hrc_patch *pt)
{
	free(pt->image);
	if (pt->block)
		munmap(pt->block, pt->size);
	hrc_patch_forget(pt);
}
