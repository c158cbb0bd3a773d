/* json.h: writing JSON strings that are valid whatever bytes the database holds. */
#ifndef HRC_JSON_H
#define HRC_JSON_H

#include <stddef.h>
#include <stdio.h>

/*
 * Write s to f as a quoted JSON string. Quotes, backslashes and control
 * characters are escaped; bytes that are not valid UTF-8 become U+FFFD, so the
 * output is valid JSON (RFC 8259) for any input. NULL is written as null.
 */
void hrc_json_str(FILE *f, const char *s);
/* The same for len bytes at data, NULs included (written as \u0000). */
void hrc_json_strn(FILE *f, const void *data, size_t len);

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is not one. */
int hrc_utf8_len(const unsigned char *s);

#endif
