/* greeting.c: a module of one file. Change the text and save: the game's next line shows it. */
const char *greeting(void)
{
	return "Hello from greeting.c: edit me";
}
