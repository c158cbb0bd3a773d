/* dwarf.c: walk .debug_info (DWARF 4 and 5, as gcc and clang write them) for static variables and function entries. */
#include "dwarf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A bounded reader: every read checks the end, and a short read sets bad. */
typedef struct rd {
	const uint8_t *p, *end;
	int bad;
} rd;

static uint64_t rd_n(rd *r, unsigned n)
{
	uint64_t v = 0;
	if ((size_t)(r->end - r->p) < n) {
		r->bad = 1;
		r->p = r->end;
		return 0;
	}
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += n;
	return v;
}

static uint64_t rd_uleb(rd *r)
{
	uint64_t v = 0;
	for (unsigned sh = 0;; sh += 7) {
		if (r->p >= r->end) {
			r->bad = 1;
			return 0;
		}
		uint8_t b = *r->p++;
		if (sh < 64)
			v |= (uint64_t)(b & 0x7f) << sh;
		if (!(b & 0x80))
			return v;
	}
}

static void rd_skip(rd *r, uint64_t n)
{
	if ((uint64_t)(r->end - r->p) < n) {
		r->bad = 1;
		r->p = r->end;
	} else {
		r->p += n;
	}
}

static void rd_cstr(rd *r)
{
	const uint8_t *z = memchr(r->p, 0, (size_t)(r->end - r->p));
	if (!z) {
		r->bad = 1;
		r->p = r->end;
	} else {
		r->p = z + 1;
	}
}

/* One unit's context. */
typedef struct cu {
	const hrc_dw_sections *s;
	uint64_t off, end; /* the unit within .debug_info */
	unsigned ver, asz, osz; /* version, address size, offset size */
	const uint8_t *abbrev;
	size_t abbrev_n;
	const uint8_t **codes; /* abbreviation code -> its entry in .debug_abbrev */
	size_t ncodes;
	uint64_t str_base, addr_base, rnglists_base;
	uint64_t base; /* the unit's DW_AT_low_pc: the base address its range lists start from */
	const char *path;
} cu;

/* An attribute's value as read: a number, or bytes (strings, blocks). */
typedef struct val {
	unsigned form;
	uint64_t u;
	const uint8_t *ptr;
	uint64_t len;
} val;

enum { A_NAME, A_LOC, A_LOWPC, A_ORIGIN, A_SPEC, A_COMPDIR, A_STRBASE, A_ADDRBASE, A_RANGES, A_RNGBASE, A_N };

typedef struct die {
	uint64_t code, tag;
	int children;
	val a[A_N];
	int has[A_N];
} die;

static int attr_slot(uint64_t at)
{
	switch (at) {
	case 0x03: return A_NAME;
	case 0x02: return A_LOC;
	case 0x11: return A_LOWPC;
	case 0x31: return A_ORIGIN;
	case 0x47: return A_SPEC;
	case 0x1b: return A_COMPDIR;
	case 0x72: return A_STRBASE;
	case 0x73: return A_ADDRBASE;
	case 0x55: return A_RANGES;
	case 0x74: return A_RNGBASE;
	default: return -1;
	}
}

