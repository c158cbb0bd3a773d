/* colors.c: the game's palette, 0xRRGGBB. Change a colour and save: the game shows it at once. */
#include "game.h"

uint32_t color_background(void)
{
	return 0x101820;
}

uint32_t color_player(void)
{
	return 0xf8f8f8;
}

uint32_t color_entity(int kind)
{
	static const uint32_t kinds[] = {0xe8a33d, 0x3da5e8, 0x7bd04a, 0xc75fd8};
	return kinds[(unsigned)kind % 4];
}
