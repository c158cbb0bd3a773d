/* test_json.c: the JSON string writer: escapes, UTF-8 validation, valid output for any bytes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../client/json.h"
#include "util.h"

static char *esc(const char *s)
{
	char *out;
	size_t n;
	FILE *f = open_memstream(&out, &n);
	hrc_json_str(f, s);
	fclose(f);
	return out;
}

static void check(const char *in, const char *want)
{
	char *got = esc(in);
	cr_assert_str_eq(got, want);
	free(got);
}

Test(json, escapes)
{
	check("", "\"\"");
	check("plain", "\"plain\"");
	check("a\"b\\c", "\"a\\\"b\\\\c\"");
	check("\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"");
	check("\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\"");
	check(NULL, "null");
}

Test(json, valid_utf8_passes_through)
{
	check("caf\xc3\xa9", "\"caf\xc3\xa9\"");
	check("\xe2\x82\xac", "\"\xe2\x82\xac\"");
	check("\xf0\x9f\x8e\xae", "\"\xf0\x9f\x8e\xae\"");
	check("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
	check("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");         /* U+D7FF, just below the surrogates */
}

Test(json, invalid_utf8_becomes_replacement_characters)
{
	check("\xff", "\"\\ufffd\"");
	check("\xc0\x80", "\"\\ufffd\\ufffd\"");             /* overlong NUL */
	check("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\""); /* overlong '/' */
	check("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* a surrogate */
	check("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* past U+10FFFF */
	check("\xe2\x82", "\"\\ufffd\\ufffd\"");            /* cut short at the end */
	check("\xe2\x82x", "\"\\ufffd\\ufffdx\"");          /* cut short before ASCII */
	check("a\x80z", "\"a\\ufffdz\"");                   /* a lone continuation byte */
}

Test(json, every_byte_gives_output_that_jq_parses)
{
	char in[512];
	size_t n = 0;
	for (int c = 1; c < 256; c++) {
		in[n++] = (char)c;
		if (c % 7 == 0)
			in[n++] = '"';
	}
	in[n] = '\0';
	char *out = esc(in);
	/* no raw control characters and only valid UTF-8 inside */
	for (const unsigned char *p = (const unsigned char *)out; *p;) {
		cr_assert_geq(*p, 0x20, "raw control byte in output");
		int l = hrc_utf8_len(p);
		cr_assert_gt(l, 0, "invalid UTF-8 in output at %td", (const char *)p - out);
		p += l;
	}
	int st;
	char *parsed = t_jq(out, "length", &st);
	cr_assert_eq(st, 0, "jq rejected: %s", out);
	cr_assert_gt(atoi(parsed), 200);
	free(parsed);
	free(out);
}

static char *escn(const void *data, size_t len)
{
	char *out;
	size_t n;
	FILE *f = open_memstream(&out, &n);
	hrc_json_strn(f, data, len);
	fclose(f);
	return out;
}

Test(json, stored_bytes_are_written_by_their_length_nul_included)
{
	char *got = escn("a\0b\0", 4);
	cr_assert_str_eq(got, "\"a\\u0000b\\u0000\"");
	free(got);
	/* A sequence cut short by the length, not by a NUL, is no sequence: nothing past it is read. */
	got = escn("x\xe2\x82\xac", 3);
	cr_assert_str_eq(got, "\"x\\ufffd\\ufffd\"");
	free(got);
	got = escn("\xf0\x9f\x8e\xae", 4);
	cr_assert_str_eq(got, "\"\xf0\x9f\x8e\xae\"");
	free(got);
	got = escn("", 0);
	cr_assert_str_eq(got, "\"\"");
	free(got);
}
