// SPDX-License-Identifier: MIT
/*
 * Batches: the PUSH_BATCH and POP_BATCH ioctls (issue 4), on the default
 * queue.
 *
 * PUSH_BATCH: argument checks (count, every bad struct field, bad msgs
 * pointer), messages of all sizes enqueued in order, a bad entry stopping
 * the batch at its index, file modes; a full queue (at max_capacity or at
 * max_bytes) under each policy: non-blocking, timeouts, a blocked batch
 * completed by a consumer, signals, reject and drop-oldest counters.
 * POP_BATCH: the exact frame layout, max_msgs and buffer space limits,
 * EMSGSIZE, argument checks, an empty queue (non-blocking, timeouts,
 * wake-up, signals), a buffer that faults at once or part-way (the rest
 * stays queued), file modes and roles, and a consumer SIGKILLed while its
 * batch copy is stalled on userfaultfd.  Last, 4 batch producers and a batch
 * consumer: every message exactly once, per-producer FIFO.
 */
#include <pthread.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>

#include "eq_test.h"

#define T		0x42		/* tag of the test messages */
#define PG		4096UL
#define POOL_SIZE	(4UL << 20)
#define NO_TIMEOUT	0

static uint8_t pool[POOL_SIZE];			/* payloads to push */
static struct elasticq_msg_vec vec[ELASTICQ_BATCH_MAX + 1];
static uint8_t buf[ELASTICQ_MSG_SIZE_LIMIT + PG] __attribute__((aligned(PG)));

/*
 * Point vec[0..@n-1] at the messages T/@first.. (eq_fill payloads) in pool,
 * message i being @lens[i % @nlens] bytes.
 */
static struct elasticq_msg_vec *make_msgs(uint32_t first, unsigned int n,
					  const size_t *lens, unsigned int nlens)
{
	size_t off = 0, len;
	unsigned int i;

	for (i = 0; i < n; i++) {
		len = lens[i % nlens];
		if (off + len > POOL_SIZE)
			abort();
		eq_fill(pool + off, len, T, first + i);
		vec[i].addr = (uintptr_t)(pool + off);
		vec[i].len = len;
		off += len;
	}
	return vec;
}

static struct elasticq_msg_vec *make_same(uint32_t first, unsigned int n,
					  size_t len)
{
	return make_msgs(first, n, &len, 1);
}

/* PUSH_BATCH of T/@first..@first+@n-1, @len bytes each. */
static long push_same(int fd, uint32_t first, unsigned int n, size_t len,
		      unsigned int flags, uint64_t timeout_ns, int *error)
{
	return eq_push_batch(fd, make_same(first, n, len), n, flags,
			     timeout_ns, error);
}

/* write(2) T/@first.. one by one, message i @lens[i % @nlens] bytes. */
static void write_msgs(struct __test_metadata *_metadata, int fd,
		       uint32_t first, unsigned int n, const size_t *lens,
		       unsigned int nlens)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		size_t len = lens[i % nlens];

		eq_fill(pool, len, T, first + i);
		ASSERT_EQ(len, eq_push(fd, pool, len));
	}
}

/*
 * Check the frames in @b[0..@bytes): T/@first.., message i @lens[i % @nlens]
 * bytes, each with flags 0, its payload and zero padding, the last one
 * ending exactly at @bytes.  Return how many, or -1 - the index of the
 * first bad one.  No EXPECT here: children use it too.
 */
static long check_frames(const uint8_t *b, uint64_t bytes, uint32_t first,
			 const size_t *lens, unsigned int nlens)
{
	uint64_t pos = 0, end, k;
	long i;

	for (i = 0; pos < bytes; i++) {
		const struct elasticq_frame *f = (const void *)(b + pos);

		if (bytes - pos < sizeof(*f))
			return -1 - i;
		end = pos + ELASTICQ_FRAME_SIZE(f->len);
		if (f->len != lens[i % nlens] || f->flags || end > bytes ||
		    !eq_check_fill(f + 1, f->len, T, first + i))
			return -1 - i;
		for (k = pos + sizeof(*f) + f->len; k < end; k++)
			if (b[k])
				return -1 - i;
		pos = end;
	}
	return i;
}

/*
 * Read the queue empty with read(2) through a file of its own (or @fd if
 * that is the lock-free queue's consumer, see eq_reader()): it must hold
 * @n messages T/@first.., message i @lens[i % @nlens] bytes, and nothing
 * else.
 */
static void expect_msgs(struct __test_metadata *_metadata, int fd,
			uint32_t first, unsigned int n, const size_t *lens,
			unsigned int nlens)
{
	static uint8_t got[ELASTICQ_MSG_SIZE_LIMIT];
	unsigned int i;
	bool own;
	int nb;

	nb = eq_reader(fd, &own);
	ASSERT_LE(0, nb);
	for (i = 0; i < n; i++) {
		size_t len = lens[i % nlens];

		ASSERT_EQ(len, eq_pop_nb(nb, got, sizeof(got))) {
			TH_LOG("message %u of %u (T/%u)", i, n, first + i);
		}
		EXPECT_TRUE(eq_check_fill(got, len, T, first + i)) {
			TH_LOG("message %u of %u: not T/%u", i, n, first + i);
		}
	}
	EXPECT_EQ(-EAGAIN, eq_pop_nb(nb, got, sizeof(got)));
	if (own)
		close(nb);
}

static void expect_queue(struct __test_metadata *_metadata, int fd,
			 uint32_t first, unsigned int n, size_t len)
{
	expect_msgs(_metadata, fd, first, n, &len, 1);
}

/* What the stats must say relative to a snapshot: counters are deltas. */
struct delta {
	uint64_t len;		/* queued now (absolute) */
	uint64_t size;		/* if non-zero: bytes == len * size */
	uint64_t enq, deq, rej, drop;
};

static void expect_stats(struct __test_metadata *_metadata, int fd,
			 const struct elasticq_stats *st0, struct delta d)
{
	struct elasticq_stats st;

	ASSERT_EQ(0, eq_get_stats(fd, &st));
	EXPECT_EQ(d.len, st.len);
	if (d.size)
		EXPECT_EQ(d.len * d.size, st.bytes);
	EXPECT_EQ(st0->enqueued + d.enq, st.enqueued);
	EXPECT_EQ(st0->dequeued + d.deq, st.dequeued);
	EXPECT_EQ(st0->rejected + d.rej, st.rejected);
	EXPECT_EQ(st0->dropped + d.drop, st.dropped);
}

/* A failed call left the queue alone. */
static void expect_unchanged(struct __test_metadata *_metadata, int fd,
			     const struct elasticq_stats *st0)
{
	struct elasticq_stats st;

	expect_stats(_metadata, fd, st0, (struct delta){ .len = st0->len });
	ASSERT_EQ(0, eq_get_stats(fd, &st));
	EXPECT_EQ(st0->bytes, st.bytes);
}

static long ioctl_err(int fd, unsigned long cmd, void *arg)
{
	long r = ioctl(fd, cmd, arg);

	return r < 0 ? -errno : r;
}

/* @pages read-write pages followed by a PROT_NONE guard page. */
static uint8_t *guarded_map(size_t pages)
{
	uint8_t *p = mmap(NULL, (pages + 1) * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + pages * PG, PG, PROT_NONE)) {
		munmap(p, (pages + 1) * PG);
		return NULL;
	}
	return p;
}

/* An address with nothing mapped there (the test is single-threaded). */
static void *unmapped_page(void)
{
	void *p = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED || munmap(p, PG))
		return NULL;
	return p;
}

static void set_policy(struct __test_metadata *_metadata, int fd,
		       uint32_t policy, uint64_t push_timeout_ns)
{
	struct elasticq_config cfg;

	ASSERT_EQ(0, eq_get_config(fd, &cfg));
	cfg.full_policy = policy;
	cfg.push_timeout_ns = push_timeout_ns;
	ASSERT_EQ(0, eq_set_config(fd, &cfg));
	ASSERT_EQ(0, eq_get_config(fd, &cfg));
	ASSERT_EQ(policy, cfg.full_policy);
}

static void set_pop_timeout(struct __test_metadata *_metadata, int fd,
			    uint64_t ns)
{
	struct elasticq_config cfg;

	ASSERT_EQ(0, eq_get_config(fd, &cfg));
	cfg.pop_timeout_ns = ns;
	ASSERT_EQ(0, eq_set_config(fd, &cfg));
}

/*
 * One struct field set to a bad value: the ioctl must fail with EINVAL.
 * @val is stored in @width bytes at @off.
 */
struct bad_field {
	const char *what;
	size_t off, width;
	uint64_t val;
};

#define FIELD(type, f)	offsetof(type, f), sizeof(((type *)0)->f)

/*
 * ioctl @cmd with copies of @good (@size bytes), each with one field
 * spoiled: every one must fail with EINVAL and leave the queue alone.
 */
static void expect_bad_fields(struct __test_metadata *_metadata, int fd,
			      unsigned long cmd, const void *good, size_t size,
			      const struct bad_field *bad, unsigned int n)
{
	struct elasticq_stats st0;
	uint8_t copy[256];
	unsigned int i;

	ASSERT_GE(sizeof(copy), size);
	ASSERT_EQ(0, eq_get_stats(fd, &st0));
	for (i = 0; i < n; i++) {
		uint32_t v32 = bad[i].val;

		memcpy(copy, good, size);
		memcpy(copy + bad[i].off, bad[i].width == 4 ?
		       (const void *)&v32 : (const void *)&bad[i].val,
		       bad[i].width);
		EXPECT_EQ(-EINVAL, ioctl_err(fd, cmd, copy)) {
			TH_LOG("%s", bad[i].what);
		}
	}
	expect_unchanged(_metadata, fd, &st0);
}

