/* game.c: a fuzz seed's source: globals, function-local statics of one name in two functions, a call out, strings. */
#include <stdio.h>

int hp = 100;
static int frames;
static const int table[4] = { 1, 2, 3, 4 };

int step(int n)
{
	static int count;
	count += n;
	return count + table[n & 3];
}

int tick(void)
{
	static int count = 7;
	frames++;
	printf("frame %d hp %d\n", frames, hp);
	return count++ + step(frames);
}
