// SPDX-License-Identifier: MIT
/*
 * Allocation failures (SPEC section 7: "allocation failure is -ENOMEM with
 * nothing half-done"), injected with the kernel's fault injection
 * (Documentation/fault-injection/fault-injection.rst), restricted to one
 * child process that makes one syscall:
 *
 *  - "window": failslab (and fail_page_alloc where kvmalloc() must fail
 *    as a whole, its kmalloc() and its vmalloc() fallback) with
 *    task-filter=Y, probability=100, times=N, interval=1, space=0,
 *    verbose=0, ignore-gfp-wait=N; the child sets /proc/self/make-it-fail
 *    around the syscall, so its first N allocations fail.  Used where the
 *    first allocation of the syscall is the one under test.
 *  - "blocked": where the allocation under test is not the first one (a
 *    push's new ring comes after its message, a pop's smaller ring after
 *    nothing but a wait), the child sleeps in the queue first (full, or
 *    empty); the test then sets /proc/PID/make-it-fail for it and wakes it.
 *  - "nth": /proc/thread-self/fail-nth (probability 0 everywhere, so only
 *    the child is affected): the n-th allocation of the syscall fails, for
 *    n = 1, 2, ... until the syscall gets through without reaching the n-th
 *    allocation.  So every allocation point of the syscall fails once
 *    (fail_page_alloc with min-order=0 counts page allocations too, when
 *    the kernel has it); a single failure inside kvmalloc() is survived
 *    by its fallback.
 *
 * Covered: write and writev (the message, a growth of the ring), read (a
 * shrink), SET_CONFIG (a resize), open, push and pop batches, and the
 * creation of a named queue.
 *
 * Each failure must give -ENOMEM (a read: the message anyway) and leave the
 * queue as it was: same stats, same config, every message accepted before
 * still readable, in order.  The queue must work normally afterwards.
 * The module reference count shows that a failed open(2) keeps none.
 *
 * ELASTICQ_FI_VERBOSE=2 makes each injected failure log its stack trace
 * (the attrs' "verbose"), to see which allocation failed.
 *
 * Needs CONFIG_FAILSLAB and CONFIG_FAULT_INJECTION_DEBUG_FS, with debugfs
 * at /sys/kernel/debug: Debian's kernels have neither, so every test SKIPs
 * there; the KASAN debug kernel has them.
 */
#include <sys/syscall.h>

#define EQ_CUSTOM_FIXTURE
#include "eq_test.h"

#define FI_DEBUGFS	"/sys/kernel/debug"
#define FI_SLAB		FI_DEBUGFS "/failslab"
#define FI_PAGE		FI_DEBUGFS "/fail_page_alloc"

/* The message tag of this file, see eq_fill(). */
#define FI_TAG		0xfa17

/* Knobs we touch, saved at setup and restored at teardown. */
static const char *const fi_knobs[] = {
	"probability", "interval", "times", "space", "verbose",
	"task-filter", "ignore-gfp-wait", "ignore-gfp-highmem", "min-order",
	"cache-filter",
};
#define FI_NKNOBS	(sizeof(fi_knobs) / sizeof(fi_knobs[0]))

struct fi_attr {
	const char *dir;
	bool present;
	bool have[FI_NKNOBS];
	char saved[FI_NKNOBS][32];
};

static int fi_read_file(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int fi_write_file(const char *path, const char *val)
{
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : n < 0 ? -errno : -EIO;
}

static int fi_knob_index(const char *name)
{
	unsigned int i;

	for (i = 0; i < FI_NKNOBS; i++)
		if (!strcmp(fi_knobs[i], name))
			return i;
	return -1;
}

static void fi_attr_save(struct fi_attr *a, const char *dir)
{
	char path[256];
	unsigned int i;

	memset(a, 0, sizeof(*a));
	a->dir = dir;
	a->present = access(dir, F_OK) == 0;
	for (i = 0; a->present && i < FI_NKNOBS; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, fi_knobs[i]);
		a->have[i] = fi_read_file(path, a->saved[i],
					  sizeof(a->saved[i])) == 0;
	}
}

/* Set one knob; 0, or -errno (absent knobs of a present attr: -ENOENT). */
static int fi_set(struct fi_attr *a, const char *name, const char *val)
{
	int i = fi_knob_index(name);
	char path[256];

	if (!a->present)
		return 0;
	if (i < 0 || !a->have[i])
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/%s", a->dir, name);
	return fi_write_file(path, val);
}

static long fi_get(struct fi_attr *a, const char *name)
{
	char path[256], buf[32];

	snprintf(path, sizeof(path), "%s/%s", a->dir, name);
	if (fi_read_file(path, buf, sizeof(buf)))
		return -1000000;
	return strtol(buf, NULL, 0);
}

static int fi_attr_restore(struct fi_attr *a)
{
	char path[256];
	unsigned int i;
	int ret = 0;

	/* probability first: the attr is off while the rest is put back. */
	if (a->present && a->have[0]) {
		snprintf(path, sizeof(path), "%s/probability", a->dir);
		ret = fi_write_file(path, "0");
	}
	for (i = 1; a->present && i <= FI_NKNOBS; i++) {
		unsigned int k = i % FI_NKNOBS;	/* probability last */

		if (!a->have[k])
			continue;
		snprintf(path, sizeof(path), "%s/%s", a->dir, fi_knobs[k]);
		if (fi_write_file(path, a->saved[k]) && !ret)
			ret = -EIO;
	}
	return ret;
}

FIXTURE(fi) {
	EQ_FIXTURE_FIELDS;
	const char *skip;		/* why the tests cannot run, or NULL */
	struct fi_attr slab, page;
	bool armed;			/* attrs changed: restore them */
	struct elasticq_config cfg;	/* what the test installed */
};

/* SKIP from the test body (a SKIP in setup would still run the body). */
#define NEED_FI()							\
	do {								\
		if (self->skip)						\
			SKIP(return, "%s", self->skip);			\
	} while (0)

/*
 * Common settings: no random failure anywhere (probability 0), but the
 * reclaim-capable GFP_KERNEL allocations the module makes count, and
 * fail-nth counts order-0 page allocations too (user pages are highmem
 * and stay excluded).
 */
static int fi_arm_common(FIXTURE_DATA(fi) *self)
{
	const char *verbose = getenv("ELASTICQ_FI_VERBOSE");
	struct fi_attr *as[] = { &self->slab, &self->page };
	unsigned int i;
	int ret = 0;

	self->armed = true;
	for (i = 0; i < 2; i++) {
		struct fi_attr *a = as[i];

		ret = ret ?: fi_set(a, "probability", "0");
		ret = ret ?: fi_set(a, "verbose", verbose ? verbose : "0");
		ret = ret ?: fi_set(a, "interval", "1");
		ret = ret ?: fi_set(a, "space", "0");
		ret = ret ?: fi_set(a, "times", "-1");
		ret = ret ?: fi_set(a, "task-filter", "Y");
		ret = ret ?: fi_set(a, "ignore-gfp-wait", "N");
	}
	ret = ret ?: fi_set(&self->slab, "cache-filter", "N");
	ret = ret ?: fi_set(&self->page, "ignore-gfp-highmem", "Y");
	ret = ret ?: fi_set(&self->page, "min-order", "0");
	return ret;
}

