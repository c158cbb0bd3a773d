/* font.h: a 5x7 bitmap font for the HUD, printable ASCII (32-126). */
#ifndef HUD_FONT_H
#define HUD_FONT_H
#include <stdint.h>
#define FONT_W 5 /* glyph width in pixels; draw with one column of spacing (6 px advance) */
#define FONT_H 7 /* glyph height in pixels; 9 px line advance */
/* font_rows: the 7 rows of character c, top first; in each row bit 4 is the leftmost
 * pixel and bit 0 the rightmost. A character outside 32-126 gets '?'. */
const uint8_t *font_rows(unsigned char c);
/* font_drop: how many rows lower than the others to draw c: 1 for g, p, q and y, whose tails hang below the line. */
int font_drop(unsigned char c);
#endif
