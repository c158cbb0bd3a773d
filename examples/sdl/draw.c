/* draw.c: software drawing into the game's canvas, with the HUD's bitmap font. */
#include "draw.h"

#include <math.h>
#include <string.h>

#include "font.h"

#define ADVANCE (FONT_W + 1)

static uint32_t blend(uint32_t under, uint32_t over, int alpha)
{
	uint32_t out = 0;
	for (int shift = 0; shift < 24; shift += 8) {
		int a = (under >> shift) & 0xff, b = (over >> shift) & 0xff;
		out |= (uint32_t)(a + (b - a) * alpha / 255) << shift;
	}
	return out;
}

void draw_rect(struct canvas *c, int x, int y, int w, int h, uint32_t rgb, int alpha)
{
	int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
	int x1 = x + w > c->w ? c->w : x + w, y1 = y + h > c->h ? c->h : y + h;
	if (alpha <= 0)
		return;
	for (int py = y0; py < y1; py++) {
		uint32_t *row = &c->px[(size_t)py * c->pitch];
		if (alpha >= 255)
			for (int px = x0; px < x1; px++)
				row[px] = rgb;
		else
			for (int px = x0; px < x1; px++)
				row[px] = blend(row[px], rgb, alpha);
	}
}

void draw_disc(struct canvas *c, float cx, float cy, float r, uint32_t rgb)
{
	int y0 = (int)floorf(cy - r), y1 = (int)ceilf(cy + r);
	for (int y = y0; y <= y1; y++) {
		float dy = (float)y + 0.5f - cy, span = r * r - dy * dy;
		if (span < 0)
			continue;
		float half = sqrtf(span);
		int x0 = (int)ceilf(cx - half - 0.5f), x1 = (int)floorf(cx + half - 0.5f);
		draw_rect(c, x0, y, x1 - x0 + 1, 1, rgb, 255);
	}
}

/*
 * The next character of UTF-8 text, as the font's ASCII: compilers quote
 * with ‘ ’ in a UTF-8 locale. Anything else beyond ASCII, and any malformed
 * sequence (a stray continuation byte, a cut or overlong one), is one '?'.
 */
static unsigned char next_char(const char **s)
{
	const unsigned char *p = (const unsigned char *)*s;
	unsigned cp = *p++;
	if (cp < 0x80) {
		*s = (const char *)p;
		return (unsigned char)cp;
	}
	int more = cp >= 0xf8 ? -1 : cp >= 0xf0 ? 3 : cp >= 0xe0 ? 2 : cp >= 0xc0 ? 1 : -1;
	static const unsigned least[] = {0, 0x80, 0x800, 0x10000};
	int ok = more > 0;
	if (ok) {
		int n = more;
		cp &= 0x3fu >> more;
		for (; n && (*p & 0xc0) == 0x80; n--)
			cp = cp << 6 | (*p++ & 0x3f);
		ok = n == 0 && cp >= least[more];
	}
	*s = (const char *)p;
	if (ok && (cp == 0x2018 || cp == 0x2019))
		return '\'';
	if (ok && (cp == 0x201c || cp == 0x201d))
		return '"';
	return '?';
}

int draw_text(struct canvas *c, int x, int y, const char *s, uint32_t rgb, int alpha, int scale)
{
	while (*s) {
		unsigned char ch = next_char(&s);
		const uint8_t *rows = font_rows(ch);
		int top = y + font_drop(ch) * scale;
		for (int r = 0; r < FONT_H; r++)
			for (int b = 0; b < FONT_W; b++)
				if (rows[r] & (0x10 >> b))
					draw_rect(c, x + b * scale, top + r * scale, scale, scale, rgb, alpha);
		x += ADVANCE * scale;
	}
	return x;
}

int draw_text_width(const char *s, int scale)
{
	int n = 0;
	while (*s)
		next_char(&s), n++;
	return n * ADVANCE * scale;
}

size_t draw_text_fit(const char *s, int width, int scale)
{
	const char *p = s, *cut = NULL;
	for (int x = ADVANCE * scale; *p; x += ADVANCE * scale) {
		if (x - scale > width) /* the last column of a glyph is spacing */
			return (size_t)((cut ? cut : p) - s);
		if (*p == ' ')
			cut = p + 1;
		next_char(&p);
	}
	return (size_t)(p - s);
}