/* Window mode: the first @times slab allocations of a make-it-fail task. */
static int fi_arm_window(FIXTURE_DATA(fi) *self, int times)
{
	char buf[16];
	int ret;

	snprintf(buf, sizeof(buf), "%d", times);
	ret = fi_arm_common(self);
	ret = ret ?: fi_set(&self->slab, "times", buf);
	ret = ret ?: fi_set(&self->slab, "probability", "100");
	return ret;
}

/*
 * The same, page allocations included: kvmalloc() of more than a page
 * tries kmalloc() (slab, or the page allocator above 8 KiB) and falls back
 * to vmalloc() (slab for its bookkeeping, then pages): only failing both
 * makes it fail.
 */
static int fi_arm_window_all(FIXTURE_DATA(fi) *self, int times)
{
	char buf[16];
	int ret;

	snprintf(buf, sizeof(buf), "%d", times);
	ret = fi_arm_window(self, times);
	ret = ret ?: fi_set(&self->page, "times", buf);
	ret = ret ?: fi_set(&self->page, "probability", "100");
	return ret;
}

/* How many window-mode faults fired since times was set to @armed. */
static long fi_window_fired(FIXTURE_DATA(fi) *self, long armed)
{
	return armed - fi_get(&self->slab, "times");
}

/*
 * Where no allocation of the step under test is a page allocation (small
 * messages, small rings), leave page allocations out of fail-nth: the only
 * ones left are slab refills, whose place in the sequence varies from one
 * call to the next.
 */
static int fi_nth_slab_only(FIXTURE_DATA(fi) *self)
{
	return fi_set(&self->page, "min-order", "64");
}

/* A small ring: every allocation stays below a page (no vmalloc). */
static void fi_small_config(struct elasticq_config *cfg)
{
	eq_load_config(cfg);
	cfg->initial_capacity = 4;
	cfg->min_capacity = 4;
	cfg->max_capacity = 64;
	cfg->growth_pct = 200;
	cfg->shrink_pct = 25;
	cfg->max_msg_size = 2000;
	cfg->max_bytes = 1 << 20;
	cfg->push_timeout_ns = 30000 * EQ_MS;
	cfg->pop_timeout_ns = 30000 * EQ_MS;
	cfg->full_policy = ELASTICQ_FULL_BLOCK;
}

/* Install @cfg on the (empty) queue with the ring at initial_capacity. */
static int fi_install(int fd, const struct elasticq_config *cfg)
{
	struct elasticq_config tight = *cfg;
	int ret;

	tight.min_capacity = cfg->initial_capacity;
	tight.max_capacity = cfg->initial_capacity;
	ret = eq_set_config(fd, &tight);
	return ret ?: eq_set_config(fd, cfg);
}

FIXTURE_SETUP(fi)
{
	EQ_FIXTURE_SETUP_BODY;
	if (geteuid() != 0)
		self->skip = "fault injection needs root";
	else if (access(FI_SLAB, F_OK))
		self->skip = "no " FI_SLAB " (kernel without CONFIG_FAILSLAB "
			     "or CONFIG_FAULT_INJECTION_DEBUG_FS, or debugfs "
			     "not mounted)";
	else if (access("/proc/self/make-it-fail", W_OK) ||
		 access("/proc/thread-self/fail-nth", W_OK))
		self->skip = "no /proc/self/make-it-fail or "
			     "/proc/thread-self/fail-nth";
	if (self->skip)
		return;
	fi_attr_save(&self->slab, FI_SLAB);
	fi_attr_save(&self->page, FI_PAGE);
	ASSERT_EQ(0, fi_arm_common(self));
	fi_small_config(&self->cfg);
	ASSERT_EQ(0, fi_install(self->fd, &self->cfg));
}

static void fi_unmark_caches(void);

FIXTURE_TEARDOWN(fi)
{
	fi_unmark_caches();
	if (self->armed) {
		EXPECT_EQ(0, fi_attr_restore(&self->slab));
		EXPECT_EQ(0, fi_attr_restore(&self->page));
	}
	EQ_FIXTURE_TEARDOWN_BODY;
}

/*
 * The model: messages m_first..m_next-1 are queued, message seq has
 * m_len[seq] bytes of eq_fill(FI_TAG, seq).  (Each test runs in a process
 * of its own, so these start at zero.)
 */
#define FI_MAX_SEQ	(1U << 16)
static uint32_t m_first, m_next;
static uint32_t m_len[FI_MAX_SEQ];
static uint8_t fi_wbuf[ELASTICQ_MSG_SIZE_LIMIT];
static uint8_t fi_rbuf[ELASTICQ_MSG_SIZE_LIMIT + 64];

/* Small messages by default: 16..215 bytes. */
static size_t fi_len(uint32_t seq)
{
	return 16 + seq * 37 % 200;
}

/* The next message of the model, of @len bytes, in fi_wbuf. */
static void fi_prepare(size_t len)
{
	eq_fill(fi_wbuf, len, FI_TAG, m_next);
}

/* The prepared message was accepted. */
static void fi_accepted(size_t len)
{
	m_len[m_next % FI_MAX_SEQ] = len;
	m_next++;
}

/* Push the next message of the model, @len bytes; 0 or -errno. */
static long fi_push_len(int fd, size_t len)
{
	ssize_t n;

	fi_prepare(len);
	n = eq_push(fd, fi_wbuf, len);
	if (n == (ssize_t)len) {
		fi_accepted(len);
		return 0;
	}
	return n < 0 ? n : -EIO;
}

static long fi_push_n(int fd, unsigned int n)
{
	long ret = 0;

	while (n-- && !ret)
		ret = fi_push_len(fd, fi_len(m_next));
	return ret;
}

/* Is @buf (@n bytes read) the model's head?  If so, advance it. */
static bool fi_popped(const void *buf, ssize_t n)
{
	size_t len = m_len[m_first % FI_MAX_SEQ];

	if (m_first == m_next || n != (ssize_t)len ||
	    !eq_check_fill(buf, len, FI_TAG, m_first))
		return false;
	m_first++;
	return true;
}

/*
 * Pop everything the model says is queued, checking content and order,
 * then check that nothing else is queued (through a file of its own, or
 * @consumer_fd, see eq_reader()).
 */
static void fi_check_all(struct __test_metadata *_metadata, int consumer_fd)
{
	bool own;
	ssize_t n;
	int fd;

	fd = eq_reader(consumer_fd, &own);
	ASSERT_LE(0, fd);
	while (m_first != m_next) {
		uint32_t want = m_first;

		n = eq_pop_nb(fd, fi_rbuf, sizeof(fi_rbuf));
		ASSERT_TRUE(fi_popped(fi_rbuf, n)) {
			TH_LOG("message %u: read %zd (want %u bytes)", want,
			       n, m_len[want % FI_MAX_SEQ]);
		}
	}
	EXPECT_EQ(-EAGAIN, eq_pop_nb(fd, fi_rbuf, sizeof(fi_rbuf)));
	if (own)
		close(fd);
}

