// SPDX-License-Identifier: MIT
/*
 * io_uring IORING_OP_READ/WRITE on /dev/elasticq (SPEC section 6): they
 * work, a read on an empty queue and a write on a full one park without an
 * io-wq worker thread (FMODE_NOWAIT, IOCB_NOWAIT and poll), complete when
 * the queue changes, and a request cancelled by closing the ring consumes
 * nothing.  Raw system calls: the build links no liburing.
 */
#include <dirent.h>
#include <sys/syscall.h>
#include <linux/io_uring.h>

#define EQ_CUSTOM_FIXTURE
#include "eq_test.h"

struct ring {
	int fd;
	unsigned int *sq_tail, *sq_mask, *sq_array;
	unsigned int *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
	void *sq_ptr, *cq_ptr;
	size_t sq_size, cq_size, sqes_size;
};

static int ring_init(struct ring *r, unsigned int entries)
{
	struct io_uring_params p;

	memset(r, 0, sizeof(*r));
	memset(&p, 0, sizeof(p));
	r->fd = syscall(__NR_io_uring_setup, entries, &p);
	if (r->fd < 0)
		return -errno;
	r->sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned int);
	r->cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		if (r->cq_size > r->sq_size)
			r->sq_size = r->cq_size;
		r->cq_size = r->sq_size;
	}
	r->sq_ptr = mmap(NULL, r->sq_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
	if (r->sq_ptr == MAP_FAILED)
		return -errno;
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		r->cq_ptr = r->sq_ptr;
	} else {
		r->cq_ptr = mmap(NULL, r->cq_size, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_POPULATE, r->fd,
				 IORING_OFF_CQ_RING);
		if (r->cq_ptr == MAP_FAILED)
			return -errno;
	}
	r->sqes_size = p.sq_entries * sizeof(struct io_uring_sqe);
	r->sqes = mmap(NULL, r->sqes_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		return -errno;
	r->sq_tail = (unsigned int *)((char *)r->sq_ptr + p.sq_off.tail);
	r->sq_mask = (unsigned int *)((char *)r->sq_ptr + p.sq_off.ring_mask);
	r->sq_array = (unsigned int *)((char *)r->sq_ptr + p.sq_off.array);
	r->cq_head = (unsigned int *)((char *)r->cq_ptr + p.cq_off.head);
	r->cq_tail = (unsigned int *)((char *)r->cq_ptr + p.cq_off.tail);
	r->cq_mask = (unsigned int *)((char *)r->cq_ptr + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)((char *)r->cq_ptr + p.cq_off.cqes);
	return 0;
}

static void ring_exit(struct ring *r)
{
	if (r->sqes && r->sqes != MAP_FAILED)
		munmap(r->sqes, r->sqes_size);
	if (r->cq_ptr && r->cq_ptr != MAP_FAILED && r->cq_ptr != r->sq_ptr)
		munmap(r->cq_ptr, r->cq_size);
	if (r->sq_ptr && r->sq_ptr != MAP_FAILED)
		munmap(r->sq_ptr, r->sq_size);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

/* Submit one read or write; 0 or -errno. */
static int ring_rw(struct ring *r, uint8_t op, int fd, void *buf,
		   unsigned int len, uint64_t data)
{
	unsigned int tail = *r->sq_tail, idx = tail & *r->sq_mask;
	struct io_uring_sqe *sqe = &r->sqes[idx];
	int n;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = op;
	sqe->fd = fd;
	sqe->addr = (uintptr_t)buf;
	sqe->len = len;
	sqe->off = (uint64_t)-1;	/* a stream: no offset */
	sqe->user_data = data;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	n = syscall(__NR_io_uring_enter, r->fd, 1, 0, 0, NULL, 0);
	if (n < 0)
		return -errno;
	return n == 1 ? 0 : -EIO;
}

/* Wait up to @ms for a completion; 1 with *@cqe, 0 if none, -errno. */
static int ring_wait(struct ring *r, struct io_uring_cqe *cqe, int ms)
{
	struct pollfd pfd = { .fd = r->fd, .events = POLLIN };

	for (;;) {
		unsigned int head = *r->cq_head;

		if (head != __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
			*cqe = r->cqes[head & *r->cq_mask];
			__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
			return 1;
		}
		switch (poll(&pfd, 1, ms)) {
		case -1:
			return -errno;
		case 0:
			return 0;
		}
		/* The completion may still be on its way to the CQ ring. */
		syscall(__NR_io_uring_enter, r->fd, 0, 0, IORING_ENTER_GETEVENTS,
			NULL, 0);
		ms = 100;
	}
}

/* io-wq worker threads ("iou-wrk-*") of this process. */
static int io_workers(void)
{
	char path[320], comm[64];
	struct dirent *de;
	int n = 0, fd;
	ssize_t len;
	DIR *d;

	d = opendir("/proc/self/task");
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		comm[len > 0 ? len : 0] = '\0';
		n += !strncmp(comm, "iou-wrk", 7);
	}
	closedir(d);
	return n;
}

FIXTURE(ur) {
	EQ_FIXTURE_FIELDS;
	struct ring ring;
};

FIXTURE_SETUP(ur)
{
	int ret;

	EQ_FIXTURE_SETUP_BODY;
	self->ring.fd = -1;
	ret = ring_init(&self->ring, 8);
	if (ret == -ENOSYS || ret == -EPERM)
		SKIP(return, "no io_uring here (%d)", ret);
	ASSERT_EQ(0, ret);
}

