/* words.h: argument vectors (NULL-terminated arrays of strings) that the daemon builds for the compilers it runs. */
#ifndef HRD_WORDS_H
#define HRD_WORDS_H

#include <stddef.h>

/* Errors: -1 on out of memory, the vector left as it was but for room. */

/* Append a copy of w to *words, which holds *n of them and stays NULL-terminated. 0 or -1. */
int hrd_words_add(char ***words, size_t *n, const char *w);
/* Free each word and the vector. NULL is a no-op. */
void hrd_words_free(char **words);

#endif
