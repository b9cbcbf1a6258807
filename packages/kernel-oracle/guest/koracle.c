// SPDX-License-Identifier: MIT
/*
 * The kernel oracle's guest runtime (runs as root inside the QEMU guest, under /init).
 *
 * One scenario = one controller (this process) + one real process per scenario process. The
 * controller sets the kernel up as the scenario's config says (mTHP sizes, a fresh swap device,
 * a cgroup), sends each step to the process that performs it, waits for its answer, and after
 * every step prints what the kernel shows for the scenario's own pages: /proc/<pid>/pagemap,
 * /proc/kpageflags, /proc/kpagecount, the folio each PFN belongs to, smaps of the scenario's
 * VMAs, and the vmstat / mTHP counters that moved. It prints raw numbers only; the host
 * (src/guest-output.ts) interprets them.
 *
 * Our own memory must not disturb the answer: every VMA the program has before the scenario
 * starts is MADV_NOHUGEPAGE (so our own faults never allocate a large folio or move an mTHP
 * counter) and mlocked (so reclaim never swaps it); forked processes mlock it again, since
 * mlock is not inherited. The scenario's address domain is far from all of it.
 *
 * Output lines (all start with "KO "):
 *   begin <id> | info <key> <value> | step <i> <rc> <err> <val> | lost <i> <addr> <exp> <act>
 *   ctr <i> <name> <delta> | proc <i> <slot> <pid>
 *   vma <i> <slot> <start> <end> <perms> <rss_kB> <swap_kB> <vmflags…>
 *   pg <i> <slot> <addr> <pagemap> [<kpageflags> <kpagecount> <head_pfn> <order>]
 *   done <i> | end <id> ok|abort <reason>
 * err: an errno, 1000 + the signal when the access faulted, or 2000 when it raised a userfaultfd
 * write-protect fault (val = the fault address).
 */
#define _GNU_SOURCE
#include "koracle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/io_uring.h>
#include <linux/loop.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define PAGE 4096UL
#define PM_PRESENT (1ULL << 63)
#define PM_SWAP (1ULL << 62)
#define PM_SOFT_DIRTY (1ULL << 55)
#define PM_PFN_MASK ((1ULL << 55) - 1)
#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16
#define MAXPROC 64
#define MAXPINS 64
#define MAXCTR 640
#define STEP_TIMEOUT_MS 30000
#define KO_ERR_UFFD_WP 2000 /* err: the access raised a userfaultfd write-protect fault */

static const struct ko_scenario *sc;
static char outbuf[1 << 16];

/* ---- our own memory ---- */
static struct {
	uint64_t start, end;
} own[128];
static int nown;

static void die(const char *what)
{
	printf("KO end %s abort %s:%s\n", sc ? sc->id : "?", what, strerror(errno));
	fflush(stdout);
	_exit(3);
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, val, strlen(val));
	int e = errno;
	close(fd);
	errno = e;
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

static int read_file(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return -1;
	buf[r] = 0;
	return 0;
}

static void note_own_vmas(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		die("maps");
	nown = 0;
	while (fgets(line, sizeof line, f) && nown < 128) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx", &s, &e) == 2) {
			own[nown].start = s;
			own[nown].end = e;
			nown++;
		}
	}
	fclose(f);
}

/* mlock what the program had before the scenario began ([vvar]/[vdso] refuse: fine). */
static void lock_own(void)
{
	for (int i = 0; i < nown; i++)
		mlock((void *)own[i].start, own[i].end - own[i].start);
}

static void __attribute__((noinline)) grow_stack(void)
{
	volatile char big[192 * 1024];
	for (size_t i = 0; i < sizeof big; i += PAGE)
		big[i] = 1;
}

static void own_memory(void)
{
	setvbuf(stdout, outbuf, _IOLBF, sizeof outbuf);
	grow_stack();
	note_own_vmas();
	for (int i = 0; i < nown; i++)
		madvise((void *)own[i].start, own[i].end - own[i].start, MADV_NOHUGEPAGE);
	if (mlockall(MCL_CURRENT))
		die("mlockall");
}

/* ---- the data pattern: one token per 4K page; 0 = zeros ---- */
static inline uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

#define TOKEN_MAGIC 0x4b4f000000000000ULL

static void fill_page(uint64_t *w, uint32_t token)
{
	if (!token) {
		memset(w, 0, PAGE);
		return;
	}
	w[0] = TOKEN_MAGIC | token;
	for (unsigned k = 1; k < PAGE / 8; k++)
		w[k] = mix(((uint64_t)token << 12) | k);
}

/* The token a page holds, 0 for zeros, 0xfffffffe when it is neither zeros nor a whole pattern. */
static uint32_t page_token(const volatile uint64_t *w)
{
	uint64_t w0 = w[0];
	if (!w0) {
		for (unsigned k = 1; k < PAGE / 8; k++)
			if (w[k])
				return 0xfffffffe;
		return 0;
	}
	if ((w0 & 0xffff000000000000ULL) != TOKEN_MAGIC)
		return 0xfffffffe;
	uint32_t t = (uint32_t)w0;
	for (unsigned k = 1; k < PAGE / 8; k++)
		if (w[k] != mix(((uint64_t)t << 12) | k))
			return 0xfffffffe;
	return t;
}

/*
 * Each process's idea of what its pages hold: one token per page of the domain (copied by fork,
 * moved by mremap, zeroed by mmap/munmap/MADV_DONTNEED), and whether MADV_FREE let the kernel
 * drop it since (then zeros are a right answer too).
 */