static long fi_module_refcnt(void)
{
	char buf[32];

	if (fi_read_file(EQ_SYSFS_MODULE "/refcnt", buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, 10);
}

/* Stats fields that a failed operation must not change. */
static bool fi_stats_same(struct __test_metadata *_metadata,
			  const struct elasticq_stats *a,
			  const struct elasticq_stats *b)
{
#define FI_SAME(f)							\
	do {								\
		if (a->f != b->f) {					\
			TH_LOG("stats." #f ": %llu before, %llu after",	\
			       (unsigned long long)a->f,		\
			       (unsigned long long)b->f);		\
			same = false;					\
		}							\
	} while (0)
	bool same = true;

	FI_SAME(len);
	FI_SAME(capacity);
	FI_SAME(bytes);
	FI_SAME(mem_bytes);
	FI_SAME(high_water);
	FI_SAME(enqueued);
	FI_SAME(dequeued);
	FI_SAME(dropped);
	FI_SAME(rejected);
	FI_SAME(grows);
	FI_SAME(shrinks);
	FI_SAME(producers);
	FI_SAME(consumers);
	return same;
#undef FI_SAME
}

/* One syscall made by a child under fault injection. */
enum fi_op_kind {
	FI_WRITE, FI_WRITEV, FI_READ, FI_SET_CONFIG, FI_OPEN, FI_PUSH_BATCH,
	FI_POP_BATCH, FI_CREATE,
};

#define FI_BATCH	24	/* more than the kernel keeps on its stack */
#define FI_QNAME	"fi.q"

struct fi_op {
	enum fi_op_kind kind;
	int fd;
	size_t len;			/* FI_WRITE(V): fi_wbuf; FI_READ,
					 * FI_POP_BATCH: fi_rbuf
					 */
	struct elasticq_config cfg;	/* FI_SET_CONFIG, FI_CREATE */
	struct elasticq_msg_vec vec[FI_BATCH];	/* FI_PUSH_BATCH */
	unsigned int count;		/* FI_PUSH_BATCH, FI_POP_BATCH */
};

enum fi_mode { FI_MODE_WINDOW, FI_MODE_NTH };

/*
 * The syscall of @op; *@aux gets the push batch's error field or the pop
 * batch's bytes.
 */
static long fi_do(const struct fi_op *op, long *aux)
{
	struct elasticq_push_batch pb = {
		.size = sizeof(pb), .msgs = (uintptr_t)op->vec,
		.count = op->count,
	};
	struct elasticq_pop_batch b = {
		.size = sizeof(b), .buf = (uintptr_t)fi_rbuf,
		.buf_len = op->len, .max_msgs = op->count,
	};
	struct elasticq_attach a = {
		.size = sizeof(a), .flags = ELASTICQ_ATTACH_CREATE,
		.mode = 0600, .name = FI_QNAME, .config = (uintptr_t)&op->cfg,
	};
	struct iovec iov[3];
	size_t third = op->len / 3;
	long ret = -EINVAL;
	int fd;

	switch (op->kind) {
	case FI_WRITE:
		ret = write(op->fd, fi_wbuf, op->len);
		break;
	case FI_WRITEV:
		/* Three segments: up to UIO_FASTIOV the VFS allocates nothing. */
		iov[0].iov_base = fi_wbuf;
		iov[0].iov_len = third;
		iov[1].iov_base = fi_wbuf + third;
		iov[1].iov_len = third;
		iov[2].iov_base = fi_wbuf + 2 * third;
		iov[2].iov_len = op->len - 2 * third;
		ret = writev(op->fd, iov, 3);
		break;
	case FI_READ:
		ret = read(op->fd, fi_rbuf, op->len);
		break;
	case FI_SET_CONFIG:
		ret = ioctl(op->fd, ELASTICQ_IOC_SET_CONFIG, &op->cfg);
		break;
	case FI_OPEN:
		ret = open(EQ_DEV, O_RDWR | O_CLOEXEC);
		break;
	case FI_PUSH_BATCH:
		ret = ioctl(op->fd, ELASTICQ_IOC_PUSH_BATCH, &pb);
		*aux = pb.error;
		break;
	case FI_POP_BATCH:
		ret = ioctl(op->fd, ELASTICQ_IOC_POP_BATCH, &b);
		*aux = b.bytes;
		break;
	case FI_CREATE:
		/* The file is opened before the faults are armed: see fi_call. */
		fd = op->fd;
		ret = ioctl(fd, ELASTICQ_IOC_ATTACH, &a);
		break;
	}
	return ret < 0 ? -errno : ret;
}

/* The last fi_call()'s push batch error or pop batch bytes. */
static long fi_aux;

/* Touch every page of [p, p + len) for writing. */
static void fi_prefault(void *p, size_t len)
{
	volatile uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i += 4096)
		b[i] = b[i];
	if (len)
		b[len - 1] = b[len - 1];
}

/*
 * Run @op in a child with the faults armed (window: make-it-fail around
 * it; nth: fail-nth = @nth).  The child shares the parent's files; what it
 * reads comes back in fi_rbuf.  Return the syscall's result or -errno;
 * *@injected tells whether the nth fault fired (window mode: true).  A
 * file the child opened is closed at once.
 */
static long fi_call(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self,
		    enum fi_mode mode, unsigned int nth, const struct fi_op *op,
		    bool *injected)
{
	struct eq_child_report *rep = &self->rep[0];
	uint8_t *shared;
	pid_t pid;

	memset(rep, 0, sizeof(*rep));
	rep->ret = -ENOSYS;
	/* Big reads come back through a shared mapping of their own. */
	shared = eq_shared_alloc(sizeof(fi_rbuf));
	if (!shared)
		return -ENOMEM;
	pid = fork();
	if (pid < 0) {
		munmap(shared, sizeof(fi_rbuf));
		return -errno;
	}
	if (pid == 0) {
		volatile char stack[32768];
		char arm[16], left[16];
		int mif, nfd, len;
		struct fi_op cop = *op;
		long ret, aux = 0;

		mif = open("/proc/self/make-it-fail", O_WRONLY | O_CLOEXEC);
		nfd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
		if (mif < 0 || nfd < 0)
			_exit(2);
		/* A fresh file to bind to the new queue, opened unarmed. */
		if (op->kind == FI_CREATE) {
			cop.fd = eq_open(0);
			if (cop.fd < 0)
				_exit(2);
		}
		/* No page fault (and allocation) of ours while armed. */
		fi_prefault((void *)stack, sizeof(stack));
		fi_prefault(fi_rbuf, sizeof(fi_rbuf));
		fi_prefault(fi_wbuf, sizeof(fi_wbuf));
		if (mode == FI_MODE_WINDOW) {
			if (write(mif, "1", 1) != 1)
				_exit(3);
		} else {
			len = snprintf(arm, sizeof(arm), "%u", nth);
			if (pwrite(nfd, arm, len, 0) != len)
				_exit(3);
		}
		ret = fi_do(&cop, &aux);
		if (mode == FI_MODE_WINDOW) {
			if (write(mif, "0", 1) != 1)
				_exit(4);
			rep->ret2 = 1;
		} else {
			/* 0: the fault fired; n > 0: n allocations short of it. */
			len = pread(nfd, left, sizeof(left) - 1, 0);
			if (len <= 0 || pwrite(nfd, "0", 1, 0) != 1)
				_exit(4);
			left[len] = '\0';
			rep->ret2 = strtoul(left, NULL, 10) == 0;
		}
		if (op->kind == FI_OPEN && ret >= 0) {
			close(ret);
			ret = 0;
		}
		if (op->kind == FI_READ && ret > 0)
			memcpy(shared, fi_rbuf, ret);
		if (op->kind == FI_POP_BATCH && ret > 0)
			memcpy(shared, fi_rbuf, aux);
		rep->aux = aux;
		rep->ret = ret;
		rep->done = 1;
		_exit(0);
	}
	self->child[0] = pid;
	EXPECT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_TRUE(rep->done);
	if (op->kind == FI_READ && rep->ret > 0)
		memcpy(fi_rbuf, shared, rep->ret);
	if (op->kind == FI_POP_BATCH && rep->ret > 0)
		memcpy(fi_rbuf, shared, rep->aux);
	munmap(shared, sizeof(fi_rbuf));
	*injected = rep->ret2;
	fi_aux = rep->aux;
	return rep->ret;
}