/* Read (or skip) one value of form; implicit_const's value comes from the abbreviation. */
static void read_form(rd *r, const cu *c, uint64_t form, int64_t implicit, val *v)
{
	v->form = (unsigned)form;
	v->ptr = NULL;
	v->len = 0;
	v->u = 0;
	switch (form) {
	case 0x01: v->u = rd_n(r, c->asz); break; /* addr */
	case 0x03: v->len = rd_n(r, 2); goto block;
	case 0x04: v->len = rd_n(r, 4); goto block;
	case 0x09: case 0x18: v->len = rd_uleb(r); goto block; /* block, exprloc */
	case 0x0a: v->len = rd_n(r, 1); goto block;
	case 0x05: case 0x12: v->u = rd_n(r, 2); break;
	case 0x06: case 0x13: case 0x1c: v->u = rd_n(r, 4); break;
	case 0x07: case 0x14: case 0x20: case 0x24: v->u = rd_n(r, 8); break;
	case 0x0b: case 0x0c: case 0x11: case 0x25: case 0x29: v->u = rd_n(r, 1); break;
	case 0x26: case 0x2a: v->u = rd_n(r, 2); break;
	case 0x27: case 0x2b: v->u = rd_n(r, 3); break;
	case 0x28: case 0x2c: v->u = rd_n(r, 4); break;
	case 0x0d: case 0x0f: case 0x15: case 0x1a: case 0x1b: case 0x22: case 0x23: case 0x1f01: case 0x1f02:
		v->u = rd_uleb(r); /* sdata is only skipped: its value is never used */
		break;
	case 0x08: v->ptr = r->p; rd_cstr(r); break; /* string */
	case 0x0e: case 0x10: case 0x17: case 0x1d: case 0x1f: case 0x1f20: case 0x1f21:
		v->u = rd_n(r, c->osz);
		break;
	case 0x1e: rd_skip(r, 16); break;
	case 0x19: break; /* flag_present */
	case 0x21: v->u = (uint64_t)implicit; break;
	case 0x16: /* indirect: once; a chain of them would be a recursion as deep as the input is long */
		form = rd_uleb(r);
		if (form == 0x16 || form == 0x21)
			r->bad = 1;
		else
			read_form(r, c, form, implicit, v);
		break;
	default: r->bad = 1; break;
	}
	return;
block:
	v->ptr = r->p;
	rd_skip(r, v->len);
}

/* Parse the DIE at absolute .debug_info offset off; *next gets the following one. 0, or -1. */
static int read_die(const cu *c, uint64_t off, die *d, uint64_t *next)
{
	rd r = { c->s->info + off, c->s->info + c->end, 0 };
	memset(d, 0, sizeof *d);
	d->code = rd_uleb(&r);
	if (r.bad)
		return -1;
	if (d->code) {
		if (d->code >= c->ncodes || !c->codes[d->code])
			return -1;
		rd a = { c->codes[d->code], c->abbrev + c->abbrev_n, 0 };
		d->tag = rd_uleb(&a);
		d->children = (int)rd_n(&a, 1);
		for (;;) {
			uint64_t at = rd_uleb(&a), form = rd_uleb(&a);
			int64_t imp = 0;
			if (a.bad)
				return -1;
			if (!at && !form)
				break;
			if (form == 0x21) /* implicit_const: sleb in the abbreviation */ {
				uint64_t v = 0;
				unsigned sh = 0;
				uint8_t b;
				do {
					b = (uint8_t)rd_n(&a, 1);
					if (sh < 64)
						v |= (uint64_t)(b & 0x7f) << sh;
					sh += 7;
				} while ((b & 0x80) && !a.bad);
				if (sh < 64 && (b & 0x40))
					v |= ~0ull << sh;
				imp = (int64_t)v;
			}
			val v;
			read_form(&r, c, form, imp, &v);
			if (r.bad)
				return -1;
			int k = attr_slot(at);
			if (k >= 0) {
				d->a[k] = v;
				d->has[k] = 1;
			}
		}
	}
	*next = (uint64_t)(r.p - c->s->info);
	return 0;
}

static const char *str_at(const uint8_t *sec, size_t n, uint64_t off)
{
	if (!sec || off >= n || !memchr(sec + off, 0, n - off))
		return NULL;
	return (const char *)sec + off;
}

static const char *val_str(const cu *c, const val *v)
{
	const hrc_dw_sections *s = c->s;
	switch (v->form) {
	case 0x08: return (const char *)v->ptr;
	case 0x0e: return str_at(s->str, s->str_n, v->u);
	case 0x1f: return str_at(s->line_str, s->line_str_n, v->u);
	case 0x1a: case 0x25: case 0x26: case 0x27: case 0x28: case 0x1f02: {
		uint64_t o = c->str_base + v->u * c->osz;
		if (!s->str_offsets || o > s->str_offsets_n || c->osz > s->str_offsets_n - o)
			return NULL;
		rd r = { s->str_offsets + o, s->str_offsets + s->str_offsets_n, 0 };
		return str_at(s->str, s->str_n, rd_n(&r, c->osz));
	}
	default: return NULL;
	}
}

