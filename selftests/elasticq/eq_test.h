// SPDX-License-Identifier: MIT
/*
 * Shared helpers for the elasticq kselftests.
 *
 * The tests run as root inside a VM where elasticq.ko is loaded.  Every test
 * binary starts from, and leaves behind, an empty default queue whose config
 * is the one the module was loaded with (read back from
 * /sys/module/elasticq/parameters, falling back to the SPEC defaults) and
 * whose capacity is back at initial_capacity: eq_reset() does that, and the
 * standard fixture "eq" calls it in setup and teardown.
 *
 * Children forked by a test must never use the ASSERT and EXPECT macros (an
 * ASSERT longjmps into the harness and would run the fixture teardown in the
 * child): they report through a MAP_SHARED page and _exit().
 */
#ifndef EQ_TEST_H
#define EQ_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <linux/elasticq.h>

/*
 * The harness does not build cleanly with -Wextra: an unused parameter in
 * its SIGALRM handler, and ASSERT_EQ(0, stats.len) compares an int with a
 * __u64.  Equality of mixed signedness is what the tests mean; ordering
 * comparisons in the tests are written with matching types.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <kselftest_harness.h>
#pragma GCC diagnostic pop
#pragma GCC diagnostic ignored "-Wsign-compare"

#define EQ_DEV			ELASTICQ_DEVICE_PATH
#define EQ_SYSFS_MODULE		"/sys/module/elasticq"
#define EQ_SYSFS_PARAMS		EQ_SYSFS_MODULE "/parameters/"

/* SPEC section 7 defaults, also the module parameter defaults. */
#define EQ_DEF_INITIAL		1024U
#define EQ_DEF_MIN		1024U
#define EQ_DEF_MAX		65536U
#define EQ_DEF_GROWTH		200U
#define EQ_DEF_SHRINK		25U
#define EQ_DEF_MSG_SIZE		8192U
#define EQ_DEF_MAX_BYTES	(64ULL << 20)

#define EQ_MS			1000000ULL	/* ns */

/* How long a test waits for another process to reach a state. */
#define EQ_WAIT_MS		20000

static inline uint64_t eq_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * The kernel's tick clock: its timeouts count jiffies, and the lower bound
 * of a timeout is checked against the clock that moves with them.  Under
 * emulation ticks arrive late and jiffies catch up in jumps, so a wait of
 * j jiffies can end less than j ticks of CLOCK_MONOTONIC after it began,
 * but never earlier on this clock.  Upper bounds use eq_now_ns().
 */
static inline uint64_t eq_now_coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static inline void eq_sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* open(2) /dev/elasticq read-write; -errno on failure. */
static inline int eq_open(int extra_flags)
{
	int fd = open(EQ_DEV, O_RDWR | O_CLOEXEC | extra_flags);

	return fd < 0 ? -errno : fd;
}

/* The syscalls, returning the result or -errno. */
static inline ssize_t eq_push(int fd, const void *buf, size_t len)
{
	ssize_t n = write(fd, buf, len);

	return n < 0 ? -errno : n;
}

static inline ssize_t eq_pop(int fd, void *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);

	return n < 0 ? -errno : n;
}

/* read(2) that does not block, whatever @fd's O_NONBLOCK says. */
static inline ssize_t eq_pop_nb(int fd, void *buf, size_t len)
{
	int fl = fcntl(fd, F_GETFL);
	ssize_t n;

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	n = eq_pop(fd, buf, len);
	fcntl(fd, F_SETFL, fl);
	return n;
}

/*
 * A file to check the queue's contents through: a non-blocking file of its
 * own (*@own true, close it after), or, if the queue is lock-free and
 * @consumer_fd (or another file) already holds its one consumer role,
 * @consumer_fd itself; read it with eq_pop_nb().  Return -errno on error.
 */
static inline int eq_reader(int consumer_fd, bool *own)
{
	int fd = eq_open(O_NONBLOCK);

	*own = false;
	if (fd < 0)
		return fd;
	if (!ioctl(fd, ELASTICQ_IOC_CONSUME, 0)) {
		*own = true;
		return fd;
	}
	close(fd);
	return errno == EBUSY ? consumer_fd : -errno;
}

