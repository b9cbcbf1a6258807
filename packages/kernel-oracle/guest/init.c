// SPDX-License-Identifier: MIT
/*
 * /init of the kernel oracle's initramfs (PID 1 in the guest, no shell, no other user process).
 *
 * Mounts the pseudo file systems, loads the modules listed in /lib/modules/load-order (zram and
 * loop with their dependencies), makes the guest quiet and deterministic (classic LRU instead of
 * MGLRU, no proactive compaction, khugepaged asleep, every THP size off), then runs
 * `/bin/koracle <id>` for each line of /tests, one process per scenario, and powers off.
 *
 * Everything here is locked in memory, and the root file system is ramfs (rootfstype=ramfs on
 * the command line), so node reclaim finds nothing to reclaim but the scenario's own memory.
 *
 * khugepaged would collapse a scenario's small folios behind its back. It scans at once whenever
 * its list of mms goes from empty to non-empty; we keep /init's own mm on that list (an anchor
 * mapping, registered while a THP size is on), so it always "has work" and sleeps its hour.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void put(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, strlen(val)) < 0)
		printf("KORACLE-WARN write %s=%s: %s\n", path, val, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void get(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r = fd < 0 ? -1 : read(fd, buf, n - 1);
	buf[r < 0 ? 0 : r] = 0;
	buf[strcspn(buf, "\n")] = 0;
	if (fd >= 0)
		close(fd);
}

static double uptime(void)
{
	char b[64];
	get("/proc/uptime", b, sizeof b);
	return atof(b);
}

static void load_modules(void)
{
	FILE *f = fopen("/lib/modules/load-order", "re");
	char name[256], path[512];
	while (f && fgets(name, sizeof name, f)) {
		name[strcspn(name, "\n")] = 0;
		if (!name[0])
			continue;
		snprintf(path, sizeof path, "/lib/modules/%s", name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || syscall(SYS_finit_module, fd, "", 0))
			printf("KORACLE-WARN insmod %s: %s\n", name, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	if (f)
		fclose(f);
}

static void thp_all(const char *val)
{
	const char *T = "/sys/kernel/mm/transparent_hugepage";
	char path[512];
	DIR *d = opendir(T);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		unsigned kb;
		if (sscanf(de->d_name, "hugepages-%ukB", &kb) != 1)
			continue;
		snprintf(path, sizeof path, "%s/%s/enabled", T, de->d_name);
		if (access(path, W_OK) == 0) /* some sizes (8kB) have stats but no knob */
			put(path, val);
	}
	if (d)
		closedir(d);
	snprintf(path, sizeof path, "%s/enabled", T);
	put(path, "never");
}

/*
 * `koracle_trace=1` on the command line: the function tracer on the functions of /trace-funcs,
 * following forks (each scenario sets set_ftrace_pid to itself and switches tracing on around
 * each step). Each filter write scans every traceable function: about 0.15 s each under TCG.
 */