/* Everything is fine again: a message goes through, the model checks out. */
static void fi_finish(struct __test_metadata *_metadata, FIXTURE_DATA(fi) *self)
{
	ASSERT_EQ(0, fi_push_n(self->fd, 2));
	fi_check_all(_metadata, self->fd);
}

/* A write whose message cannot be allocated: ENOMEM, nothing queued. */
TEST_F(fi, write_enomem)
{
	struct elasticq_stats st0, st;
	struct fi_op op = { .fd = self->fd };
	bool injected;
	int i;

	NEED_FI();
	ASSERT_EQ(0, fi_push_n(self->fd, 3));
	for (i = 0; i < 2; i++) {
		op.kind = i ? FI_WRITEV : FI_WRITE;
		op.len = fi_len(m_next);
		fi_prepare(op.len);
		ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
		ASSERT_EQ(0, fi_arm_window(self, 1));
		EXPECT_EQ(-ENOMEM, fi_call(_metadata, self, FI_MODE_WINDOW, 0,
					   &op, &injected));
		EXPECT_EQ(1, fi_window_fired(self, 1));
		ASSERT_EQ(0, fi_arm_common(self));
		ASSERT_EQ(0, eq_get_stats(self->fd, &st));
		EXPECT_TRUE(fi_stats_same(_metadata, &st0, &st));

		/* The queue works at once: the same message goes in. */
		ASSERT_EQ(0, fi_push_len(self->fd, op.len));
		ASSERT_EQ(0, eq_get_stats(self->fd, &st));
		EXPECT_EQ(st0.len + 1, st.len);
		EXPECT_EQ(st0.enqueued + 1, st.enqueued);
	}
	fi_finish(_metadata, self);
}

/*
 * A write of @msg_len bytes onto a ring exactly full at its initial
 * capacity (@filler messages): every allocation of the write fails once,
 * in turn (the message, then the bigger ring, and inside kvmalloc the
 * vmalloc fallback's own allocations).  Each failure: ENOMEM and the queue
 * exactly as before.  Where a fault elsewhere was survived the message went
 * in and the ring grew: check, and set up the full ring again.  The sweep
 * ends with a write that met no fault, which grows the ring.
 */
static void fi_sweep_grow(struct __test_metadata *_metadata,
			  FIXTURE_DATA(fi) *self, uint32_t filler,
			  size_t msg_len, unsigned int *nomem,
			  unsigned int *nomem_late)
{
	struct fi_op op = { .kind = FI_WRITE, .fd = self->fd, .len = msg_len };
	struct elasticq_stats st0, st;
	unsigned int nth;
	bool injected;
	long ret;

	*nomem = *nomem_late = 0;
	for (nth = 1; nth < 2000; nth++) {
		ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
		if (st0.len != filler || st0.capacity != filler) {
			fi_check_all(_metadata, self->fd);
			ASSERT_EQ(0, fi_install(self->fd, &self->cfg));
			ASSERT_EQ(0, fi_push_n(self->fd, filler));
			ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
		}
		ASSERT_EQ(filler, st0.len);
		ASSERT_EQ(filler, st0.capacity);
		fi_prepare(msg_len);
		ret = fi_call(_metadata, self, FI_MODE_NTH, nth, &op, &injected);
		ASSERT_EQ(0, eq_get_stats(self->fd, &st));
		if (ret == -ENOMEM) {
			ASSERT_TRUE(injected);
			ASSERT_TRUE(fi_stats_same(_metadata, &st0, &st)) {
				TH_LOG("ENOMEM at allocation %u changed the queue",
				       nth);
			}
			(*nomem)++;
			if (nth > 1)
				(*nomem_late)++;
			continue;
		}
		ASSERT_EQ((long)msg_len, ret) {
			TH_LOG("allocation %u failed: write returned %ld", nth,
			       ret);
		}
		fi_accepted(msg_len);
		EXPECT_EQ(st0.enqueued + 1, st.enqueued);
		EXPECT_EQ(st0.len + 1, st.len);
		EXPECT_EQ(st0.grows + 1, st.grows);
		EXPECT_LT(st0.capacity, st.capacity);
		if (!injected) {
			TH_LOG("write of %zu bytes onto a full ring of %u: %u "
			       "allocations, %u failures gave ENOMEM", msg_len,
			       filler, nth - 1, *nomem);
			return;
		}
	}
	ASSERT_TRUE(false) {
		TH_LOG("the write still met a fault at allocation %u", nth);
	}
}

/* SPEC 7: a push that must grow the ring and cannot: ENOMEM, unchanged. */
TEST_F_TIMEOUT(fi, write_grow_enomem, 600)
{
	unsigned int nomem, late, sweep;

	NEED_FI();
	/*
	 * The message (first allocation) and the new ring (a later one).
	 * Which allocation is the nth also depends on per-CPU and slab state
	 * (a vmap preload, a new slab page), so a sweep that missed the
	 * ring's is repeated, up to three times.
	 */
	ASSERT_EQ(0, fi_nth_slab_only(self));
	for (sweep = 0; sweep < 3; sweep++) {
		fi_sweep_grow(_metadata, self, 4, 100, &nomem, &late);
		if (nomem >= 2 && late >= 1)
			break;
	}
	EXPECT_LE(2, nomem);
	EXPECT_LE(1, late);
	fi_finish(_metadata, self);
}

/* A ring of 1024 slots (8 KiB; 16 KiB grown) and messages of 100 KiB. */
static void fi_big_config(FIXTURE_DATA(fi) *self)
{
	self->cfg.initial_capacity = 1024;
	self->cfg.min_capacity = 1024;
	self->cfg.max_capacity = 4096;
	self->cfg.max_msg_size = 256 << 10;
	self->cfg.max_bytes = 16 << 20;
}

/*
 * The same with both allocations big enough for kvmalloc()'s vmalloc
 * fallback: one failure anywhere is survived (by the fallback) or gives
 * ENOMEM with nothing changed.
 */
TEST_F_TIMEOUT(fi, write_grow_every_allocation_vmalloc, 600)
{
	unsigned int nomem, late;

	NEED_FI();
	fi_big_config(self);
	ASSERT_EQ(0, fi_install(self->fd, &self->cfg));
	fi_sweep_grow(_metadata, self, 1024, 100 << 10, &nomem, &late);
	fi_finish(_metadata, self);
}

/*
 * A child that makes @op and sleeps in the queue (full for a write, empty
 * for a read) before the step under test: once it sleeps, its own
 * allocations are done; the faults are armed for it alone
 * (/proc/PID/make-it-fail) and @wake lets it go on.  Return the result of
 * @op; *@fired: how many faults were injected.
 */
