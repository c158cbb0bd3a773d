/* json.h: a small JSON reader (RFC 8259) for the files the daemon is handed: compile_commands.json. */
#ifndef HRD_JSON_H
#define HRD_JSON_H

/*
 * The whole text becomes a tree of values. Every size is bounded: the
 * caller bounds the text, nesting is at most HRD_JSON_DEPTH deep, and
 * nothing is held that the text does not spell out. Errors: NULL with
 * "LINE:COL: what is wrong" in err (columns count bytes from 1).
 */

#include <stddef.h>

#define HRD_JSON_DEPTH 64

enum hrd_json_type { HRD_JSON_NULL, HRD_JSON_BOOL, HRD_JSON_NUMBER, HRD_JSON_STRING, HRD_JSON_ARRAY, HRD_JSON_OBJECT };

typedef struct hrd_json hrd_json;
struct hrd_json {
	enum hrd_json_type type;
	char *str;        /* a string's bytes (NUL-terminated, and one holding \u0000 is refused); an object member's key in key */
	char *key;        /* the key, for a member of an object; else NULL */
	int boolean;
	size_t n;         /* an array's or an object's members */
	hrd_json **kids;
	unsigned line, col; /* where it starts in the text, for messages */
};

/*
 * Parse text[0..n) into at most max values (each holds some 80 bytes, a text
 * of "[],[]..." 3 bytes a value: the caller bounds the memory with max).
 * NULL on an error (err says LINE:COL and what) or out of memory (err says so).
 */
hrd_json *hrd_json_parse(const char *text, size_t n, size_t max, char *err, size_t errsz);
/* The member key of an object (the first of that name), or NULL. */
const hrd_json *hrd_json_get(const hrd_json *obj, const char *key);
/* "a string", "an array", ... for messages. */
const char *hrd_json_what(const hrd_json *v);
void hrd_json_free(hrd_json *v);

#endif
