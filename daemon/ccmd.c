/* ccmd.c: compile_commands.json, for clangd and other tools: the exact command of each source. */
#include "ccmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* s as a JSON string. */
static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

char *hrd_ccmd_entries(const char *root, char *const *argv, char *const *sources, size_t n)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char file[4096];
		snprintf(file, sizeof file, "%s/%s", root, sources[i]);
		fputs(i ? ",\n  {\"directory\": " : "  {\"directory\": ", f);
		put_string(f, root);
		fputs(", \"file\": ", f);
		put_string(f, file);
		fputs(", \"arguments\": [", f);
		for (size_t k = 0; argv[k]; k++) {
			fputs(k ? ", " : "", f);
			put_string(f, argv[k]);
		}
		fputs(", \"-c\", ", f);
		put_string(f, sources[i]);
		fputs("]}", f);
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

int hrd_ccmd_write(const char *path, char *const *entries, size_t n)
{
	char tmp[4200];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.XXXXXX.tmp", path) >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* A new file of a name nobody could guess: whoever can write the root
	 * could have put a link at a name known in advance. */
	int fd = mkostemps(tmp, 4, O_CLOEXEC);
	FILE *f = fd < 0 || fchmod(fd, 0644) < 0 ? NULL : fdopen(fd, "w");
	if (!f) {
		int e = errno;
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		errno = e;
		return -1;
	}
	int first = 1;
	fputs("[\n", f);
	for (size_t i = 0; i < n; i++)
		if (entries[i] && *entries[i]) {
			fputs(first ? "" : ",\n", f);
			fputs(entries[i], f);
			first = 0;
		}
	fputs("\n]\n", f);
	int e = 0;
	if (ferror(f))
		e = EIO;
	if (fclose(f) != 0 && !e)
		e = errno;
	if (!e && rename(tmp, path) < 0)
		e = errno;
	if (e) {
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}
