/* main.c: a fuzz seed's source: the program's main, so that the seeds include an executable as well as objects. */
int tick(void);

int main(void)
{
	int s = 0;
	for (int i = 0; i < 3; i++)
		s += tick();
	return s == 0;
}