static uint32_t *tokens;
static uint8_t *lazy;
static uint64_t domain_pages;

static int64_t domain_index(uint64_t addr)
{
	uint64_t base = 0;
	for (int i = 0; i < sc->ndomain; i++) {
		const struct ko_range *r = &sc->domain[i];
		if (addr >= r->start && addr < r->start + r->pages * PAGE)
			return (int64_t)(base + (addr - r->start) / PAGE);
		base += r->pages;
	}
	return -1;
}

/* Set the expectation of [start, start + len) to zeros (a fresh mapping, munmap, MADV_DONTNEED). */
static void tokens_zero(uint64_t start, uint64_t len)
{
	for (uint64_t a = start; a < start + len; a += PAGE) {
		int64_t di = domain_index(a);
		if (di >= 0)
			tokens[di] = 0, lazy[di] = 0;
	}
}

static void tokens_lazy(uint64_t start, uint64_t len)
{
	for (uint64_t a = start; a < start + len; a += PAGE) {
		int64_t di = domain_index(a);
		if (di >= 0)
			lazy[di] = 1;
	}
}

/* mremap moved [from, from + len) to `to` (the ranges may not overlap: MREMAP_FIXED or a fresh area). */
static void tokens_move(uint64_t from, uint64_t len, uint64_t to, uint64_t newlen)
{
	static uint32_t tbuf[1 << 16];
	static uint8_t lbuf[1 << 16];
	uint64_t n = len / PAGE;
	if (n > sizeof tbuf / sizeof tbuf[0])
		n = sizeof tbuf / sizeof tbuf[0];
	for (uint64_t i = 0; i < n; i++) {
		int64_t di = domain_index(from + i * PAGE);
		tbuf[i] = di >= 0 ? tokens[di] : 0;
		lbuf[i] = di >= 0 ? lazy[di] : 0;
	}
	tokens_zero(from, len);
	tokens_zero(to, newlen);
	for (uint64_t i = 0; i < n && i * PAGE < newlen; i++) {
		int64_t di = domain_index(to + i * PAGE);
		if (di >= 0)
			tokens[di] = tbuf[i], lazy[di] = lbuf[i];
	}
}

static int in_domain(uint64_t s, uint64_t e)
{
	for (int i = 0; i < sc->ndomain; i++) {
		uint64_t ds = sc->domain[i].start, de = ds + sc->domain[i].pages * PAGE;
		if (s < de && e > ds)
			return 1;
	}
	return 0;
}

/* ---- faults as answers ---- */
static sigjmp_buf fault_jmp;
static volatile int fault_armed;
static volatile uint64_t fault_addr;
static volatile int fault_sig;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!fault_armed) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	fault_sig = sig;
	fault_addr = (uint64_t)(uintptr_t)si->si_addr;
	siglongjmp(fault_jmp, 1);
}

static void catch_faults(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

/* ---- processes ---- */
struct reply {
	int32_t rc, err;
	int64_t val;
	uint32_t nlost;
};
struct lost {
	uint64_t addr;
	uint32_t expected, actual;
};

static int cmd_pipe[MAXPROC][2], ack_pipe[MAXPROC][2];
static pid_t pids[MAXPROC];
static int pidfds[MAXPROC];
static int alive[MAXPROC];
static int my_slot = -1;
static int uffd = -1;
static int pin_fd[MAXPINS];
static int pin_pipe[MAXPINS][2];
static char cgroup_dir[128];

static void xwrite(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(4);
		c += w;
		n -= (size_t)w;
	}
}

