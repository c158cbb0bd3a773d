/* depfile.h: the prerequisites in a compiler's make-style dependency file (-MMD -MF). */
#ifndef HRD_DEPFILE_H
#define HRD_DEPFILE_H

#include <stddef.h>

/*
 * Call fn with each prerequisite of each rule in text[0..n), in order, as
 * the compiler wrote it (unescaped: "\ " is a space, "\#" a '#', "$$" a '$';
 * a backslash before a newline continues the line). Targets are skipped. fn
 * returning non-zero stops the walk and is returned. Returns 0, -1 when the
 * text is not a dependency file (a line with words and no colon, or a NUL byte), or -2
 * when out of memory.
 */
int hrd_depfile_parse(const char *text, size_t n, int (*fn)(void *arg, const char *path), void *arg);

#endif
