/* inline.c: a fuzz seed's source: an inlined function's static, a pointer table (.data.rel.ro), a thread-local, a large .bss. */
static inline int bump(void)
{
	static int n;
	return ++n;
}

static int helper(int x) { return x * 3; }
static int (*const ops[2])(int) = { helper, helper };
__thread int tls_counter;
char big[1 << 16];

int use(int i)
{
	tls_counter++;
	big[i & 0xffff] = (char)i;
	return bump() + ops[i & 1](i);
}
