/* draw.h: software drawing into the game's canvas: rectangles, discs and text, opaque or blended. */
#ifndef DRAW_H
#define DRAW_H

#include <stddef.h>
#include <stdint.h>

/* 32-bit pixels, 0x00RRGGBB (SDL_PIXELFORMAT_RGB888); pitch in pixels. */
struct canvas {
	uint32_t *px;
	int w, h, pitch;
};

/* alpha: 255 is opaque. Everything is clipped to the canvas. */
void draw_rect(struct canvas *c, int x, int y, int w, int h, uint32_t rgb, int alpha);
/* A filled disc: every pixel whose centre is within r of (cx, cy), in exactly rgb (no anti-aliasing). */
void draw_disc(struct canvas *c, float cx, float cy, float r, uint32_t rgb);
/* One line of text at (x, y), the top left of the first glyph, each font pixel scale x scale; returns the x after it. */
int draw_text(struct canvas *c, int x, int y, const char *s, uint32_t rgb, int alpha, int scale);
/* The width draw_text would take for s. */
int draw_text_width(const char *s, int scale);
/* How many bytes of s fit in width pixels: up to the last space that fits, if there is one. */
size_t draw_text_fit(const char *s, int width, int scale);

#endif
