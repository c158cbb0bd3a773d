/* depfile.c: the prerequisites in a compiler's make-style dependency file (-MMD -MF). */
#include "depfile.h"

#include <stdlib.h>
#include <string.h>

static int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int hrd_depfile_parse(const char *text, size_t n, int (*fn)(void *arg, const char *path), void *arg)
{
	if (memchr(text, '\0', n))
		return -1; /* not text */
	char *word = malloc(n + 1);
	size_t len = 0;
	int rc = 0, prereqs = 0, targets = 0; /* past this rule's colon; the words before it */
	if (!word)
		return -2;
	for (size_t i = 0; i <= n && rc == 0; i++) {
		char c = i < n ? text[i] : '\n'; /* the text's end ends its last rule */
		if (c == '\\' && i + 1 < n && text[i + 1] == '\n') {
			c = ' '; /* a continued line: the rule goes on */
			i++;
		} else if (c == '\\') {
			/* make's rule: 2N+1 backslashes before a blank or '#' are N and that character, in the word;
			 * 2N are N, and the blank ends the word; elsewhere a backslash is itself. */
			size_t k = 1;
			while (i + k < n && text[i + k] == '\\')
				k++;
			char next = i + k < n ? text[i + k] : '\0';
			int special = next == ' ' || next == '\t' || next == '#';
			for (size_t j = 0; j < (special ? k / 2 : k); j++)
				word[len++] = '\\';
			i += k - 1;
			if (special && k % 2)
				word[len++] = text[++i];
			continue;
		} else if (c == '$' && i + 1 < n && text[i + 1] == '$') {
			word[len++] = text[++i];
			continue;
		} else if (c == ':' && !prereqs && (i + 1 >= n || blank(text[i + 1]))) {
			targets += len > 0;
			len = 0;
			prereqs = 1;
			continue;
		}
		if (!blank(c)) {
			word[len++] = c;
			continue;
		}
		if (len) {
			word[len] = '\0';
			if (prereqs)
				rc = fn(arg, word);
			else
				targets++;
			len = 0;
		}
		if (c == '\n') {
			if (!prereqs && targets && rc == 0)
				rc = -1; /* words and no colon: not a dependency file */
			prereqs = targets = 0;
		}
	}
	free(word);
	return rc;
}
