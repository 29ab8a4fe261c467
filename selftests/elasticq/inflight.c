// SPDX-License-Identifier: MIT
/*
 * Messages in flight: a read(2) whose copy to userspace, or a write(2) whose
 * copy from userspace, is held up part-way.  userfaultfd makes the copy
 * stall on a missing page for as long as the test likes, then either
 * completes it or makes it fault.  SPEC sections 4, 5 and 9: copies happen
 * outside the queue lock, a message is removed only after it was copied
 * out, a fault leaves it queued (at the head), and nothing is enqueued from
 * a faulting write.  Meanwhile the ring may grow, shrink, be reconfigured or
 * drop messages; not in the lock-free variant, whose one consumer holds its
 * lock across its copy (producers, stats and GET_CONFIG go on; another file
 * gets EBUSY).
 */
#include <pthread.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>

#include "eq_test.h"

#define REGION	(2 * 4096UL)

/* One read or write stalled on a userfaultfd-registered buffer. */
struct stall {
	int uffd;
	uint8_t *addr;		/* REGION bytes, missing until resolved */
	pthread_t th;
	int fd;
	bool write;
	size_t count;
	volatile long ret;
	volatile int done;
	bool running;
};

static void *stall_thread(void *arg)
{
	struct stall *s = arg;

	s->ret = s->write ? eq_push(s->fd, s->addr, s->count) :
			    eq_pop(s->fd, s->addr, s->count);
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Start a read (or write) of @count bytes on @fd into (or from) a buffer
 * that is not there yet, and wait until the kernel's copy is stuck on it.
 * Return 0, or a negative step number.
 */
static int stall_start(struct stall *s, int fd, bool write, size_t count)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	struct uffd_msg msg;
	struct pollfd pfd;

	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->write = write;
	s->count = count;
	s->uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (s->uffd < 0)
		return -1;
	if (ioctl(s->uffd, UFFDIO_API, &api))
		return -2;
	s->addr = mmap(NULL, REGION, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->addr == MAP_FAILED)
		return -3;
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)s->addr;
	reg.range.len = REGION;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(s->uffd, UFFDIO_REGISTER, &reg))
		return -4;
	if (pthread_create(&s->th, NULL, stall_thread, s))
		return -5;
	s->running = true;
	pfd.fd = s->uffd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, EQ_WAIT_MS) != 1)
		return -6;
	if (read(s->uffd, &msg, sizeof(msg)) != sizeof(msg) ||
	    msg.event != UFFD_EVENT_PAGEFAULT ||
	    msg.arg.pagefault.address < (uintptr_t)s->addr ||
	    msg.arg.pagefault.address >= (uintptr_t)s->addr + REGION)
		return -7;
	return s->done ? -8 : 0;
}

/* Let the copy go on, with the buffer holding @content. */
static int stall_resolve(struct stall *s, const void *content)
{
	static uint8_t src[REGION] __attribute__((aligned(4096)));
	struct uffdio_copy copy;

	memcpy(src, content, REGION);
	memset(&copy, 0, sizeof(copy));
	copy.dst = (uintptr_t)s->addr;
	copy.src = (uintptr_t)src;
	copy.len = REGION;
	return ioctl(s->uffd, UFFDIO_COPY, &copy) ? -errno : 0;
}

/* Make the copy fault: the buffer becomes inaccessible, then wake it. */
static int stall_fail(struct stall *s)
{
	struct uffdio_range range = {
		.start = (uintptr_t)s->addr, .len = REGION,
	};

	if (mprotect(s->addr, REGION, PROT_NONE))
		return -errno;
	return ioctl(s->uffd, UFFDIO_WAKE, &range) ? -errno : 0;
}

/* Wait for the stalled call to return (bounded); its result. */
static long stall_join(struct stall *s)
{
	uint64_t end = eq_now_ns() + EQ_WAIT_MS * EQ_MS;

	while (!__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) &&
	       eq_now_ns() < end)
		usleep(1000);
	if (!s->done)
		return -ETIME;
	pthread_join(s->th, NULL);
	s->running = false;
	close(s->uffd);
	munmap(s->addr, REGION);
	return s->ret;
}

static uint8_t buf[ELASTICQ_MSG_SIZE_LIMIT];
static uint8_t content[REGION];