/* An address from an addr or addrx form (index into .debug_addr from the unit's base). */
static int addr_index(const cu *c, uint64_t i, uint64_t *out)
{
	const hrc_dw_sections *s = c->s;
	uint64_t o = c->addr_base + i * c->asz;
	if (!s->addr || o > s->addr_n || c->asz > s->addr_n - o)
		return -1;
	rd r = { s->addr + o, s->addr + s->addr_n, 0 };
	*out = rd_n(&r, c->asz);
	return 0;
}

static int val_addr(const cu *c, const val *v, uint64_t *out)
{
	if (v->form == 0x01) {
		*out = v->u;
		return 0;
	}
	if (v->form == 0x1b || (v->form >= 0x29 && v->form <= 0x2c) || v->form == 0x1f01)
		return addr_index(c, v->u, out);
	return -1;
}

/* A reference's absolute .debug_info offset. */
static int val_ref(const cu *c, const val *v, uint64_t *out)
{
	switch (v->form) {
	case 0x11: case 0x12: case 0x13: case 0x14: case 0x15: *out = c->off + v->u; break;
	case 0x10: *out = v->u; break;
	default: return -1;
	}
	return *out < c->end && *out >= c->off ? 0 : -1;
}

/* The name of the DIE at off, following abstract_origin/specification (a few steps). */
static const char *die_name(const cu *c, uint64_t off, int depth)
{
	die d;
	uint64_t nx, ref;
	if (depth > 4 || read_die(c, off, &d, &nx) < 0)
		return NULL;
	if (d.has[A_NAME])
		return val_str(c, &d.a[A_NAME]);
	if (d.has[A_ORIGIN] && !val_ref(c, &d.a[A_ORIGIN], &ref))
		return die_name(c, ref, depth + 1);
	if (d.has[A_SPEC] && !val_ref(c, &d.a[A_SPEC], &ref))
		return die_name(c, ref, depth + 1);
	return NULL;
}

/* A static location: DW_OP_addr or DW_OP_addrx alone. TLS ones (followed by a TLS op) and others: -1. */
static int loc_addr(const cu *c, const val *v, uint64_t *out)
{
	if (!v->ptr || !v->len)
		return -1;
	rd r = { v->ptr, v->ptr + v->len, 0 };
	uint8_t op = (uint8_t)rd_n(&r, 1);
	if (op == 0x03)
		*out = rd_n(&r, c->asz);
	else if (op == 0xa1 || op == 0xfb) { /* DW_OP_addrx, DW_OP_GNU_addr_index */
		if (addr_index(c, rd_uleb(&r), out) < 0)
			return -1;
	} else
		return -1;
	return r.bad || r.p != r.end ? -1 : 0;
}

static int push_var(hrc_dwarf *d, const hrc_dw_var *v)
{
	if (d->nvars == d->capv) {
		size_t n = d->capv ? d->capv * 2 : 64;
		void *p = realloc(d->vars, n * sizeof *d->vars);
		if (!p)
			return -ENOMEM;
		d->vars = p;
		d->capv = n;
	}
	d->vars[d->nvars++] = *v;
	return 0;
}

static int push_func(hrc_dwarf *d, const char *cuname, uint64_t addr, uint64_t size)
{
	if (d->nfuncs == d->capf) {
		size_t n = d->capf ? d->capf * 2 : 64;
		void *p = realloc(d->funcs, n * sizeof *d->funcs);
		if (!p)
			return -ENOMEM;
		d->funcs = p;
		d->capf = n;
	}
	d->funcs[d->nfuncs].cu = cuname;
	d->funcs[d->nfuncs].size = size;
	d->funcs[d->nfuncs++].addr = addr;
	return 0;
}