static void trace_setup(void)
{
	char cmdline[1024], name[128];
	const char *T = "/sys/kernel/tracing";
	char path[256];
	get("/proc/cmdline", cmdline, sizeof cmdline);
	if (!strstr(cmdline, "koracle_trace=1"))
		return;
	FILE *f = fopen("/trace-funcs", "re");
	int n = 0;
	snprintf(path, sizeof path, "%s/tracing_on", T);
	put(path, "0");
	snprintf(path, sizeof path, "%s/set_ftrace_filter", T);
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	while (f && fgets(name, sizeof name, f)) {
		name[strcspn(name, "\n")] = 0;
		if (!name[0] || name[0] == '#')
			continue;
		fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (fd >= 0 && write(fd, name, strlen(name)) > 0)
			n++;
		else
			printf("KORACLE-FACT trace_missing %s\n", name);
		if (fd >= 0)
			close(fd);
	}
	if (f)
		fclose(f);
	/* arm64: contpte_convert folds or unfolds; its pte argument says which (PTE_CONT, bit 52).
	 * __contpte_try_unfold cannot tell: contpte.c inlines it into its own callers. */
	snprintf(path, sizeof path, "%s/dynamic_events", T);
	if (access("/sys/kernel/tracing/events", F_OK) == 0 && strstr(cmdline, "ttyAMA0")) {
		fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
		const char *probe = "f:koracle/convert contpte_convert pte";
		if (fd >= 0 && write(fd, probe, strlen(probe)) > 0) {
			snprintf(path, sizeof path, "%s/events/koracle/convert/enable", T);
			put(path, "1");
			snprintf(path, sizeof path, "%s/options/event-fork", T);
			put(path, "1");
			printf("KORACLE-FACT trace_probe contpte_convert pte\n");
		} else
			printf("KORACLE-FACT trace_probe_missing contpte_convert\n");
		if (fd >= 0)
			close(fd);
	}
	snprintf(path, sizeof path, "%s/buffer_size_kb", T);
	put(path, "8192");
	snprintf(path, sizeof path, "%s/options/function-fork", T);
	put(path, "1");
	snprintf(path, sizeof path, "%s/current_tracer", T);
	put(path, "function");
	fd = open("/tmp/koracle-trace", O_WRONLY | O_CREAT | O_CLOEXEC, 0644); /* tells each scenario to trace */
	if (fd >= 0)
		close(fd);
	printf("KORACLE-FACT trace %d functions\n", n);
}

static void facts(void)
{
	struct utsname u;
	char b[256];
	uname(&u);
	printf("KORACLE-FACT kernel %s %s %s\n", u.release, u.version, u.machine);
	get("/proc/cmdline", b, sizeof b);
	printf("KORACLE-FACT cmdline %s\n", b);
	get("/sys/kernel/mm/lru_gen/enabled", b, sizeof b);
	printf("KORACLE-FACT lru_gen %s\n", b);
	get("/sys/kernel/mm/transparent_hugepage/defrag", b, sizeof b);
	printf("KORACLE-FACT thp_defrag %s\n", b);
	get("/proc/sys/vm/swappiness", b, sizeof b);
	printf("KORACLE-FACT swappiness %s\n", b);
	get("/sys/module/zswap/parameters/enabled", b, sizeof b);
	printf("KORACLE-FACT zswap %s\n", b);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	printf("KORACLE-FACT cpus %ld\n", cpus);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mkdir("/tmp", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL);
	mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL);
	int con = open("/dev/console", O_RDWR);
	if (con >= 0) {
		dup2(con, 1);
		dup2(con, 2);
	}
	printf("\nKORACLE-INIT uptime=%.2f\n", uptime());
	put("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	load_modules();
	put("/sys/kernel/mm/lru_gen/enabled", "n");
	put("/proc/sys/vm/compaction_proactiveness", "0");
	put("/sys/kernel/mm/transparent_hugepage/khugepaged/scan_sleep_millisecs", "3600000");
	put("/sys/kernel/mm/transparent_hugepage/khugepaged/alloc_sleep_millisecs", "3600000");
	put("/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled", "always");
	volatile char *anchor = mmap(NULL, 64 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anchor != MAP_FAILED)
		anchor[0] = 1;
	usleep(100000);
	thp_all("never");
	trace_setup();
	mlockall(MCL_CURRENT);
	facts();

	FILE *t = fopen("/tests", "re");
	char id[256];
	while (t && fgets(id, sizeof id, t)) {
		id[strcspn(id, "\n")] = 0;
		if (!id[0])
			continue;
		printf("KORACLE-RUN %s uptime=%.2f\n", id, uptime());
		fflush(stdout);
		pid_t p = fork();
		if (p == 0) {
			execl("/bin/koracle", "koracle", id, (char *)NULL);
			_exit(127);
		}
		int status = 0;
		for (;;) {
			pid_t w = waitpid(-1, &status, 0); /* also reaps the scenario's orphans */
			if (w == p || (w < 0 && errno == ECHILD))
				break;
		}
		printf("KORACLE-EXIT %s rc=%d uptime=%.2f\n", id, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), uptime());
		thp_all("never");
	}
	if (t)
		fclose(t);
	printf("KORACLE-DONE uptime=%.2f\n", uptime());
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