/* read exactly n bytes; -1 on EOF/timeout, or when the process behind `pidfd` (if >= 0) died first */
static int xread_from(int fd, void *p, size_t n, int timeout_ms, int pidfd)
{
	char *c = p;
	while (n) {
		if (timeout_ms >= 0) {
			struct pollfd pf[2] = {{.fd = fd, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
			int r = poll(pf, pidfd >= 0 ? 2 : 1, timeout_ms);
			if (r == 0)
				return -1;
			if (r < 0 && errno == EINTR)
				continue;
			if (!(pf[0].revents & POLLIN) && pidfd >= 0 && (pf[1].revents & POLLIN))
				return -2;
		}
		ssize_t got = read(fd, c, n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		c += got;
		n -= (size_t)got;
	}
	return 0;
}

static int xread(int fd, void *p, size_t n, int timeout_ms)
{
	return xread_from(fd, p, n, timeout_ms, -1);
}

static void reply(struct reply *r, const struct lost *lost)
{
	xwrite(ack_pipe[my_slot][1], r, sizeof *r);
	if (r->nlost)
		xwrite(ack_pipe[my_slot][1], lost, r->nlost * sizeof *lost);
}

static struct lost lostbuf[4096];

/* One page access with faults caught: 0, or 1000 + the signal (no local changes between sigsetjmp and longjmp). */
static int access_page(uint64_t a, int write, uint32_t token, uint32_t *got)
{
	fault_armed = 1;
	if (sigsetjmp(fault_jmp, 1)) {
		fault_armed = 0;
		return 1000 + fault_sig;
	}
	if (write)
		fill_page((uint64_t *)(uintptr_t)a, token);
	else
		*got = page_token((const volatile uint64_t *)(uintptr_t)a);
	fault_armed = 0;
	return 0;
}

static volatile int poison_rc, poison_errno;

/* MADV_HWPOISON with faults caught: 0 (poison_rc/errno hold the call's result), or 1000 + the signal. */
static int poison_page(uint64_t a)
{
	fault_armed = 1;
	if (sigsetjmp(fault_jmp, 1)) {
		fault_armed = 0;
		return 1000 + fault_sig;
	}
	poison_rc = madvise((void *)(uintptr_t)a, PAGE, MADV_HWPOISON);
	poison_errno = errno;
	fault_armed = 0;
	return 0;
}

static void do_write(const struct ko_step *s, struct reply *r)
{
	for (uint64_t a = s->addr, n = 0; a < s->addr + s->len; a += PAGE, n++) {
		uint32_t t = (s->arg & KO_TOKEN_FRESH) ? (uint32_t)(((uint64_t)s->index << 20 | n) + 1) : (uint32_t)s->arg;
		int f = access_page(a, 1, t, NULL);
		if (f) {
			r->rc = -1;
			r->err = f;
			r->val = (int64_t)fault_addr;
			return;
		}
		int64_t di = domain_index(a);
		if (di >= 0)
			tokens[di] = t, lazy[di] = 0;
	}
}

static void do_read(const struct ko_step *s, struct reply *r, struct lost *lost)
{
	for (uint64_t a = s->addr; a < s->addr + s->len; a += PAGE) {
		int64_t di = domain_index(a);
		uint32_t expected = di >= 0 ? tokens[di] : 0, actual = 0;
		int f = access_page(a, 0, 0, &actual);
		if (f == 1000 + SIGBUS)
			actual = 0xffffffff; /* hwpoison: SIGBUS, the page is lost */
		else if (f) {
			r->rc = -1;
			r->err = f;
			r->val = (int64_t)fault_addr;
			return;
		}
		if (actual == 0 && di >= 0 && lazy[di]) {
			tokens[di] = 0; /* MADV_FREE'd and dropped: zeros now */
			lazy[di] = 0;
			continue;
		}
		if (actual != expected && r->nlost < sizeof lostbuf / sizeof lostbuf[0]) {
			lost[r->nlost].addr = a;
			lost[r->nlost].expected = expected;
			lost[r->nlost].actual = actual;
			r->nlost++;
		}
	}
}

static int io_uring_pin(uint64_t addr, uint64_t len)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	int fd = (int)syscall(__NR_io_uring_setup, 1, &p);
	if (fd < 0)
		return -1;
	struct iovec iov = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
	if (syscall(__NR_io_uring_register, fd, IORING_REGISTER_BUFFERS, &iov, 1) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void do_pin(const struct ko_step *s, struct reply *r)
{
	int h = (int)s->arg;
	if (s->arg2 == KO_PIN_LONGTERM_WRITE) {
		pin_fd[h] = io_uring_pin(s->addr, s->len);
		if (pin_fd[h] < 0) {
			r->rc = -1;
			r->err = errno;
		}
		return;
	}
	/* FOLL_GET: the pipe holds a reference on every page until it is read */
	if (pipe2(pin_pipe[h], O_CLOEXEC) || fcntl(pin_pipe[h][1], F_SETPIPE_SZ, (int)(s->len < 65536 ? 65536 : s->len)) < 0) {
		r->rc = -1;
		r->err = errno;
		return;
	}
	struct iovec iov = {.iov_base = (void *)(uintptr_t)s->addr, .iov_len = s->len};
	ssize_t n = vmsplice(pin_pipe[h][1], &iov, 1, 0);
	if (n != (ssize_t)s->len) {
		r->rc = -1;
		r->err = n < 0 ? errno : EAGAIN;
	}
}

static void do_unpin(const struct ko_step *s, struct reply *r)
{
	int h = (int)s->arg;
	if (pin_fd[h] >= 0) {
		/* unregister first: closing the ring alone unpins later, from a workqueue */
		if (syscall(__NR_io_uring_register, pin_fd[h], IORING_UNREGISTER_BUFFERS, NULL, 0) < 0) {
			r->rc = -1;
			r->err = errno;
		}
		close(pin_fd[h]);
		pin_fd[h] = -1;
		return;
	}
	static char sink[65536];
	while (read(pin_pipe[h][0], sink, sizeof sink) > 0) {
		struct pollfd pf = {.fd = pin_pipe[h][0], .events = POLLIN};
		if (poll(&pf, 1, 0) <= 0)
			break;
	}
	close(pin_pipe[h][0]);
	close(pin_pipe[h][1]);
}

/*
 * A write to a uffd-wp protected page blocks until a handler resolves it. The model has no
 * handler (it refuses such a write), so when the kernel raises one, this thread notes the
 * address and unprotects the page, and the step reports the fault instead of hanging.
 */
static volatile uint64_t uffd_fault_addr;

static void *uffd_watch(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd pf = {.fd = uffd, .events = POLLIN};
		if (poll(&pf, 1, -1) <= 0)
			continue;
		struct uffd_msg m;
		if (read(uffd, &m, sizeof m) != (ssize_t)sizeof m || m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		uint64_t a = m.arg.pagefault.address & ~(PAGE - 1);
		uffd_fault_addr = a ? a : 1;
		struct uffdio_writeprotect wp = {.range = {.start = a, .len = PAGE}, .mode = 0};
		ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
	}
	return NULL;
}

static void do_uffd(const struct ko_step *s, struct reply *r)
{
	struct uffdio_range range = {.start = s->addr, .len = s->len};
	int rc = 0;
	if (uffd < 0) {
		uffd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		struct uffdio_api api = {.api = UFFD_API, .features = 0};
		/* the watcher's stack is ours (bss: NOHUGEPAGE, locked), not a fresh mapping that could fault in an mTHP */
		static char stack[128 * 1024] __attribute__((aligned(4096)));
		pthread_attr_t at;
		pthread_t t;
		pthread_attr_init(&at);
		pthread_attr_setstack(&at, stack, sizeof stack);
		if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) || pthread_create(&t, &at, uffd_watch, NULL)) {
			r->rc = -1;
			r->err = errno;
			return;
		}
	}
	switch (s->arg) {
	case KO_UFFD_REGISTER: {
		struct uffdio_register reg = {.range = range, .mode = UFFDIO_REGISTER_MODE_WP};
		rc = ioctl(uffd, UFFDIO_REGISTER, &reg);
		break;
	}
	case KO_UFFD_PROTECT:
	case KO_UFFD_UNPROTECT: {
		struct uffdio_writeprotect wp = {.range = range, .mode = s->arg == KO_UFFD_PROTECT ? UFFDIO_WRITEPROTECT_MODE_WP : 0};
		rc = ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
		break;
	}
	case KO_UFFD_UNREGISTER:
		rc = ioctl(uffd, UFFDIO_UNREGISTER, &range);
		break;
	}
	if (rc) {
		r->rc = -1;
		r->err = errno;
	}
}

static void worker(int slot);

static void child_start(int slot)
{
	my_slot = slot;
	/* the parent's userfaultfd context is not ours (no UFFD_FEATURE_EVENT_FORK), nor its watcher */
	if (uffd >= 0)
		close(uffd);
	uffd = -1;
	lock_own();
	pid_t me = getpid();
	xwrite(ack_pipe[slot][1], &me, sizeof me);
	worker(slot);
}

static void exec_step(const struct ko_step *s, struct reply *r, struct lost *lost)
{
	void *a = (void *)(uintptr_t)s->addr;
	long rc = 0;
	errno = 0;
	uffd_fault_addr = 0;
	switch (s->op) {
	case KO_MMAP: {
		int prot = (int)(s->arg & 0xff);
		int flags = MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
		flags |= (s->arg & KO_MAP_DROPPABLE) ? MAP_DROPPABLE : MAP_PRIVATE;
		if (s->arg & KO_MAP_LOCKED)
			flags |= MAP_LOCKED;
		void *m = mmap(a, s->len, prot, flags, -1, 0);
		if (m == MAP_FAILED)
			rc = -1;
		else if (m != a) {
			munmap(m, s->len);
			rc = -1;
			errno = EEXIST;
		}
		r->val = (int64_t)(uintptr_t)m;
		if (rc == 0)
			tokens_zero(s->addr, s->len);
		break;
	}
	case KO_WRITE:
		do_write(s, r);
		if (uffd_fault_addr && r->rc == 0) {
			r->rc = -1;
			r->err = KO_ERR_UFFD_WP;
			r->val = (int64_t)uffd_fault_addr;
		}
		return;
	case KO_READ:
		do_read(s, r, lost);
		return;
	case KO_FORK: {
		int child = (int)s->arg;
		pid_t p = fork();
		if (p == 0)
			child_start(child);
		rc = p < 0 ? -1 : 0;
		r->val = p;
		break;
	}
	case KO_EXIT:
		reply(r, lost);
		_exit(0);
	case KO_MUNMAP:
		rc = munmap(a, s->len);
		if (rc == 0)
			tokens_zero(s->addr, s->len);
		break;
	case KO_MREMAP: {
		void *m = s->arg2 ? mremap(a, s->len, s->arg, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(uintptr_t)s->arg2)
				  : mremap(a, s->len, s->arg, MREMAP_MAYMOVE);
		rc = m == MAP_FAILED ? -1 : 0;
		r->val = (int64_t)(uintptr_t)m;
		if (rc == 0)
			tokens_move(s->addr, s->len, (uint64_t)(uintptr_t)m, s->arg);
		break;
	}
	case KO_MPROTECT:
		rc = mprotect(a, s->len, (int)s->arg);
		break;
	case KO_MADVISE:
		rc = madvise(a, s->len, (int)s->arg);
		if (rc == 0 && s->arg == MADV_DONTNEED)
			tokens_zero(s->addr, s->len);
		if (rc == 0 && s->arg == MADV_FREE)
			tokens_lazy(s->addr, s->len);
		break;
	case KO_PIN:
		do_pin(s, r);
		return;
	case KO_UNPIN:
		do_unpin(s, r);
		return;
	case KO_UFFD:
		do_uffd(s, r);
		return;
	case KO_POISON: {
		/* memory_failure(MF_ACTION_REQUIRED) sends SIGBUS to the caller when the page is mapped in its
		 * own mm (kill_procs); catch it so the process lives on and the step can say so */
		int f = poison_page(s->addr);
		if (f) {
			r->rc = -1;
			r->err = f;
			r->val = (int64_t)fault_addr;
			return;
		}
		rc = poison_rc;
		errno = poison_errno;
		break;
	}
	case KO_MLOCK:
		rc = mlock(a, s->len);
		break;
	case KO_MUNLOCK:
		rc = munlock(a, s->len);
		break;
	default:
		rc = -1;
		errno = ENOSYS;
	}
	if (rc < 0) {
		r->rc = -1;
		r->err = errno;
	}
}

static void worker(int slot)
{
	for (;;) {
		int32_t i;
		if (xread(cmd_pipe[slot][0], &i, sizeof i, -1))
			_exit(0);
		struct reply r = {0, 0, 0, 0};
		exec_step(&sc->steps[i], &r, lostbuf);
		reply(&r, lostbuf);
	}
}

/* ---- kernel set-up ---- */
static void set_mthp(void)
{
	const char *T = "/sys/kernel/mm/transparent_hugepage";
	char path[512];
	DIR *d = opendir(T);
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d))) {
		unsigned kb;
		if (sscanf(de->d_name, "hugepages-%ukB", &kb) != 1)
			continue;
		snprintf(path, sizeof path, "%s/%s/enabled", T, de->d_name);
		int order = __builtin_ctz(kb / 4);
		write_file(path, (sc->mthp_always >> order) & 1 ? "always" : "never");
	}
	closedir(d);
	snprintf(path, sizeof path, "%s/enabled", T);
	write_file(path, "never");
	/* let a khugepaged that (re)started on this change finish its first pass over /init's anchor */
	usleep(50000);
}

