/*
 * fuzz_main.h - lets a libFuzzer target also build as a plain program that
 * runs LLVMFuzzerTestOneInput over the files named on its command line: the
 * regression run of tests/fuzz/corpus by `make test`, with any compiler.
 */
#ifndef PANTHERA_FUZZ_MAIN_H
#define PANTHERA_FUZZ_MAIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef FUZZ_STANDALONE
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (f == NULL) {
			perror(argv[i]);
			return 1;
		}
		uint8_t *buf = malloc(1 << 20);
		size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
		fclose(f);
		if (buf == NULL)
			return 1;
		LLVMFuzzerTestOneInput(buf, n);
		free(buf);
	}
	printf("%d inputs ran\n", argc - 1);
	return 0;
}
#endif

#endif