/*
 * Pop everything (non-blocking, see eq_reader() for @fd) and check it is
 * @tag/@seqs, in order.
 */
static void expect_queue(struct __test_metadata *_metadata, int fd,
			 uint32_t tag, const uint32_t *seqs, unsigned int n,
			 size_t len)
{
	unsigned int i;
	bool own;
	int nb;

	nb = eq_reader(fd, &own);
	ASSERT_LE(0, nb);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(len, eq_pop_nb(nb, buf, sizeof(buf)));
		EXPECT_TRUE(eq_check_fill(buf, len, tag, seqs[i])) {
			TH_LOG("position %u: expected message %u", i, seqs[i]);
		}
	}
	EXPECT_EQ(-EAGAIN, eq_pop_nb(nb, buf, sizeof(buf)));
	if (own)
		close(nb);
}

/* An empty queue gets these bounds with its ring at exactly @initial. */
static void set_caps(struct __test_metadata *_metadata, int fd, uint32_t min,
		     uint32_t initial, uint32_t max, uint32_t policy)
{
	struct elasticq_config cfg;
	struct elasticq_stats st;

	ASSERT_EQ(0, eq_get_config(fd, &cfg));
	cfg.min_capacity = min;
	cfg.initial_capacity = initial;
	cfg.max_capacity = initial;
	cfg.full_policy = policy;
	ASSERT_EQ(0, eq_set_config(fd, &cfg));
	cfg.max_capacity = max;
	ASSERT_EQ(0, eq_set_config(fd, &cfg));
	ASSERT_EQ(0, eq_get_stats(fd, &st));
	ASSERT_EQ(initial, st.capacity);
}

#define T 0x17	/* message tag */

/*
 * While one reader's copy is stuck, the queue is not: stats, pushes and
 * other readers go on, and the stuck message counts as queued.
 */
TEST_F(eq, read_stalled_queue_not_locked)
{
	struct elasticq_stats st0, st;
	struct elasticq_config cfg;
	bool lf = eq_lockfree();
	struct stall s;
	int nb;

	ASSERT_EQ(0, eq_push_n(self->fd, T, 0, 2, 100));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(0, stall_start(&s, self->fd, false, 4096));

	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(2, st.len);
	EXPECT_EQ(200, st.bytes);
	EXPECT_EQ(st0.dequeued, st.dequeued);
	ASSERT_EQ(0, eq_push_n(self->fd, T, 2, 1, 100));
	nb = eq_open(O_NONBLOCK);
	ASSERT_LE(0, nb);
	if (lf) {
		/* One consumer: another file is refused. */
		EXPECT_EQ(-EBUSY, eq_pop(nb, buf, sizeof(buf)));
		ASSERT_EQ(0, eq_get_config(nb, &cfg));
	} else {
		/* Another consumer gets the next message. */
		ASSERT_EQ(100, eq_pop(nb, buf, sizeof(buf)));
		EXPECT_TRUE(eq_check_fill(buf, 100, T, 1));
	}
	close(nb);
	EXPECT_EQ(0, s.done);

	memset(content, 0x5a, sizeof(content));
	ASSERT_EQ(0, stall_resolve(&s, content));
	ASSERT_EQ(100, stall_join(&s));
	/* stall_join() unmapped the buffer: check it through a copy. */
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(lf ? 2 : 1, st.len);
	EXPECT_EQ(lf ? 200 : 100, st.bytes);
	EXPECT_EQ(st0.dequeued + (lf ? 1 : 2), st.dequeued);
	if (lf)
		expect_queue(_metadata, self->fd, T,
			     (const uint32_t[]){ 1, 2 }, 2, 100);
	else
		expect_queue(_metadata, self->fd, T,
			     (const uint32_t[]){ 2 }, 1, 100);
}

/* The stalled reader receives the right bytes. */
TEST_F(eq, read_stalled_gets_its_message)
{
	struct stall s;
	uint8_t *copy;

	eq_fill(buf, 5000, T, 42);
	ASSERT_EQ(5000, eq_push(self->fd, buf, 5000));
	ASSERT_EQ(0, stall_start(&s, self->fd, false, REGION));
	memset(content, 0, sizeof(content));
	ASSERT_EQ(0, stall_resolve(&s, content));
	/* Keep the data: read it before stall_join() unmaps it. */
	while (!__atomic_load_n(&s.done, __ATOMIC_ACQUIRE))
		usleep(1000);
	copy = malloc(5000);
	ASSERT_NE(NULL, copy);
	memcpy(copy, s.addr, 5000);
	ASSERT_EQ(5000, stall_join(&s));
	EXPECT_TRUE(eq_check_fill(copy, 5000, T, 42));
	free(copy);
}