static void swap_header(const char *dev, uint64_t bytes)
{
	static union {
		char page[PAGE];
		struct {
			char bootbits[1024];
			uint32_t version, last_page, nr_badpages;
			unsigned char uuid[16], volume[16];
		} info;
	} h;
	memset(&h, 0, sizeof h);
	h.info.version = 1;
	h.info.last_page = (uint32_t)(bytes / PAGE - 1);
	memcpy(h.page + PAGE - 10, "SWAPSPACE2", 10);
	int fd = open(dev, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || pwrite(fd, &h, PAGE, 0) != (ssize_t)PAGE || fsync(fd))
		die("swap header");
	close(fd);
}

static void swap_off_all(void)
{
	swapoff("/dev/zram0");
	swapoff("/dev/loop0");
	int fd = open("/dev/loop0", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		ioctl(fd, LOOP_CLR_FD, 0);
		close(fd);
	}
	unlink("/koswap");
}

static void set_swap(void)
{
	char v[32];
	swap_off_all();
	if (!sc->swap_bytes)
		return;
	snprintf(v, sizeof v, "%" PRIu64, sc->swap_bytes);
	if (sc->swap_sync) {
		if (write_file("/sys/block/zram0/reset", "1") || write_file("/sys/block/zram0/disksize", v))
			die("zram");
		swap_header("/dev/zram0", sc->swap_bytes);
		if (swapon("/dev/zram0", 0))
			die("swapon zram0");
		return;
	}
	/* a synchronous device is what makes swap-in skip the swap cache: a loop device is not one */
	int f = open("/koswap", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (f < 0 || ftruncate(f, (off_t)sc->swap_bytes))
		die("swap file");
	int l = open("/dev/loop0", O_RDWR | O_CLOEXEC);
	struct loop_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.fd = (uint32_t)f;
	cfg.block_size = PAGE;
	if (l < 0 || ioctl(l, LOOP_CONFIGURE, &cfg))
		die("loop");
	close(f);
	close(l);
	swap_header("/dev/loop0", sc->swap_bytes);
	if (swapon("/dev/loop0", 0))
		die("swapon loop0");
}

/* ---- counters ---- */
struct counters {
	int n;
	char name[MAXCTR][48];
	long long v[MAXCTR];
};
static struct counters ctr_prev, ctr_cur;

static void ctr_add(struct counters *c, const char *name, long long v)
{
	if (c->n >= MAXCTR)
		return;
	snprintf(c->name[c->n], sizeof c->name[0], "%s", name);
	c->v[c->n++] = v;
}

static void ctr_take(struct counters *c)
{
	static char buf[1 << 16];
	char name[48];
	long long v;
	c->n = 0;
	if (!read_file("/proc/vmstat", buf, sizeof buf)) {
		for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
			if (sscanf(line, "%47s %lld", name, &v) == 2)
				ctr_add(c, name, v);
	}
	const char *T = "/sys/kernel/mm/transparent_hugepage";
	DIR *d = opendir(T);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		unsigned kb;
		char path[512], val[64];
		if (sscanf(de->d_name, "hugepages-%ukB", &kb) != 1)
			continue;
		snprintf(path, sizeof path, "%s/%s/stats", T, de->d_name);
		DIR *s = opendir(path);
		struct dirent *se;
		while (s && (se = readdir(s))) {
			if (se->d_name[0] == '.')
				continue;
			char full[1024];
			snprintf(full, sizeof full, "%s/%s", path, se->d_name);
			if (read_file(full, val, sizeof val))
				continue;
			snprintf(name, sizeof name, "mthp.%uK.%.30s", kb, se->d_name);
			ctr_add(c, name, atoll(val));
		}
		if (s)
			closedir(s);
	}
	if (d)
		closedir(d);
	char kp[64];
	if (!read_file("/sys/kernel/mm/transparent_hugepage/khugepaged/pages_collapsed", kp, sizeof kp))
		ctr_add(c, "khugepaged.pages_collapsed", atoll(kp));
}