static inline int eq_get_config(int fd, struct elasticq_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	return ioctl(fd, ELASTICQ_IOC_GET_CONFIG, cfg) ? -errno : 0;
}

/* SET_CONFIG with @cfg as given (its size field included). */
static inline int eq_set_config_raw(int fd, const struct elasticq_config *cfg)
{
	return ioctl(fd, ELASTICQ_IOC_SET_CONFIG, cfg) ? -errno : 0;
}

/* SET_CONFIG with the size field filled in. */
static inline int eq_set_config(int fd, const struct elasticq_config *cfg)
{
	struct elasticq_config c = *cfg;

	c.size = sizeof(c);
	return eq_set_config_raw(fd, &c);
}

static inline int eq_get_stats(int fd, struct elasticq_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	return ioctl(fd, ELASTICQ_IOC_GET_STATS, st) ? -errno : 0;
}

/*
 * Read a whole text file (/proc/elasticq, a sysfs value) into @buf and
 * NUL-terminate it.  Return its length, or -errno (-EFBIG if it does not
 * fit).
 */
static inline long eq_read_text(const char *path, char *buf, size_t size)
{
	long len = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	do {
		n = read(fd, buf + len, size - 1 - len);
		if (n > 0)
			len += n;
	} while (n > 0 && len < (long)size - 1);
	if (n < 0)
		len = -errno;
	else if (n > 0)
		len = -EFBIG;
	close(fd);
	if (len >= 0)
		buf[len] = '\0';
	return len;
}

/* Write @text to the file @path (sysfs, procfs, cgroupfs); 0 or -errno. */
static inline int eq_write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		ret = -errno;
	close(fd);
	return ret;
}

/* The value of "@key N" in a flat-keyed file (memory.stat ...), or -1. */
static inline long long eq_read_key(const char *path, const char *key)
{
	static char buf[64 << 10];
	size_t klen = strlen(key);
	long n = eq_read_text(path, buf, sizeof(buf));
	char *p;

	if (n <= 0)
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, klen) && p[klen] == ' ')
			return strtoll(p + klen + 1, NULL, 10);
	return -1;
}

static inline bool eq_module_loaded(void)
{
	return access(EQ_SYSFS_MODULE, F_OK) == 0;
}

/* Read one module parameter; false if it cannot be read. */
static inline bool eq_read_param(const char *name, unsigned long long *val)
{
	char path[256], buf[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), EQ_SYSFS_PARAMS "%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	errno = 0;
	*val = strtoull(buf, NULL, 0);
	return errno == 0;
}

/* Write one (writable) module parameter; 0 or -errno. */
static inline int eq_write_param(const char *name, unsigned long long val)
{
	char path[256], buf[32];
	int fd, n, ret = 0;

	snprintf(path, sizeof(path), EQ_SYSFS_PARAMS "%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%llu\n", val);
	if (write(fd, buf, n) != n)
		ret = errno ? -errno : -EIO;
	close(fd);
	return ret;
}

/*
 * The variant under test: the default queue's, which the module parameter
 * "variant" chose at load (make check runs every lane once per variant).
 * Named queues the tests create get the same one.
 */
static inline __u32 eq_variant(void)
{
	unsigned long long v;

	return eq_read_param("variant", &v) ? v : ELASTICQ_VARIANT_LOCKED;
}

static inline bool eq_lockfree(void)
{
	return eq_variant() == ELASTICQ_VARIANT_LOCKFREE;
}

/* SPEC section 7 defaults. */
static inline void eq_default_config(struct elasticq_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	cfg->initial_capacity = EQ_DEF_INITIAL;
	cfg->min_capacity = EQ_DEF_MIN;
	cfg->max_capacity = EQ_DEF_MAX;
	cfg->growth_pct = EQ_DEF_GROWTH;
	cfg->shrink_pct = EQ_DEF_SHRINK;
	cfg->max_msg_size = EQ_DEF_MSG_SIZE;
	cfg->max_bytes = EQ_DEF_MAX_BYTES;
	cfg->push_timeout_ns = ELASTICQ_TIMEOUT_NONE;
	cfg->pop_timeout_ns = ELASTICQ_TIMEOUT_NONE;
	cfg->variant = eq_variant();
	cfg->full_policy = ELASTICQ_FULL_BLOCK;
}

