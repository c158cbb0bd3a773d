/* json.c: a small recursive-descent JSON reader: a tree of values, nesting and sizes bounded, errors at LINE:COL. */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
	const char *s;
	size_t n, i;
	unsigned line;
	size_t line_start;
	char *err;
	size_t errsz;
	size_t values, max; /* made so far, and the most that may be */
	int failed;
} parser;

static void fail(parser *p, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = 1;
	int k = snprintf(p->err, p->errsz, "%u:%zu: ", p->line, p->i - p->line_start + 1);
	if (k < 0 || (size_t)k >= p->errsz)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err + k, p->errsz - (size_t)k, fmt, ap);
	va_end(ap);
}

static void skip_space(parser *p)
{
	while (p->i < p->n) {
		char c = p->s[p->i];
		if (c == '\n') {
			p->line++;
			p->line_start = p->i + 1;
		} else if (c != ' ' && c != '\t' && c != '\r') {
			return;
		}
		p->i++;
	}
}

static hrd_json *node(parser *p, enum hrd_json_type t)
{
	if (p->values++ >= p->max) {
		fail(p, "more than %zu values, the most held for a text of this size", p->max);
		return NULL;
	}
	hrd_json *v = calloc(1, sizeof *v);
	if (!v) {
		fail(p, "out of memory");
		return NULL;
	}
	v->type = t;
	v->line = p->line;
	v->col = (unsigned)(p->i - p->line_start + 1);
	return v;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int hex4(parser *p, unsigned *out)
{
	unsigned v = 0;
	for (int k = 0; k < 4; k++) {
		int h = p->i < p->n ? hexval(p->s[p->i]) : -1;
		if (h < 0) {
			fail(p, "a \\u escape needs four hex digits");
			return -1;
		}
		v = v << 4 | (unsigned)h;
		p->i++;
	}
	*out = v;
	return 0;
}

static size_t utf8(unsigned cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A string at p->i (its opening quote): its bytes, newly allocated. The output is never longer than the text. */
static char *string(parser *p)
{
	size_t start = ++p->i, o = 0;
	size_t end = start;
	while (end < p->n && p->s[end] != '"')
		end += p->s[end] == '\\' ? 2 : 1;
	char *out = malloc((end > p->n ? p->n : end) - start + 1);
	if (!out) {
		fail(p, "out of memory");
		return NULL;
	}
	while (p->i < p->n) {
		unsigned char c = (unsigned char)p->s[p->i];
		if (c == '"') {
			p->i++;
			out[o] = '\0';
			return out;
		}
		if (c < 0x20) {
			fail(p, "a control character in a string: escape it (\\n, \\t, \\u00XX)");
			break;
		}
		if (c != '\\') {
			out[o++] = (char)c;
			p->i++;
			continue;
		}
		if (++p->i >= p->n)
			break;
		char e = p->s[p->i++];
		const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *at = strchr(from, e);
		if (e && at) {
			out[o++] = to[at - from];
			continue;
		}
		if (e != 'u') {
			p->i--;
			fail(p, "unknown escape \\%c in a string", e >= 0x20 && e < 0x7f ? e : '?');
			break;
		}
		unsigned cp, lo;
		if (hex4(p, &cp) < 0)
			break;
		if (cp >= 0xd800 && cp < 0xdc00 && p->i + 1 < p->n && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u') {
			p->i += 2;
			if (hex4(p, &lo) < 0)
				break;
			if (lo < 0xdc00 || lo > 0xdfff) {
				fail(p, "a surrogate pair's second half is not a low surrogate");
				break;
			}
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		} else if (cp >= 0xd800 && cp < 0xe000) {
			fail(p, "a lone surrogate in a \\u escape");
			break;
		}
		if (cp == 0) {
			fail(p, "\\u0000 in a string: a file name or argument cannot hold a NUL byte");
			break;
		}
		o += utf8(cp, out + o); /* 6 or 12 bytes of text make at most 3 or 4 */
	}
	if (!p->failed)
		fail(p, "the string does not end: add its closing \"");
	free(out);
	return NULL;
}

static hrd_json *value(parser *p, unsigned depth);

static int add_kid(parser *p, hrd_json *v, hrd_json *kid)
{
	if ((v->n & (v->n - 1)) == 0) { /* grown at each power of two */
		hrd_json **grown = realloc(v->kids, (v->n ? 2 * v->n : 1) * sizeof *grown);
		if (!grown) {
			fail(p, "out of memory");
			return -1;
		}
		v->kids = grown;
	}
	v->kids[v->n++] = kid;
	return 0;
}

static hrd_json *container(parser *p, unsigned depth, int object)
{
	char close = object ? '}' : ']';
	hrd_json *v = node(p, object ? HRD_JSON_OBJECT : HRD_JSON_ARRAY);
	if (!v)
		return NULL;
	if (depth >= HRD_JSON_DEPTH) {
		fail(p, "nested more than %d deep", HRD_JSON_DEPTH);
		goto bad;
	}
	p->i++;
	skip_space(p);
	if (p->i < p->n && p->s[p->i] == close) {
		p->i++;
		return v;
	}
	for (;;) {
		char *key = NULL;
		skip_space(p);
		if (object) {
			if (p->i >= p->n || p->s[p->i] != '"') {
				fail(p, p->i < p->n ? "expected a member's name in quotes" : "the object does not end: add its }");
				goto bad;
			}
			if (!(key = string(p)))
				goto bad;
			skip_space(p);
			if (p->i >= p->n || p->s[p->i] != ':') {
				free(key);
				fail(p, "expected ':' after a member's name");
				goto bad;
			}
			p->i++;
		}
		hrd_json *kid = value(p, depth + 1);
		if (!kid) {
			free(key);
			goto bad;
		}
		kid->key = key;
		if (add_kid(p, v, kid) < 0) {
			hrd_json_free(kid);
			goto bad;
		}
		skip_space(p);
		if (p->i < p->n && p->s[p->i] == ',') {
			p->i++;
			continue;
		}
		if (p->i < p->n && p->s[p->i] == close) {
			p->i++;
			return v;
		}
		if (p->i < p->n)
			fail(p, "expected ',' or '%c'", close);
		else
			fail(p, "the %s does not end: add its %c", object ? "object" : "array", close);
		goto bad;
	}
bad:
	hrd_json_free(v);
	return NULL;
}

static hrd_json *number(parser *p)
{
	hrd_json *v = node(p, HRD_JSON_NUMBER);
	size_t i = p->i, start = p->i;
	if (!v)
		return NULL;
	if (i < p->n && p->s[i] == '-')
		i++;
	size_t digits = i;
	while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9')
		i++;
	int ok = i > digits && !(p->s[digits] == '0' && i - digits > 1);
	if (ok && i < p->n && p->s[i] == '.') {
		size_t f = ++i;
		while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9')
			i++;
		ok = i > f;
	}
	if (ok && i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
		i++;
		if (i < p->n && (p->s[i] == '+' || p->s[i] == '-'))
			i++;
		size_t x = i;
		while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9')
			i++;
		ok = i > x;
	}
	if (!ok || !(v->str = strndup(p->s + start, i - start))) {
		fail(p, ok ? "out of memory" : "not a number");
		free(v);
		return NULL;
	}
	p->i = i;
	return v;
}

static hrd_json *value(parser *p, unsigned depth)
{
	skip_space(p);
	if (p->i >= p->n) {
		fail(p, "expected a value, found the end of the file");
		return NULL;
	}
	char c = p->s[p->i];
	if (c == '{' || c == '[')
		return container(p, depth, c == '{');
	if (c == '"') {
		hrd_json *v = node(p, HRD_JSON_STRING);
		if (v && !(v->str = string(p))) {
			free(v);
			return NULL;
		}
		return v;
	}
	if (c == '-' || (c >= '0' && c <= '9'))
		return number(p);
	static const char *const words[] = {"true", "false", "null"};
	for (int k = 0; k < 3; k++) {
		size_t len = strlen(words[k]);
		if (p->n - p->i >= len && memcmp(p->s + p->i, words[k], len) == 0) {
			hrd_json *v = node(p, k == 2 ? HRD_JSON_NULL : HRD_JSON_BOOL);
			if (v)
				v->boolean = k == 0;
			p->i += len;
			return v;
		}
	}
	fail(p, "expected a value (a string, number, object, array, true, false or null)");
	return NULL;
}

hrd_json *hrd_json_parse(const char *text, size_t n, size_t max, char *err, size_t errsz)
{
	parser p = {.s = text, .n = n, .line = 1, .err = err, .errsz = errsz, .max = max};
	if (n >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		p.i = p.line_start = 3; /* a byte order mark, as some Windows tools write */
	hrd_json *v = value(&p, 0);
	if (v) {
		skip_space(&p);
		if (p.i < n) {
			fail(&p, "more after the value: one JSON value per file");
			hrd_json_free(v);
			v = NULL;
		}
	}
	return v;
}

const hrd_json *hrd_json_get(const hrd_json *obj, const char *key)
{
	for (size_t i = 0; obj && obj->type == HRD_JSON_OBJECT && i < obj->n; i++)
		if (strcmp(obj->kids[i]->key, key) == 0)
			return obj->kids[i];
	return NULL;
}

const char *hrd_json_what(const hrd_json *v)
{
	static const char *const names[] = {"null", "true or false", "a number", "a string", "an array", "an object"};
	return v ? names[v->type] : "nothing";
}

void hrd_json_free(hrd_json *v)
{
	if (!v)
		return;
	/* Nesting is bounded by HRD_JSON_DEPTH, so recursion is too. */
	for (size_t i = 0; i < v->n; i++)
		hrd_json_free(v->kids[i]);
	free(v->kids);
	free(v->str);
	free(v->key);
	free(v);
}
