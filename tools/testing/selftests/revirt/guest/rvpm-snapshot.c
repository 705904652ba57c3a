// SPDX-License-Identifier: GPL-2.0-only
/*
 * rvpm-snapshot: one hibernation freeze/thaw cycle without a swap device
 * and without the 5 s wait of the hibernation test mode (test_39_pm).
 *
 * The user-space hibernation interface (/dev/snapshot, opened read-only):
 * SNAPSHOT_FREEZE freezes every other task, SNAPSHOT_CREATE_IMAGE runs the
 * devices' freeze callbacks, copies memory into the image and runs their
 * thaw callbacks (PMSG_THAW: the image was made), SNAPSHOT_FREE drops the
 * image unwritten and SNAPSHOT_UNFREEZE thaws the tasks.  Prints
 * "snapshot in_suspend N ms M"; exits 1 with the failing step and its
 * error otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/suspend_ioctls.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
	fprintf(stderr, "rvpm-snapshot: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(void)
{
	int fd, in_suspend = -1, rc = 0;
	double t0 = now();

	fd = open("/dev/snapshot", O_RDONLY);
	if (fd < 0)
		return fail("open /dev/snapshot");
	if (ioctl(fd, SNAPSHOT_FREEZE) < 0) {
		rc = fail("SNAPSHOT_FREEZE");
		close(fd);
		return rc;
	}
	if (ioctl(fd, SNAPSHOT_CREATE_IMAGE, &in_suspend) < 0)
		rc = fail("SNAPSHOT_CREATE_IMAGE");
	else if (ioctl(fd, SNAPSHOT_FREE) < 0)
		rc = fail("SNAPSHOT_FREE");
	if (ioctl(fd, SNAPSHOT_UNFREEZE) < 0 && !rc)
		rc = fail("SNAPSHOT_UNFREEZE");
	close(fd);
	if (!rc && in_suspend != 1) {
		fprintf(stderr, "rvpm-snapshot: no image made (in_suspend %d)\n", in_suspend);
		rc = 1;
	}
	if (!rc)
		printf("snapshot in_suspend %d ms %d\n", in_suspend, (int)((now() - t0) * 1000));
	return rc;
}