static void ctr_print(int idx)
{
	for (int i = 0; i < ctr_cur.n; i++) {
		long long prev = 0;
		for (int j = 0; j < ctr_prev.n; j++)
			if (!strcmp(ctr_prev.name[j], ctr_cur.name[i])) {
				prev = ctr_prev.v[j];
				break;
			}
		if (ctr_cur.v[i] != prev)
			printf("KO ctr %d %s %lld\n", idx, ctr_cur.name[i], ctr_cur.v[i] - prev);
	}
	ctr_prev = ctr_cur;
}

/* ---- observation ---- */
/*
 * memory.stat flushes the memcg's rstat only once more than MEMCG_CHARGE_BATCH * nr_cpus updates
 * are pending (7.2.13 mm/memcontrol.c memcg_vmstats_needs_flush); below that, reclaim's aging
 * (shrink_active_list, get_scan_count) and refault activation read sizes as old as the last
 * periodic flush (every 2 s), which makes the answer depend on timing. A pump process in the
 * scenario's cgroup charges, maps and frees 1M of order-0 pages (its own, MADV_NOHUGEPAGE) before
 * each read, enough pending updates that the read flushes.
 */
static int pump_cmd[2] = {-1, -1}, pump_ack[2] = {-1, -1};
static pid_t pump_pid = -1;