/*
 * A fault after the ring grew and shrank under the stalled copy puts the
 * message back at the head, in front of everything queued since.
 */
TEST_F(eq, read_fault_after_grow_and_shrink)
{
	static const uint32_t rest[] = { 0, 7, 8, 9 };
	struct elasticq_stats st0, st;
	struct stall s;
	uint32_t i;

	if (eq_lockfree())
		SKIP(return, "lock-free: no resize during the consumer's copy");
	set_caps(_metadata, self->fd, 1, 2, 64, ELASTICQ_FULL_BLOCK);
	ASSERT_EQ(0, eq_push_n(self->fd, T, 0, 2, 100));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(2, st0.capacity);

	/* Message 0 is taken: the ring is full with one queued. */
	ASSERT_EQ(0, stall_start(&s, self->fd, false, 4096));
	ASSERT_EQ(0, eq_push_n(self->fd, T, 2, 8, 100));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(10, st.len);
	EXPECT_EQ(16, st.capacity);		/* 2 -> 4 -> 8 -> 16 */
	EXPECT_EQ(st0.grows + 3, st.grows);
	for (i = 1; i <= 6; i++) {
		ASSERT_EQ(100, eq_pop(self->fd, buf, sizeof(buf)));
		EXPECT_TRUE(eq_check_fill(buf, 100, T, i));
	}
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(4, st.len);
	EXPECT_EQ(8, st.capacity);		/* 4 <= 16 / 4 */
	EXPECT_EQ(st0.shrinks + 1, st.shrinks);

	ASSERT_EQ(0, stall_fail(&s));
	EXPECT_EQ(-EFAULT, stall_join(&s));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(4, st.len);
	EXPECT_EQ(400, st.bytes);
	EXPECT_EQ(st0.dequeued + 6, st.dequeued);
	expect_queue(_metadata, self->fd, T, rest, 4, 100);
}

/* Reconfiguration counts the taken message, and the fault finds room. */
TEST_F(eq, read_fault_after_config_resize)
{
	static const uint32_t all[] = { 0, 1, 2 };
	struct elasticq_config cfg;
	struct elasticq_stats st;
	struct stall s;

	if (eq_lockfree())
		SKIP(return, "lock-free: no resize during the consumer's copy");
	set_caps(_metadata, self->fd, 1, 4, 4, ELASTICQ_FULL_BLOCK);
	ASSERT_EQ(0, eq_push_n(self->fd, T, 0, 3, 100));
	ASSERT_EQ(0, stall_start(&s, self->fd, false, 4096));

	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	cfg.max_capacity = 2;
	cfg.initial_capacity = 2;
	EXPECT_EQ(-EBUSY, eq_set_config(self->fd, &cfg));
	cfg.max_bytes = 250;
	cfg.max_capacity = 3;
	cfg.initial_capacity = 3;
	EXPECT_EQ(-EBUSY, eq_set_config(self->fd, &cfg));
	cfg.max_bytes = 300;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(3, st.capacity);
	EXPECT_EQ(3, st.len);

	ASSERT_EQ(0, stall_fail(&s));
	EXPECT_EQ(-EFAULT, stall_join(&s));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(3, st.len);
	EXPECT_EQ(3, st.capacity);
	EXPECT_EQ(300, st.bytes);
	expect_queue(_metadata, self->fd, T, all, 3, 100);
}

