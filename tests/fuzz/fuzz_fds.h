/* SPDX-License-Identifier: MIT */
/*
 * Shared by the fuzz targets: count this process's open fds, to check that
 * an input left none behind.
 */
#ifndef ONERING_FUZZ_FDS_H
#define ONERING_FUZZ_FDS_H

#include <dirent.h>
#include <sys/types.h>
#include <unistd.h>

/* Entries in the directory dir_fd (an open /proc/self/fd), re-read from the
 * start each time; -1 when it cannot be read (errno says why). */
static inline int fuzz_fd_count(int dir_fd)
{
	char buf[4096];
	int n = 0;

	if (lseek(dir_fd, 0, SEEK_SET) < 0)
		return -1;
	for (;;) {
		ssize_t r = getdents64(dir_fd, buf, sizeof(buf));
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		for (ssize_t off = 0; off < r;) {
			const struct dirent64 *d = (const struct dirent64 *)(buf + off);
			if (d->d_name[0] != '.')
				n++;
			off += d->d_reclen;
		}
	}
	return n;
}

#endif /* ONERING_FUZZ_FDS_H */