static long fi_call_blocked(struct __test_metadata *_metadata,
			    FIXTURE_DATA(fi) *self, const struct fi_op *op,
			    void (*wake)(struct __test_metadata *,
					 FIXTURE_DATA(fi) *),
			    long *fired)
{
	struct eq_child_report *rep = &self->rep[0];
	char path[64], wchan[64];
	int mif;
	pid_t pid;

	memset(rep, 0, sizeof(*rep));
	rep->ret = -ENOSYS;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		volatile char stack[32768];
		long ret, aux;

		mif = open("/proc/self/make-it-fail", O_WRONLY | O_CLOEXEC);
		if (mif < 0)
			_exit(2);
		fi_prefault((void *)stack, sizeof(stack));
		fi_prefault(fi_rbuf, sizeof(fi_rbuf));
		fi_prefault(fi_wbuf, sizeof(fi_wbuf));
		rep->ret2 = 0;
		ret = fi_do(op, &aux);
		if (write(mif, "0", 1) != 1)
			_exit(4);
		if (op->kind == FI_READ && ret > 0 &&
		    (size_t)ret <= sizeof(rep->data))
			memcpy(rep->data, fi_rbuf, ret);
		rep->ret = ret;
		rep->done = 1;
		_exit(0);
	}
	self->child[0] = pid;
	EXPECT_EQ(0, eq_wait_blocked_in(pid, "eq_", wchan, sizeof(wchan))) {
		TH_LOG("the child did not sleep in the queue: %s", wchan);
	}
	EXPECT_EQ(0, fi_arm_window_all(self, 4));
	snprintf(path, sizeof(path), "/proc/%d/make-it-fail", pid);
	EXPECT_EQ(0, fi_write_file(path, "1"));
	wake(_metadata, self);
	EXPECT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	*fired = fi_window_fired(self, 4);
	if (self->page.present)
		*fired += 4 - fi_get(&self->page, "times");
	EXPECT_EQ(0, fi_arm_common(self));
	EXPECT_TRUE(rep->done);
	if (op->kind == FI_READ && rep->ret > 0 &&
	    (size_t)rep->ret <= sizeof(rep->data))
		memcpy(fi_rbuf, rep->data, rep->ret);
	return rep->ret;
}

/* Raise max_capacity: a writer waiting on a full ring may grow it. */
static void fi_wake_raise_max(struct __test_metadata *_metadata,
			      FIXTURE_DATA(fi) *self)
{
	struct elasticq_config cfg = self->cfg;

	cfg.max_capacity = 4096;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	self->cfg = cfg;
}

/*
 * The ring must grow to 16 KiB and kvmalloc() fails altogether (kmalloc
 * and the vmalloc fallback): ENOMEM, the queue unchanged, the next write
 * grows it.  The writer allocated its 100 KiB message before it slept on
 * the full ring; the faults are armed while it sleeps.
 */
TEST_F_TIMEOUT(fi, write_grow_enomem_vmalloc, 300)
{
	struct fi_op op = { .kind = FI_WRITE, .fd = self->fd,
			    .len = 100 << 10 };
	struct elasticq_stats st0, st;
	long ret, fired;

	NEED_FI();
	fi_big_config(self);
	self->cfg.max_capacity = 1024;		/* full at 1024 */
	ASSERT_EQ(0, fi_install(self->fd, &self->cfg));
	ASSERT_EQ(0, fi_push_n(self->fd, 1024));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(1024, st0.capacity);
	fi_prepare(op.len);
	ret = fi_call_blocked(_metadata, self, &op, fi_wake_raise_max, &fired);
	EXPECT_EQ(-ENOMEM, ret);
	EXPECT_LE(1, fired);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_TRUE(fi_stats_same(_metadata, &st0, &st));

	/* Now it grows: 1024 -> 2048. */
	ASSERT_EQ(0, fi_push_len(self->fd, op.len));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(2048, st.capacity);
	EXPECT_EQ(st0.grows + 1, st.grows);
	fi_finish(_metadata, self);
}

/*
 * SET_CONFIG whose new [min, max] excludes the current capacity must
 * reallocate the ring; when it cannot: ENOMEM, old config, same ring.
 */
TEST_F(fi, set_config_resize_enomem)
{
	struct elasticq_config before, now, cfg;
	struct elasticq_stats st0, st;
	struct fi_op op = { .kind = FI_SET_CONFIG, .fd = self->fd };
	bool injected;
	int i;

	NEED_FI();
	ASSERT_EQ(0, fi_push_n(self->fd, 9));	/* 4 -> 8 -> 16 slots */
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(16, st0.capacity);
	ASSERT_EQ(0, eq_get_config(self->fd, &before));

	for (i = 0; i < 2; i++) {
		cfg = self->cfg;
		if (i == 0) {
			/* Up: 16 is below the new min. */
			cfg.initial_capacity = 32;
			cfg.min_capacity = 32;
			cfg.max_capacity = 64;
		} else {
			/* Down: 16 is above the new max, 9 queued still fit. */
			cfg.max_capacity = 10;
		}
		cfg.pop_timeout_ns = 1234 * EQ_MS;	/* some other change */
		cfg.size = sizeof(cfg);
		op.cfg = cfg;
		ASSERT_EQ(0, fi_arm_window(self, 1));
		EXPECT_EQ(-ENOMEM, fi_call(_metadata, self, FI_MODE_WINDOW, 0,
					   &op, &injected));
		EXPECT_EQ(1, fi_window_fired(self, 1));
		ASSERT_EQ(0, fi_arm_common(self));
		ASSERT_EQ(0, eq_get_config(self->fd, &now));
		EXPECT_EQ(0, memcmp(&before, &now, sizeof(now)));
		ASSERT_EQ(0, eq_get_stats(self->fd, &st));
		EXPECT_TRUE(fi_stats_same(_metadata, &st0, &st));
		/* A push and a pop still work on the old ring. */
		ASSERT_EQ(0, fi_push_n(self->fd, 1));
		ASSERT_EQ(0, eq_get_stats(self->fd, &st));
		EXPECT_EQ(16, st.capacity);
		ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	}

	/* Without the fault it goes through. */
	cfg = self->cfg;
	cfg.initial_capacity = 32;
	cfg.min_capacity = 32;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(32, st.capacity);
	fi_finish(_metadata, self);
}

/*
 * A SET_CONFIG that moves the ring to 128 KiB while kvmalloc() fails
 * altogether: ENOMEM, the old config and ring.
 */
TEST_F(fi, set_config_enomem_vmalloc)
{
	struct fi_op op = { .kind = FI_SET_CONFIG, .fd = self->fd };
	struct elasticq_config before, now;
	struct elasticq_stats st0, st;
	bool injected;

	NEED_FI();
	ASSERT_EQ(0, fi_push_n(self->fd, 9));
	ASSERT_EQ(0, eq_get_config(self->fd, &before));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	op.cfg = self->cfg;
	op.cfg.size = sizeof(op.cfg);
	op.cfg.initial_capacity = 16384;
	op.cfg.min_capacity = 16384;
	op.cfg.max_capacity = 32768;
	ASSERT_EQ(0, fi_arm_window_all(self, 4));
	EXPECT_EQ(-ENOMEM, fi_call(_metadata, self, FI_MODE_WINDOW, 0, &op,
				   &injected));
	EXPECT_LE(1, fi_window_fired(self, 4));
	ASSERT_EQ(0, fi_arm_common(self));
	ASSERT_EQ(0, eq_get_config(self->fd, &now));
	EXPECT_EQ(0, memcmp(&before, &now, sizeof(now)));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_TRUE(fi_stats_same(_metadata, &st0, &st));
	/* Without faults it goes through. */
	ASSERT_EQ(0, eq_set_config(self->fd, &op.cfg));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(16384, st.capacity);
	fi_finish(_metadata, self);
}

