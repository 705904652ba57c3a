// SPDX-License-Identifier: GPL-2.0-only
/*
 * rvballoon-eat MIB: allocate MIB mebibytes of anonymous memory in pieces
 * of 4 MiB, write every page, and print "ate MIB" once all of it is
 * resident.  Used by the balloon test to make the guest need memory that
 * the balloon holds (deflate on OOM).  Pieces, as malloc() would take
 * them: one mapping larger than the guest's MemTotal is refused by the
 * overcommit heuristic before any page is touched.  Exits 1 if an
 * allocation fails; the OOM killer ends it with a signal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PIECE	(4UL << 20)

int main(int argc, char **argv)
{
	size_t mib, done, off, page = (size_t)sysconf(_SC_PAGESIZE);
	char *p;

	if (argc != 2) {
		fprintf(stderr, "usage: %s MIB\n", argv[0]);
		return 2;
	}
	mib = strtoul(argv[1], NULL, 0);
	for (done = 0; done < mib << 20; done += PIECE) {
		p = mmap(NULL, PIECE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			printf("mmap failed after %zu MiB\n", done >> 20);
			return 1;
		}
		for (off = 0; off < PIECE; off += page)
			p[off] = (char)(off >> 12) | 1;
		/* Read it back: every page kept what was written. */
		for (off = 0; off < PIECE; off += page)
			if (p[off] != ((char)(off >> 12) | 1)) {
				printf("page at %zu lost its data\n", done + off);
				return 1;
			}
	}
	printf("ate %zu\n", mib);
	return 0;
}