/* What a child does, reported in its eq_child_report. */
enum job_op { JOB_PUSH, JOB_DRAIN };

struct job {
	enum job_op op;
	int fd;
	uint32_t first;		/* messages T/@first.. */
	unsigned int n;		/* PUSH: batch size; DRAIN: messages to get */
	size_t len;		/* bytes per message */
	unsigned int flags;	/* batch flags, and their timeout */
	uint64_t timeout_ns;
	int sa_flags;		/* SIGUSR1 handler with these flags, or -1 */
};

static struct eq_child_report *child_rep;

static void on_usr1(int sig)
{
	(void)sig;
	child_rep->handled++;
}

/*
 * POP_BATCH until @j->n messages came or a call failed, checking they are
 * T/@j->first.. in order.  ret: what the first call returned (elapsed_ns:
 * its duration); ret2: messages received intact and in order.
 */
static void drain(const struct job *j, struct eq_child_report *rep)
{
	static uint8_t b[64 * 1024] __attribute__((aligned(8)));
	uint64_t t0 = eq_now_ns(), bytes;
	unsigned int got = 0;
	long r;

	while (got < j->n) {
		r = eq_pop_batch(j->fd, b, sizeof(b), ELASTICQ_BATCH_MAX,
				 j->flags, j->timeout_ns, &bytes);
		if (!got) {
			rep->elapsed_ns = eq_now_ns() - t0;
			rep->ret = r;
		}
		if (r <= 0 || check_frames(b, bytes, j->first + got,
					   &j->len, 1) != r)
			break;
		got += r;
		rep->ret2 = got;
	}
}

/* Fork a child that runs @j and reports in @rep; -errno if fork failed. */
static pid_t spawn(struct eq_child_report *rep, const struct job *j)
{
	uint64_t t0;
	pid_t pid;
	int err;

	memset((void *)rep, 0, sizeof(*rep));
	pid = fork();
	if (pid)
		return pid < 0 ? -errno : pid;

	child_rep = rep;
	if (j->sa_flags >= 0) {
		struct sigaction sa = {
			.sa_handler = on_usr1,
			.sa_flags = j->sa_flags,
		};

		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGUSR1, &sa, NULL))
			_exit(2);
	}
	if (j->op == JOB_PUSH) {
		t0 = eq_now_ns();
		rep->ret = push_same(j->fd, j->first, j->n, j->len, j->flags,
				     j->timeout_ns, &err);
		rep->elapsed_ns = eq_now_ns() - t0;
		rep->ret2 = err;
	} else {
		drain(j, rep);
	}
	rep->done = 1;
	_exit(0);
}

/* spawn() into the fixture's child slot @slot (killed by teardown). */
static pid_t start(struct __test_metadata *_metadata, pid_t *slot,
		   struct eq_child_report *rep, const struct job *j)
{
	pid_t pid = spawn(rep, j);

	ASSERT_LT(0, pid);
	*slot = pid;
	return pid;
}

/* Wait for the child in @slot to exit(0). */
static void finish(struct __test_metadata *_metadata, pid_t *slot)
{
	int status = eq_wait_exit(*slot);

	*slot = 0;
	ASSERT_EQ(0, status);
}

static void wait_blocked(struct __test_metadata *_metadata, pid_t pid)
{
	char last[160] = "";

	ASSERT_EQ(0, eq_wait_blocked_in(pid, "eq_", last, sizeof(last))) {
		TH_LOG("child not asleep in the queue: %s", last);
	}
}

/* ------------------------------------------------------------------ */
/* PUSH_BATCH                                                         */
/* ------------------------------------------------------------------ */

TEST_F(eq, push_batch_count_zero)
{
	struct elasticq_stats st0;
	int err;

	write_msgs(_metadata, self->fd, 0, 1, (const size_t[]){ 10 }, 1);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(0, eq_push_batch(self->fd, make_same(1, 1, 10), 0, 0,
				   NO_TIMEOUT, &err));
	EXPECT_EQ(0, err);
	/* With nothing to read, the msgs pointer is not read either. */
	EXPECT_EQ(0, eq_push_batch(self->fd, NULL, 0, 0, NO_TIMEOUT, &err));
	EXPECT_EQ(0, err);
	expect_unchanged(_metadata, self->fd, &st0);
	expect_queue(_metadata, self->fd, 0, 1, 10);
}

/* Every size from 0 to max_msg_size, in order; read back with read(2). */
TEST_F(eq, push_batch_mixed_sizes_read)
{
	size_t lens[] = { 0, 1, 7, 8, 9, 0 };
	struct elasticq_config cfg;
	struct elasticq_stats st0, st;
	int err;

	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	lens[5] = cfg.max_msg_size;
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(6, eq_push_batch(self->fd, make_msgs(0, 6, lens, 6), 6, 0,
				   NO_TIMEOUT, &err));
	EXPECT_EQ(0, err);
	expect_stats(_metadata, self->fd, &st0,
		     (struct delta){ .len = 6, .enq = 6 });
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(25 + cfg.max_msg_size, st.bytes);
	expect_msgs(_metadata, self->fd, 0, 6, lens, 6);
}

/* The same, read back with POP_BATCH. */
TEST_F(eq, push_batch_mixed_sizes_pop_batch)
{
	size_t lens[] = { 0, 1, 7, 8, 9, 0 };
	struct elasticq_config cfg;
	struct elasticq_stats st0;
	uint64_t bytes;
	int err;

	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	lens[5] = cfg.max_msg_size;
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(6, eq_push_batch(self->fd, make_msgs(0, 6, lens, 6), 6, 0,
				   NO_TIMEOUT, &err));
	EXPECT_EQ(0, err);
	ASSERT_EQ(6, eq_pop_batch(self->fd, buf, sizeof(buf), 64,
				  ELASTICQ_BATCH_NONBLOCK, NO_TIMEOUT, &bytes));
	EXPECT_EQ(6, check_frames(buf, bytes, 0, lens, 6));
	expect_stats(_metadata, self->fd, &st0,
		     (struct delta){ .len = 0, .enq = 6, .deq = 6 });
}

TEST_F(eq, push_batch_count_limit)
{
	struct elasticq_stats st0;
	int err;

	write_msgs(_metadata, self->fd, 0, 1, (const size_t[]){ 8 }, 1);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(-EINVAL, push_same(self->fd, 100, ELASTICQ_BATCH_MAX + 1, 8,
				     0, NO_TIMEOUT, &err));
	EXPECT_EQ(-EINVAL, eq_push_batch(self->fd, vec, UINT32_MAX, 0,
					 NO_TIMEOUT, &err));
	EXPECT_EQ(-EINVAL, eq_push_batch(self->fd, vec, 1U << 28, 0,
					 NO_TIMEOUT, &err));
	expect_unchanged(_metadata, self->fd, &st0);

	/* Exactly the limit is fine. */
	EXPECT_EQ(ELASTICQ_BATCH_MAX, push_same(self->fd, 1, ELASTICQ_BATCH_MAX,
						8, 0, NO_TIMEOUT, &err));
	EXPECT_EQ(0, err);
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = ELASTICQ_BATCH_MAX + 1, .size = 8,
		.enq = ELASTICQ_BATCH_MAX });
	expect_queue(_metadata, self->fd, 0, ELASTICQ_BATCH_MAX + 1, 8);
}

static const struct bad_field push_bad[] = {
#define PB struct elasticq_push_batch
	{ "size field smaller", FIELD(PB, size), sizeof(PB) - 8 },
	{ "size field larger", FIELD(PB, size), sizeof(PB) + 8 },
	{ "size field 0", FIELD(PB, size), 0 },
	{ "flag 0x4", FIELD(PB, flags), 0x4 },
	{ "flag 0x80000000", FIELD(PB, flags), 0x80000000 },
	{ "NONBLOCK|0x100", FIELD(PB, flags), ELASTICQ_BATCH_NONBLOCK | 0x100 },
	{ "reserved[0]", FIELD(PB, reserved[0]), 1 },
	{ "reserved[1]", FIELD(PB, reserved[1]), 1ULL << 63 },
	{ "timeout_ns without TIMEOUT", FIELD(PB, timeout_ns), 1 },
	{ "large timeout_ns without TIMEOUT", FIELD(PB, timeout_ns),
	  1ULL << 40 },
#undef PB
};

static void push_args(struct elasticq_push_batch *b,
		      const struct elasticq_msg_vec *v, unsigned int n)
{
	memset(b, 0, sizeof(*b));
	b->size = sizeof(*b);
	b->msgs = (uintptr_t)v;
	b->count = n;
}

TEST_F(eq, push_batch_bad_fields)
{
	struct elasticq_push_batch b;
	struct elasticq_stats st0;
	unsigned long small_cmd;

	push_args(&b, make_same(0, 3, 10), 3);
	expect_bad_fields(_metadata, self->fd, ELASTICQ_IOC_PUSH_BATCH, &b,
			  sizeof(b), push_bad,
			  sizeof(push_bad) / sizeof(push_bad[0]));

	/* A struct smaller than the first published one, size agreeing. */
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	b.size = ELASTICQ_PUSH_BATCH_SIZE_VER0 - 8;
	small_cmd = _IOC(_IOC_READ | _IOC_WRITE, ELASTICQ_IOC_MAGIC,
			 _IOC_NR(ELASTICQ_IOC_PUSH_BATCH), b.size);
	EXPECT_EQ(-EINVAL, ioctl_err(self->fd, small_cmd, &b));
	expect_unchanged(_metadata, self->fd, &st0);

	/* The good one works, whatever the output field held. */
	b.size = sizeof(b);
	b.error = -12345;
	EXPECT_EQ(3, ioctl_err(self->fd, ELASTICQ_IOC_PUSH_BATCH, &b));
	EXPECT_EQ(0, b.error);
	expect_queue(_metadata, self->fd, 0, 3, 10);
}