/* Every allocation of a SET_CONFIG that moves the ring to a vmalloc size. */
TEST_F_TIMEOUT(fi, set_config_enomem_every_allocation, 600)
{
	struct fi_op op = { .kind = FI_SET_CONFIG, .fd = self->fd };
	struct elasticq_config before, now;
	struct elasticq_stats st0, st;
	unsigned int nth, nomem = 0;
	bool injected;
	long ret = -1;

	NEED_FI();
	ASSERT_EQ(0, fi_push_n(self->fd, 9));
	ASSERT_EQ(0, eq_get_config(self->fd, &before));
	op.cfg = self->cfg;
	op.cfg.size = sizeof(op.cfg);
	op.cfg.initial_capacity = 16384;		/* 128 KiB of slots */
	op.cfg.min_capacity = 16384;
	op.cfg.max_capacity = 32768;
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(16, st0.capacity);
	for (nth = 1; nth < 2000; nth++) {
		ret = fi_call(_metadata, self, FI_MODE_NTH, nth, &op, &injected);
		if (ret == 0) {
			/* Through: the new ring, the new config. */
			ASSERT_EQ(0, eq_get_stats(self->fd, &st));
			ASSERT_EQ(16384, st.capacity);
			ASSERT_EQ(0, eq_get_config(self->fd, &now));
			ASSERT_EQ(16384, now.min_capacity);
			if (!injected)
				break;
			/* A fault was survived: back to 16 slots, go on. */
			now = before;
			now.min_capacity = now.max_capacity = 16;
			now.initial_capacity = 16;
			ASSERT_EQ(0, eq_set_config(self->fd, &now));
			ASSERT_EQ(0, eq_set_config(self->fd, &before));
			ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
			ASSERT_EQ(16, st0.capacity);
			continue;
		}
		ASSERT_EQ(-ENOMEM, ret);
		ASSERT_TRUE(injected);
		nomem++;
		ASSERT_EQ(0, eq_get_config(self->fd, &now));
		ASSERT_EQ(0, memcmp(&before, &now, sizeof(now))) {
			TH_LOG("ENOMEM at allocation %u changed the config", nth);
		}
		ASSERT_EQ(0, eq_get_stats(self->fd, &st));
		ASSERT_TRUE(fi_stats_same(_metadata, &st0, &st));
	}
	ASSERT_EQ(0, ret);
	ASSERT_FALSE(injected);
	TH_LOG("SET_CONFIG to 16384 slots: %u allocations, %u failures gave "
	       "ENOMEM", nth - 1, nomem);
	fi_finish(_metadata, self);
}

/*
 * SPEC 7: a pop that should shrink the ring while allocations fail still
 * delivers its message; the shrink is only postponed to a later pop.
 */
TEST_F(fi, read_shrink_postponed)
{
	struct fi_op op = { .kind = FI_READ, .fd = self->fd,
			    .len = sizeof(fi_rbuf) };
	struct elasticq_stats st0, st;
	bool injected;
	long ret;
	int i;

	NEED_FI();
	ASSERT_EQ(0, fi_push_n(self->fd, 16));	/* 4 -> 8 -> 16 slots */
	for (i = 0; i < 11; i++) {		/* 5 left: 5 > 16 x 25% */
		ret = eq_pop(self->fd, fi_rbuf, sizeof(fi_rbuf));
		ASSERT_TRUE(fi_popped(fi_rbuf, ret));
	}
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(16, st0.capacity);
	ASSERT_EQ(5, st0.len);

	/* This pop leaves 4 <= 16 x 25%: it would shrink to 8. */
	ASSERT_EQ(0, fi_arm_window(self, 1));
	ret = fi_call(_metadata, self, FI_MODE_WINDOW, 0, &op, &injected);
	EXPECT_EQ(1, fi_window_fired(self, 1));
	ASSERT_EQ(0, fi_arm_common(self));
	ASSERT_TRUE(fi_popped(fi_rbuf, ret)) {
		TH_LOG("read under a failing shrink returned %ld", ret);
	}
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(4, st.len);
	EXPECT_EQ(16, st.capacity);
	EXPECT_EQ(st0.shrinks, st.shrinks);
	EXPECT_EQ(st0.dequeued + 1, st.dequeued);

	/* The next pop shrinks: max(16 / 2, 3, 4) = 8. */
	ret = eq_pop(self->fd, fi_rbuf, sizeof(fi_rbuf));
	ASSERT_TRUE(fi_popped(fi_rbuf, ret));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(3, st.len);
	EXPECT_EQ(8, st.capacity);
	EXPECT_EQ(st0.shrinks + 1, st.shrinks);
	fi_finish(_metadata, self);
}

/*
 * Every allocation of a pop that shrinks a large ring (kvmalloc of 8 KiB):
 * the message is always delivered; a shrink that met a fault happens on a
 * later pop instead.
 */
TEST_F_TIMEOUT(fi, read_every_allocation, 600)
{
	struct fi_op op = { .kind = FI_READ, .fd = self->fd,
			    .len = sizeof(fi_rbuf) };
	unsigned int nth, postponed = 0;
	struct elasticq_stats st0, st;
	bool injected = true;
	long ret;

	NEED_FI();
	self->cfg.initial_capacity = 2048;
	self->cfg.min_capacity = 4;
	self->cfg.max_capacity = 4096;
	ASSERT_EQ(0, fi_install(self->fd, &self->cfg));
	for (nth = 1; nth < 2000 && injected; nth++) {
		ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
		if (st0.capacity != 2048 || st0.len < 400) {
			/* Again: 513 queued, one pop from the 25% mark. */
			fi_check_all(_metadata, self->fd);
			ASSERT_EQ(0, fi_install(self->fd, &self->cfg));
			ASSERT_EQ(0, fi_push_n(self->fd, 513));
			ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
			ASSERT_EQ(2048, st0.capacity);
			ASSERT_EQ(513, st0.len);
		}
		/* This pop leaves len <= 512 = 2048 x 25%: it shrinks. */
		ret = fi_call(_metadata, self, FI_MODE_NTH, nth, &op, &injected);
		ASSERT_TRUE(fi_popped(fi_rbuf, ret)) {
			TH_LOG("allocation %u failed: read returned %ld", nth,
			       ret);
		}
		ASSERT_EQ(0, eq_get_stats(self->fd, &st));
		ASSERT_EQ(st0.len - 1, st.len);
		ASSERT_EQ(st0.dequeued + 1, st.dequeued);
		if (st.capacity == st0.capacity) {
			/* Postponed: only a fault may do that. */
			ASSERT_TRUE(injected);
			ASSERT_EQ(st0.shrinks, st.shrinks);
			postponed++;
		} else {
			/* max(2048 / 2, len, 4) */
			ASSERT_EQ(1024, st.capacity);
			ASSERT_EQ(st0.shrinks + 1, st.shrinks);
		}
	}
	ASSERT_FALSE(injected);
	TH_LOG("pop shrinking 2048 slots: %u allocations, %u shrinks postponed",
	       nth - 2, postponed);
	fi_finish(_metadata, self);
}

/* Push one message: a reader waiting on the empty queue takes it. */
static void fi_wake_push(struct __test_metadata *_metadata,
			 FIXTURE_DATA(fi) *self)
{
	ASSERT_EQ(0, fi_push_n(self->fd, 1));
}

/*
 * A pop that should shrink 2048 slots to 1024 (8 KiB, kvmalloc) while
 * kvmalloc() fails altogether: the message is delivered, the shrink waits
 * for the next pop.  The reader sleeps on the empty queue until the test
 * has armed the faults for it and pushed.
 */