/*
 * The config the default queue was created with at module load: the SPEC
 * defaults overridden by whatever the module parameters say.
 */
static inline void eq_load_config(struct elasticq_config *cfg)
{
	unsigned long long v;

	eq_default_config(cfg);
	if (eq_read_param("initial_capacity", &v))
		cfg->initial_capacity = v;
	if (eq_read_param("min_capacity", &v))
		cfg->min_capacity = v;
	if (eq_read_param("max_capacity", &v))
		cfg->max_capacity = v;
	if (eq_read_param("growth_pct", &v))
		cfg->growth_pct = v;
	if (eq_read_param("shrink_pct", &v))
		cfg->shrink_pct = v;
	if (eq_read_param("max_msg_size", &v))
		cfg->max_msg_size = v;
	if (eq_read_param("max_bytes", &v))
		cfg->max_bytes = v;
	if (eq_read_param("full_policy", &v))
		cfg->full_policy = v;
	if (eq_read_param("variant", &v))
		cfg->variant = v;
}

/*
 * Read and discard every queued message through a file of its own (so the
 * caller's files take no consumer role).  Return how many were drained or
 * -errno.
 */
static inline long eq_drain(void)
{
	static char buf[ELASTICQ_MSG_SIZE_LIMIT + 64];
	struct elasticq_stats st;
	long count = 0;
	int fd, tries;
	ssize_t n;

	fd = eq_open(O_NONBLOCK);
	if (fd < 0)
		return fd;
	for (tries = 0; tries < 1000; tries++) {
		do {
			n = eq_pop(fd, buf, sizeof(buf));
			if (n >= 0)
				count++;
		} while (n >= 0);
		if (n != -EAGAIN) {
			close(fd);
			return n;
		}
		/* EAGAIN can also mean "lock busy": trust only the stats. */
		if (eq_get_stats(fd, &st) == 0 && st.len == 0)
			break;
		eq_sleep_ms(1);
	}
	close(fd);
	return tries < 1000 ? count : -EBUSY;
}

/* GET_OWNER on the file's queue; 0 or -errno. */
static inline int eq_get_owner(int fd, struct elasticq_owner *o)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	return ioctl(fd, ELASTICQ_IOC_GET_OWNER, o) ? -errno : 0;
}

/* SET_OWNER of the fields in @flags; 0 or -errno. */
static inline int eq_set_owner(int fd, unsigned int flags, unsigned int uid,
			       unsigned int gid, unsigned int mode)
{
	struct elasticq_owner o;

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.flags = flags;
	o.uid = flags & ELASTICQ_OWNER_UID ? uid : 0;
	o.gid = flags & ELASTICQ_OWNER_GID ? gid : 0;
	o.mode = flags & ELASTICQ_OWNER_MODE ? mode : 0;
	return ioctl(fd, ELASTICQ_IOC_SET_OWNER, &o) ? -errno : 0;
}

/* The default queue's owner, group and mode after load. */
#define EQ_DEF_UID		0U
#define EQ_DEF_GID		0U
#define EQ_DEF_MODE		0662U
#define EQ_OWNER_ALL		(ELASTICQ_OWNER_UID | ELASTICQ_OWNER_GID | \
				 ELASTICQ_OWNER_MODE)

#define EQ_MAX_PARAMS	8

/* Module parameters a test changed, with their values before. */
struct eq_saved_params {
	int n;
	struct {
		const char *name;
		unsigned long long val;
	} p[EQ_MAX_PARAMS];
};

/* Set a module parameter, remembering the first value it had; 0 or -errno. */
static inline int eq_set_param(struct eq_saved_params *s, const char *name,
			       unsigned long long val)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->p[i].name, name))
			break;
	if (i == s->n) {
		if (s->n >= EQ_MAX_PARAMS)
			return -ENOSPC;
		if (!eq_read_param(name, &s->p[i].val))
			return -ENOENT;
		s->p[i].name = name;
		s->n++;
	}
	return eq_write_param(name, val);
}

