/* SPDX-License-Identifier: MIT */
/* memfd segments: create, place, seal, attach (shm/segment.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm/abi.h"
#include "shm/atomic.h"
#include "shm/log.h"
#include "shm/segment.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

static long read_long(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

size_t onering_hugepage_size(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	size_t kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Hugepagesize: %zu kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/* Hugepages of the default size that no one has reserved yet. */
static long hugepages_available(size_t hp_size)
{
	char path[128];
	long free_pages, resv;

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%zukB/free_hugepages",
		 hp_size / 1024);
	free_pages = read_long(path);
	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%zukB/resv_hugepages",
		 hp_size / 1024);
	resv = read_long(path);
	if (free_pages < 0)
		return 0;
	return resv > 0 ? free_pages - resv : free_pages;
}

/* Say once per process which page size segments use. */
static void say_page_kind_once(bool huge, size_t hp_size)
{
	static ONERING_ATOMIC(int) said;
	int expect = 0;

	if (!onering_atomic_cas(&said, &expect, 1, onering_mo_relaxed, onering_mo_relaxed))
		return;
	if (huge)
		onering_log(ONERING_LOG_INFO, "shared segments use %zu KiB hugepages",
			    hp_size / 1024);
	else
		onering_log(ONERING_LOG_INFO,
			    "no free hugepages: shared segments use normal pages "
			    "(reserve some with: echo 64 > /proc/sys/vm/nr_hugepages)");
}

static size_t round_up(size_t v, size_t to)
{
	return (v + to - 1) / to * to;
}

static int create_memfd(const char *name, size_t size, bool huge, size_t hp_size, size_t *out)
{
	unsigned mfd = MFD_CLOEXEC | MFD_ALLOW_SEALING | (huge ? MFD_HUGETLB : 0u);
	size_t len = round_up(size, huge ? hp_size : (size_t)sysconf(_SC_PAGESIZE));
	int fd = memfd_create(name, mfd);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	*out = len;
	return fd;
}

int onering_seg_create(struct onering_seg *seg, const char *name, uint32_t kind, size_t size,
		       uint32_t node, uint64_t epoch, const struct onering_placement *place,
		       unsigned flags)
{
	size_t hp_size = (flags & ONERING_SEG_NO_HUGETLB) ? 0 : onering_hugepage_size();
	bool huge = false;
	size_t len = 0;
	int fd = -1, r;
	void *base = MAP_FAILED;

	memset(seg, 0, sizeof(*seg));
	seg->fd = -1;
	if (size < sizeof(struct onering_seg_header))
		return -EINVAL;
	if (hp_size && hugepages_available(hp_size) >= (long)(round_up(size, hp_size) / hp_size)) {
		fd = create_memfd(name, size, true, hp_size, &len);
		if (fd >= 0) {
			base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (base == MAP_FAILED) {
				close(fd); /* the pool emptied meanwhile: fall back */
				fd = -1;
			} else {
				huge = true;
			}
		}
	}
	if (!huge) {
		fd = create_memfd(name, size, false, 0, &len);
		if (fd < 0) {
			onering_log(ONERING_LOG_ERR, "memfd_create(%s, %zu bytes): %s", name, size,
				    strerror(-fd));
			return fd;
		}
		base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (base == MAP_FAILED) {
			r = -errno;
			onering_log(ONERING_LOG_ERR, "mmap of segment %s (%zu bytes): %s", name,
				    len, strerror(errno));
			close(fd);
			return r;
		}
	}
	say_page_kind_once(huge, hp_size);

	/* Place before the first touch, so every page is allocated on node. */
	if (place && place->bind && node != ONERING_NODE_ANY) {
		r = place->bind(base, len, node, place->arg);
		if (r < 0) {
			onering_log(ONERING_LOG_ERR, "placing segment %s on node %u: %s", name,
				    node, strerror(-r));
			munmap(base, len);
			close(fd);
			return r;
		}
	}
	onering_seg_header_init((struct onering_seg_header *)base, kind, len, node, epoch);
	seg->fd = fd;
	seg->base = base;
	seg->size = len;
	seg->hugetlb = huge;
	seg->writable = true;
	return 0;
}

int onering_seg_seal(struct onering_seg *seg, bool peer_readonly)
{
	/* F_SEAL_SEAL last: no holder of the fd can add seals of its own later
	 * (a client sealing WRITE on its consumer segment would fault the
	 * broker's next store to it). */
	int seals = F_SEAL_SHRINK | F_SEAL_GROW | (peer_readonly ? F_SEAL_FUTURE_WRITE : 0) |
		    F_SEAL_SEAL;

	if (fcntl(seg->fd, F_ADD_SEALS, seals) < 0) {
		int e = -errno;
		onering_log(ONERING_LOG_ERR, "sealing segment fd %d (seals 0x%x): %s", seg->fd,
			    seals, strerror(errno));
		return e;
	}
	return 0;
}

int onering_seg_attach(struct onering_seg *seg, int fd, uint32_t kind, bool writable, char *err,
		       size_t err_size)
{
	struct stat st;
	void *base;
	int r;

	memset(seg, 0, sizeof(*seg));
	seg->fd = -1;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		if (err)
			snprintf(err, err_size, "fstat of segment fd %d: %s", fd, strerror(errno));
		return r;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(struct onering_seg_header)) {
		if (err)
			snprintf(err, err_size, "segment fd %d is not a segment (%lld bytes)", fd,
				 (long long)st.st_size);
		return -EINVAL;
	}
	base = mmap(NULL, (size_t)st.st_size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED,
		    fd, 0);
	if (base == MAP_FAILED) {
		r = -errno;
		if (err)
			snprintf(err, err_size, "mapping segment fd %d %s: %s", fd,
				 writable ? "read-write" : "read-only", strerror(errno));
		return r;
	}
	r = onering_seg_header_check(base, (size_t)st.st_size, kind, err, err_size);
	if (r < 0) {
		munmap(base, (size_t)st.st_size);
		return r;
	}
	seg->fd = fd;
	seg->base = base;
	seg->size = (size_t)st.st_size;
	seg->writable = writable;
	return 0;
}

int onering_seg_attach_at(struct onering_seg *seg, int fd, uint32_t kind, bool writable,
			  void *at, size_t at_size, char *err, size_t err_size)
{
	int r = onering_seg_attach(seg, fd, kind, writable, err, err_size);

	if (r < 0 || !at || seg->size != at_size)
		return r;
	void *p = mremap(seg->base, seg->size, seg->size, MREMAP_MAYMOVE | MREMAP_FIXED, at);
	if (p != MAP_FAILED)
		seg->base = p;
	return 0;
}

void onering_seg_destroy(struct onering_seg *seg)
{
	if (seg->base && seg->base != MAP_FAILED)
		munmap(seg->base, seg->size);
	if (seg->fd >= 0)
		close(seg->fd);
	seg->base = NULL;
	seg->fd = -1;
	seg->size = 0;
}