TEST_F_TIMEOUT(fi, read_shrink_postponed_vmalloc, 300)
{
	struct fi_op op = { .kind = FI_READ, .fd = self->fd,
			    .len = sizeof(fi_rbuf) };
	struct elasticq_stats st0, st;
	long ret, fired;

	NEED_FI();
	self->cfg.initial_capacity = 2048;
	self->cfg.min_capacity = 4;
	self->cfg.max_capacity = 4096;
	ASSERT_EQ(0, fi_install(self->fd, &self->cfg));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(2048, st0.capacity);
	ret = fi_call_blocked(_metadata, self, &op, fi_wake_push, &fired);
	EXPECT_TRUE(fi_popped(fi_rbuf, ret)) {
		TH_LOG("read under a failing shrink returned %ld", ret);
	}
	EXPECT_LE(1, fired);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(2048, st.capacity);
	EXPECT_EQ(st0.shrinks, st.shrinks);
	EXPECT_EQ(st0.dequeued + 1, st.dequeued);

	/* The next pop shrinks: max(2048 / 2, 0, 4) = 1024. */
	ASSERT_EQ(0, fi_push_n(self->fd, 1));
	ret = eq_pop(self->fd, fi_rbuf, sizeof(fi_rbuf));
	ASSERT_TRUE(fi_popped(fi_rbuf, ret));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1024, st.capacity);
	EXPECT_EQ(st0.shrinks + 1, st.shrinks);
	fi_finish(_metadata, self);
}

/* open(2) when the file's allocations fail: ENOMEM, no reference kept. */
TEST_F(fi, open_enomem)
{
	struct fi_op op = { .kind = FI_OPEN };
	struct elasticq_stats st0, st;
	long refs;
	bool injected;

	NEED_FI();
	ASSERT_EQ(0, fi_push_n(self->fd, 3));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	refs = fi_module_refcnt();
	ASSERT_EQ(0, fi_arm_window(self, 3));
	EXPECT_EQ(-ENOMEM, fi_call(_metadata, self, FI_MODE_WINDOW, 0, &op,
				   &injected));
	EXPECT_LE(1, fi_window_fired(self, 3));
	ASSERT_EQ(0, fi_arm_common(self));
	EXPECT_EQ(refs, fi_module_refcnt());
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_TRUE(fi_stats_same(_metadata, &st0, &st));
	fi_finish(_metadata, self);
}

/*
 * Every allocation of open(2), the module's own (its per-file state)
 * last: each gives ENOMEM and leaves no module reference behind.
 */
TEST_F_TIMEOUT(fi, open_enomem_every_allocation, 300)
{
	struct fi_op op = { .kind = FI_OPEN };
	struct elasticq_stats st0, st;
	unsigned int nth, nomem = 0;
	bool injected = true;
	long refs, ret;

	NEED_FI();
	ASSERT_EQ(0, fi_push_n(self->fd, 3));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	refs = fi_module_refcnt();
	for (nth = 1; nth < 2000 && injected; nth++) {
		ret = fi_call(_metadata, self, FI_MODE_NTH, nth, &op, &injected);
		if (ret) {
			ASSERT_EQ(-ENOMEM, ret) {
				TH_LOG("allocation %u", nth);
			}
			ASSERT_TRUE(injected);
			nomem++;
		}
		ASSERT_EQ(refs, fi_module_refcnt()) {
			TH_LOG("allocation %u: module refcnt %ld", nth,
			       fi_module_refcnt());
		}
	}
	ASSERT_FALSE(injected);
	TH_LOG("open: %u allocations, %u gave ENOMEM", nth - 2, nomem);
	EXPECT_LE(1, nomem);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_TRUE(fi_stats_same(_metadata, &st0, &st));
	fi_finish(_metadata, self);
}

/* kmalloc caches marked for failslab's cache-filter, to be unmarked. */
#define FI_MAX_MARKED	64
static char fi_marked[FI_MAX_MARKED][96];
static unsigned int fi_nmarked;

static void fi_unmark_caches(void)
{
	while (fi_nmarked)
		fi_write_file(fi_marked[--fi_nmarked], "0");
}

/*
 * Mark every kmalloc cache (kmalloc-N, kmalloc-cg-N: the module's per-file
 * state comes from one of them) for failslab; return how many.
 */
static int fi_mark_kmalloc_caches(void)
{
	static const char *const pfx[] = { "kmalloc-", "kmalloc-cg-" };
	static const char *const sizes[] = {
		"8", "16", "32", "64", "96", "128", "192", "256", "512",
		"1k", "2k", "4k", "8k",
	};
	unsigned int i, j;
	char path[96];

	for (i = 0; i < 2; i++)
		for (j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
			snprintf(path, sizeof(path),
				 "/sys/kernel/slab/%s%s/failslab", pfx[i],
				 sizes[j]);
			if (fi_nmarked == FI_MAX_MARKED ||
			    fi_write_file(path, "1"))
				continue;
			strcpy(fi_marked[fi_nmarked++], path);
		}
	return fi_nmarked;
}

/*
 * open(2) whose only failing allocation is the module's own (its per-file
 * state, from a kmalloc cache; the VFS's come from names_cache and filp):
 * ENOMEM from eq_dev_open(), no module reference or role left behind.
 * (open_enomem_every_allocation fails it too, among the others.)
 */
TEST_F(fi, open_enomem_in_module)
{
	struct fi_op op = { .kind = FI_OPEN };
	struct elasticq_stats st0, st;
	bool injected;
	long refs, ret;

	NEED_FI();
	if (access("/sys/kernel/slab/kmalloc-64/failslab", W_OK))
		SKIP(return, "no /sys/kernel/slab/*/failslab");
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	refs = fi_module_refcnt();
	/* SLUB refuses to mark a cache that others were merged into. */
	if (!fi_mark_kmalloc_caches())
		SKIP(return, "no kmalloc cache can be marked for failslab "
		     "(merged caches need slub_nomerge; 6.1's attribute is "
		     "read-only)");
	ASSERT_EQ(0, fi_arm_window(self, 1));
	ASSERT_EQ(0, fi_set(&self->slab, "cache-filter", "Y"));
	ret = fi_call(_metadata, self, FI_MODE_WINDOW, 0, &op, &injected);
	EXPECT_EQ(1, fi_window_fired(self, 1));
	ASSERT_EQ(0, fi_arm_common(self));
	fi_unmark_caches();
	EXPECT_EQ(-ENOMEM, ret);
	EXPECT_EQ(refs, fi_module_refcnt());
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_TRUE(fi_stats_same(_metadata, &st0, &st));
	/* And open works again. */
	ret = eq_open(0);
	ASSERT_LE(0, ret);
	close(ret);
	fi_finish(_metadata, self);
}

/*
 * A push batch of the next FI_BATCH messages of the model with allocation
 * @nth failing: it must stop with -ENOMEM at some message (the ones before
 * it stay queued, in order) or go through.  Return the index of the
 * message it stopped at, FI_BATCH if none, or -1 if no fault was injected
 * (so @nth is past the batch's allocations).  The queue is emptied after.
 */