/* Drop-oldest drops queued messages, never the one being copied out. */
TEST_F(eq, read_stalled_with_drop_oldest)
{
	static const uint32_t rest[] = { 3, 4, 5 };
	struct elasticq_stats st0, st;
	struct stall s;

	if (eq_lockfree())
		SKIP(return, "lock-free: no drop-oldest policy");
	set_caps(_metadata, self->fd, 1, 4, 4, ELASTICQ_FULL_DROP_OLDEST);
	ASSERT_EQ(0, eq_push_n(self->fd, T, 0, 4, 100));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(0, stall_start(&s, self->fd, false, 4096));
	/* Full: 5 drops 1, 6 drops 2. */
	ASSERT_EQ(0, eq_push_n(self->fd, T, 4, 2, 100));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(4, st.len);
	EXPECT_EQ(st0.dropped + 2, st.dropped);

	memset(content, 0, sizeof(content));
	ASSERT_EQ(0, stall_resolve(&s, content));
	while (!__atomic_load_n(&s.done, __ATOMIC_ACQUIRE))
		usleep(1000);
	EXPECT_TRUE(eq_check_fill(s.addr, 100, T, 0));
	ASSERT_EQ(100, stall_join(&s));
	expect_queue(_metadata, self->fd, T, rest, 3, 100);
}

/*
 * Drop-oldest on a one-slot queue whose only message is being copied out:
 * a writer must wait (nothing it may drop).  When the copy faults the
 * message is queued again, so the writer can now drop it and go on.
 */
TEST_F(eq, drop_oldest_writer_woken_by_failed_read)
{
	struct eq_child_report *rep = &self->rep[0];
	struct elasticq_config cfg;
	struct elasticq_stats st0, st;
	struct stall s;
	uint64_t t0;
	pid_t pid;
	int nb;

	if (eq_lockfree())
		SKIP(return, "lock-free: no drop-oldest policy");
	set_caps(_metadata, self->fd, 1, 1, 1, ELASTICQ_FULL_DROP_OLDEST);
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	cfg.push_timeout_ns = 5000 * EQ_MS;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_push_n(self->fd, T, 0, 1, 100));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(0, stall_start(&s, self->fd, false, 4096));

	/* Dropping cannot make room: nothing is dropped, the push waits. */
	nb = eq_open(O_NONBLOCK);
	ASSERT_LE(0, nb);
	EXPECT_EQ(-EAGAIN, eq_push(nb, buf, 100));
	close(nb);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.len);
	EXPECT_EQ(st0.dropped, st.dropped);

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		eq_fill(buf, 100, T, 1);
		rep->ret = eq_push(self->fd, buf, 100);
		rep->elapsed_ns = eq_now_ns();	/* when it returned */
		_exit(0);
	}
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked(pid));

	t0 = eq_now_ns();
	ASSERT_EQ(0, stall_fail(&s));
	EXPECT_EQ(-EFAULT, stall_join(&s));
	ASSERT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_EQ(100, rep->ret);
	/* Woken by the put back, not by its own timeout re-check. */
	EXPECT_GT(2500 * EQ_MS, rep->elapsed_ns - t0);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.dropped + 1, st.dropped);
	expect_queue(_metadata, self->fd, T, (const uint32_t[]){ 1 }, 1, 100);
}

/* A write stuck copying in holds no lock and is not queued yet. */
TEST_F(eq, write_stalled_queue_not_locked)
{
	struct elasticq_stats st0, st;
	struct stall s;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(0, stall_start(&s, self->fd, true, 300));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(st0.enqueued, st.enqueued);
	ASSERT_EQ(0, eq_push_n(self->fd, T, 0, 1, 100));
	ASSERT_EQ(100, eq_pop(self->fd, buf, sizeof(buf)));

	eq_fill(content, 300, T, 77);
	ASSERT_EQ(0, stall_resolve(&s, content));
	ASSERT_EQ(300, stall_join(&s));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.len);
	EXPECT_EQ(st0.enqueued + 2, st.enqueued);
	expect_queue(_metadata, self->fd, T, (const uint32_t[]){ 77 }, 1, 300);
}

/* A write whose copy faults enqueues nothing. */
TEST_F(eq, write_fault_enqueues_nothing)
{
	struct elasticq_stats st0, st;
	struct stall s;

	ASSERT_EQ(0, eq_push_n(self->fd, T, 0, 1, 100));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(0, stall_start(&s, self->fd, true, 300));
	ASSERT_EQ(0, stall_fail(&s));
	EXPECT_EQ(-EFAULT, stall_join(&s));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.len);
	EXPECT_EQ(100, st.bytes);
	EXPECT_EQ(st0.enqueued, st.enqueued);
	EXPECT_EQ(st0.mem_bytes, st.mem_bytes);
	expect_queue(_metadata, self->fd, T, (const uint32_t[]){ 0 }, 1, 100);
}

TEST_HARNESS_MAIN