/*
 * Each range of a function's DW_AT_ranges, pushed as a function piece. *budget bounds the ranges of the whole
 * read by the bytes of the range sections: lists that every DIE shares would otherwise make it quadratic.
 * 0, -ENOEXEC with err, or -ENOMEM.
 */
static int push_ranges(hrc_dwarf *d, const cu *c, const val *v, uint64_t *budget, char *err, size_t errsz)
{
	const hrc_dw_sections *s = c->s;
	uint64_t off = v->u, base = c->base;
	int v5 = c->ver >= 5;
	const uint8_t *sec = v5 ? s->rnglists : s->ranges;
	size_t n = v5 ? s->rnglists_n : s->ranges_n;
	const char *name = v5 ? ".debug_rnglists" : ".debug_ranges";
	if (v->form == 0x23) { /* rnglistx: an index into the offsets after the unit's rnglists_base */
		uint64_t o = c->rnglists_base + off * c->osz;
		if (!sec || c->rnglists_base > n || off > (n - c->rnglists_base) / c->osz || c->osz > n - o)
			goto bad;
		rd r = { sec + o, sec + n, 0 };
		off = c->rnglists_base + rd_n(&r, c->osz);
	} else if (v->form != 0x17 && v->form != 0x06 && v->form != 0x07) {
		return 0; /* no list: a form no compiler gives DW_AT_ranges */
	}
	if (!sec || off >= n)
		goto bad;
	rd r = { sec + off, sec + n, 0 };
	for (;;) {
		uint64_t lo = 0, hi = 0, x;
		int have = 0;
		if (v5) {
			uint8_t k = (uint8_t)rd_n(&r, 1);
			if (r.bad)
				goto bad;
			switch (k) {
			case 0: return 0; /* end_of_list */
			case 1: if (addr_index(c, rd_uleb(&r), &base) < 0) goto bad; break; /* base_addressx */
			case 2: /* startx_endx */
				x = rd_uleb(&r);
				if (addr_index(c, x, &lo) < 0 || addr_index(c, rd_uleb(&r), &hi) < 0)
					goto bad;
				have = 1;
				break;
			case 3: /* startx_length */
				x = rd_uleb(&r);
				if (addr_index(c, x, &lo) < 0)
					goto bad;
				hi = lo + rd_uleb(&r);
				have = 1;
				break;
			case 4: lo = base + rd_uleb(&r); hi = base + rd_uleb(&r); have = 1; break; /* offset_pair */
			case 5: base = rd_n(&r, c->asz); break; /* base_address */
			case 6: lo = rd_n(&r, c->asz); hi = rd_n(&r, c->asz); have = 1; break; /* start_end */
			case 7: lo = rd_n(&r, c->asz); hi = lo + rd_uleb(&r); have = 1; break; /* start_length */
			default: goto bad;
			}
		} else {
			lo = rd_n(&r, c->asz);
			hi = rd_n(&r, c->asz);
			if (r.bad)
				goto bad;
			if (!lo && !hi)
				return 0;
			if (lo == ~0ull) /* base address selection */
				base = hi;
			else
				lo += base, hi += base, have = 1;
		}
		if (r.bad)
			goto bad;
		if (!have || hi <= lo)
			continue; /* an empty range: no code */
		if (!*budget) {
			snprintf(err, errsz, "DWARF range lists of %s give more ranges than %s holds", c->path, name);
			return -ENOEXEC;
		}
		--*budget;
		if (push_func(d, c->path, lo, hi - lo) < 0)
			return -ENOMEM;
	}
bad:
	snprintf(err, errsz, "unreadable DWARF range list at %s+0x%llx in %s", name, (unsigned long long)off, c->path);
	return -ENOEXEC;
}

