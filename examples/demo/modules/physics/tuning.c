/* tuning.c: the other file of the folder module "physics". Try another speed. */
double speed(void)
{
	return 2.0;
}