/* A newer, larger struct: a zero tail is fine, a non-zero one E2BIG. */
TEST_F(eq, push_batch_larger_struct)
{
	struct {
		struct elasticq_push_batch b;
		uint64_t tail;
	} big;
	const unsigned long cmd = _IOWR(ELASTICQ_IOC_MAGIC,
					_IOC_NR(ELASTICQ_IOC_PUSH_BATCH),
					typeof(big));
	struct elasticq_stats st0;

	memset(&big, 0, sizeof(big));
	push_args(&big.b, make_same(0, 2, 10), 2);
	big.b.size = sizeof(big);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	big.tail = 1;
	EXPECT_EQ(-E2BIG, ioctl_err(self->fd, cmd, &big));
	expect_unchanged(_metadata, self->fd, &st0);
	big.tail = 0;
	EXPECT_EQ(2, ioctl_err(self->fd, cmd, &big));
	EXPECT_EQ(0, big.b.error);
	expect_queue(_metadata, self->fd, 0, 2, 10);
}

/* A bad msgs array: EFAULT before anything is enqueued. */
TEST_F(eq, push_batch_msgs_fault)
{
	struct elasticq_msg_vec *v;
	struct elasticq_stats st0;
	uint8_t *g = guarded_map(1);
	void *hole = unmapped_page();

	ASSERT_NE(NULL, g);
	ASSERT_NE(NULL, hole);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(-EFAULT, eq_push_batch(self->fd, hole, 3, 0, NO_TIMEOUT,
					 NULL));
	EXPECT_EQ(-EFAULT, eq_push_batch(self->fd, NULL, 3, 0, NO_TIMEOUT,
					 NULL));
	EXPECT_EQ(-EFAULT, eq_push_batch(self->fd, (void *)(g + PG), 3, 0,
					 NO_TIMEOUT, NULL));
	/* Entries 0 and 1 readable, entry 2 in the guard page. */
	v = (void *)(g + PG - 2 * sizeof(*v));
	memcpy(v, make_same(0, 2, 10), 2 * sizeof(*v));
	EXPECT_EQ(-EFAULT, eq_push_batch(self->fd, v, 3, 0, NO_TIMEOUT, NULL));
	expect_unchanged(_metadata, self->fd, &st0);
	/* Those two alone are fine. */
	EXPECT_EQ(2, eq_push_batch(self->fd, v, 2, 0, NO_TIMEOUT, NULL));
	expect_queue(_metadata, self->fd, 0, 2, 10);
	munmap(g, 2 * PG);
}

/* The same with the array's fault far into a long batch. */
TEST_F(eq, push_batch_msgs_fault_late)
{
	const unsigned int ok = 40, n = 48;
	struct elasticq_msg_vec *v;
	struct elasticq_stats st0;
	uint8_t *g = guarded_map(1);

	ASSERT_NE(NULL, g);
	/* Entries 0..39 readable, 40..47 in the guard page. */
	v = (void *)(g + PG - ok * sizeof(*v));
	memcpy(v, make_same(0, ok, 10), ok * sizeof(*v));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(-EFAULT, eq_push_batch(self->fd, v, n, 0, NO_TIMEOUT, NULL));
	expect_unchanged(_metadata, self->fd, &st0);
	/* Those 40 alone are fine (teardown drains them). */
	EXPECT_EQ(ok, eq_push_batch(self->fd, v, ok, 0, NO_TIMEOUT, NULL));
	munmap(g, 2 * PG);
}

/*
 * A bad entry in a batch of 6 stops it there: the entries before it are
 * queued, it and the ones after are not.
 */
enum bad_kind { BAD_MSGSIZE, BAD_LEN_WRAP, BAD_UNMAPPED, BAD_NULL,
		BAD_STRADDLE };

FIXTURE(bad_entry) {
	EQ_FIXTURE_FIELDS;
	uint8_t *guard;		/* a page, then a PROT_NONE page */
};

FIXTURE_VARIANT(bad_entry) {
	enum bad_kind kind;
	unsigned int index;
	int err;
};

FIXTURE_VARIANT_ADD(bad_entry, too_big_first) {
	.kind = BAD_MSGSIZE, .index = 0, .err = EMSGSIZE,
};

FIXTURE_VARIANT_ADD(bad_entry, too_big_middle) {
	.kind = BAD_MSGSIZE, .index = 3, .err = EMSGSIZE,
};

/* A 64-bit length that a u32 truncation would make small. */
FIXTURE_VARIANT_ADD(bad_entry, len_above_4g_middle) {
	.kind = BAD_LEN_WRAP, .index = 3, .err = EMSGSIZE,
};

FIXTURE_VARIANT_ADD(bad_entry, unmapped_first) {
	.kind = BAD_UNMAPPED, .index = 0, .err = EFAULT,
};

FIXTURE_VARIANT_ADD(bad_entry, unmapped_middle) {
	.kind = BAD_UNMAPPED, .index = 3, .err = EFAULT,
};

FIXTURE_VARIANT_ADD(bad_entry, null_last) {
	.kind = BAD_NULL, .index = 5, .err = EFAULT,
};

FIXTURE_VARIANT_ADD(bad_entry, straddles_guard_first) {
	.kind = BAD_STRADDLE, .index = 0, .err = EFAULT,
};

FIXTURE_VARIANT_ADD(bad_entry, straddles_guard_middle) {
	.kind = BAD_STRADDLE, .index = 3, .err = EFAULT,
};

FIXTURE_SETUP(bad_entry)
{
	EQ_FIXTURE_SETUP_BODY;
	self->guard = guarded_map(1);
	ASSERT_NE(NULL, self->guard);
}

FIXTURE_TEARDOWN(bad_entry)
{
	if (self->guard)
		munmap(self->guard, 2 * PG);
	EQ_FIXTURE_TEARDOWN_BODY;
}

#define BAD_N		6
#define BAD_LEN		100

TEST_F(bad_entry, push_batch_stops_there)
{
	const unsigned int i = variant->index;
	struct elasticq_msg_vec *v;
	struct elasticq_config cfg;
	struct elasticq_stats st0;
	int err;

	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	v = make_same(0, BAD_N, BAD_LEN);
	switch (variant->kind) {
	case BAD_MSGSIZE:	/* the pool has the bytes, the config says no */
		v[i].len = cfg.max_msg_size + 1;
		break;
	case BAD_LEN_WRAP:
		v[i].len = (1ULL << 32) + BAD_LEN;
		break;
	case BAD_UNMAPPED:
		v[i].addr = (uintptr_t)unmapped_page();
		ASSERT_NE(0, v[i].addr);
		break;
	case BAD_NULL:
		v[i].addr = 0;
		break;
	case BAD_STRADDLE:	/* 50 bytes readable, 50 in the guard page */
		v[i].addr = (uintptr_t)(self->guard + PG - BAD_LEN / 2);
		break;
	}
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(i ? (long)i : -variant->err,
		  eq_push_batch(self->fd, v, BAD_N, 0, NO_TIMEOUT, &err));
	EXPECT_EQ(-variant->err, err);
	expect_stats(_metadata, self->fd, &st0,
		     (struct delta){ .len = i, .size = BAD_LEN, .enq = i });
	expect_queue(_metadata, self->fd, 0, i, BAD_LEN);
}

TEST_F(eq, push_batch_file_modes)
{
	struct elasticq_stats st0;
	int wo, ro, err;

	wo = open(EQ_DEV, O_WRONLY | O_CLOEXEC);
	ro = open(EQ_DEV, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, wo);
	ASSERT_LE(0, ro);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(-EBADF, push_same(ro, 100, 3, 10, 0, NO_TIMEOUT, NULL));
	EXPECT_EQ(-EBADF, push_same(ro, 100, 3, 10, ELASTICQ_BATCH_NONBLOCK,
				    NO_TIMEOUT, NULL));
	expect_unchanged(_metadata, self->fd, &st0);
	EXPECT_EQ(3, push_same(wo, 0, 3, 10, 0, NO_TIMEOUT, &err));
	EXPECT_EQ(0, err);
	close(wo);
	close(ro);
	expect_queue(_metadata, self->fd, 0, 3, 10);
}

TEST_F(eq, push_batch_claims_producer)
{
	struct elasticq_stats st0, st;
	int f;

	f = eq_open(0);
	ASSERT_LE(0, f);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(2, push_same(f, 0, 2, 10, 0, NO_TIMEOUT, NULL));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.producers + 1, st.producers);
	EXPECT_EQ(st0.consumers, st.consumers);
	ASSERT_EQ(2, push_same(f, 2, 2, 10, 0, NO_TIMEOUT, NULL));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.producers + 1, st.producers);
	close(f);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.producers, st.producers);
	expect_queue(_metadata, self->fd, 0, 4, 10);
}

/* ------------------------------------------------------------------ */
/* PUSH_BATCH into a full queue, and the full policies                */
/* ------------------------------------------------------------------ */

/*
 * A queue that holds FULL_N messages, at max_capacity or at max_bytes;
 * setup queues PRE of them (T/0..PRE-1, written one by one).  A batch of
 * BATCH then fits ROOM messages.
 */
#define FULL_N		8
#define PRE		5
#define ROOM		(FULL_N - PRE)
#define BATCH		6

FIXTURE(full) {
	EQ_FIXTURE_FIELDS;
};

FIXTURE_VARIANT(full) {
	uint32_t max_capacity;	/* 0: the default */
	uint64_t max_bytes;	/* 0: the default */
	size_t len;		/* of every message */
};

FIXTURE_VARIANT_ADD(full, capacity) {
	.max_capacity = FULL_N, .len = 10,
};

FIXTURE_VARIANT_ADD(full, bytes) {
	.max_bytes = FULL_N * 100, .len = 100,
};

