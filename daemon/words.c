/* words.c: argument vectors for the compilers: appended to one word at a time, freed whole. */
#include "words.h"

#include <stdlib.h>
#include <string.h>

int hrd_words_add(char ***words, size_t *n, const char *w)
{
	char **grown = realloc(*words, (*n + 2) * sizeof *grown);
	if (!grown)
		return -1;
	*words = grown;
	if (!(grown[*n] = strdup(w)))
		return -1;
	grown[++*n] = NULL;
	return 0;
}

void hrd_words_free(char **words)
{
	for (size_t i = 0; words && words[i]; i++)
		free(words[i]);
	free(words);
}