static void pump_loop(void)
{
	char c;
	close(pump_cmd[1]);
	close(pump_ack[0]);
	lock_own();
	for (;;) {
		if (read(pump_cmd[0], &c, 1) != 1)
			_exit(0);
		size_t len = 1 << 20;
		void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m != MAP_FAILED) {
			madvise(m, len, MADV_NOHUGEPAGE);
			for (size_t o = 0; o < len; o += PAGE)
				((volatile char *)m)[o] = 1;
			munmap(m, len);
		}
		if (write(pump_ack[1], "k", 1) != 1)
			_exit(0);
	}
}

static void pump_updates(void)
{
	char c;
	if (pump_cmd[1] < 0)
		return;
	if (write(pump_cmd[1], "p", 1) == 1)
		xread(pump_ack[0], &c, 1, STEP_TIMEOUT_MS);
}

static void flush_memcg_stats(void)
{
	static char buf[1 << 14];
	char path[192];
	pump_updates();
	snprintf(path, sizeof path, "%s/memory.stat", cgroup_dir);
	read_file(path, buf, sizeof buf);
	/* reclaim without a target memcg (MADV_PAGEOUT) records evictions against the root memcg */
	read_file("/sys/fs/cgroup/memory.stat", buf, sizeof buf);
}

static int kpf_fd = -1, kpc_fd = -1;

static uint64_t kread(int fd, uint64_t pfn)
{
	uint64_t v = 0;
	if (pread(fd, &v, 8, (off_t)(pfn * 8)) != 8)
		return ~0ULL;
	return v;
}

static void folio_of(uint64_t pfn, uint64_t kpf, uint64_t *head, int *order)
{
	uint64_t h = pfn;
	if (kpf & (1ULL << KPF_COMPOUND_TAIL)) {
		for (int back = 0; back < 1024 && h > 0; back++) {
			h--;
			if (!(kread(kpf_fd, h) & (1ULL << KPF_COMPOUND_TAIL)))
				break;
		}
	} else if (!(kpf & (1ULL << KPF_COMPOUND_HEAD))) {
		*head = pfn;
		*order = 0;
		return;
	}
	uint64_t n = 1;
	while (n < 1024 && (kread(kpf_fd, h + n) & (1ULL << KPF_COMPOUND_TAIL)))
		n++;
	*head = h;
	*order = 63 - __builtin_clzll(n);
}

static void observe_vma(int idx, int slot, int pm_fd, uint64_t s, uint64_t e)
{
	static uint64_t pm[4096];
	for (uint64_t a = s; a < e;) {
		uint64_t n = (e - a) / PAGE;
		if (n > 4096)
			n = 4096;
		ssize_t got = pread(pm_fd, pm, n * 8, (off_t)(a / PAGE * 8));
		if (got <= 0)
			return;
		n = (uint64_t)got / 8;
		for (uint64_t i = 0; i < n; i++, a += PAGE) {
			uint64_t v = pm[i];
			if (!(v & ~PM_SOFT_DIRTY))
				continue; /* none (soft-dirty alone: a none page of a VM_SOFTDIRTY VMA) */
			if (v & PM_PRESENT) {
				uint64_t pfn = v & PM_PFN_MASK, head;
				uint64_t kpf = kread(kpf_fd, pfn), kpc = kread(kpc_fd, pfn);
				int order;
				folio_of(pfn, kpf, &head, &order);
				printf("KO pg %d %d %" PRIx64 " %" PRIx64 " %" PRIx64 " %" PRIu64 " %" PRIx64 " %d\n", idx, slot, a, v,
				       kpf, kpc, head, order);
			} else
				printf("KO pg %d %d %" PRIx64 " %" PRIx64 "\n", idx, slot, a, v);
		}
	}
}

static void observe_proc(int idx, int slot)
{
	char path[64], line[512];
	snprintf(path, sizeof path, "/proc/%d/smaps", (int)pids[slot]);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pids[slot]);
	int pm_fd = open(path, O_RDONLY | O_CLOEXEC);
	printf("KO proc %d %d %d\n", idx, slot, (int)pids[slot]);
	static struct {
		uint64_t s, e;
		char perms[8];
		long rss, swap;
	} v[256];
	int nv = 0, cur = -1;
	while (fgets(line, sizeof line, f)) {
		unsigned long s, e;
		char perms[8];
		long kb;
		if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) == 3 && strchr(line, '-') < strchr(line, ' ')) {
			cur = -1;
			if (in_domain(s, e) && nv < 256) {
				cur = nv++;
				v[cur].s = s;
				v[cur].e = e;
				snprintf(v[cur].perms, sizeof v[cur].perms, "%s", perms);
				v[cur].rss = v[cur].swap = 0;
			}
			continue;
		}
		if (cur < 0)
			continue;
		if (sscanf(line, "Rss: %ld kB", &kb) == 1)
			v[cur].rss = kb;
		else if (sscanf(line, "Swap: %ld kB", &kb) == 1)
			v[cur].swap = kb;
		else if (!strncmp(line, "VmFlags:", 8)) {
			line[strcspn(line, "\n")] = 0;
			printf("KO vma %d %d %" PRIx64 " %" PRIx64 " %s %ld %ld %s\n", idx, slot, v[cur].s, v[cur].e, v[cur].perms,
			       v[cur].rss, v[cur].swap, line + 9);
		}
	}
	fclose(f);
	for (int i = 0; i < nv && pm_fd >= 0; i++)
		observe_vma(idx, slot, pm_fd, v[i].s, v[i].e);
	if (pm_fd >= 0)
		close(pm_fd);
}