FIXTURE_SETUP(full)
{
	struct elasticq_config cfg;

	EQ_FIXTURE_SETUP_BODY;
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	if (variant->max_capacity) {
		cfg.min_capacity = 1;
		cfg.initial_capacity = variant->max_capacity;
		cfg.max_capacity = variant->max_capacity;
	}
	if (variant->max_bytes)
		cfg.max_bytes = variant->max_bytes;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_push_n(self->fd, T, 0, PRE, variant->len));
}

FIXTURE_TEARDOWN(full)
{
	EQ_FIXTURE_TEARDOWN_BODY;
}

/* Fill the queue up: T/PRE..FULL_N-1. */
static void fill_up(struct __test_metadata *_metadata, int fd, size_t len)
{
	ASSERT_EQ(0, eq_push_n(fd, T, PRE, ROOM, len));
}

TEST_F(full, push_batch_nonblock_flag)
{
	const size_t len = variant->len;
	struct elasticq_stats st0;
	int err;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(ROOM, push_same(self->fd, PRE, BATCH, len,
				  ELASTICQ_BATCH_NONBLOCK, NO_TIMEOUT, &err));
	EXPECT_EQ(-EAGAIN, err);
	/* Full at the first message: the ioctl fails. */
	EXPECT_EQ(-EAGAIN, push_same(self->fd, 100, BATCH, len,
				     ELASTICQ_BATCH_NONBLOCK, NO_TIMEOUT, &err));
	EXPECT_EQ(-EAGAIN, err);
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = FULL_N, .size = len, .enq = ROOM, .rej = 2 });
	expect_queue(_metadata, self->fd, 0, FULL_N, len);
}

TEST_F(full, push_batch_o_nonblock)
{
	const size_t len = variant->len;
	struct elasticq_stats st0;
	int nb, fl, err;

	nb = eq_open(O_NONBLOCK);
	ASSERT_LE(0, nb);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(ROOM, push_same(nb, PRE, BATCH, len, 0, NO_TIMEOUT, &err));
	EXPECT_EQ(-EAGAIN, err);
	EXPECT_EQ(-EAGAIN, push_same(nb, 100, BATCH, len, 0, NO_TIMEOUT, &err));
	EXPECT_EQ(-EAGAIN, err);
	close(nb);
	/* O_NONBLOCK set later with fcntl counts too. */
	fl = fcntl(self->fd, F_GETFL);
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, fl | O_NONBLOCK));
	EXPECT_EQ(-EAGAIN, push_same(self->fd, 100, BATCH, len, 0, NO_TIMEOUT,
				     &err));
	EXPECT_EQ(-EAGAIN, err);
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, fl));
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = FULL_N, .size = len, .enq = ROOM, .rej = 3 });
	expect_queue(_metadata, self->fd, 0, FULL_N, len);
}

/* Push @n from T/@first with the TIMEOUT flag: check result and duration. */
static void push_timed(struct __test_metadata *_metadata, int fd,
		       uint32_t first, unsigned int n, size_t len,
		       unsigned int flags, uint64_t timeout_ns, long want,
		       uint64_t min_ns, uint64_t max_ns)
{
	uint64_t t0, c0, el, elc;
	int err;

	t0 = eq_now_ns();
	c0 = eq_now_coarse_ns();
	EXPECT_EQ(want, push_same(fd, first, n, len, flags, timeout_ns, &err));
	el = eq_now_ns() - t0;
	elc = eq_now_coarse_ns() - c0;
	EXPECT_EQ(-ETIMEDOUT, err);
	EXPECT_LE(min_ns, elc) {
		TH_LOG("returned after %llu ns (%llu ns of ticks)",
		       (unsigned long long)el, (unsigned long long)elc);
	}
	EXPECT_GT(max_ns, el) {
		TH_LOG("returned after %llu ns", (unsigned long long)el);
	}
}

TEST_F(full, push_batch_timeout_flag)
{
	const size_t len = variant->len;
	struct elasticq_stats st0;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	/* 3 fit, then it waits 50 ms for room for the 4th. */
	push_timed(_metadata, self->fd, PRE, BATCH, len, ELASTICQ_BATCH_TIMEOUT,
		   50 * EQ_MS, ROOM, 50 * EQ_MS, 5050 * EQ_MS);
	/* 0: ETIMEDOUT at once. */
	push_timed(_metadata, self->fd, 100, BATCH, len, ELASTICQ_BATCH_TIMEOUT,
		   0, -ETIMEDOUT, 0, 2000 * EQ_MS);
	push_timed(_metadata, self->fd, 100, BATCH, len, ELASTICQ_BATCH_TIMEOUT,
		   13300000, -ETIMEDOUT, 13300000, 5000 * EQ_MS);
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = FULL_N, .size = len, .enq = ROOM, .rej = 3 });
	expect_queue(_metadata, self->fd, 0, FULL_N, len);
}

TEST_F(full, push_batch_queue_timeout)
{
	const size_t len = variant->len;
	struct elasticq_stats st0;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	/* Without the flag the queue's push timeout applies... */
	set_policy(_metadata, self->fd, ELASTICQ_FULL_BLOCK, 30 * EQ_MS);
	push_timed(_metadata, self->fd, PRE, BATCH, len, 0, NO_TIMEOUT, ROOM,
		   30 * EQ_MS, 5030 * EQ_MS);
	/* ...with it, the call's own replaces it. */
	set_policy(_metadata, self->fd, ELASTICQ_FULL_BLOCK, 30000 * EQ_MS);
	push_timed(_metadata, self->fd, 100, BATCH, len, ELASTICQ_BATCH_TIMEOUT,
		   20 * EQ_MS, -ETIMEDOUT, 20 * EQ_MS, 10000 * EQ_MS);
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = FULL_N, .size = len, .enq = ROOM, .rej = 2 });
	expect_queue(_metadata, self->fd, 0, FULL_N, len);
}

/* A blocked batch completes once a consumer child drains the queue. */
TEST_F(full, push_batch_blocks_until_drained)
{
	const struct job prod = {
		.op = JOB_PUSH, .fd = self->fd, .first = PRE, .n = BATCH,
		.len = variant->len, .sa_flags = -1,
	};
	const struct job cons = {
		.op = JOB_DRAIN, .fd = self->fd, .first = 0, .n = PRE + BATCH,
		.len = variant->len, .flags = ELASTICQ_BATCH_TIMEOUT,
		.timeout_ns = 10000 * EQ_MS, .sa_flags = -1,
	};
	struct elasticq_stats st0, st;
	pid_t pid;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	pid = start(_metadata, &self->child[0], &self->rep[0], &prod);
	wait_blocked(_metadata, pid);
	ASSERT_EQ(0, self->rep[0].done);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(FULL_N, st.len);

	start(_metadata, &self->child[1], &self->rep[1], &cons);
	finish(_metadata, &self->child[0]);
	finish(_metadata, &self->child[1]);
	EXPECT_EQ(BATCH, self->rep[0].ret);
	EXPECT_EQ(0, self->rep[0].ret2);
	EXPECT_EQ(PRE + BATCH, self->rep[1].ret2) {
		TH_LOG("consumer: first pop %ld", self->rep[1].ret);
	}
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = 0, .enq = BATCH, .deq = PRE + BATCH });
}

/* A signal while waiting after 3 were pushed: 3, error -EINTR. */
TEST_F(full, push_batch_eintr_after_some)
{
	const struct job j = {
		.op = JOB_PUSH, .fd = self->fd, .first = PRE, .n = BATCH,
		.len = variant->len, .sa_flags = 0,
	};
	struct elasticq_stats st0;
	pid_t pid;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	pid = start(_metadata, &self->child[0], &self->rep[0], &j);
	wait_blocked(_metadata, pid);
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = FULL_N, .size = variant->len, .enq = ROOM });
	ASSERT_EQ(0, kill(pid, SIGUSR1));
	finish(_metadata, &self->child[0]);
	EXPECT_EQ(1, self->rep[0].handled);
	EXPECT_EQ(ROOM, self->rep[0].ret);
	EXPECT_EQ(-EINTR, self->rep[0].ret2);
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = FULL_N, .size = variant->len, .enq = ROOM });
	expect_queue(_metadata, self->fd, 0, FULL_N, variant->len);
}

/* A signal before the first was pushed: the ioctl fails with EINTR. */
TEST_F(full, push_batch_eintr_first)
{
	const struct job j = {
		.op = JOB_PUSH, .fd = self->fd, .first = 100, .n = BATCH,
		.len = variant->len, .sa_flags = 0,
	};
	struct elasticq_stats st0;
	pid_t pid;

	fill_up(_metadata, self->fd, variant->len);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	pid = start(_metadata, &self->child[0], &self->rep[0], &j);
	wait_blocked(_metadata, pid);
	ASSERT_EQ(0, kill(pid, SIGUSR1));
	finish(_metadata, &self->child[0]);
	EXPECT_EQ(1, self->rep[0].handled);
	EXPECT_EQ(-EINTR, self->rep[0].ret);
	EXPECT_EQ(-EINTR, self->rep[0].ret2);
	expect_unchanged(_metadata, self->fd, &st0);
	expect_queue(_metadata, self->fd, 0, FULL_N, variant->len);
}

/* Reject: EAGAIN at once (a wrong wait would time out after 5 s). */
TEST_F(full, push_batch_reject)
{
	const size_t len = variant->len;
	struct elasticq_stats st0;
	uint64_t t0;
	int err;

	set_policy(_metadata, self->fd, ELASTICQ_FULL_REJECT, 5000 * EQ_MS);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	t0 = eq_now_ns();
	EXPECT_EQ(ROOM, push_same(self->fd, PRE, BATCH, len, 0, NO_TIMEOUT,
				  &err));
	EXPECT_EQ(-EAGAIN, err);
	EXPECT_EQ(-EAGAIN, push_same(self->fd, 100, BATCH, len,
				     ELASTICQ_BATCH_TIMEOUT, 3000 * EQ_MS, &err));
	EXPECT_EQ(-EAGAIN, err);
	EXPECT_GT(2000 * EQ_MS, eq_now_ns() - t0);
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = FULL_N, .size = len, .enq = ROOM, .rej = 2 });
	expect_queue(_metadata, self->fd, 0, FULL_N, len);
}

