/* json.c: JSON string escaping with UTF-8 validation, for the CLI's --json output. */
#include "json.h"

#include <string.h>

int hrc_utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	/* second-byte ranges per RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF */
	unsigned lo = 0x80, hi = 0xBF;
	int n;
	if (c < 0x80)
		return 1;
	else if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
	else
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (int i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF) /* also stops at the terminating NUL */
			return 0;
	return n;
}

void hrc_json_str(FILE *f, const char *str)
{
	if (!str) {
		fputs("null", f);
		return;
	}
	hrc_json_strn(f, str, strlen(str));
}

void hrc_json_strn(FILE *f, const void *data, size_t len)
{
	const unsigned char *s = data, *end = s + len;
	putc('"', f);
	while (s < end) {
		/* A sequence is looked at through a copy ended by NULs: one cut short by the end is no sequence. */
		unsigned char seq[5] = {0};
		memcpy(seq, s, end - s < 4 ? (size_t)(end - s) : 4);
		int n = hrc_utf8_len(seq);
		if (n == 0) {
			fputs("\\ufffd", f);
			s++;
			continue;
		}
		if (n > 1) {
			fwrite(s, 1, (size_t)n, f);
			s += n;
			continue;
		}
		unsigned c = *s++;
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		default:
			if (c < 0x20)
				fprintf(f, "\\u%04x", c); /* NUL too: \u0000, and the text goes on */
			else
				putc((int)c, f);
		}
	}
	putc('"', f);
}
