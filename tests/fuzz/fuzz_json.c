/* fuzz_json.c: libFuzzer driver for the JSON string writer, on any bytes (NULs included).
 * Oracle: the output is always a valid JSON string, and valid UTF-8 input comes back unchanged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../client/json.h"

static int hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Check that s is one JSON string and unescape it into out; abort if it is not. */
static size_t parse(const char *s, size_t n, char *out)
{
	size_t o = 0, i = 1;
	if (n < 2 || s[0] != '"' || s[n - 1] != '"')
		abort();
	while (i < n - 1) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == '"')
			abort();
		if (c != '\\') {
			int l = hrc_utf8_len((const unsigned char *)s + i);
			if (l == 0)
				abort();
			memcpy(out + o, s + i, (size_t)l);
			o += (size_t)l, i += (size_t)l;
			continue;
		}
		char e = s[i + 1];
		const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
		if (e == 'u') {
			int v = 0;
			for (int k = 2; k < 6; k++) {
				int h = hex(s[i + (size_t)k]);
				if (h < 0)
					abort();
				v = v * 16 + h;
			}
			if (v == 0xfffd)
				o += (size_t)sprintf(out + o, "\xef\xbf\xbd");
			else if (v < 0x20)
				out[o++] = (char)v;
			else
				abort(); /* the writer emits no other \u escape */
			i += 6;
		} else if (e && strchr(from, e)) {
			out[o++] = to[strchr(from, e) - from];
			i += 2;
		} else {
			abort();
		}
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), *json;
	memcpy(in, data, size);
	in[size] = '\0'; /* for the check below, which reads past a sequence cut short; the writer does not */
	size_t n, len = size;
	FILE *f = open_memstream(&json, &n);
	hrc_json_strn(f, data, size); /* by length: NULs are content */
	fclose(f);
	char *back = malloc(3 * n + 4);
	size_t m = parse(json, n, back);
	int valid = 1;
	for (size_t i = 0; i < len;) {
		int l = hrc_utf8_len((const unsigned char *)in + i);
		if (!l) {
			valid = 0;
			break;
		}
		i += (size_t)l;
	}
	if (valid && (m != len || memcmp(back, in, len) != 0))
		abort(); /* valid UTF-8 must round-trip exactly */
	free(back);
	free(json);
	free(in);
	return 0;
}