TEST_F(full, push_batch_drop_oldest)
{
	const size_t len = variant->len;
	struct elasticq_stats st0;
	int err;

	if (eq_lockfree())
		SKIP(return, "lock-free: no drop-oldest policy");
	set_policy(_metadata, self->fd, ELASTICQ_FULL_DROP_OLDEST,
		   5000 * EQ_MS);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	/* 11 into 8 slots: T/0..2 go. */
	EXPECT_EQ(BATCH, push_same(self->fd, PRE, BATCH, len, 0, NO_TIMEOUT,
				   &err));
	EXPECT_EQ(0, err);
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = FULL_N, .size = len, .enq = BATCH,
		.drop = PRE + BATCH - FULL_N });
	expect_queue(_metadata, self->fd, PRE + BATCH - FULL_N, FULL_N, len);

	/* A batch larger than the queue drops its own first entries. */
	EXPECT_EQ(FULL_N + 4, push_same(self->fd, 20, FULL_N + 4, len, 0,
					NO_TIMEOUT, &err));
	EXPECT_EQ(0, err);
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = FULL_N, .size = len, .enq = BATCH + FULL_N + 4,
		.deq = FULL_N, .drop = PRE + BATCH - FULL_N + 4 });
	expect_queue(_metadata, self->fd, 24, FULL_N, len);
}

/* Drop-oldest by bytes drops as many as a large entry needs. */
TEST_F(eq, push_batch_drop_oldest_bytes)
{
	static const size_t lens[] = { 350, 50 };
	static const size_t left[] = { 100, 100, 100, 100, 350, 50 };
	struct elasticq_config cfg;
	struct elasticq_stats st0, st;
	int err;

	if (eq_lockfree())
		SKIP(return, "lock-free: no drop-oldest policy");
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	cfg.max_bytes = 800;
	cfg.full_policy = ELASTICQ_FULL_DROP_OLDEST;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_push_n(self->fd, T, 0, 8, 100));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	/* 350 needs T/0..3 gone; then 400 + 350 + 50 fits exactly. */
	EXPECT_EQ(2, eq_push_batch(self->fd, make_msgs(8, 2, lens, 2), 2, 0,
				   NO_TIMEOUT, &err));
	EXPECT_EQ(0, err);
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = 6, .enq = 2, .drop = 4 });
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(800, st.bytes);
	expect_msgs(_metadata, self->fd, 4, 6, left, 6);
}

/* Reject: every push into the full queue counts, and only those. */
TEST_F(full, policy_reject_counts)
{
	const size_t len = variant->len;
	struct elasticq_stats st0;
	int i, err;

	fill_up(_metadata, self->fd, len);
	set_policy(_metadata, self->fd, ELASTICQ_FULL_REJECT, 5000 * EQ_MS);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	/*
	 * M = 7: four write(2)s and three batches (a batch stops at its
	 * first message, so it sends one).
	 */
	for (i = 0; i < 4; i++)
		EXPECT_EQ(-EAGAIN, eq_push(self->fd, pool, len));
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(-EAGAIN, push_same(self->fd, 100, 4, len, 0,
					     NO_TIMEOUT, &err));
		EXPECT_EQ(-EAGAIN, err);
	}
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = FULL_N, .size = len, .rej = 7 });

	/* Room for two: a batch of five sends three, one rejected. */
	ASSERT_EQ(2, eq_pop_batch(self->fd, buf, sizeof(buf), 2, 0, NO_TIMEOUT,
				  NULL));
	EXPECT_EQ(2, push_same(self->fd, FULL_N, 5, len, 0, NO_TIMEOUT, &err));
	EXPECT_EQ(-EAGAIN, err);
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = FULL_N, .size = len, .enq = 2, .deq = 2, .rej = 8 });
	expect_queue(_metadata, self->fd, 2, FULL_N, len);
}

/* Drop-oldest: K pushes beyond capacity, by write(2) and batches, drop K. */
TEST_F(full, policy_drop_oldest_counts)
{
	const size_t len = variant->len;
	struct elasticq_stats st0;
	int err;

	if (eq_lockfree())
		SKIP(return, "lock-free: no drop-oldest policy");
	set_policy(_metadata, self->fd, ELASTICQ_FULL_DROP_OLDEST,
		   5000 * EQ_MS);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	fill_up(_metadata, self->fd, len);		/* T/5..7, no drop */
	ASSERT_EQ(0, eq_push_n(self->fd, T, 8, 3, len));	/* 3 drops */
	EXPECT_EQ(4, push_same(self->fd, 11, 4, len, 0, NO_TIMEOUT, &err));
	EXPECT_EQ(0, err);
	EXPECT_EQ(6, push_same(self->fd, 15, 6, len, 0, NO_TIMEOUT, &err));
	EXPECT_EQ(0, err);
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = FULL_N, .size = len, .enq = ROOM + 13, .drop = 13 });
	expect_queue(_metadata, self->fd, 13, FULL_N, len);
}

/* SET_CONFIG's full_policy applies to the next push. */
TEST_F(full, policy_switch)
{
	const size_t len = variant->len;
	struct elasticq_stats st0;
	uint64_t t0;
	int err;

	if (eq_lockfree())
		SKIP(return, "lock-free: no drop-oldest policy");
	fill_up(_metadata, self->fd, len);
	set_policy(_metadata, self->fd, ELASTICQ_FULL_BLOCK, 5000 * EQ_MS);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(-EAGAIN, push_same(self->fd, 100, 2, len,
				     ELASTICQ_BATCH_NONBLOCK, NO_TIMEOUT, &err));

	set_policy(_metadata, self->fd, ELASTICQ_FULL_REJECT, 5000 * EQ_MS);
	t0 = eq_now_ns();
	EXPECT_EQ(-EAGAIN, push_same(self->fd, 100, 2, len, 0, NO_TIMEOUT,
				     &err));
	EXPECT_GT(2000 * EQ_MS, eq_now_ns() - t0);

	set_policy(_metadata, self->fd, ELASTICQ_FULL_DROP_OLDEST,
		   5000 * EQ_MS);
	EXPECT_EQ(2, push_same(self->fd, FULL_N, 2, len, 0, NO_TIMEOUT, &err));
	EXPECT_EQ(0, err);

	set_policy(_metadata, self->fd, ELASTICQ_FULL_BLOCK, 5000 * EQ_MS);
	push_timed(_metadata, self->fd, 100, 2, len, ELASTICQ_BATCH_TIMEOUT,
		   20 * EQ_MS, -ETIMEDOUT, 20 * EQ_MS, 4000 * EQ_MS);
	expect_stats(_metadata, self->fd, &st0, (struct delta){
		.len = FULL_N, .size = len, .enq = 2, .rej = 3, .drop = 2 });
	expect_queue(_metadata, self->fd, 2, FULL_N, len);
}

/* ------------------------------------------------------------------ */
/* POP_BATCH                                                          */
/* ------------------------------------------------------------------ */

TEST_F(eq, pop_batch_frame_layout)
{
	size_t lens[] = { 0, 1, 7, 8, 9, 15, 16, 17, 0 };
	const unsigned int n = sizeof(lens) / sizeof(lens[0]);
	struct elasticq_config cfg;
	struct elasticq_stats st0;
	uint64_t bytes, want = 0;
	unsigned int i;

	EXPECT_EQ(8, ELASTICQ_FRAME_SIZE(0));
	EXPECT_EQ(16, ELASTICQ_FRAME_SIZE(1));
	EXPECT_EQ(16, ELASTICQ_FRAME_SIZE(8));
	EXPECT_EQ(24, ELASTICQ_FRAME_SIZE(9));
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	lens[n - 1] = cfg.max_msg_size;
	for (i = 0; i < n; i++)
		want += ELASTICQ_FRAME_SIZE(lens[i]);
	write_msgs(_metadata, self->fd, 0, n, lens, n);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));

	/* Garbage everywhere, so that padding not written shows. */
	memset(buf, 0xa5, want + 256);
	ASSERT_EQ(n, eq_pop_batch(self->fd, buf, want + 256, 64, 0, NO_TIMEOUT,
				  &bytes));
	EXPECT_EQ(want, bytes);
	EXPECT_EQ(n, check_frames(buf, bytes, 0, lens, n));
	for (i = 0; i < 256; i++)
		ASSERT_EQ(0xa5, buf[want + i]) {
			TH_LOG("byte %u past the frames written", i);
		}
	expect_stats(_metadata, self->fd, &st0,
		     (struct delta){ .len = 0, .deq = n });
}

TEST_F(eq, pop_batch_max_msgs)
{
	struct elasticq_stats st0;
	uint64_t bytes;
	const size_t len = 20;

	write_msgs(_metadata, self->fd, 0, 10, &len, 1);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(3, eq_pop_batch(self->fd, buf, sizeof(buf), 3, 0, NO_TIMEOUT,
				  &bytes));
	EXPECT_EQ(3 * ELASTICQ_FRAME_SIZE(len), bytes);
	EXPECT_EQ(3, check_frames(buf, bytes, 0, &len, 1));
	EXPECT_EQ(1, eq_pop_batch(self->fd, buf, sizeof(buf), 1, 0, NO_TIMEOUT,
				  &bytes));
	EXPECT_EQ(1, check_frames(buf, bytes, 3, &len, 1));
	EXPECT_EQ(6, eq_pop_batch(self->fd, buf, sizeof(buf),
				  ELASTICQ_BATCH_MAX, 0, NO_TIMEOUT, &bytes));
	EXPECT_EQ(6, check_frames(buf, bytes, 4, &len, 1));
	expect_stats(_metadata, self->fd, &st0,
		     (struct delta){ .len = 0, .deq = 10 });
}