void hrc_dwarf_normpath(char *p)
{
	/* components are copied down to out; ".." drops the last one kept (not a kept ".." itself) */
	char *out = p, *s = p;
	int abs = *p == '/';
	char *base = p + abs; /* out never goes below it */
	size_t kept = 0, ups = 0; /* components kept, of which leading ".." */
	out = base;
	while (*s) {
		while (*s == '/')
			s++;
		char *e = s + strcspn(s, "/");
		size_t n = (size_t)(e - s);
		if (!n || (n == 1 && s[0] == '.')) {
			/* nothing */
		} else if (n == 2 && s[0] == '.' && s[1] == '.' && kept > ups) {
			while (out > base && out[-1] != '/')
				out--;
			if (out > base)
				out--;
			kept--;
		} else if (n == 2 && s[0] == '.' && s[1] == '.' && abs) {
			/* "/.." is "/" */
		} else {
			if (kept)
				*out++ = '/';
			memmove(out, s, n);
			out += n;
			if (n == 2 && s[0] == '.' && s[1] == '.')
				ups++;
			kept++;
		}
		s = e;
	}
	if (out == p)
		*out++ = '.';
	*out = 0;
}

/* The unit's path: comp_dir joined with name, normalised; kept in d->cus. */
static const char *unit_path(hrc_dwarf *d, const char *dir, const char *name)
{
	if (!name)
		return NULL;
	size_t n = strlen(name) + (dir ? strlen(dir) : 0) + 2;
	char *p = malloc(n);
	if (!p)
		return NULL;
	if (name[0] == '/' || !dir)
		snprintf(p, n, "%s", name);
	else
		snprintf(p, n, "%s/%s", dir, name);
	hrc_dwarf_normpath(p);
	if (d->ncus == d->capc) {
		size_t c = d->capc ? d->capc * 2 : 16;
		void *q = realloc(d->cus, c * sizeof *d->cus);
		if (!q) {
			free(p);
			return NULL;
		}
		d->cus = q;
		d->capc = c;
	}
	d->cus[d->ncus++] = p;
	return p;
}

/* The abbreviation table at off: code -> entry. */
static int load_abbrevs(cu *c, uint64_t off)
{
	const hrc_dw_sections *s = c->s;
	if (off >= s->abbrev_n)
		return -1;
	c->abbrev = s->abbrev;
	c->abbrev_n = s->abbrev_n;
	rd r = { s->abbrev + off, s->abbrev + s->abbrev_n, 0 };
	size_t cap = 0;
	for (;;) {
		const uint8_t *at = r.p;
		uint64_t code = rd_uleb(&r);
		if (r.bad)
			return -1;
		if (!code)
			return 0;
		const uint8_t *entry = r.p;
		rd_uleb(&r); /* tag */
		rd_n(&r, 1);
		for (;;) {
			uint64_t a = rd_uleb(&r), f = rd_uleb(&r);
			if (r.bad)
				return -1;
			if (!a && !f)
				break;
			if (f == 0x21)
				rd_uleb(&r); /* sleb: only skipped here */
		}
		/* codes run from 1, each entry at least 4 bytes: one above the bytes read so far is no compiler's, and
		 * would size the table by a number rather than by the input */
		if (code > (uint64_t)(r.p - (s->abbrev + off)))
			return -1;
		if (code >= cap) {
			size_t nc = cap ? cap : 64;
			while (nc <= code)
				nc *= 2;
			void *p = realloc(c->codes, nc * sizeof *c->codes);
			if (!p)
				return -1;
			c->codes = p;
			memset(c->codes + cap, 0, (nc - cap) * sizeof *c->codes);
			cap = nc;
			c->ncodes = nc;
		}
		c->codes[code] = entry;
		(void)at;
	}
}

#define MAX_DEPTH 64