FIXTURE_TEARDOWN(ur)
{
	ring_exit(&self->ring);
	EQ_FIXTURE_TEARDOWN_BODY;
}

#define NEED_RING()							\
	do {								\
		if (self->ring.fd < 0)					\
			SKIP(return, "no io_uring");			\
	} while (0)

static uint8_t buf[ELASTICQ_MSG_SIZE_LIMIT];

TEST_F(ur, write_and_read)
{
	struct io_uring_cqe cqe;
	struct elasticq_stats st;
	char in[64];

	NEED_RING();
	ASSERT_EQ(0, ring_rw(&self->ring, IORING_OP_WRITE, self->fd,
			     "hello", 5, 1));
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(1, cqe.user_data);
	EXPECT_EQ(5, cqe.res);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.len);

	memset(in, 0, sizeof(in));
	ASSERT_EQ(0, ring_rw(&self->ring, IORING_OP_READ, self->fd, in,
			     sizeof(in), 2));
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(2, cqe.user_data);
	EXPECT_EQ(5, cqe.res);
	EXPECT_STREQ("hello", in);
	EXPECT_EQ(0, io_workers());
}

TEST_F(ur, errors_as_for_read_write)
{
	struct io_uring_cqe cqe;
	struct elasticq_stats st;

	NEED_RING();
	ASSERT_EQ(0, ring_rw(&self->ring, IORING_OP_WRITE, self->fd, buf,
			     EQ_DEF_MSG_SIZE + 1, 1));
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(-EMSGSIZE, cqe.res);
	eq_fill(buf, 100, 3, 3);
	ASSERT_EQ(100, eq_push(self->fd, buf, 100));
	ASSERT_EQ(0, ring_rw(&self->ring, IORING_OP_READ, self->fd, buf, 99,
			     2));
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(-EMSGSIZE, cqe.res);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.len);
	memset(buf, 0, 100);
	ASSERT_EQ(100, eq_pop(self->fd, buf, sizeof(buf)));
	EXPECT_TRUE(eq_check_fill(buf, 100, 3, 3));
}

/* A read on the empty queue parks on poll and completes on a write. */
TEST_F(ur, read_parks_until_write)
{
	struct io_uring_cqe cqe;
	char in[64];

	NEED_RING();
	memset(in, 0, sizeof(in));
	ASSERT_EQ(0, ring_rw(&self->ring, IORING_OP_READ, self->fd, in,
			     sizeof(in), 7));
	EXPECT_EQ(0, ring_wait(&self->ring, &cqe, 300));
	EXPECT_EQ(0, io_workers());

	ASSERT_EQ(4, eq_push(self->fd, "late", 4));
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(7, cqe.user_data);
	EXPECT_EQ(4, cqe.res);
	EXPECT_STREQ("late", in);
	EXPECT_EQ(0, io_workers());
}

/* Close the ring with a read parked: it is cancelled and eats nothing. */
TEST_F(ur, cancelled_read_consumes_nothing)
{
	struct io_uring_cqe cqe;
	struct elasticq_stats st;
	char in[64];

	NEED_RING();
	ASSERT_EQ(0, ring_rw(&self->ring, IORING_OP_READ, self->fd, in,
			     sizeof(in), 7));
	EXPECT_EQ(0, ring_wait(&self->ring, &cqe, 300));
	/* Its last reference goes with close(): the read is cancelled. */
	ring_exit(&self->ring);
	ASSERT_EQ(4, eq_push(self->fd, "kept", 4));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.len);
	ASSERT_EQ(4, eq_pop(self->fd, in, sizeof(in)));
	EXPECT_EQ(0, memcmp(in, "kept", 4));
}

/*
 * A write to a full queue parks and completes once a read made room: full
 * by capacity, and full by max_bytes with max_msg_size fitting what a read
 * frees.
 */
static void write_parks(struct __test_metadata *_metadata,
			FIXTURE_DATA(ur) *self, bool by_bytes)
{
	struct elasticq_config cfg;
	struct io_uring_cqe cqe;
	uint32_t i;

	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	if (by_bytes) {
		cfg.max_bytes = 1000;
		cfg.max_msg_size = 250;
	} else {
		cfg.min_capacity = 1;
		cfg.initial_capacity = 4;
		cfg.max_capacity = 4;
	}
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_push_n(self->fd, 8, 0, 4, 250));

	eq_fill(buf, 250, 8, 4);
	ASSERT_EQ(0, ring_rw(&self->ring, IORING_OP_WRITE, self->fd, buf, 250,
			     9));
	EXPECT_EQ(0, ring_wait(&self->ring, &cqe, 300));
	EXPECT_EQ(0, io_workers());

	ASSERT_EQ(250, eq_pop(self->fd, buf + 4096, 4096));
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(9, cqe.user_data);
	EXPECT_EQ(250, cqe.res);
	for (i = 1; i <= 4; i++) {
		ASSERT_EQ(250, eq_pop(self->fd, buf + 4096, 4096));
		EXPECT_TRUE(eq_check_fill(buf + 4096, 250, 8, i));
	}
	EXPECT_EQ(0, io_workers());
}

TEST_F(ur, write_parks_while_full)
{
	NEED_RING();
	write_parks(_metadata, self, false);
}

TEST_F(ur, write_parks_while_full_by_bytes)
{
	NEED_RING();
	write_parks(_metadata, self, true);
}

TEST_HARNESS_MAIN