/* BATCH_MAX + 1 queued: one POP_BATCH takes BATCH_MAX. */
TEST_F(eq, pop_batch_max_msgs_limit)
{
	struct elasticq_stats st0;
	uint64_t bytes;
	const size_t len = 8;

	ASSERT_EQ(0, eq_push_n(self->fd, T, 0, ELASTICQ_BATCH_MAX + 1, len));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(ELASTICQ_BATCH_MAX,
		  eq_pop_batch(self->fd, buf, sizeof(buf), ELASTICQ_BATCH_MAX,
			       0, NO_TIMEOUT, &bytes));
	EXPECT_EQ(ELASTICQ_BATCH_MAX, check_frames(buf, bytes, 0, &len, 1));
	expect_stats(_metadata, self->fd, &st0,
		     (struct delta){ .len = 1, .size = len,
				     .deq = ELASTICQ_BATCH_MAX });
	expect_queue(_metadata, self->fd, ELASTICQ_BATCH_MAX, 1, len);
}

TEST_F(eq, pop_batch_max_msgs_invalid)
{
	static const unsigned int bad[] = {
		0, ELASTICQ_BATCH_MAX + 1, UINT32_MAX,
	};
	struct elasticq_stats st0;
	unsigned int i;
	uint64_t bytes;

	write_msgs(_metadata, self->fd, 0, 2, (const size_t[]){ 10 }, 1);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_EQ(-EINVAL, eq_pop_batch(self->fd, buf, sizeof(buf),
						bad[i], 0, NO_TIMEOUT, &bytes)) {
			TH_LOG("max_msgs %u", bad[i]);
		}
	expect_unchanged(_metadata, self->fd, &st0);
	expect_queue(_metadata, self->fd, 0, 2, 10);
}

/* It takes what fits; the next message stays queued. */
TEST_F(eq, pop_batch_stops_at_buffer_space)
{
	const size_t len = 100, frame = ELASTICQ_FRAME_SIZE(100);
	struct elasticq_stats st0;
	uint64_t bytes;

	write_msgs(_metadata, self->fd, 0, 4, &len, 1);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(2, eq_pop_batch(self->fd, buf, 3 * frame - 1, 64, 0,
				  NO_TIMEOUT, &bytes));
	EXPECT_EQ(2 * frame, bytes);
	EXPECT_EQ(2, check_frames(buf, bytes, 0, &len, 1));
	/* Exactly one frame's room. */
	EXPECT_EQ(1, eq_pop_batch(self->fd, buf, frame, 64, 0, NO_TIMEOUT,
				  &bytes));
	EXPECT_EQ(frame, bytes);
	EXPECT_EQ(1, check_frames(buf, bytes, 2, &len, 1));
	expect_stats(_metadata, self->fd, &st0,
		     (struct delta){ .len = 1, .size = len, .deq = 3 });
	expect_queue(_metadata, self->fd, 3, 1, len);
}

/* The oldest message does not fit: EMSGSIZE, and it stays. */
TEST_F(eq, pop_batch_oldest_too_big)
{
	static const size_t lens[] = { 200, 10, 0 };
	struct elasticq_stats st0;
	uint64_t bytes;

	write_msgs(_metadata, self->fd, 0, 3, lens, 3);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(-EMSGSIZE, eq_pop_batch(self->fd, buf,
					  ELASTICQ_FRAME_SIZE(200) - 1, 64, 0,
					  NO_TIMEOUT, &bytes));
	/* Room for the payload but not the header. */
	EXPECT_EQ(-EMSGSIZE, eq_pop_batch(self->fd, buf, 200, 64,
					  ELASTICQ_BATCH_NONBLOCK, NO_TIMEOUT,
					  &bytes));
	EXPECT_EQ(-EMSGSIZE, eq_pop_batch(self->fd, buf, 0, 64, 0, NO_TIMEOUT,
					  &bytes));
	expect_unchanged(_metadata, self->fd, &st0);

	EXPECT_EQ(1, eq_pop_batch(self->fd, buf, ELASTICQ_FRAME_SIZE(200), 64,
				  0, NO_TIMEOUT, &bytes));
	EXPECT_EQ(1, check_frames(buf, bytes, 0, lens, 3));
	ASSERT_EQ(2, eq_pop_batch(self->fd, buf, sizeof(buf), 64, 0,
				  NO_TIMEOUT, &bytes));
	EXPECT_EQ(2, check_frames(buf, bytes, 1, lens + 1, 2));

	/* Even a 0-byte message needs its header. */
	write_msgs(_metadata, self->fd, 3, 1, (const size_t[]){ 0 }, 1);
	EXPECT_EQ(-EMSGSIZE, eq_pop_batch(self->fd, buf, 7, 64, 0, NO_TIMEOUT,
					  &bytes));
	EXPECT_EQ(1, eq_pop_batch(self->fd, buf, 8, 64, 0, NO_TIMEOUT, &bytes));
	EXPECT_EQ(8, bytes);
	expect_stats(_metadata, self->fd, &st0,
		     (struct delta){ .len = 0, .enq = 1, .deq = 4 });
}

static const struct bad_field pop_bad[] = {
#define PB struct elasticq_pop_batch
	{ "size field smaller", FIELD(PB, size), sizeof(PB) - 8 },
	{ "size field larger", FIELD(PB, size), sizeof(PB) + 8 },
	{ "size field 0", FIELD(PB, size), 0 },
	{ "flag 0x4", FIELD(PB, flags), 0x4 },
	{ "flag 0x80000000", FIELD(PB, flags), 0x80000000 },
	{ "NONBLOCK|0x100", FIELD(PB, flags), ELASTICQ_BATCH_NONBLOCK | 0x100 },
	{ "reserved0", FIELD(PB, reserved0), 1 },
	{ "reserved[0]", FIELD(PB, reserved[0]), 1 },
	{ "reserved[1]", FIELD(PB, reserved[1]), 1ULL << 63 },
	{ "timeout_ns without TIMEOUT", FIELD(PB, timeout_ns), 1 },
#undef PB
};

TEST_F(eq, pop_batch_bad_fields)
{
	struct elasticq_pop_batch b;
	struct elasticq_stats st0;
	unsigned long small_cmd;
	const size_t len = 10;

	write_msgs(_metadata, self->fd, 0, 2, &len, 1);
	eq_pop_args(&b, buf, sizeof(buf), 64);
	expect_bad_fields(_metadata, self->fd, ELASTICQ_IOC_POP_BATCH, &b,
			  sizeof(b), pop_bad,
			  sizeof(pop_bad) / sizeof(pop_bad[0]));

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	b.size = ELASTICQ_POP_BATCH_SIZE_VER0 - 8;
	small_cmd = _IOC(_IOC_READ | _IOC_WRITE, ELASTICQ_IOC_MAGIC,
			 _IOC_NR(ELASTICQ_IOC_POP_BATCH), b.size);
	EXPECT_EQ(-EINVAL, ioctl_err(self->fd, small_cmd, &b));
	expect_unchanged(_metadata, self->fd, &st0);

	/* The good one works, whatever the output field held. */
	b.size = sizeof(b);
	b.bytes = 0xdeadbeef;
	EXPECT_EQ(2, ioctl_err(self->fd, ELASTICQ_IOC_POP_BATCH, &b));
	EXPECT_EQ(2 * ELASTICQ_FRAME_SIZE(len), b.bytes);
	EXPECT_EQ(2, check_frames(buf, b.bytes, 0, &len, 1));
}

TEST_F(eq, pop_batch_larger_struct)
{
	struct {
		struct elasticq_pop_batch b;
		uint64_t tail;
	} big;
	const unsigned long cmd = _IOWR(ELASTICQ_IOC_MAGIC,
					_IOC_NR(ELASTICQ_IOC_POP_BATCH),
					typeof(big));
	struct elasticq_stats st0;
	const size_t len = 10;

	write_msgs(_metadata, self->fd, 0, 1, &len, 1);
	memset(&big, 0, sizeof(big));
	eq_pop_args(&big.b, buf, sizeof(buf), 64);
	big.b.size = sizeof(big);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	big.tail = 1;
	EXPECT_EQ(-E2BIG, ioctl_err(self->fd, cmd, &big));
	expect_unchanged(_metadata, self->fd, &st0);
	big.tail = 0;
	EXPECT_EQ(1, ioctl_err(self->fd, cmd, &big));
	EXPECT_EQ(ELASTICQ_FRAME_SIZE(len), big.b.bytes);
	EXPECT_EQ(1, check_frames(buf, big.b.bytes, 0, &len, 1));
}

TEST_F(eq, pop_batch_empty_nonblock)
{
	struct elasticq_stats st0;
	uint64_t t0;
	int nb;

	nb = eq_open(O_NONBLOCK);
	ASSERT_LE(0, nb);
	/* A long pop timeout does not make them wait. */
	set_pop_timeout(_metadata, self->fd, 30000 * EQ_MS);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	t0 = eq_now_ns();
	EXPECT_EQ(-EAGAIN, eq_pop_batch(nb, buf, sizeof(buf), 64, 0,
					NO_TIMEOUT, NULL));
	/* (A lock-free queue's consumer role goes with its file.) */
	close(nb);
	EXPECT_EQ(-EAGAIN, eq_pop_batch(self->fd, buf, sizeof(buf), 64,
					ELASTICQ_BATCH_NONBLOCK, NO_TIMEOUT,
					NULL));
	EXPECT_GT(10000 * EQ_MS, eq_now_ns() - t0);
	expect_unchanged(_metadata, self->fd, &st0);
}