static int walk_unit(hrc_dwarf *d, cu *c, uint64_t first, uint64_t *budget, char *err, size_t errsz)
{
	die dd;
	uint64_t off = first, nx;
	if (read_die(c, off, &dd, &nx) < 0 || (dd.tag != 0x11 && dd.tag != 0x3c))
		return 0; /* not a compile or partial unit: nothing of ours */
	if (dd.has[A_STRBASE])
		c->str_base = dd.a[A_STRBASE].u;
	if (dd.has[A_ADDRBASE])
		c->addr_base = dd.a[A_ADDRBASE].u;
	if (dd.has[A_RNGBASE])
		c->rnglists_base = dd.a[A_RNGBASE].u;
	if (dd.has[A_LOWPC] && val_addr(c, &dd.a[A_LOWPC], &c->base) < 0)
		c->base = 0;
	const char *name = dd.has[A_NAME] ? val_str(c, &dd.a[A_NAME]) : NULL;
	const char *dir = dd.has[A_COMPDIR] ? val_str(c, &dd.a[A_COMPDIR]) : NULL;
	c->path = unit_path(d, dir, name);
	if (!c->path)
		return 0; /* a unit without a name: nothing can match it */
	if (!dd.children)
		return 0;
	/* scope[depth]: the function enclosing DIEs at that depth ("" at file scope) */
	const char *scope[MAX_DEPTH + 1];
	size_t firstvar = d->nvars;
	int depth = 1;
	scope[1] = "";
	off = nx;
	while (depth > 0 && off < c->end) {
		if (read_die(c, off, &dd, &nx) < 0) {
			snprintf(err, errsz, "unreadable DWARF entry at .debug_info+0x%llx in %s", (unsigned long long)off,
				 c->path);
			return -ENOEXEC;
		}
		off = nx;
		if (!dd.code) {
			depth--;
			continue;
		}
		uint64_t a;
		if ((dd.tag == 0x34) && dd.has[A_LOC] && !loc_addr(c, &dd.a[A_LOC], &a)) {
			const char *vn = dd.has[A_NAME] ? val_str(c, &dd.a[A_NAME]) : NULL;
			uint64_t ref;
			if (!vn && dd.has[A_ORIGIN] && !val_ref(c, &dd.a[A_ORIGIN], &ref))
				vn = die_name(c, ref, 0);
			if (!vn && dd.has[A_SPEC] && !val_ref(c, &dd.a[A_SPEC], &ref))
				vn = die_name(c, ref, 0);
			int dup = 0;
			hrc_dw_var v = { c->path, scope[depth], vn, 0, a };
			for (size_t i = firstvar; i < d->nvars; i++) {
				if (d->vars[i].addr == a) /* an abstract and a concrete entry of one variable */
					dup = 1;
				else if (!strcmp(d->vars[i].func, v.func) && !strcmp(d->vars[i].name, vn ? vn : ""))
					v.ord++;
			}
			if (vn && !dup && push_var(d, &v) < 0)
				return -ENOMEM;
		}
		if (dd.tag == 0x2e && dd.has[A_LOWPC] && !val_addr(c, &dd.a[A_LOWPC], &a) && push_func(d, c->path, a, 0) < 0)
			return -ENOMEM;
		int rc;
		if (dd.tag == 0x2e && !dd.has[A_LOWPC] && dd.has[A_RANGES] &&
		    (rc = push_ranges(d, c, &dd.a[A_RANGES], budget, err, errsz)) < 0)
			return rc;
		if (dd.children) {
			if (depth >= MAX_DEPTH) {
				snprintf(err, errsz, "DWARF nested deeper than %d in %s", MAX_DEPTH, c->path);
				return -ENOEXEC;
			}
			const char *sc = scope[depth];
			if (dd.tag == 0x2e || dd.tag == 0x1d) { /* subprogram, inlined subroutine */
				const char *fn = dd.has[A_NAME] ? val_str(c, &dd.a[A_NAME]) : NULL;
				uint64_t ref;
				if (!fn && dd.has[A_ORIGIN] && !val_ref(c, &dd.a[A_ORIGIN], &ref))
					fn = die_name(c, ref, 0);
				if (!fn && dd.has[A_SPEC] && !val_ref(c, &dd.a[A_SPEC], &ref))
					fn = die_name(c, ref, 0);
				sc = fn ? fn : "?";
			}
			scope[++depth] = sc;
		}
	}
	return 0;
}