/* Put back every parameter eq_set_param() changed; 0 or the first -errno. */
static inline int eq_restore_params(struct eq_saved_params *s)
{
	int ret = 0, r;

	while (s->n > 0) {
		s->n--;
		r = eq_write_param(s->p[s->n].name, s->p[s->n].val);
		if (!ret)
			ret = r;
	}
	return ret;
}

/*
 * Put back the default queue's owner, group and mode, empty the queue and
 * put back the load-time config with the capacity at initial_capacity (a
 * config with max == initial first clamps the ring down to it).  Return 0
 * or -errno.
 */
static inline int eq_reset(void)
{
	struct elasticq_config load, tight, now;
	struct elasticq_stats st;
	int fd, ret = 0, tries;
	long n;

	eq_load_config(&load);
	tight = load;
	tight.min_capacity = load.initial_capacity;
	tight.max_capacity = load.initial_capacity;
	fd = eq_open(0);
	if (fd < 0)
		return fd;
	ret = eq_set_owner(fd, EQ_OWNER_ALL, EQ_DEF_UID, EQ_DEF_GID,
			   EQ_DEF_MODE);
	for (tries = 0; !ret && tries < 10; tries++) {
		n = eq_drain();
		if (n < 0) {
			ret = n;
			break;
		}
		ret = eq_set_config(fd, &tight);
		if (!ret)
			ret = eq_set_config(fd, &load);
		if (ret != -EBUSY)
			break;
	}
	if (!ret)
		ret = eq_get_config(fd, &now);
	if (!ret && memcmp(&now, &load, sizeof(now)))
		ret = -EIO;
	if (!ret)
		ret = eq_get_stats(fd, &st);
	if (!ret && (st.len || st.bytes || st.capacity != load.initial_capacity))
		ret = -EIO;
	close(fd);
	return ret;
}

/* A message payload derived from (@tag, @seq), @len bytes. */
static inline void eq_fill(void *buf, size_t len, uint32_t tag, uint32_t seq)
{
	uint32_t x = tag * 2654435761U ^ seq * 40503U ^ (uint32_t)len;
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		x = x * 1103515245U + 12345U;
		p[i] = x >> 16;
	}
}

static inline bool eq_check_fill(const void *buf, size_t len, uint32_t tag,
				 uint32_t seq)
{
	static uint8_t want[ELASTICQ_MSG_SIZE_LIMIT];

	if (len > sizeof(want))
		return false;
	eq_fill(want, len, tag, seq);
	return memcmp(want, buf, len) == 0;
}

/* One field of /proc/@pid/stat: the state letter, or 0 if it is gone. */
static inline char eq_proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

static inline void eq_proc_wchan(pid_t pid, char *out, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/wchan", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, out, size - 1);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
}

/*
 * Wait (bounded) until @pid sleeps interruptibly in a kernel function whose
 * name starts with one of the '|'-separated prefixes in @wchans ("eq_" for
 * the queue's own wait, "do_sys_poll|do_poll" for poll(2)...).  Return 0, or
 * -1 if that did not happen within EQ_WAIT_MS (@last gets the last wchan).
 */
static inline int eq_wait_blocked_in(pid_t pid, const char *wchans,
				     char *last, size_t lastsize)
{
	uint64_t end = eq_now_ns() + EQ_WAIT_MS * EQ_MS;
	char wchan[128];

	do {
		char state = eq_proc_state(pid);
		const char *p = wchans;

		if (!state || state == 'Z')
			break;
		eq_proc_wchan(pid, wchan, sizeof(wchan));
		if (last)
			snprintf(last, lastsize, "%c %s", state, wchan);
		while (state == 'S' && *p) {
			size_t n = strcspn(p, "|");

			if (n && !strncmp(wchan, p, n))
				return 0;
			p += n;
			if (*p == '|')
				p++;
		}
		usleep(1000);
	} while (eq_now_ns() < end);
	return -1;
}