/* Pop with @flags/@timeout_ns on the empty queue: ETIMEDOUT in [min, max). */
static void pop_timed(struct __test_metadata *_metadata, int fd,
		      unsigned int flags, uint64_t timeout_ns,
		      uint64_t min_ns, uint64_t max_ns)
{
	uint64_t t0, c0, el, elc;

	t0 = eq_now_ns();
	c0 = eq_now_coarse_ns();
	EXPECT_EQ(-ETIMEDOUT, eq_pop_batch(fd, buf, sizeof(buf), 64, flags,
					   timeout_ns, NULL));
	el = eq_now_ns() - t0;
	elc = eq_now_coarse_ns() - c0;
	EXPECT_LE(min_ns, elc) {
		TH_LOG("returned after %llu ns (%llu ns of ticks)",
		       (unsigned long long)el, (unsigned long long)elc);
	}
	EXPECT_GT(max_ns, el) {
		TH_LOG("returned after %llu ns", (unsigned long long)el);
	}
}

TEST_F(eq, pop_batch_empty_timeout)
{
	struct elasticq_stats st0;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	pop_timed(_metadata, self->fd, ELASTICQ_BATCH_TIMEOUT, 0,
		  0, 2000 * EQ_MS);
	pop_timed(_metadata, self->fd, ELASTICQ_BATCH_TIMEOUT, 50 * EQ_MS,
		  50 * EQ_MS, 5050 * EQ_MS);
	pop_timed(_metadata, self->fd, ELASTICQ_BATCH_TIMEOUT, 13300000,
		  13300000, 5000 * EQ_MS);
	/* The queue's pop timeout, without the flag. */
	set_pop_timeout(_metadata, self->fd, 30 * EQ_MS);
	pop_timed(_metadata, self->fd, 0, NO_TIMEOUT, 30 * EQ_MS,
		  5030 * EQ_MS);
	/* The flag's replaces it. */
	set_pop_timeout(_metadata, self->fd, 30000 * EQ_MS);
	pop_timed(_metadata, self->fd, ELASTICQ_BATCH_TIMEOUT, 20 * EQ_MS,
		  20 * EQ_MS, 10000 * EQ_MS);
	expect_unchanged(_metadata, self->fd, &st0);
}

/* A blocked pop batch is woken by a producer child's batch. */
TEST_F(eq, pop_batch_woken_by_producer)
{
	const struct job cons = {
		.op = JOB_DRAIN, .fd = self->fd, .first = 0, .n = 5,
		.len = 100, .sa_flags = -1,
	};
	const struct job prod = {
		.op = JOB_PUSH, .fd = self->fd, .first = 0, .n = 5,
		.len = 100, .sa_flags = -1,
	};
	struct elasticq_stats st0;
	pid_t pid;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	pid = start(_metadata, &self->child[0], &self->rep[0], &cons);
	wait_blocked(_metadata, pid);
	ASSERT_EQ(0, self->rep[0].done);
	start(_metadata, &self->child[1], &self->rep[1], &prod);
	finish(_metadata, &self->child[1]);
	finish(_metadata, &self->child[0]);
	EXPECT_EQ(5, self->rep[1].ret);
	EXPECT_EQ(0, self->rep[1].ret2);
	/* Woken by the first message, it takes what is there by then. */
	EXPECT_LE(1, self->rep[0].ret);
	EXPECT_GE(5, self->rep[0].ret);
	EXPECT_EQ(5, self->rep[0].ret2);
	TH_LOG("the woken pop took %ld of 5", self->rep[0].ret);
	expect_stats(_metadata, self->fd, &st0,
		     (struct delta){ .len = 0, .enq = 5, .deq = 5 });
}

TEST_F(eq, pop_batch_eintr)
{
	const struct job cons = {
		.op = JOB_DRAIN, .fd = self->fd, .first = 0, .n = 1,
		.len = 10, .sa_flags = 0,
	};
	struct elasticq_stats st0;
	uint64_t bytes;
	pid_t pid;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	pid = start(_metadata, &self->child[0], &self->rep[0], &cons);
	wait_blocked(_metadata, pid);
	ASSERT_EQ(0, kill(pid, SIGUSR1));
	finish(_metadata, &self->child[0]);
	EXPECT_EQ(1, self->rep[0].handled);
	EXPECT_EQ(-EINTR, self->rep[0].ret);
	EXPECT_EQ(0, self->rep[0].ret2);
	expect_unchanged(_metadata, self->fd, &st0);
	/* The queue did not notice. */
	write_msgs(_metadata, self->fd, 0, 1, (const size_t[]){ 10 }, 1);
	EXPECT_EQ(1, eq_pop_batch(self->fd, buf, sizeof(buf), 64, 0,
				  NO_TIMEOUT, &bytes));
}

/* A buffer that faults before the first frame is written: EFAULT. */
TEST_F(eq, pop_batch_buf_fault)
{
	uint8_t *g = guarded_map(1);
	void *hole = unmapped_page();
	struct elasticq_stats st0;
	const size_t len = 100;

	ASSERT_NE(NULL, g);
	ASSERT_NE(NULL, hole);
	write_msgs(_metadata, self->fd, 0, 3, &len, 1);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(-EFAULT, eq_pop_batch(self->fd, hole, PG, 64, 0, NO_TIMEOUT,
					NULL));
	EXPECT_EQ(-EFAULT, eq_pop_batch(self->fd, NULL, PG, 64, 0, NO_TIMEOUT,
					NULL));
	EXPECT_EQ(-EFAULT, eq_pop_batch(self->fd, g + PG, PG, 64, 0,
					NO_TIMEOUT, NULL));
	/* The first frame straddles into the guard page. */
	EXPECT_EQ(-EFAULT, eq_pop_batch(self->fd, g + PG - 56, PG, 64, 0,
					NO_TIMEOUT, NULL));
	/* Read-only memory. */
	ASSERT_EQ(0, mprotect(g, PG, PROT_READ));
	EXPECT_EQ(-EFAULT, eq_pop_batch(self->fd, g, PG, 64, 0, NO_TIMEOUT,
					NULL));
	expect_unchanged(_metadata, self->fd, &st0);
	expect_queue(_metadata, self->fd, 0, 3, len);
	munmap(g, 2 * PG);
}

/*
 * Five messages of @len into a buffer whose second page is PROT_NONE; the
 * first @fit frames lie in the first page.  The call returns those, the
 * rest stay queued, in order.
 */
static void pop_into_guard(struct __test_metadata *_metadata, int fd,
			   size_t len, unsigned int fit)
{
	uint8_t *g = guarded_map(1);
	struct elasticq_stats st0;
	uint64_t bytes;

	ASSERT_NE(NULL, g);
	ASSERT_GE(PG, fit * ELASTICQ_FRAME_SIZE(len));
	ASSERT_LT(PG, (fit + 1) * ELASTICQ_FRAME_SIZE(len));
	write_msgs(_metadata, fd, 0, 5, &len, 1);
	ASSERT_EQ(0, eq_get_stats(fd, &st0));
	EXPECT_EQ(fit, eq_pop_batch(fd, g, 2 * PG, 64, 0, NO_TIMEOUT, &bytes));
	EXPECT_EQ(fit * ELASTICQ_FRAME_SIZE(len), bytes);
	EXPECT_EQ(fit, check_frames(g, fit * ELASTICQ_FRAME_SIZE(len), 0,
				    &len, 1));
	expect_stats(_metadata, fd, &st0, (struct delta){
		.len = 5 - fit, .size = len, .deq = fit });
	expect_queue(_metadata, fd, fit, 5 - fit, len);
	munmap(g, 2 * PG);
}

/* Frame 3's header is in the page, its payload runs into the guard. */
TEST_F(eq, pop_batch_fault_in_payload)
{
	pop_into_guard(_metadata, self->fd, 1200, 3);
}

/* Frames 0..3 fill the page exactly; frame 4's header is in the guard. */
TEST_F(eq, pop_batch_fault_at_header)
{
	pop_into_guard(_metadata, self->fd, 1016, 4);
}

TEST_F(eq, pop_batch_file_modes)
{
	struct elasticq_stats st0;
	const size_t len = 10;
	uint64_t bytes;
	int wo, ro;

	write_msgs(_metadata, self->fd, 0, 2, &len, 1);
	wo = open(EQ_DEV, O_WRONLY | O_CLOEXEC);
	ro = open(EQ_DEV, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, wo);
	ASSERT_LE(0, ro);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	EXPECT_EQ(-EBADF, eq_pop_batch(wo, buf, sizeof(buf), 64, 0, NO_TIMEOUT,
				       &bytes));
	EXPECT_EQ(-EBADF, eq_pop_batch(wo, buf, sizeof(buf), 64,
				       ELASTICQ_BATCH_NONBLOCK, NO_TIMEOUT,
				       &bytes));
	expect_unchanged(_metadata, self->fd, &st0);
	EXPECT_EQ(2, eq_pop_batch(ro, buf, sizeof(buf), 64, 0, NO_TIMEOUT,
				  &bytes));
	EXPECT_EQ(2, check_frames(buf, bytes, 0, &len, 1));
	close(wo);
	close(ro);
}

TEST_F(eq, pop_batch_claims_consumer)
{
	struct elasticq_stats st0, st;
	int f;

	write_msgs(_metadata, self->fd, 0, 2, (const size_t[]){ 10 }, 1);
	f = eq_open(0);
	ASSERT_LE(0, f);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(1, eq_pop_batch(f, buf, sizeof(buf), 1, 0, NO_TIMEOUT, NULL));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.consumers + 1, st.consumers);
	EXPECT_EQ(st0.producers, st.producers);
	ASSERT_EQ(1, eq_pop_batch(f, buf, sizeof(buf), 1, 0, NO_TIMEOUT, NULL));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.consumers + 1, st.consumers);
	close(f);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.consumers, st.consumers);
}

