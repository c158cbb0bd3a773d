/* elfvars.c: the writable globals of a built object that start afresh at each load, read from its ELF symbol table. */
#include "elfvars.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* len bytes at off of fd, a file of size bytes, into a new buffer (NUL-terminated); NULL with *rc. */
static char *chunk(int fd, uint64_t off, uint64_t len, uint64_t size, int *rc)
{
	if (off > size || len > size - off) {
		*rc = -ENOEXEC;
		return NULL;
	}
	char *p = malloc(len + 1);
	if (!p) {
		*rc = -ENOMEM;
		return NULL;
	}
	for (uint64_t at = 0; at < len;) {
		ssize_t n = pread(fd, p + at, len - at, (off_t)(off + at));
		if (n <= 0) {
			*rc = n < 0 ? -errno : -ENOEXEC;
			free(p);
			return NULL;
		}
		at += (uint64_t)n;
	}
	p[len] = '\0';
	return p;
}

/* .data, .bss and their -fdata-sections parts, but not .data.rel.ro (read-only once relocated). */
static int writable_data(const ElfW(Shdr) *sh, const char *name)
{
	if ((sh->sh_flags & (SHF_WRITE | SHF_ALLOC)) != (SHF_WRITE | SHF_ALLOC) || (sh->sh_flags & SHF_TLS))
		return 0;
	if (strncmp(name, ".data.rel.ro", 12) == 0)
		return 0;
	return strcmp(name, ".data") == 0 || strcmp(name, ".bss") == 0 || strncmp(name, ".data.", 6) == 0 ||
	       strncmp(name, ".bss.", 5) == 0;
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* name without gcc's ".N" suffix of a function's static, as a new string. */
static char *bare(const char *name)
{
	const char *dot = strrchr(name, '.');
	size_t n = strlen(name);
	if (dot && dot[1] && strspn(dot + 1, "0123456789") == strlen(dot + 1))
		n = (size_t)(dot - name);
	return strndup(name, n);
}

static void list(char **names, size_t n, char *out, size_t outsz, size_t *count)
{
	size_t len = 0, kept = 0;
	out[0] = '\0';
	qsort(names, n, sizeof *names, by_str);
	for (size_t i = 0; i < n; i++) {
		if (i && strcmp(names[i], names[i - 1]) == 0)
			continue;
		kept++;
		if (len + strlen(names[i]) + 2 + 5 >= outsz) { /* room for ", ..." */
			if (!strstr(out, "..."))
				len += (size_t)snprintf(out + len, outsz - len, "%s...", len ? ", " : "");
			continue;
		}
		len += (size_t)snprintf(out + len, outsz - len, "%s%s", len ? ", " : "", names[i]);
	}
	*count = kept;
}

int hrc_elfvars(int fd, char *out, size_t outsz, size_t *count)
{
	struct stat st;
	ElfW(Ehdr) eh;
	int rc = 0;
	*count = 0;
	if (outsz)
		out[0] = '\0';
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size > HRC_ELFVARS_MAX_FILE)
		return -EFBIG;
	uint64_t size = (uint64_t)st.st_size;
	if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
	    eh.e_shentsize != sizeof(ElfW(Shdr)) || eh.e_shnum == 0 || eh.e_shstrndx >= eh.e_shnum)
		return -ENOEXEC;
	char **names = NULL, **fresh = NULL, *secnames = NULL, *syms = NULL, *strs = NULL;
	size_t nnames = 0, nfresh = 0;
	ElfW(Shdr) *sh = (ElfW(Shdr) *)chunk(fd, eh.e_shoff, (uint64_t)eh.e_shnum * sizeof *sh, size, &rc);
	if (!sh)
		return rc;
	const ElfW(Shdr) *names_sh = &sh[eh.e_shstrndx], *symtab = NULL;
	if (!(secnames = chunk(fd, names_sh->sh_offset, names_sh->sh_size, size, &rc)))
		goto done;
	for (size_t i = 0; i < eh.e_shnum; i++)
		if (sh[i].sh_type == SHT_SYMTAB || (sh[i].sh_type == SHT_DYNSYM && !symtab))
			symtab = &sh[i];
	if (!symtab || symtab->sh_link >= eh.e_shnum || symtab->sh_entsize != sizeof(ElfW(Sym))) {
		rc = symtab ? -ENOEXEC : 0; /* stripped: nothing to say */
		goto done;
	}
	const ElfW(Shdr) *strsh = &sh[symtab->sh_link];
	if (!(syms = chunk(fd, symtab->sh_offset, symtab->sh_size, size, &rc)) ||
	    !(strs = chunk(fd, strsh->sh_offset, strsh->sh_size, size, &rc)))
		goto done;
	size_t nsyms = symtab->sh_size / sizeof(ElfW(Sym));
	names = calloc(nsyms + 1, sizeof *names);
	fresh = calloc(nsyms + 1, sizeof *fresh);
	if (!names || !fresh) {
		rc = -ENOMEM;
		goto done;
	}
	int in_crt = 0; /* the locals that follow a FILE symbol are that file's */
	for (size_t i = 0; i < nsyms; i++) {
		const ElfW(Sym) *s = (const ElfW(Sym) *)syms + i;
		if (s->st_name >= strsh->sh_size)
			continue;
		const char *name = strs + s->st_name;
		int type = ELF64_ST_TYPE(s->st_info);
		if (type == STT_FILE) {
			in_crt = strcmp(name, "crtstuff.c") == 0;
			continue;
		}
		if (strncmp(name, "hr_fresh.", 9) == 0) {
			if (!(fresh[nfresh++] = strdup(name + 9))) {
				rc = -ENOMEM;
				goto done;
			}
			continue;
		}
		if (type != STT_OBJECT || s->st_shndx == SHN_UNDEF || s->st_shndx >= eh.e_shnum || !*name ||
		    strncmp(name, "hr_keep.", 8) == 0 || strncmp(name, "__", 2) == 0 ||
		    (in_crt && ELF64_ST_BIND(s->st_info) == STB_LOCAL))
			continue;
		const ElfW(Shdr) *in = &sh[s->st_shndx];
		if (in->sh_name >= names_sh->sh_size || !writable_data(in, secnames + in->sh_name))
			continue;
		if (!(names[nnames++] = bare(name))) {
			rc = -ENOMEM;
			goto done;
		}
	}
	/* Those that a marker names are meant to restart. */
	size_t kept = 0;
	for (size_t i = 0; i < nnames; i++) {
		int silenced = 0;
		for (size_t j = 0; j < nfresh && !silenced; j++)
			silenced = strcmp(names[i], fresh[j]) == 0;
		if (silenced)
			free(names[i]);
		else
			names[kept++] = names[i];
	}
	nnames = kept;
	if (outsz)
		list(names, nnames, out, outsz, count);
done:
	for (size_t i = 0; names && i < nnames; i++)
		free(names[i]);
	for (size_t i = 0; fresh && i < nfresh; i++)
		free(fresh[i]);
	free(names);
	free(fresh);
	free(strs);
	free(syms);
	free(secnames);
	free(sh);
	return rc;
}