static int fi_push_batch_nth(struct __test_metadata *_metadata,
			     FIXTURE_DATA(fi) *self, unsigned int nth)
{
	struct fi_op op = { .kind = FI_PUSH_BATCH, .fd = self->fd,
			    .count = FI_BATCH };
	struct elasticq_stats st;
	size_t off, len;
	bool injected;
	unsigned int i;
	long ret;

	for (i = 0, off = 0; i < FI_BATCH; i++, off += len) {
		len = fi_len(m_next + i);
		eq_fill(fi_wbuf + off, len, FI_TAG, m_next + i);
		op.vec[i].addr = (uintptr_t)(fi_wbuf + off);
		op.vec[i].len = len;
	}
	ret = fi_call(_metadata, self, FI_MODE_NTH, nth, &op, &injected);
	if (ret < 0) {
		EXPECT_EQ(-ENOMEM, ret) {
			TH_LOG("allocation %u", nth);
		}
		EXPECT_EQ(-ENOMEM, fi_aux);
		ret = 0;
	} else {
		EXPECT_EQ(ret < FI_BATCH ? -ENOMEM : 0, fi_aux) {
			TH_LOG("allocation %u: %ld pushed", nth, ret);
		}
	}
	for (i = 0; i < ret; i++)
		fi_accepted(op.vec[i].len);
	EXPECT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(m_next - m_first, st.len) {
		TH_LOG("allocation %u: %ld pushed", nth, ret);
	}
	/* Read back and empty: the next batch finds room. */
	fi_check_all(_metadata, self->fd);
	if (!injected)
		return -1;
	return fi_aux ? ret : FI_BATCH;
}

/*
 * Every allocation of a push batch (its vector, each message, each growth
 * of the ring) fails once.  Which allocation is the nth also depends on
 * slab and per-CPU state (a new slab page, a vmap preload), so a plain
 * sweep of nth may step over a message; the messages it missed are then
 * looked for between the nth values that stopped at their neighbours.
 */
TEST_F_TIMEOUT(fi, push_batch_enomem_every_allocation, 900)
{
	unsigned int nth, last = 0, nomem = 0, i, lo, hi, round;
	unsigned int nth_at[FI_BATCH + 1] = { 0 };
	int at, missed = FI_BATCH;

	NEED_FI();
	ASSERT_EQ(0, fi_nth_slab_only(self));
	ASSERT_EQ(0, fi_push_n(self->fd, 3));
	for (nth = 1; nth < 2000; nth++) {
		at = fi_push_batch_nth(_metadata, self, nth);
		ASSERT_TRUE(_metadata->passed);
		if (at < 0)
			break;
		last = nth;
		if (at < FI_BATCH) {
			nomem++;
			missed -= !nth_at[at];
			if (!nth_at[at])
				nth_at[at] = nth;
		}
	}
	ASSERT_GT(2000, nth);
	TH_LOG("push batch: %u allocations, %u stopped by ENOMEM, %d "
	       "messages missed", last, nomem, missed);
	for (round = 0; round < 3 && missed; round++) {
		for (i = 0; i < FI_BATCH; i++) {
			if (nth_at[i])
				continue;
			lo = i && nth_at[i - 1] ? nth_at[i - 1] : 1;
			hi = i + 1 < FI_BATCH && nth_at[i + 1] ?
			     nth_at[i + 1] : last;
			for (nth = lo; nth <= hi && !nth_at[i]; nth++) {
				at = fi_push_batch_nth(_metadata, self, nth);
				ASSERT_TRUE(_metadata->passed);
				if (at >= 0 && at < FI_BATCH && !nth_at[at]) {
					nth_at[at] = nth;
					missed--;
				}
			}
		}
		TH_LOG("round %u: %d messages missed", round + 1, missed);
	}
	for (i = 0; i < FI_BATCH; i++)
		if (!nth_at[i])
			TH_LOG("message %u of the batch never failed", i);
	EXPECT_EQ(0, missed);
	fi_finish(_metadata, self);
}

/*
 * Every allocation of a pop batch (its array of taken messages, the
 * shrinks its commits attempt): the batch fails with ENOMEM having taken
 * nothing, or delivers its messages (a failed shrink is postponed).
 */
TEST_F_TIMEOUT(fi, pop_batch_enomem_every_allocation, 600)
{
	struct fi_op op = { .kind = FI_POP_BATCH, .fd = self->fd,
			    .count = FI_BATCH, .len = sizeof(fi_rbuf) };
	unsigned int nth, nomem = 0, i;
	struct elasticq_stats st0, st;
	bool injected = true;
	uint64_t pos;
	uint32_t len;
	long ret;

	NEED_FI();
	/* The role the first batch would claim (and change the stats). */
	ASSERT_EQ(0, ioctl(self->fd, ELASTICQ_IOC_CONSUME, 0));
	for (nth = 1; nth < 2000 && injected; nth++) {
		/* Enough to grow the ring, so the batch shrinks it back. */
		ASSERT_EQ(0, fi_push_n(self->fd, FI_BATCH + 2 -
				       (m_next - m_first)));
		ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
		ret = fi_call(_metadata, self, FI_MODE_NTH, nth, &op, &injected);
		ASSERT_EQ(0, eq_get_stats(self->fd, &st));
		if (ret < 0) {
			ASSERT_EQ(-ENOMEM, ret) {
				TH_LOG("allocation %u", nth);
			}
			ASSERT_TRUE(fi_stats_same(_metadata, &st0, &st));
			nomem++;
			continue;
		}
		ASSERT_EQ(FI_BATCH, ret);
		for (i = 0, pos = 0; i < ret; i++) {
			const void *p = eq_next_frame(fi_rbuf, fi_aux, &pos,
						      &len);

			ASSERT_NE(NULL, p);
			ASSERT_TRUE(fi_popped(p, len)) {
				TH_LOG("allocation %u: frame %u", nth, i);
			}
		}
		ASSERT_EQ(pos, (uint64_t)fi_aux);
		ASSERT_EQ(2, st.len);
	}
	ASSERT_FALSE(injected);
	TH_LOG("pop batch: %u allocations, %u gave ENOMEM", nth - 2, nomem);
	EXPECT_LE(1, nomem);
	fi_finish(_metadata, self);
}

/*
 * Every allocation of ATTACH creating a named queue: ENOMEM leaves no
 * queue (and no name) behind; the default queue is untouched.
 */
TEST_F_TIMEOUT(fi, create_enomem_every_allocation, 600)
{
	struct fi_op op = { .kind = FI_CREATE };
	struct elasticq_stats st0, st;
	unsigned int nth, nomem = 0;
	bool injected = true;
	long ret;
	int fd;

	NEED_FI();
	eq_destroy(FI_QNAME);
	ASSERT_EQ(0, fi_push_n(self->fd, 3));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	op.cfg = self->cfg;
	op.cfg.size = sizeof(op.cfg);
	op.cfg.initial_capacity = 16384;	/* a vmalloc-sized ring */
	op.cfg.max_capacity = 16384;
	for (nth = 1; nth < 2000 && injected; nth++) {
		ret = fi_call(_metadata, self, FI_MODE_NTH, nth, &op, &injected);
		fd = eq_open_named(FI_QNAME, O_RDWR, 0, 0, NULL);
		if (ret) {
			ASSERT_EQ(-ENOMEM, ret) {
				TH_LOG("allocation %u", nth);
			}
			ASSERT_EQ(-ENOENT, fd) {
				TH_LOG("allocation %u left a queue", nth);
			}
			nomem++;
			continue;
		}
		ASSERT_LE(0, fd);
		close(fd);
		ASSERT_EQ(0, eq_destroy(FI_QNAME));
	}
	ASSERT_FALSE(injected);
	TH_LOG("create: %u allocations, %u gave ENOMEM", nth - 2, nomem);
	EXPECT_LE(1, nomem);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_TRUE(fi_stats_same(_metadata, &st0, &st));
	fi_finish(_metadata, self);
}

TEST_HARNESS_MAIN
