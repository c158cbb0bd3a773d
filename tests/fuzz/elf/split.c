/* split.c: a fuzz seed's source: a function gcc splits into hot and cold parts (DW_AT_ranges), with a local static. */
#include <stdio.h>

__attribute__((cold, noinline)) static void complain(int x)
{
	fprintf(stderr, "bad %d\n", x);
}

int checked(int x)
{
	static int calls;
	calls++;
	if (x < 0) {
		complain(x);
		return -calls;
	}
	return calls * 2 + x;
}