/* ------------------------------------------------------------------ */
/* A consumer killed in the middle of a batch copy                    */
/* ------------------------------------------------------------------ */

struct stall {
	int uffd;
	uint8_t *addr;		/* two pages, the second missing */
	struct eq_child_report *rep;
};

/* Report the fault (offset in ret2, handled 1), or handled -1. */
static void *stall_watch(void *arg)
{
	struct stall *s = arg;
	struct pollfd pfd = { .fd = s->uffd, .events = POLLIN };
	struct uffd_msg msg;

	if (poll(&pfd, 1, EQ_WAIT_MS) == 1 &&
	    read(s->uffd, &msg, sizeof(msg)) == sizeof(msg) &&
	    msg.event == UFFD_EVENT_PAGEFAULT) {
		s->rep->ret2 = msg.arg.pagefault.address - (uintptr_t)s->addr;
		s->rep->handled = 1;
	} else {
		s->rep->handled = -1;
	}
	return NULL;
}

/*
 * Child: POP_BATCH through a file of its own into two pages, the second
 * registered with userfaultfd and never filled in, so the copy stalls
 * there for good.  A thread reports the fault.
 */
static void stalled_consumer(struct eq_child_report *rep)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	struct stall s = { .rep = rep };
	pthread_t th;
	int fd;

	fd = eq_open(0);
	s.addr = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	s.uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (fd < 0 || s.addr == MAP_FAILED || s.uffd < 0 ||
	    ioctl(s.uffd, UFFDIO_API, &api))
		_exit(2);
	memset(s.addr, 0, PG);		/* the first page is there */
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)s.addr + PG;
	reg.range.len = PG;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(s.uffd, UFFDIO_REGISTER, &reg) ||
	    pthread_create(&th, NULL, stall_watch, &s))
		_exit(3);
	rep->ret = eq_pop_batch(fd, s.addr, 2 * PG, 64, 0, NO_TIMEOUT, NULL);
	rep->done = 1;
	pthread_join(th, NULL);
	_exit(0);
}

/*
 * @n messages of @len are queued; a consumer child's POP_BATCH stalls where
 * its frames cross into the second page; SIGKILL it.  Nothing is lost: a
 * new consumer receives all @n once, in order.
 */
static void killed_mid_copy(struct __test_metadata *_metadata,
			    struct eq_child_report *rep, pid_t *slot, int fd,
			    unsigned int n, size_t len)
{
	struct elasticq_stats st0, st;
	uint64_t end, bytes;
	unsigned int k;
	pid_t pid;
	int c;

	ASSERT_LT(PG, n * ELASTICQ_FRAME_SIZE(len));
	write_msgs(_metadata, fd, 0, n, &len, 1);
	ASSERT_EQ(0, eq_get_stats(fd, &st0));
	memset((void *)rep, 0, sizeof(*rep));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		stalled_consumer(rep);
	*slot = pid;

	/* The watcher gives up after EQ_WAIT_MS. */
	end = eq_now_ns() + (EQ_WAIT_MS + 5000) * EQ_MS;
	while (!rep->handled && !rep->done && eq_now_ns() < end)
		usleep(1000);
	ASSERT_EQ(1, rep->handled) {
		TH_LOG("copy did not stall: done %d ret %ld", rep->done,
		       rep->ret);
	}
	ASSERT_EQ(0, rep->done);
	EXPECT_LE(PG, rep->ret2);
	ASSERT_EQ(0, eq_get_stats(fd, &st));
	EXPECT_EQ(st0.consumers + 1, st.consumers);

	ASSERT_EQ(0, kill(pid, SIGKILL));
	EXPECT_EQ(1000 + SIGKILL, eq_wait_exit(pid));
	*slot = 0;
	ASSERT_EQ(0, eq_get_stats(fd, &st));
	EXPECT_EQ(st0.consumers, st.consumers);
	expect_unchanged(_metadata, fd, &st0);

	/* A new consumer gets every message once, in order. */
	c = eq_open(O_NONBLOCK);
	ASSERT_LE(0, c);
	bytes = 0;
	EXPECT_EQ(n, eq_pop_batch(c, buf, sizeof(buf), ELASTICQ_BATCH_MAX, 0,
				  NO_TIMEOUT, &bytes));
	EXPECT_EQ(n, check_frames(buf, bytes, 0, &len, 1)) {
		for (k = 0; k < n && bytes; k++)
			if (eq_check_fill(buf + 8, len, T, k))
				TH_LOG("the first message left is T/%u", k);
	}
	EXPECT_EQ(-EAGAIN, eq_pop_batch(c, buf, sizeof(buf), 64, 0,
					NO_TIMEOUT, NULL));
	close(c);
	expect_stats(_metadata, fd, &st0,
		     (struct delta){ .len = 0, .deq = n });
}

/* Frames 0-3 fill the first page up to 4032, frame 4 crosses. */
TEST_F_TIMEOUT(eq, pop_batch_consumer_killed_mid_copy, 60)
{
	killed_mid_copy(_metadata, &self->rep[0], &self->child[0], self->fd,
			6, 1000);
}

/* The same with 36 frames copied before the stall (a long batch). */
TEST_F_TIMEOUT(eq, pop_batch_consumer_killed_mid_copy_late, 60)
{
	killed_mid_copy(_metadata, &self->rep[0], &self->child[0], self->fd,
			40, 100);
}

/* ------------------------------------------------------------------ */
/* Throughput                                                         */
/* ------------------------------------------------------------------ */

#define TP_PRODUCERS	4
#define TP_MSGS		((int)eq_scale(50000))
#define TP_BATCH	64

struct tp_hdr {
	uint32_t id, seq;
};

/* 8..64 bytes: a header, then eq_fill(id, seq). */
static size_t tp_len(uint32_t seq)
{
	return sizeof(struct tp_hdr) + seq % 57;
}

/* Producer child @id: exit status 0 or the failing step. */
static void tp_producer(uint32_t id)
{
	static uint8_t data[TP_BATCH][sizeof(struct tp_hdr) + 64];
	struct elasticq_msg_vec v[TP_BATCH];
	uint32_t seq, i, n;
	int fd, err;

	fd = eq_open(0);
	if (fd < 0)
		_exit(2);
	for (seq = 0; seq < TP_MSGS; seq += n) {
		n = TP_MSGS - seq < TP_BATCH ? TP_MSGS - seq : TP_BATCH;
		for (i = 0; i < n; i++) {
			struct tp_hdr h = { id, seq + i };
			size_t len = tp_len(seq + i);

			memcpy(data[i], &h, sizeof(h));
			eq_fill(data[i] + sizeof(h), len - sizeof(h), id,
				seq + i);
			v[i].addr = (uintptr_t)data[i];
			v[i].len = len;
		}
		if (eq_push_batch(fd, v, n, 0, NO_TIMEOUT, &err) != n || err)
			_exit(3);
	}
	close(fd);
	_exit(0);
}

TEST_F_TIMEOUT(eq, batch_throughput, 300)
{
	const uint64_t all = (uint64_t)TP_PRODUCERS * TP_MSGS;
	uint32_t next[TP_PRODUCERS] = { 0 }, len;
	uint64_t total = 0, calls = 0, t0, bytes, pos;
	struct elasticq_stats st0;
	const struct tp_hdr *h;
	long n, i;
	int c;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	c = eq_open(0);
	ASSERT_LE(0, c);
	t0 = eq_now_ns();
	for (i = 0; i < TP_PRODUCERS; i++) {
		self->child[i] = fork();
		ASSERT_LE(0, self->child[i]);
		if (self->child[i] == 0)
			tp_producer(i);
	}

	while (total < all) {
		/* A lost message shows as ETIMEDOUT, not as a hang. */
		n = eq_pop_batch(c, buf, 64 * 1024, ELASTICQ_BATCH_MAX,
				 ELASTICQ_BATCH_TIMEOUT, 30000 * EQ_MS, &bytes);
		ASSERT_LT(0, n) {
			TH_LOG("after %llu messages: %ld",
			       (unsigned long long)total, n);
		}
		pos = 0;
		for (i = 0; i < n; i++) {
			h = eq_next_frame(buf, bytes, &pos, &len);
			ASSERT_NE(NULL, h);
			ASSERT_LE(sizeof(*h), len);
			ASSERT_GT(TP_PRODUCERS, h->id);
			ASSERT_EQ(next[h->id], h->seq) {
				TH_LOG("producer %u: got seq %u", h->id,
				       h->seq);
			}
			ASSERT_EQ(tp_len(h->seq), len);
			ASSERT_TRUE(eq_check_fill(h + 1, len - sizeof(*h),
						  h->id, h->seq));
			next[h->id]++;
		}
		ASSERT_EQ(bytes, pos);
		total += n;
		calls++;
	}
	TH_LOG("%d x %d messages in %.2f s, %.1f per pop batch",
	       TP_PRODUCERS, TP_MSGS, (eq_now_ns() - t0) / 1e9,
	       (double)total / calls);
	for (i = 0; i < TP_PRODUCERS; i++) {
		EXPECT_EQ(0, eq_wait_exit(self->child[i]));
		self->child[i] = 0;
		EXPECT_EQ(TP_MSGS, next[i]);
	}
	EXPECT_EQ(-EAGAIN, eq_pop_batch(c, buf, sizeof(buf), 64,
					ELASTICQ_BATCH_NONBLOCK, NO_TIMEOUT,
					NULL));
	close(c);
	expect_stats(_metadata, self->fd, &st0,
		     (struct delta){ .len = 0, .enq = all, .deq = all });
}

TEST_HARNESS_MAIN
