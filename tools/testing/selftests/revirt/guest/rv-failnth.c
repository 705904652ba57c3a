// SPDX-License-Identifier: GPL-2.0-only
/*
 * rv-failnth: one write to a sysfs file with its Nth allocation failed
 * (test_97_faultinject).
 *
 *   rv-failnth N FILE VALUE
 *	opens FILE and /proc/self/fail-nth first, then asks the kernel to
 *	fail the Nth allocation of this task (failslab, fail_page_alloc),
 *	writes VALUE to FILE and reads back whether the failure was used.
 *	Prints "left=L err=E": L is 0 when the Nth allocation did fail
 *	inside the write and the count still to go otherwise; E is the
 *	write's errno (0 when it succeeded).
 *
 * A shell cannot do this: its own redirections and the read of fail-nth
 * allocate too, and would take the failure instead of the kernel code
 * under test.  Here nothing but the write runs while the failure is armed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int arm(int fd, const char *n)
{
	return pwrite(fd, n, strlen(n), 0) == (ssize_t)strlen(n) ? 0 : -1;
}

int main(int argc, char **argv)
{
	char left[32] = "";
	int fd, nth, err = 0;
	ssize_t len;

	if (argc != 4) {
		fprintf(stderr, "usage: rv-failnth N FILE VALUE\n");
		return 2;
	}
	fd = open(argv[2], O_WRONLY);
	nth = open("/proc/self/fail-nth", O_RDWR);
	if (fd < 0 || nth < 0) {
		perror("rv-failnth: open");
		return 1;
	}
	if (arm(nth, argv[1])) {
		perror("rv-failnth: fail-nth");
		return 1;
	}
	if (write(fd, argv[3], strlen(argv[3])) < 0)
		err = errno;
	len = pread(nth, left, sizeof(left) - 1, 0);
	arm(nth, "0");
	if (len <= 0) {
		perror("rv-failnth: read fail-nth");
		return 1;
	}
	left[len] = '\0';
	left[strcspn(left, "\n")] = '\0';
	printf("left=%s err=%d\n", left, err);
	return 0;
}