static inline int eq_wait_blocked(pid_t pid)
{
	return eq_wait_blocked_in(pid, "eq_", NULL, 0);
}

/* Results a child reports back (MAP_SHARED). */
struct eq_child_report {
	volatile int done;
	volatile int handled;		/* signal handler runs */
	volatile long ret;		/* syscall result or -errno */
	volatile long ret2;
	volatile uint64_t elapsed_ns;
	volatile long aux;		/* anything else the test needs */
	char data[ELASTICQ_MSG_SIZE_LIMIT / 64];
};

static inline void *eq_shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* waitpid() and return the exit status, or 1000 + signal, or -1. */
static inline int eq_wait_exit(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 1000 + WTERMSIG(status);
	return -1;
}

/* Kill and reap a child that may still be running. */
static inline void eq_kill_child(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	*pid = 0;
}

/* Push @n messages "tag/seq" of @len bytes; 0 or the first failure. */
static inline long eq_push_n(int fd, uint32_t tag, uint32_t first, uint32_t n,
			     size_t len)
{
	static uint8_t buf[ELASTICQ_MSG_SIZE_LIMIT];
	uint32_t i;
	ssize_t r;

	for (i = first; i < first + n; i++) {
		eq_fill(buf, len, tag, i);
		r = eq_push(fd, buf, len);
		if (r != (ssize_t)len)
			return r < 0 ? r : -EIO;
	}
	return 0;
}

/*
 * ATTACH the open file @fd to queue @name.  @cfg may be NULL (module
 * defaults); @mode and @cfg are passed only with ELASTICQ_ATTACH_CREATE.
 */
static inline int eq_attach(int fd, const char *name, unsigned int flags,
			    unsigned int mode, const struct elasticq_config *cfg)
{
	struct elasticq_attach a;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.flags = flags;
	snprintf(a.name, sizeof(a.name), "%s", name);
	if (flags & ELASTICQ_ATTACH_CREATE) {
		a.mode = mode;
		a.config = (uintptr_t)cfg;
	}
	return ioctl(fd, ELASTICQ_IOC_ATTACH, &a) ? -errno : 0;
}

/*
 * How much of a long test to run: the debug kernels (KASAN, KCSAN) under
 * software emulation are 10 to 50 times slower than Debian's, so the
 * stress tests move a tenth of their messages there.
 */
static inline long eq_scale(long n)
{
	struct utsname u;

	if (!uname(&u) && (strstr(u.release, "-elasticq-kasan") ||
			   strstr(u.release, "-elasticq-kcsan")))
		return n / 10 ? n / 10 : 1;
	return n;
}

