/* ccmd.h: compile_commands.json, for clangd and other tools: the exact command of each source. */
#ifndef HRD_CCMD_H
#define HRD_CCMD_H

#include <stddef.h>

/* The entries of one module's sources (root-relative), compiled by argv (NULL-terminated) + "-c" + the source: JSON objects joined by ",\n". NULL when out of memory. */
char *hrd_ccmd_entries(const char *root, char *const *argv, char *const *sources, size_t n);
/* Write the JSON array of the entries (n of them, NULL ones passed over) to path, whole or not at all. 0, or -1 with errno. */
int hrd_ccmd_write(const char *path, char *const *entries, size_t n);

#endif
