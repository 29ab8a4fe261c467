// SPDX-License-Identifier: MIT
/*
 * FIFO across several consumers whose copies fault (SPEC sections 4, 5 and
 * 9): a read whose copy to userspace faults leaves its message queued, and
 * the queue keeps the producer's order even when several readers' copies
 * fault in any order.  The syscall fuzzer (fuzz_dev.c) found the case
 * where two faulting readers put their messages back in the wrong order;
 * these are its deterministic versions.  userfaultfd holds each reader's
 * copy until the test makes it fault (as in inflight.c).
 */
#include <pthread.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>

#include "eq_test.h"

#define REGION	(2 * 4096UL)
#define NSTALL	3

/* One read stalled on a userfaultfd-registered buffer. */
struct stall {
	int uffd;
	uint8_t *addr;		/* REGION bytes, missing until resolved */
	pthread_t th;
	int fd;
	volatile long ret;
	volatile int done;
	bool running;
};

static void *stall_thread(void *arg)
{
	struct stall *s = arg;

	s->ret = eq_pop(s->fd, s->addr, REGION);
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Start a read on @fd into a buffer that is not there yet and wait until
 * the kernel's copy is stuck on it (the message is taken by then).
 * Return 0, or a negative step number.
 */
static int stall_start(struct stall *s, int fd)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	struct uffd_msg msg;
	struct pollfd pfd;

	memset(s, 0, sizeof(*s));
	s->fd = fd;
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
	    msg.event != UFFD_EVENT_PAGEFAULT)
		return -7;
	return s->done ? -8 : 0;
}

/* Let the copy complete (into zeroes). */
static int stall_resolve(struct stall *s)
{
	static uint8_t src[REGION] __attribute__((aligned(4096)));
	struct uffdio_copy copy;

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

/* Wait for the stalled read to return (bounded); its result. */
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

/* userfaultfd(2) usable?  (Kernels without CONFIG_USERFAULTFD: ENOSYS.) */
static bool have_uffd(void)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

#define NEED_UFFD()							\
	do {								\
		if (!have_uffd())					\
			SKIP(return, "userfaultfd: %s", strerror(errno)); \
	} while (0)

#define T 0x0de7	/* message tag */

/* Pop everything (non-blocking) and check it is T/@seqs, in order. */
static void expect_queue(struct __test_metadata *_metadata,
			 const uint32_t *seqs, unsigned int n)
{
	static uint8_t buf[4096];
	unsigned int i;
	uint32_t s;
	int nb;

	nb = eq_open(O_NONBLOCK);
	ASSERT_LE(0, nb);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(100, eq_pop(nb, buf, sizeof(buf)));
		for (s = 0; s < 16; s++)
			if (eq_check_fill(buf, 100, T, s))
				break;
		EXPECT_EQ(seqs[i], s) {
			TH_LOG("position %u: message %u, expected %u", i, s,
			       seqs[i]);
		}
	}
	EXPECT_EQ(-EAGAIN, eq_pop(nb, buf, sizeof(buf)));
	close(nb);
}

/*
 * Readers take messages 0..@n-1 in turn and stall; then their copies end
 * in the order @order (fail: fault, else complete).  What stays queued
 * must be in the producer's order.
 */
static void run(struct __test_metadata *_metadata, int fd, unsigned int n,
		const unsigned int *order, const bool *fail,
		const uint32_t *want, unsigned int nwant)
{
	struct stall s[NSTALL];
	unsigned int i, k;

	ASSERT_EQ(0, eq_push_n(fd, T, 0, n + 2, 100));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, stall_start(&s[i], fd)) {
			TH_LOG("reader %u", i);
		}
	for (i = 0; i < n; i++) {
		k = order[i];
		if (fail[k]) {
			ASSERT_EQ(0, stall_fail(&s[k]));
			EXPECT_EQ(-EFAULT, stall_join(&s[k]));
		} else {
			ASSERT_EQ(0, stall_resolve(&s[k]));
			EXPECT_EQ(100, stall_join(&s[k]));
		}
	}
	expect_queue(_metadata, want, nwant);
}

/* Two faults, the first taker first: 0 must stay ahead of 1. */
TEST_F(eq, two_faults_in_take_order)
{
	NEED_UFFD();
	run(_metadata, self->fd, 2, (const unsigned int[]){ 0, 1 },
	    (const bool[]){ true, true }, (const uint32_t[]){ 0, 1, 2, 3 }, 4);
}

/* Two faults, the last taker first. */
TEST_F(eq, two_faults_in_reverse_order)
{
	NEED_UFFD();
	run(_metadata, self->fd, 2, (const unsigned int[]){ 1, 0 },
	    (const bool[]){ true, true }, (const uint32_t[]){ 0, 1, 2, 3 }, 4);
}

/* Three faults in a mixed order. */
TEST_F(eq, three_faults_mixed_order)
{
	NEED_UFFD();
	run(_metadata, self->fd, 3, (const unsigned int[]){ 0, 2, 1 },
	    (const bool[]){ true, true, true },
	    (const uint32_t[]){ 0, 1, 2, 3, 4 }, 5);
}

/* The middle reader succeeds, the others fault around it. */
TEST_F(eq, faults_around_a_delivery)
{
	NEED_UFFD();
	run(_metadata, self->fd, 3, (const unsigned int[]){ 0, 1, 2 },
	    (const bool[]){ true, false, true },
	    (const uint32_t[]){ 0, 2, 3, 4 }, 4);
}

/* Two faults after the ring grew under them. */
TEST_F(eq, two_faults_after_grow)
{
	struct elasticq_config cfg;
	struct stall s[2];
	uint32_t want[12];
	unsigned int i;

	NEED_UFFD();
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	cfg.min_capacity = 2;
	cfg.initial_capacity = 2;
	cfg.max_capacity = 2;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	cfg.max_capacity = 64;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_push_n(self->fd, T, 0, 2, 100));
	ASSERT_EQ(0, stall_start(&s[0], self->fd));
	ASSERT_EQ(0, stall_start(&s[1], self->fd));
	ASSERT_EQ(0, eq_push_n(self->fd, T, 2, 10, 100));	/* 2 -> 16 slots */
	ASSERT_EQ(0, stall_fail(&s[0]));
	EXPECT_EQ(-EFAULT, stall_join(&s[0]));
	ASSERT_EQ(0, stall_fail(&s[1]));
	EXPECT_EQ(-EFAULT, stall_join(&s[1]));
	for (i = 0; i < 12; i++)
		want[i] = i;
	expect_queue(_metadata, want, 12);
}

TEST_HARNESS_MAIN