/* Open a new file bound to @name (created with @flags/@mode/@cfg). */
static inline int eq_open_named(const char *name, int open_flags,
				unsigned int flags, unsigned int mode,
				const struct elasticq_config *cfg)
{
	int fd = open(EQ_DEV, open_flags | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = eq_attach(fd, name, flags, mode, cfg);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* DESTROY @name through any open file of the device. */
static inline int eq_destroy(const char *name)
{
	struct elasticq_destroy d;
	int fd = open(EQ_DEV, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	memset(&d, 0, sizeof(d));
	d.size = sizeof(d);
	snprintf(d.name, sizeof(d.name), "%s", name);
	ret = ioctl(fd, ELASTICQ_IOC_DESTROY, &d) ? -errno : 0;
	close(fd);
	return ret;
}

/* PUSH_BATCH of @n messages; the count or -errno, *@error as reported. */
static inline long eq_push_batch(int fd, const struct elasticq_msg_vec *v,
				 unsigned int n, unsigned int flags,
				 uint64_t timeout_ns, int *error)
{
	struct elasticq_push_batch b;
	long ret;

	memset(&b, 0, sizeof(b));
	b.size = sizeof(b);
	b.flags = flags;
	b.msgs = (uintptr_t)v;
	b.count = n;
	b.timeout_ns = timeout_ns;
	b.error = 12345;	/* must be overwritten */
	ret = ioctl(fd, ELASTICQ_IOC_PUSH_BATCH, &b);
	if (error)
		*error = b.error;
	return ret < 0 ? -errno : ret;
}

/* A pop batch argument for @len bytes at @buf, up to @max_msgs. */
static inline void eq_pop_args(struct elasticq_pop_batch *b, void *buf,
			       size_t len, unsigned int max_msgs)
{
	memset(b, 0, sizeof(*b));
	b->size = sizeof(*b);
	b->buf = (uintptr_t)buf;
	b->buf_len = len;
	b->max_msgs = max_msgs;
}

/* POP_BATCH into @buf; the count or -errno, *@bytes as reported. */
static inline long eq_pop_batch(int fd, void *buf, size_t len,
				unsigned int max_msgs, unsigned int flags,
				uint64_t timeout_ns, uint64_t *bytes)
{
	struct elasticq_pop_batch b;
	long ret;

	eq_pop_args(&b, buf, len, max_msgs);
	b.flags = flags;
	b.timeout_ns = timeout_ns;
	ret = ioctl(fd, ELASTICQ_IOC_POP_BATCH, &b);
	if (bytes)
		*bytes = b.bytes;
	return ret < 0 ? -errno : ret;
}

/*
 * Walk the frames a pop batch wrote: *@pos is the offset of the next frame
 * (start at 0); returns its payload and length, or NULL past @bytes or on a
 * malformed frame.
 */
static inline const void *eq_next_frame(const void *buf, uint64_t bytes,
					uint64_t *pos, uint32_t *len)
{
	const struct elasticq_frame *f;

	if (*pos + sizeof(*f) > bytes)
		return NULL;
	f = (const void *)((const char *)buf + *pos);
	if (*pos + ELASTICQ_FRAME_SIZE(f->len) > bytes)
		return NULL;
	*len = f->len;
	*pos += ELASTICQ_FRAME_SIZE(f->len);
	return f + 1;
}

/*
 * In a child: become uid/gid 65534 with no supplementary groups and no
 * capabilities.  0 or -errno.
 */
static inline int eq_drop_privileges(void)
{
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		return -errno;
	return 0;
}

#define EQ_MAX_CHILDREN 8

/*
 * The standard fixture: an empty load-time-config queue before and after,
 * one open blocking file, and up to EQ_MAX_CHILDREN children (with a report
 * page each) that teardown kills if the test left them behind.  Other
 * fixtures reuse it through these three macros.
 */
#define EQ_FIXTURE_FIELDS						\
	int fd;								\
	pid_t child[EQ_MAX_CHILDREN];					\
	struct eq_child_report *rep

#define EQ_FIXTURE_SETUP_BODY						\
	do {								\
		ASSERT_EQ(0, eq_reset());				\
		self->fd = eq_open(0);					\
		ASSERT_LE(0, self->fd);					\
		self->rep = eq_shared_alloc(EQ_MAX_CHILDREN *		\
					    sizeof(*self->rep));	\
		ASSERT_NE(NULL, self->rep);				\
	} while (0)

/* No ASSERT in a teardown: it would longjmp back into the teardown. */
#define EQ_FIXTURE_TEARDOWN_BODY					\
	do {								\
		int __i;						\
									\
		for (__i = 0; __i < EQ_MAX_CHILDREN; __i++)		\
			eq_kill_child(&self->child[__i]);		\
		if (self->fd > 0)					\
			close(self->fd);				\
		if (self->rep)						\
			munmap(self->rep, EQ_MAX_CHILDREN *		\
			       sizeof(*self->rep));			\
		EXPECT_EQ(0, eq_reset());				\
	} while (0)

#ifndef EQ_CUSTOM_FIXTURE
FIXTURE(eq) {
	EQ_FIXTURE_FIELDS;
};

FIXTURE_SETUP(eq)
{
	EQ_FIXTURE_SETUP_BODY;
}

FIXTURE_TEARDOWN(eq)
{
	EQ_FIXTURE_TEARDOWN_BODY;
}
#endif

#endif /* EQ_TEST_H */