static int cmp_func(const void *a, const void *b)
{
	const hrc_dw_func *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int hrc_dwarf_read(hrc_dwarf *d, const hrc_dw_sections *s, uint64_t bias, char *err, size_t errsz)
{
	memset(d, 0, sizeof *d);
	if (!s->info || !s->abbrev) {
		snprintf(err, errsz, "no DWARF debug information (.debug_info): build with -g");
		return -ENOEXEC;
	}
	uint64_t off = 0, budget = (uint64_t)s->rnglists_n + s->ranges_n;
	int rc = 0;
	while (off < s->info_n && !rc) {
		cu c;
		memset(&c, 0, sizeof c);
		c.s = s;
		c.off = off;
		rd r = { s->info + off, s->info + s->info_n, 0 };
		uint64_t len = rd_n(&r, 4);
		c.osz = 4;
		if (len == 0xffffffffu) {
			len = rd_n(&r, 8);
			c.osz = 8;
		}
		if (r.bad || len > (uint64_t)(r.end - r.p) || len < 8) {
			snprintf(err, errsz, "DWARF unit at .debug_info+0x%llx runs past the section", (unsigned long long)off);
			rc = -ENOEXEC;
			break;
		}
		c.end = (uint64_t)(r.p - s->info) + len;
		c.ver = (unsigned)rd_n(&r, 2);
		uint64_t aoff;
		int ok = 1;
		if (c.ver >= 2 && c.ver <= 4) {
			aoff = rd_n(&r, c.osz);
			c.asz = (unsigned)rd_n(&r, 1);
		} else if (c.ver == 5) {
			unsigned ut = (unsigned)rd_n(&r, 1);
			c.asz = (unsigned)rd_n(&r, 1);
			aoff = rd_n(&r, c.osz);
			ok = ut == 1 || ut == 3; /* compile, partial; type and split units hold no storage */
			c.str_base = 8;
			c.addr_base = 8;
		} else {
			snprintf(err, errsz, "DWARF version %u is not supported (4 and 5 are)", c.ver);
			rc = -ENOEXEC;
			break;
		}
		if (ok && c.asz == 8 && !r.bad) {
			if (load_abbrevs(&c, aoff) < 0) {
				snprintf(err, errsz, "unreadable DWARF abbreviations at .debug_abbrev+0x%llx",
					 (unsigned long long)aoff);
				rc = -ENOEXEC;
			} else {
				rc = walk_unit(d, &c, (uint64_t)(r.p - s->info), &budget, err, errsz);
			}
		}
		free(c.codes);
		off = c.end;
	}
	if (rc) {
		hrc_dwarf_free(d);
		return rc;
	}
	for (size_t i = 0; i < d->nvars; i++)
		d->vars[i].addr += bias;
	for (size_t i = 0; i < d->nfuncs; i++)
		d->funcs[i].addr += bias;
	if (d->nfuncs)
		qsort(d->funcs, d->nfuncs, sizeof *d->funcs, cmp_func);
	return 0;
}

void hrc_dwarf_free(hrc_dwarf *d)
{
	for (size_t i = 0; i < d->ncus; i++)
		free(d->cus[i]);
	free(d->cus);
	free(d->vars);
	free(d->funcs);
	memset(d, 0, sizeof *d);
}

const char *hrc_dwarf_unit_of(const hrc_dwarf *d, uint64_t addr)
{
	size_t lo = 0, hi = d->nfuncs;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;
		if (d->funcs[m].addr < addr)
			lo = m + 1;
		else
			hi = m;
	}
	if (lo < d->nfuncs && d->funcs[lo].addr == addr)
		return d->funcs[lo].cu;
	/* the piece before: a range holding addr (pieces of functions do not overlap) */
	if (lo && d->funcs[lo - 1].size && addr - d->funcs[lo - 1].addr < d->funcs[lo - 1].size)
		return d->funcs[lo - 1].cu;
	return NULL;
}

int hrc_dwarf_has_unit(const hrc_dwarf *d, const char *cuname)
{
	for (size_t i = 0; i < d->ncus; i++)
		if (!strcmp(d->cus[i], cuname))
			return 1;
	return 0;
}
