/* SPDX-License-Identifier: MIT */
/*
 * The kernel oracle's guest runtime: the types a translated scenario is made of.
 *
 * A scenario (YAML) becomes one C translation unit (src/translate.ts, `foliolab oracle translate`):
 * a table of steps with every address, length and token resolved, the processes, the address
 * domain the scenario owns, and the kernel set-up it needs (mTHP sizes, swap device). The runtime
 * (koracle.c) executes the steps with real system calls, one real process per scenario process,
 * and after every step prints what the kernel shows for the scenario's own pages.
 */
#ifndef KORACLE_H
#define KORACLE_H

#include <stdint.h>

enum ko_op {
	KO_MMAP = 1,   /* addr len arg=prot|KO_MAP_* */
	KO_WRITE,      /* addr len arg=token (KO_TOKEN_FRESH: a new token per page) */
	KO_READ,       /* addr len */
	KO_FORK,       /* arg=child slot */
	KO_EXIT,       /* - */
	KO_MUNMAP,     /* addr len */
	KO_MREMAP,     /* addr len(old) arg=new len arg2=destination (0: in place) */
	KO_MPROTECT,   /* addr len arg=prot */
	KO_MADVISE,    /* addr len arg=advice (MADV_*) */
	KO_RECLAIM,    /* arg=KO_RECLAIM_* arg2=bytes to reclaim — run by the controller */
	KO_PIN,        /* addr len arg=handle arg2=KO_PIN_* */
	KO_UNPIN,      /* arg=handle */
	KO_UFFD,       /* addr len arg=KO_UFFD_* */
	KO_POISON,     /* addr (MADV_HWPOISON of one page) */
	KO_MLOCK,      /* addr len */
	KO_MUNLOCK,    /* addr len */
};

#define KO_MAP_LOCKED (1u << 8)
#define KO_MAP_DROPPABLE (1u << 9)
#define KO_TOKEN_FRESH (1ull << 32)
#define KO_RECLAIM_MEMCG 1 /* memory.reclaim of the scenario's cgroup */
#define KO_RECLAIM_NODE 2  /* /sys/devices/system/node/node0/reclaim */
#define KO_PIN_LONGTERM_WRITE 1 /* FOLL_PIN | FOLL_WRITE | FOLL_LONGTERM: io_uring fixed buffers */
#define KO_PIN_GET 2            /* FOLL_GET: vmsplice into a pipe */
#define KO_UFFD_REGISTER 1
#define KO_UFFD_PROTECT 2
#define KO_UFFD_UNPROTECT 3
#define KO_UFFD_UNREGISTER 4

struct ko_step {
	uint32_t index; /* the scenario's step index (its position in `steps:`) */
	uint8_t op;     /* enum ko_op */
	uint8_t proc;   /* slot of the process that performs the step (fork: the parent) */
	uint64_t addr, len, arg, arg2;
};

/* [start, start + pages * 4K): pages of the scenario's address domain. */
struct ko_range {
	uint64_t start, pages;
};

struct ko_scenario {
	const char *id;          /* record id (file name without extension) */
	const char *name;        /* the scenario's name */
	int nproc;               /* process slots: initial processes, then one per fork step */
	int ninit;               /* initial processes (slots 0 .. ninit-1) */
	const struct ko_step *steps;
	int nsteps;
	const struct ko_range *domain; /* every range the scenario ever maps, sorted */
	int ndomain;
	uint32_t mthp_always;    /* bit o: anonymous folios of order o are "always" */
	uint64_t swap_bytes;     /* swap device size (0: no swap) */
	int swap_sync;           /* 1: zram (SWP_SYNCHRONOUS_IO); 0: a loop device */
	int npins;               /* pin handles */
};

/* Run one scenario; returns 0 when every step ran (kernel errors are answers, not failures). */
int ko_run(const struct ko_scenario *sc);

#endif