static void observe(int idx)
{
	/* the per-CPU LRU-add batches go to the LRU, as they would at the next drain (the model drains at once) */
	write_file("/proc/sys/vm/drop_caches", "1");
	/* fold the per-CPU node/zone stat deltas, so gauges like nr_swapcached are exact */
	write_file("/proc/sys/vm/stat_refresh", "1");
	/* and flush the memcg's rstat: a refault's activation (workingset_test_recent) reads these
	 * through a time-ratelimited flush, so stale sizes would make the answer depend on timing */
	flush_memcg_stats();
	ctr_take(&ctr_cur);
	ctr_print(idx);
	for (int s = 0; s < sc->nproc; s++)
		if (alive[s])
			observe_proc(idx, s);
	printf("KO done %d\n", idx);
	fflush(stdout);
}

/* ---- counting the kernel's own calls (when /init set the tracer up) ---- */
static int tracing;

static void trace_on(void)
{
	if (!tracing)
		return;
	int fd = open("/sys/kernel/tracing/trace", O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	write_file("/sys/kernel/tracing/tracing_on", "1");
}

/* Stop tracing and print how often each traced function ran during the step. */
static void trace_off(int idx)
{
	static char names[64][96];
	static int counts[64];
	int n = 0;
	char line[512];
	if (!tracing)
		return;
	write_file("/sys/kernel/tracing/tracing_on", "0");
	FILE *f = fopen("/sys/kernel/tracing/trace", "re");
	while (f && fgets(line, sizeof line, f)) {
		/* "   task-pid   [cpu] flags  timestamp: function <-caller", or an event line */
		if (line[0] == '#')
			continue;
		char *ev = strstr(line, " convert: (");
		if (ev) {
			char *pte = strstr(ev, "pte=0x");
			if (pte)
				snprintf(line, sizeof line, "%s", (strtoull(pte + 6, NULL, 16) >> 52) & 1 ? ": contpte_convert.fold <-" : ": contpte_convert.unfold <-");
		}
		char *p = strstr(line, ": ");
		char *q = p ? strstr(p, " <-") : NULL;
		if (!p || !q)
			continue;
		p += 2;
		*q = 0;
		int k = 0;
		while (k < n && strcmp(names[k], p))
			k++;
		if (k == n && n < 64)
			snprintf(names[n++], sizeof names[0], "%s", p);
		if (k < 64)
			counts[k]++;
	}
	if (f)
		fclose(f);
	for (int k = 0; k < n; k++) {
		printf("KO call %d %s %d\n", idx, names[k], counts[k]);
		counts[k] = 0;
	}
}

/* ---- the controller ---- */
static int wait_gone(int slot, int ms)
{
	struct pollfd pf = {.fd = pidfds[slot], .events = POLLIN};
	if (pidfds[slot] < 0)
		return 0;
	return poll(&pf, 1, ms) == 1 ? 0 : -1;
}

static void start_slot(int slot, pid_t pid)
{
	pids[slot] = pid;
	pidfds[slot] = (int)syscall(SYS_pidfd_open, pid, 0);
	alive[slot] = 1;
}

static void reclaim(const struct ko_step *s, struct reply *r)
{
	char path[192], val[64];
	snprintf(val, sizeof val, "%" PRIu64, s->arg2);
	if (s->arg == KO_RECLAIM_MEMCG)
		snprintf(path, sizeof path, "%s/memory.reclaim", cgroup_dir);
	else
		snprintf(path, sizeof path, "/sys/devices/system/node/node0/reclaim");
	/* EAGAIN: less than asked could be reclaimed, which is the usual answer when asking for "all" */
	if (write_file(path, val)) {
		r->rc = -1;
		r->err = errno;
	}
}

static void kill_all(void)
{
	for (int s = 0; s < sc->nproc; s++)
		if (alive[s]) {
			kill(pids[s], SIGKILL);
			wait_gone(s, 10000);
			alive[s] = 0;
		}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static int run_step(const struct ko_step *s)
{
	struct reply r = {0, 0, 0, 0};
	int idx = (int)s->index;
	static struct lost lost[4096];
	trace_on();
	if (s->op == KO_RECLAIM) {
		reclaim(s, &r);
	} else {
		int32_t i = (int32_t)(s - sc->steps);
		int slot = s->proc;
		if (!alive[slot]) {
			printf("KO end %s abort step %d: process slot %d is not alive\n", sc->id, idx, slot);
			return -1;
		}
		xwrite(cmd_pipe[slot][1], &i, sizeof i);
		int got = xread_from(ack_pipe[slot][0], &r, sizeof r, STEP_TIMEOUT_MS, pidfds[slot]);
		if (got == 0 && r.nlost)
			got = xread(ack_pipe[slot][0], lost, r.nlost * sizeof lost[0], STEP_TIMEOUT_MS);
		if (got) {
			printf("KO end %s abort step %d: %s\n", sc->id, idx, got == -2 ? "the process died" : "no answer in time");
			return -1;
		}
		if (s->op == KO_FORK && r.rc == 0) {
			pid_t child;
			int c = (int)s->arg;
			if (xread(ack_pipe[c][0], &child, sizeof child, STEP_TIMEOUT_MS)) {
				printf("KO end %s abort step %d: the forked child did not start\n", sc->id, idx);
				return -1;
			}
			start_slot(c, child);
		}
		if (s->op == KO_EXIT) {
			if (wait_gone(slot, STEP_TIMEOUT_MS)) {
				printf("KO end %s abort step %d: slot %d did not exit\n", sc->id, idx, slot);
				return -1;
			}
			alive[slot] = 0;
		}
	}
	trace_off(idx);
	printf("KO step %d %d %d %" PRIx64 "\n", idx, r.rc, r.err, (uint64_t)r.val);
	for (uint32_t k = 0; k < r.nlost; k++)
		printf("KO lost %d %" PRIx64 " %u %d\n", idx, lost[k].addr, lost[k].expected, (int)lost[k].actual);
	observe(idx);
	return 0;
}

static void make_cgroup(void)
{
	static int seq;
	snprintf(cgroup_dir, sizeof cgroup_dir, "/sys/fs/cgroup/ko%d-%d", (int)getpid(), seq++);
	if (mkdir(cgroup_dir, 0755) && errno != EEXIST)
		die("cgroup");
}

static void join_cgroup(void)
{
	char path[192], pid[16];
	snprintf(path, sizeof path, "%s/cgroup.procs", cgroup_dir);
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	if (write_file(path, pid))
		_exit(5);
}

int ko_run(const struct ko_scenario *scenario)
{
	sc = scenario;
	own_memory();
	printf("KO begin %s\n", sc->id);
	if (sc->nproc > MAXPROC || sc->npins > MAXPINS) {
		printf("KO end %s abort too many processes or pins\n", sc->id);
		return 1;
	}
	domain_pages = 0;
	for (int i = 0; i < sc->ndomain; i++)
		domain_pages += sc->domain[i].pages;
	/* the token table is ours: NOHUGEPAGE and locked like the rest of the program */
	tokens = mmap(NULL, (domain_pages ? domain_pages : 1) * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tokens == MAP_FAILED)
		die("tokens");
	madvise(tokens, (domain_pages ? domain_pages : 1) * 4, MADV_NOHUGEPAGE);
	if (mlock(tokens, (domain_pages ? domain_pages : 1) * 4))
		die("mlock tokens");
	lazy = mmap(NULL, domain_pages ? domain_pages : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (lazy == MAP_FAILED)
		die("lazy");
	madvise(lazy, domain_pages ? domain_pages : 1, MADV_NOHUGEPAGE);
	if (mlock(lazy, domain_pages ? domain_pages : 1))
		die("mlock lazy");
	note_own_vmas();
	for (int h = 0; h < MAXPINS; h++)
		pin_fd[h] = -1;
	kpf_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	kpc_fd = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC);
	if (kpf_fd < 0 || kpc_fd < 0)
		die("kpageflags");
	catch_faults();
	if (access("/tmp/koracle-trace", F_OK) == 0) {
		char pid[16];
		snprintf(pid, sizeof pid, "%d", (int)getpid());
		tracing = write_file("/sys/kernel/tracing/set_ftrace_pid", pid) == 0;
		write_file("/sys/kernel/tracing/set_event_pid", pid);
	}
	set_mthp();
	set_swap();
	make_cgroup();
	char swaps[512];
	if (!read_file("/proc/swaps", swaps, sizeof swaps)) {
		char *l = strchr(swaps, '\n');
		if (l && l[1]) {
			l[1 + strcspn(l + 1, "\n")] = 0;
			printf("KO info swap %s\n", l + 1);
		}
	}
	for (int s = 0; s < sc->nproc; s++) {
		if (pipe(cmd_pipe[s]) || pipe(ack_pipe[s]))
			die("pipe");
		alive[s] = 0;
		pidfds[s] = -1;
	}
	fflush(stdout);
	for (int s = 0; s < sc->ninit; s++) {
		pid_t p = fork();
		if (p < 0)
			die("fork");
		if (p == 0) {
			join_cgroup();
			child_start(s);
		}
		pid_t hello;
		if (xread(ack_pipe[s][0], &hello, sizeof hello, STEP_TIMEOUT_MS))
			die("start");
		start_slot(s, p);
	}
	if (pipe(pump_cmd) == 0 && pipe(pump_ack) == 0) {
		pump_pid = fork();
		if (pump_pid == 0) {
			join_cgroup();
			pump_loop();
		}
	}
	flush_memcg_stats();
	write_file("/proc/sys/vm/stat_refresh", "1");
	ctr_take(&ctr_prev);
	int rc = 0;
	for (int i = 0; i < sc->nsteps && rc == 0; i++)
		rc = run_step(&sc->steps[i]);
	kill_all();
	if (pump_pid > 0) {
		kill(pump_pid, SIGKILL);
		waitpid(pump_pid, NULL, 0);
	}
	swap_off_all();
	rmdir(cgroup_dir);
	if (rc == 0)
		printf("KO end %s ok\n", sc->id);
	fflush(stdout);
	return rc ? 1 : 0;
}
