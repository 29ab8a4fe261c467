// SPDX-License-Identifier: MIT
/*
 * io_uring on /dev/elasticq (SPEC section 6).
 * IORING_OP_READ/WRITE: they work, a read on an empty queue and a write on
 * a full one park without an io-wq worker thread (FMODE_NOWAIT,
 * IOCB_NOWAIT and poll), complete when the queue changes, and a request
 * cancelled by closing the ring consumes nothing.
 * IORING_OP_URING_CMD: pop and push batches with the ioctls' structs and
 * errors; a pop on an empty queue (a push on a full one) parks without a
 * thread and a producer (consumer) in another process completes it;
 * parked commands end with -ECANCELED when the submitter closes the file,
 * exits or tears the ring down, and consume nothing.  A push wakes one
 * parked pop per message; how many may park is bounded per queue and per
 * user; a parked push counts as rejected once; cancellations racing with
 * commands issued from io-wq leave every completion valid.
 * Raw system calls: what is tested is the kernel, not a library.
 */
#include <dirent.h>
#include <pthread.h>
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

/* The next SQE, zeroed; ring_submit() hands it to the kernel. */
static struct io_uring_sqe *ring_sqe(struct ring *r)
{
	struct io_uring_sqe *sqe = &r->sqes[*r->sq_tail & *r->sq_mask];

	memset(sqe, 0, sizeof(*sqe));
	return sqe;
}

/* Submit the SQE ring_sqe() gave; 0 or -errno. */
static int ring_submit(struct ring *r)
{
	unsigned int tail = *r->sq_tail, idx = tail & *r->sq_mask;
	int n;

	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	n = syscall(__NR_io_uring_enter, r->fd, 1, 0, 0, NULL, 0);
	if (n < 0)
		return -errno;
	return n == 1 ? 0 : -EIO;
}

/* Submit one read or write; 0 or -errno. */
static int ring_rw(struct ring *r, uint8_t op, int fd, void *buf,
		   unsigned int len, uint64_t data)
{
	struct io_uring_sqe *sqe = ring_sqe(r);

	sqe->opcode = op;
	sqe->fd = fd;
	sqe->addr = (uintptr_t)buf;
	sqe->len = len;
	sqe->off = (uint64_t)-1;	/* a stream: no offset */
	sqe->user_data = data;
	return ring_submit(r);
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

/* Module parameters a test changes, restored by the teardown. */
#define UR_PARAMS 2
static const char *const ur_param_names[UR_PARAMS] = {
	"max_parked_per_queue", "max_parked_per_user",
};

FIXTURE(ur) {
	EQ_FIXTURE_FIELDS;
	struct ring ring;
	unsigned long long saved[UR_PARAMS];
	bool changed[UR_PARAMS];
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
	int i;

	for (i = 0; i < UR_PARAMS; i++)
		if (self->changed[i])
			EXPECT_EQ(0, eq_write_param(ur_param_names[i],
						    self->saved[i]));
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

/* Submit one IORING_OP_URING_CMD; 0 or -errno. */
/* Submit one command with SQE @flags (IOSQE_*); 0 or -errno. */
static int ring_cmd_flags(struct ring *r, int fd, uint32_t op, void *arg,
			  uint64_t reserved, uint64_t data, uint8_t flags)
{
	struct io_uring_sqe *sqe = ring_sqe(r);
	struct elasticq_uring_cmd c = {
		.arg = (uintptr_t)arg,
		.reserved = reserved,
	};

	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	sqe->flags = flags;
	sqe->cmd_op = op;
	memcpy(sqe->cmd, &c, sizeof(c));
	sqe->user_data = data;
	return ring_submit(r);
}

static int ring_cmd(struct ring *r, int fd, uint32_t op, void *arg,
		    uint64_t reserved, uint64_t data)
{
	return ring_cmd_flags(r, fd, op, arg, reserved, data, 0);
}

/* Set a module parameter for this test; the teardown restores it. */
static int ur_set_param(FIXTURE_DATA(ur) *self, int i, unsigned long long v)
{
	if (!self->changed[i]) {
		if (!eq_read_param(ur_param_names[i], &self->saved[i]))
			return -ENOENT;
		self->changed[i] = true;
	}
	return eq_write_param(ur_param_names[i], v);
}

/* eq_pop_args() with a @bytes the kernel must overwrite. */
static void pop_args(struct elasticq_pop_batch *b, void *out, size_t len,
		     unsigned int max_msgs)
{
	eq_pop_args(b, out, len, max_msgs);
	b->bytes = 12345;
}

/*
 * Submit a pop batch of up to 8 messages into buf on @fd, tagged @data,
 * and check that it parks: no completion within 300 ms.
 */
static void park_pop(struct __test_metadata *_metadata, struct ring *r,
		     int fd, struct elasticq_pop_batch *b, uint64_t data)
{
	struct io_uring_cqe cqe;

	pop_args(b, buf, 4096, 8);
	ASSERT_EQ(0, ring_cmd(r, fd, ELASTICQ_IOC_POP_BATCH, b, 0, data));
	EXPECT_EQ(0, ring_wait(r, &cqe, 300));
}

static void push_args(struct elasticq_push_batch *b,
		      const struct elasticq_msg_vec *v, unsigned int n)
{
	memset(b, 0, sizeof(*b));
	b->size = sizeof(*b);
	b->msgs = (uintptr_t)v;
	b->count = n;
	b->error = 12345;	/* must be overwritten */
}

/* Submit one command and wait for its completion; its res. */
static int cmd_sync(struct __test_metadata *_metadata, struct ring *r,
		    int fd, uint32_t op, void *arg, uint64_t reserved)
{
	struct io_uring_cqe cqe;

	if (ring_cmd(r, fd, op, arg, reserved, 42))
		return -10000;
	if (ring_wait(r, &cqe, EQ_WAIT_MS) != 1)
		return -10001;
	EXPECT_EQ(42, cqe.user_data);
	return cqe.res;
}

/* The frames of a pop batch are messages @tag/@first.. of @len bytes. */
static void check_frames(struct __test_metadata *_metadata, const void *out,
			 uint64_t bytes, int n, uint32_t tag, uint32_t first,
			 size_t len)
{
	uint64_t pos = 0;
	uint32_t got;
	int i;

	for (i = 0; i < n; i++) {
		const void *p = eq_next_frame(out, bytes, &pos, &got);

		ASSERT_NE(NULL, p);
		ASSERT_EQ(len, got);
		EXPECT_TRUE(eq_check_fill(p, len, tag, first + i)) {
			TH_LOG("frame %d", i);
		}
	}
	EXPECT_EQ(bytes, pos);
}

/* Wait until the queue has @n consumers (a file is released after its
 * last command completed); 0 or -ETIMEDOUT.
 */
static int wait_consumers(int fd, uint32_t n)
{
	struct elasticq_stats st;
	int i;

	for (i = 0; i < EQ_WAIT_MS / 10; i++) {
		if (eq_get_stats(fd, &st))
			return -EIO;
		if (st.consumers == n)
			return 0;
		eq_sleep_ms(10);
	}
	return -ETIMEDOUT;
}

/*
 * A message pushed now stays queued: nothing parked takes it.  Read back
 * through a file of its own (the lock-free queue's consumer role is free).
 */
static void check_nothing_parked(struct __test_metadata *_metadata,
				 FIXTURE_DATA(ur) *self)
{
	struct elasticq_stats st;
	char in[64];
	int fd;

	ASSERT_EQ(0, wait_consumers(self->fd, 0));
	ASSERT_EQ(4, eq_push(self->fd, "kept", 4));
	eq_sleep_ms(100);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.len);
	fd = eq_open(0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(4, eq_pop_nb(fd, in, sizeof(in)));
	EXPECT_EQ(0, memcmp(in, "kept", 4));
	close(fd);
}

/*
 * The same through the fixture's file, once it holds the consumer role:
 * no command is left parked on the queue (it would take the message).
 */
static void check_kept(struct __test_metadata *_metadata,
		       FIXTURE_DATA(ur) *self)
{
	struct elasticq_stats st;
	char in[64];

	while (eq_pop_nb(self->fd, in, sizeof(in)) >= 0)
		;
	ASSERT_EQ(4, eq_push(self->fd, "kept", 4));
	eq_sleep_ms(100);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.len);
	ASSERT_EQ(4, eq_pop_nb(self->fd, in, sizeof(in)));
	EXPECT_EQ(0, memcmp(in, "kept", 4));
}

TEST_F(ur, cmd_pop_batch_takes_queued)
{
	struct elasticq_pop_batch b;

	NEED_RING();
	ASSERT_EQ(0, eq_push_n(self->fd, 1, 0, 5, 30));
	pop_args(&b, buf, 4096, 4);
	ASSERT_EQ(4, cmd_sync(_metadata, &self->ring, self->fd,
			      ELASTICQ_IOC_POP_BATCH, &b, 0));
	EXPECT_EQ(4 * ELASTICQ_FRAME_SIZE(30), b.bytes);
	check_frames(_metadata, buf, b.bytes, 4, 1, 0, 30);
	pop_args(&b, buf, 4096, 4);
	ASSERT_EQ(1, cmd_sync(_metadata, &self->ring, self->fd,
			      ELASTICQ_IOC_POP_BATCH, &b, 0));
	check_frames(_metadata, buf, b.bytes, 1, 1, 4, 30);
	EXPECT_EQ(0, io_workers());
}

/*
 * A pop batch on the empty queue parks, with no thread; a producer in
 * another process completes it, and the frames and @bytes are there.
 */
TEST_F(ur, cmd_pop_parks_until_a_producer)
{
	struct elasticq_pop_batch b;
	struct io_uring_cqe cqe;
	struct elasticq_msg_vec v[3];
	uint8_t msgs[3][40];
	int i, n;

	NEED_RING();
	park_pop(_metadata, &self->ring, self->fd, &b, 7);
	EXPECT_EQ(0, io_workers());

	self->child[0] = fork();
	ASSERT_LE(0, self->child[0]);
	if (self->child[0] == 0) {
		int fd = eq_open(0);

		for (i = 0; i < 3; i++) {
			eq_fill(msgs[i], 40, 2, i);
			v[i].addr = (uintptr_t)msgs[i];
			v[i].len = 40;
		}
		_exit(fd < 0 || eq_push_batch(fd, v, 3, 0, 0, NULL) != 3);
	}
	EXPECT_EQ(0, eq_wait_exit(self->child[0]));
	self->child[0] = 0;
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(7, cqe.user_data);
	n = cqe.res;
	ASSERT_LE(1, n);
	ASSERT_GE(3, n);
	EXPECT_NE(12345, b.bytes);
	check_frames(_metadata, buf, b.bytes, n, 2, 0, 40);
	for (i = n; i < 3; i++) {
		ASSERT_EQ(40, eq_pop(self->fd, buf, sizeof(buf)));
		EXPECT_TRUE(eq_check_fill(buf, 40, 2, i));
	}
	EXPECT_EQ(0, io_workers());
}

/* The submitter closes the file: -ECANCELED, and nothing is consumed. */
TEST_F(ur, cmd_pop_cancelled_on_close)
{
	struct elasticq_pop_batch b;
	struct io_uring_cqe cqe;
	int fd;

	NEED_RING();
	fd = eq_open(0);
	ASSERT_LE(0, fd);
	park_pop(_metadata, &self->ring, fd, &b, 8);
	ASSERT_EQ(0, close(fd));
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(8, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);
	check_nothing_parked(_metadata, self);
}

/*
 * Another process that shares the file (a fork) closes its copy: the
 * submitter's command stays parked, and still gets its message.
 */
TEST_F(ur, cmd_pop_survives_another_close)
{
	struct elasticq_pop_batch b;
	struct io_uring_cqe cqe;

	NEED_RING();
	park_pop(_metadata, &self->ring, self->fd, &b, 9);
	self->child[0] = fork();
	ASSERT_LE(0, self->child[0]);
	if (self->child[0] == 0)
		_exit(close(self->fd));
	EXPECT_EQ(0, eq_wait_exit(self->child[0]));
	self->child[0] = 0;
	EXPECT_EQ(0, ring_wait(&self->ring, &cqe, 300));
	ASSERT_EQ(0, eq_push_n(self->fd, 3, 0, 1, 20));
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(1, cqe.res);
	check_frames(_metadata, buf, b.bytes, 1, 3, 0, 20);
}

/*
 * The submitting task exits (killed, or exiting normally) or execs with a
 * pop parked on its own file and ring: neither hangs (both wait for the
 * task's io_uring requests), and the command consumed nothing.
 */
TEST_F(ur, cmd_pop_cancelled_on_task_exit)
{
	int how;

	NEED_RING();
	for (how = 0; how < 3; how++) {
		self->rep[0].done = 0;
		self->child[0] = fork();
		ASSERT_LE(0, self->child[0]);
		if (self->child[0] == 0) {
			struct elasticq_pop_batch cb;
			struct ring r;
			int fd = eq_open(0);

			if (fd < 0 || ring_init(&r, 4))
				_exit(2);
			pop_args(&cb, buf, 4096, 8);
			if (ring_cmd(&r, fd, ELASTICQ_IOC_POP_BATCH, &cb, 0, 1))
				_exit(3);
			self->rep[0].done = 1;
			if (how == 1)
				_exit(0);
			if (how == 2)
				execl("/bin/true", "true", (char *)NULL);
			pause();
			_exit(4);
		}
		while (!self->rep[0].done)
			eq_sleep_ms(10);
		eq_sleep_ms(100);
		if (!how)
			kill(self->child[0], SIGKILL);
		EXPECT_EQ(how ? 0 : 1000 + SIGKILL,
			  eq_wait_exit(self->child[0])) {
			TH_LOG("how %d", how);
		}
		self->child[0] = 0;
		check_nothing_parked(_metadata, self);
	}
}

/*
 * The ring is torn down while the file stays open: the parked command
 * ends (6.1 cannot cancel it: the module notices the dying ring).
 */
TEST_F(ur, cmd_pop_cancelled_by_ring_teardown)
{
	struct elasticq_pop_batch b;
	struct io_uring_cqe cqe;
	int fd;

	NEED_RING();
	fd = eq_open(0);
	ASSERT_LE(0, fd);
	park_pop(_metadata, &self->ring, fd, &b, 1);
	ring_exit(&self->ring);
	/* The file's last reference was the command's: wait for it. */
	ASSERT_EQ(0, close(fd));
	check_nothing_parked(_metadata, self);

	fd = eq_open(0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ring_init(&self->ring, 8));
	ASSERT_EQ(0, ring_cmd(&self->ring, fd, ELASTICQ_IOC_POP_BATCH, &b, 0,
			      1));
	EXPECT_EQ(0, ring_wait(&self->ring, &cqe, 300));
	ring_exit(&self->ring);
	/* The file is still open: the command must end by itself. */
	eq_sleep_ms(500);
	ASSERT_EQ(4, eq_push(self->fd, "kept", 4));
	eq_sleep_ms(100);
	ASSERT_EQ(4, eq_pop_nb(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "kept", 4));
	close(fd);
}

TEST_F(ur, cmd_push_batch)
{
	struct elasticq_msg_vec v[4];
	struct elasticq_push_batch b;
	uint8_t msgs[4][64];
	int i;

	NEED_RING();
	for (i = 0; i < 4; i++) {
		eq_fill(msgs[i], 10 + i, 5, i);
		v[i].addr = (uintptr_t)msgs[i];
		v[i].len = 10 + i;
	}
	push_args(&b, v, 4);
	ASSERT_EQ(4, cmd_sync(_metadata, &self->ring, self->fd,
			      ELASTICQ_IOC_PUSH_BATCH, &b, 0));
	EXPECT_EQ(0, b.error);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(10 + i, eq_pop(self->fd, buf, sizeof(buf)));
		EXPECT_TRUE(eq_check_fill(buf, 10 + i, 5, i));
	}
	/* Stopped by a message too large: the count, and its error. */
	v[1].len = EQ_DEF_MSG_SIZE + 1;
	push_args(&b, v, 4);
	ASSERT_EQ(1, cmd_sync(_metadata, &self->ring, self->fd,
			      ELASTICQ_IOC_PUSH_BATCH, &b, 0));
	EXPECT_EQ(-EMSGSIZE, b.error);
	push_args(&b, &v[1], 1);
	ASSERT_EQ(-EMSGSIZE, cmd_sync(_metadata, &self->ring, self->fd,
				      ELASTICQ_IOC_PUSH_BATCH, &b, 0));
	EXPECT_EQ(-EMSGSIZE, b.error);
	ASSERT_EQ(10, eq_pop(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(0, io_workers());
}

/*
 * A push batch on a full queue parks (no thread), goes on as a consumer
 * in another process makes room, and completes with every message, in
 * order.
 */
TEST_F(ur, cmd_push_parks_while_full)
{
	struct elasticq_config cfg;
	struct elasticq_msg_vec v[3];
	struct elasticq_push_batch b;
	struct io_uring_cqe cqe;
	uint8_t msgs[3][64];
	uint32_t i;

	NEED_RING();
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	cfg.min_capacity = 1;
	cfg.initial_capacity = 4;
	cfg.max_capacity = 4;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_push_n(self->fd, 6, 0, 4, 50));
	for (i = 0; i < 3; i++) {
		eq_fill(msgs[i], 50, 6, 4 + i);
		v[i].addr = (uintptr_t)msgs[i];
		v[i].len = 50;
	}
	push_args(&b, v, 3);
	ASSERT_EQ(0, ring_cmd(&self->ring, self->fd, ELASTICQ_IOC_PUSH_BATCH,
			      &b, 0, 3));
	EXPECT_EQ(0, ring_wait(&self->ring, &cqe, 300));
	EXPECT_EQ(0, io_workers());

	/* A consumer elsewhere takes three, one at a time. */
	self->child[0] = fork();
	ASSERT_LE(0, self->child[0]);
	if (self->child[0] == 0) {
		bool own;
		int fd = eq_reader(self->fd, &own);

		for (i = 0; i < 3; i++) {
			if (fd < 0 || eq_pop(fd, buf, sizeof(buf)) != 50 ||
			    !eq_check_fill(buf, 50, 6, i))
				_exit(1);
			eq_sleep_ms(50);
		}
		_exit(0);
	}
	EXPECT_EQ(0, eq_wait_exit(self->child[0]));
	self->child[0] = 0;
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(3, cqe.user_data);
	EXPECT_EQ(3, cqe.res);
	EXPECT_EQ(0, b.error);
	for (i = 3; i < 7; i++) {
		ASSERT_EQ(50, eq_pop(self->fd, buf, sizeof(buf)));
		EXPECT_TRUE(eq_check_fill(buf, 50, 6, i));
	}
}

/* Bad commands get the ioctls' errors, and change nothing. */
TEST_F(ur, cmd_errors)
{
	struct elasticq_pop_batch b;
	struct elasticq_push_batch pb;
	struct elasticq_stats st;
	uint64_t t0;
	int fd;

	NEED_RING();
	pop_args(&b, buf, 4096, 8);
	EXPECT_EQ(-ENOTTY, cmd_sync(_metadata, &self->ring, self->fd,
				    ELASTICQ_IOC_GET_STATS, &st, 0));
	EXPECT_EQ(-EINVAL, cmd_sync(_metadata, &self->ring, self->fd,
				    ELASTICQ_IOC_POP_BATCH, &b, 1));
	EXPECT_EQ(-EFAULT, cmd_sync(_metadata, &self->ring, self->fd,
				    ELASTICQ_IOC_POP_BATCH, NULL, 0));
	b.size = 8;
	EXPECT_EQ(-EINVAL, cmd_sync(_metadata, &self->ring, self->fd,
				    ELASTICQ_IOC_POP_BATCH, &b, 0));
	pop_args(&b, buf, 4096, 0);
	EXPECT_EQ(-EINVAL, cmd_sync(_metadata, &self->ring, self->fd,
				    ELASTICQ_IOC_POP_BATCH, &b, 0));
	pop_args(&b, buf, 4096, 8);
	b.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, cmd_sync(_metadata, &self->ring, self->fd,
				    ELASTICQ_IOC_POP_BATCH, &b, 0));
	push_args(&pb, NULL, 1);
	EXPECT_EQ(-EFAULT, cmd_sync(_metadata, &self->ring, self->fd,
				    ELASTICQ_IOC_PUSH_BATCH, &pb, 0));
	EXPECT_EQ(-EFAULT, pb.error);

	/* Not open for reading, or for writing. */
	fd = open(EQ_DEV, O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	pop_args(&b, buf, 4096, 8);
	EXPECT_EQ(-EBADF, cmd_sync(_metadata, &self->ring, fd,
				   ELASTICQ_IOC_POP_BATCH, &b, 0));
	close(fd);
	fd = open(EQ_DEV, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	push_args(&pb, NULL, 0);
	EXPECT_EQ(-EBADF, cmd_sync(_metadata, &self->ring, fd,
				   ELASTICQ_IOC_PUSH_BATCH, &pb, 0));
	close(fd);

	/* Empty: non-blocking, zero timeout, a timeout. */
	pop_args(&b, buf, 4096, 8);
	b.flags = ELASTICQ_BATCH_NONBLOCK;
	EXPECT_EQ(-EAGAIN, cmd_sync(_metadata, &self->ring, self->fd,
				    ELASTICQ_IOC_POP_BATCH, &b, 0));
	fd = fcntl(self->fd, F_GETFL);
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, fd | O_NONBLOCK));
	pop_args(&b, buf, 4096, 8);
	EXPECT_EQ(-EAGAIN, cmd_sync(_metadata, &self->ring, self->fd,
				    ELASTICQ_IOC_POP_BATCH, &b, 0));
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, fd));
	pop_args(&b, buf, 4096, 8);
	b.flags = ELASTICQ_BATCH_TIMEOUT;
	EXPECT_EQ(-ETIMEDOUT, cmd_sync(_metadata, &self->ring, self->fd,
				       ELASTICQ_IOC_POP_BATCH, &b, 0));
	b.timeout_ns = 200 * EQ_MS;
	t0 = eq_now_ns();
	EXPECT_EQ(-ETIMEDOUT, cmd_sync(_metadata, &self->ring, self->fd,
				       ELASTICQ_IOC_POP_BATCH, &b, 0));
	EXPECT_LE(200 * EQ_MS, eq_now_ns() - t0);

	/* The oldest message does not fit: EMSGSIZE, it stays. */
	ASSERT_EQ(0, eq_push_n(self->fd, 7, 0, 1, 100));
	pop_args(&b, buf, ELASTICQ_FRAME_SIZE(100) - 1, 8);
	EXPECT_EQ(-EMSGSIZE, cmd_sync(_metadata, &self->ring, self->fd,
				      ELASTICQ_IOC_POP_BATCH, &b, 0));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.len);

	/* Lock-free: the consumer role is exclusive. */
	if (eq_lockfree()) {
		fd = eq_open(0);
		ASSERT_LE(0, fd);
		pop_args(&b, buf, 4096, 8);
		EXPECT_EQ(-EBUSY, cmd_sync(_metadata, &self->ring, fd,
					   ELASTICQ_IOC_POP_BATCH, &b, 0));
		close(fd);
	}
	ASSERT_EQ(100, eq_pop(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(0, io_workers());
}

#define UR_ENTER_WCHAN \
	"io_|__do_sys_io_uring_enter|__x64_sys_io_uring_enter"
#define UR_POLL_WCHAN "do_sys_poll|do_poll|poll_schedule_timeout"

/* voluntary_ctxt_switches of @pid, or -1. */
static long vol_switches(pid_t pid)
{
	char path[64], text[4096], *p;
	long n;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	n = eq_read_text(path, text, sizeof(text));
	if (n <= 0)
		return -1;
	p = strstr(text, "\nvoluntary_ctxt_switches:");
	return p ? strtol(p + 25, NULL, 10) : -1;
}

/*
 * Child @i: park a pop of one message on @fd through a ring of its own,
 * say so (done), sleep in io_uring_enter() until it completes; report its
 * result (ret), the message's seq (ret2, -1 if not tag 9 of 24 bytes),
 * and aux = 1.
 */
static void one_pop_child(struct eq_child_report *rep, int fd)
{
	struct elasticq_pop_batch b;
	struct io_uring_cqe cqe;
	uint64_t pos = 0;
	const void *p;
	struct ring r;
	uint32_t len;
	long seq;

	if (ring_init(&r, 4))
		_exit(2);
	pop_args(&b, buf, 4096, 1);
	if (ring_cmd(&r, fd, ELASTICQ_IOC_POP_BATCH, &b, 0, 1))
		_exit(3);
	rep->done = 1;
	while (*r.cq_head == __atomic_load_n(r.cq_tail, __ATOMIC_ACQUIRE))
		syscall(__NR_io_uring_enter, r.fd, 0, 1,
			IORING_ENTER_GETEVENTS, NULL, 0);
	if (ring_wait(&r, &cqe, 0) != 1)
		_exit(4);
	rep->ret = cqe.res;
	rep->ret2 = -1;
	p = cqe.res == 1 ? eq_next_frame(buf, b.bytes, &pos, &len) : NULL;
	for (seq = 0; p && len == 24 && seq < EQ_MAX_CHILDREN; seq++)
		if (eq_check_fill(p, 24, 9, seq))
			rep->ret2 = seq;
	rep->aux = 1;
	_exit(0);
}

static int children_done(struct eq_child_report *rep, int n)
{
	int i, done = 0;

	for (i = 0; i < n; i++)
		done += rep[i].aux == 1;
	return done;
}

/* Wait (bounded) until @want of the @n children reported their pop. */
static int wait_children_done(struct eq_child_report *rep, int n, int want)
{
	uint64_t end = eq_now_ns() + EQ_WAIT_MS * EQ_MS;

	while (children_done(rep, n) < want && eq_now_ns() < end)
		usleep(1000);
	return children_done(rep, n);
}

/*
 * Parked pops wait exclusively: one message wakes one of four parked pops
 * (each in a process of its own, asleep in io_uring_enter()); the others
 * are not even woken (their tasks do not run).  Then three messages in
 * one batch complete the three others, one message each, none stranded.
 */
TEST_F(ur, cmd_pop_one_message_wakes_one_pop)
{
	long before[4], after;
	bool seen[4] = { false };
	char last[160];
	int i, n = 4;

	NEED_RING();
	for (i = 0; i < n; i++) {
		self->child[i] = fork();
		ASSERT_LE(0, self->child[i]);
		if (self->child[i] == 0)
			one_pop_child(&self->rep[i], self->fd);
		while (!self->rep[i].done)
			usleep(1000);
		/* io_cqring_wait(), or the syscall it is inlined in. */
		ASSERT_EQ(0, eq_wait_blocked_in(self->child[i], UR_ENTER_WCHAN,
						last, sizeof(last))) {
			TH_LOG("child %d: %s", i, last);
		}
	}
	for (i = 0; i < n; i++)
		before[i] = vol_switches(self->child[i]);
	ASSERT_EQ(0, eq_push_n(self->fd, 9, 0, 1, 24));
	ASSERT_EQ(1, wait_children_done(self->rep, n, 1));
	/* A correct kernel never wakes the others: waiting longer is safe. */
	eq_sleep_ms(300);
	EXPECT_EQ(1, children_done(self->rep, n));
	for (i = 0; i < n; i++) {
		if (self->rep[i].aux)
			continue;
		after = vol_switches(self->child[i]);
		EXPECT_EQ(before[i], after) {
			TH_LOG("child %d woke %ld times", i, after - before[i]);
		}
	}
	ASSERT_EQ(0, eq_push_n(self->fd, 9, 1, n - 1, 24));
	ASSERT_EQ(n, wait_children_done(self->rep, n, n));
	for (i = 0; i < n; i++) {
		EXPECT_EQ(0, eq_wait_exit(self->child[i]));
		self->child[i] = 0;
		EXPECT_EQ(1, self->rep[i].ret);
		ASSERT_LE(0, self->rep[i].ret2);
		ASSERT_GT(n, self->rep[i].ret2);
		EXPECT_FALSE(seen[self->rep[i].ret2]);
		seen[self->rep[i].ret2] = true;
	}
}

/*
 * Exclusive parked pops leave read(2) sleepers and poll(2) waiters their
 * wake-ups: with a pop parked, a reader blocked in read(2) and a poller,
 * one message wakes the poller, and two messages complete both the pop
 * and the read, one each.
 */
TEST_F(ur, cmd_pop_exclusive_keeps_readers_and_pollers)
{
	struct elasticq_pop_batch b;
	struct io_uring_cqe cqe;
	uint32_t got = 0;
	uint64_t pos = 0;
	const void *p;
	uint32_t len;
	long before;
	int i;

	NEED_RING();
	pop_args(&b, buf, 4096, 1);
	ASSERT_EQ(0, ring_cmd(&self->ring, self->fd, ELASTICQ_IOC_POP_BATCH,
			      &b, 0, 5));
	self->child[0] = fork();
	ASSERT_LE(0, self->child[0]);
	if (self->child[0] == 0) {
		struct pollfd pfd = { .fd = self->fd, .events = POLLIN };

		/* Woken, it may find the message taken: it polls on. */
		poll(&pfd, 1, -1);
		_exit(0);
	}
	self->child[1] = fork();
	ASSERT_LE(0, self->child[1]);
	if (self->child[1] == 0) {
		self->rep[1].ret = eq_pop(self->fd, self->rep[1].data, 64);
		for (i = 0; i < 2; i++)
			if (self->rep[1].ret == 24 &&
			    eq_check_fill(self->rep[1].data, 24, 9, i))
				self->rep[1].ret2 = i + 1;
		_exit(0);
	}
	ASSERT_EQ(0, eq_wait_blocked_in(self->child[0], UR_POLL_WCHAN, NULL,
					0));
	ASSERT_EQ(0, eq_wait_blocked(self->child[1]));
	before = vol_switches(self->child[0]);
	ASSERT_LE(0, before);
	ASSERT_EQ(0, eq_push_n(self->fd, 9, 0, 1, 24));
	/* The poller was woken (it ran, whatever it found). */
	for (i = 0; i < EQ_WAIT_MS && vol_switches(self->child[0]) == before;
	     i++)
		eq_sleep_ms(1);
	EXPECT_NE(before, vol_switches(self->child[0]));
	eq_kill_child(&self->child[0]);
	ASSERT_EQ(0, eq_push_n(self->fd, 9, 1, 1, 24));
	EXPECT_EQ(0, eq_wait_exit(self->child[1]));
	self->child[1] = 0;
	EXPECT_EQ(24, self->rep[1].ret);
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(5, cqe.user_data);
	ASSERT_EQ(1, cqe.res);
	p = eq_next_frame(buf, b.bytes, &pos, &len);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(24, len);
	for (i = 0; i < 2; i++)
		if (eq_check_fill(p, 24, 9, i))
			got = i + 1;
	/* One message each, different ones. */
	ASSERT_NE(0, got);
	ASSERT_NE(0, self->rep[1].ret2);
	EXPECT_NE(got, self->rep[1].ret2);
}

/*
 * A file's close cancels the commands parked on that file only: another
 * file's (of the same process and ring) stays parked and completes.
 */
TEST_F(ur, cmd_close_cancels_only_its_file)
{
	static const char name[] = "uring-close-a";
	struct elasticq_pop_batch b1, b2;
	struct io_uring_cqe cqe;
	static uint8_t out2[4096];
	int fd1, fd2;

	NEED_RING();
	eq_destroy(name);
	fd1 = eq_open(0);
	ASSERT_LE(0, fd1);
	fd2 = eq_open_named(name, O_RDWR, ELASTICQ_ATTACH_CREATE, 0600, NULL);
	ASSERT_LE(0, fd2);
	park_pop(_metadata, &self->ring, fd1, &b1, 1);
	pop_args(&b2, out2, sizeof(out2), 8);
	ASSERT_EQ(0, ring_cmd(&self->ring, fd2, ELASTICQ_IOC_POP_BATCH, &b2,
			      0, 2));
	EXPECT_EQ(0, ring_wait(&self->ring, &cqe, 300));
	ASSERT_EQ(0, close(fd1));
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(1, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);
	EXPECT_EQ(0, ring_wait(&self->ring, &cqe, 300));
	ASSERT_EQ(0, eq_push_n(fd2, 4, 0, 1, 30));
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(2, cqe.user_data);
	EXPECT_EQ(1, cqe.res);
	check_frames(_metadata, out2, b2.bytes, 1, 4, 0, 30);
	close(fd2);
	EXPECT_EQ(0, eq_destroy(name));
	check_nothing_parked(_metadata, self);
}

/*
 * max_parked_per_queue: with 2, a third command that must wait on the
 * queue completes at once with EBUSY (a push batch too, with its error),
 * while one that need not wait still runs; once the parked ones end, a
 * new one parks again.
 */
TEST_F(ur, cmd_park_bounded_per_queue)
{
	struct elasticq_pop_batch b1, b2, b3;
	struct elasticq_push_batch pb;
	struct elasticq_msg_vec v = { .addr = (uintptr_t)"x", .len = 1 };
	struct elasticq_config cfg;
	struct io_uring_cqe cqe;
	int fd, i, cancelled = 0;

	NEED_RING();
	ASSERT_EQ(0, ur_set_param(self, 0, 2));
	fd = eq_open(0);
	ASSERT_LE(0, fd);
	park_pop(_metadata, &self->ring, fd, &b1, 1);
	park_pop(_metadata, &self->ring, fd, &b2, 2);
	pop_args(&b3, buf, 4096, 8);
	EXPECT_EQ(-EBUSY, cmd_sync(_metadata, &self->ring, fd,
				   ELASTICQ_IOC_POP_BATCH, &b3, 0));
	/* Nothing to wait for: no bound. */
	pop_args(&b3, buf, 4096, 8);
	b3.flags = ELASTICQ_BATCH_NONBLOCK;
	EXPECT_EQ(-EAGAIN, cmd_sync(_metadata, &self->ring, fd,
				    ELASTICQ_IOC_POP_BATCH, &b3, 0));
	ASSERT_EQ(0, close(fd));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
		cancelled += cqe.res == -ECANCELED;
	}
	EXPECT_EQ(2, cancelled);

	/* Pushes count on the queue too: fill it, park one and one more. */
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	cfg.min_capacity = 1;
	cfg.initial_capacity = 1;
	cfg.max_capacity = 1;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_push_n(self->fd, 1, 0, 1, 10));
	ASSERT_EQ(0, ur_set_param(self, 0, 1));
	fd = eq_open(0);
	ASSERT_LE(0, fd);
	push_args(&pb, &v, 1);
	ASSERT_EQ(0, ring_cmd(&self->ring, fd, ELASTICQ_IOC_PUSH_BATCH, &pb,
			      0, 3));
	EXPECT_EQ(0, ring_wait(&self->ring, &cqe, 300));
	push_args(&pb, &v, 1);
	EXPECT_EQ(-EBUSY, cmd_sync(_metadata, &self->ring, fd,
				   ELASTICQ_IOC_PUSH_BATCH, &pb, 0));
	EXPECT_EQ(-EBUSY, pb.error);
	ASSERT_EQ(0, close(fd));
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(3, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);

	/* The count went back down: one parks again. */
	ASSERT_EQ(0, wait_consumers(self->fd, 0));
	fd = eq_open(0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(10, eq_pop(fd, buf, sizeof(buf)));
	park_pop(_metadata, &self->ring, fd, &b1, 4);
	ASSERT_EQ(0, close(fd));
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(4, cqe.user_data);
	EXPECT_EQ(-ECANCELED, cqe.res);
}

/*
 * max_parked_per_user: with 2, an unprivileged user's third parked
 * command completes with EDQUOT; root (CAP_SYS_RESOURCE) may go beyond.
 */
TEST_F(ur, cmd_park_bounded_per_user)
{
	struct elasticq_pop_batch b[3];
	struct io_uring_cqe cqe;
	int fd, i, cancelled = 0;

	NEED_RING();
	ASSERT_EQ(0, ur_set_param(self, 1, 2));
	self->child[0] = fork();
	ASSERT_LE(0, self->child[0]);
	if (self->child[0] == 0) {
		struct eq_child_report *rep = &self->rep[0];
		struct ring r;
		int cfd = eq_open(0);

		if (cfd < 0 || ring_init(&r, 8) || eq_drop_privileges())
			_exit(2);
		for (i = 0; i < 3; i++) {
			pop_args(&b[i], buf, 4096, 8);
			if (ring_cmd(&r, cfd, ELASTICQ_IOC_POP_BATCH,
				     &b[i], 0, i + 1))
				_exit(3);
		}
		if (ring_wait(&r, &cqe, EQ_WAIT_MS) != 1)
			_exit(4);
		rep->ret = cqe.res;
		rep->aux = cqe.user_data;
		/* The first two stay parked. */
		rep->ret2 = ring_wait(&r, &cqe, 300);
		_exit(0);
	}
	EXPECT_EQ(0, eq_wait_exit(self->child[0]));
	self->child[0] = 0;
	EXPECT_EQ(-EDQUOT, self->rep[0].ret);
	EXPECT_EQ(3, self->rep[0].aux);
	EXPECT_EQ(0, self->rep[0].ret2);

	/* Root goes beyond: three park. */
	ASSERT_EQ(0, wait_consumers(self->fd, 0));
	fd = eq_open(0);
	ASSERT_LE(0, fd);
	for (i = 0; i < 3; i++)
		park_pop(_metadata, &self->ring, fd, &b[i], i + 1);
	ASSERT_EQ(0, close(fd));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
		cancelled += cqe.res == -ECANCELED;
	}
	EXPECT_EQ(3, cancelled);
	check_nothing_parked(_metadata, self);
}

/*
 * A parked push that runs again and finds the queue still full is not
 * counted as rejected each time: woken five times by SET_CONFIG, it is
 * counted once, when it times out.
 */
TEST_F(ur, cmd_parked_push_rejected_once)
{
	struct elasticq_config cfg;
	struct elasticq_stats st0, st;
	struct elasticq_msg_vec v;
	struct elasticq_push_batch b;
	struct io_uring_cqe cqe;
	uint8_t msg[50];
	int i;

	NEED_RING();
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	cfg.min_capacity = 1;
	cfg.initial_capacity = 2;
	cfg.max_capacity = 2;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_push_n(self->fd, 6, 0, 2, 50));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	eq_fill(msg, 50, 6, 2);
	v.addr = (uintptr_t)msg;
	v.len = 50;
	push_args(&b, &v, 1);
	b.flags = ELASTICQ_BATCH_TIMEOUT;
	b.timeout_ns = 1000 * EQ_MS;
	ASSERT_EQ(0, ring_cmd(&self->ring, self->fd, ELASTICQ_IOC_PUSH_BATCH,
			      &b, 0, 3));
	for (i = 0; i < 5; i++) {
		ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
		EXPECT_EQ(0, ring_wait(&self->ring, &cqe, 20));
	}
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.rejected, st.rejected);
	ASSERT_EQ(1, ring_wait(&self->ring, &cqe, EQ_WAIT_MS));
	EXPECT_EQ(3, cqe.user_data);
	EXPECT_EQ(-ETIMEDOUT, cqe.res);
	EXPECT_EQ(-ETIMEDOUT, b.error);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.rejected + 1, st.rejected);
	EXPECT_EQ(2, st.len);
}

/* What a child of the cancel stress does after submitting its commands. */
enum { ST_EXIT, ST_EXEC, ST_RING_CLOSE, ST_FILE_CLOSE, ST_KILL, ST_HOWS };

/*
 * Child: submit @n pop commands with IOSQE_ASYNC (issued from io-wq, some
 * completing inside the issue path, some parking) while a producer pushes,
 * then end them all one way or another at once.  With ST_FILE_CLOSE it
 * reaps every completion and checks it; exit 0 if all were valid.
 */
static void stress_child(struct eq_child_report *rep, int fd, int how, int n)
{
	static struct elasticq_pop_batch b[16];
	static uint8_t out[16][256];
	struct io_uring_cqe cqe;
	struct ring r;
	int i, bad = 0;

	if (ring_init(&r, 32))
		_exit(2);
	for (i = 0; i < n; i++) {
		pop_args(&b[i], out[i], sizeof(out[i]), 1);
		b[i].flags = ELASTICQ_BATCH_TIMEOUT;
		b[i].timeout_ns = (i % 4) * EQ_MS;
		if (ring_cmd_flags(&r, fd, ELASTICQ_IOC_POP_BATCH, &b[i], 0,
				   i, IOSQE_ASYNC))
			_exit(3);
	}
	switch (how) {
	case ST_EXIT:
		_exit(0);
	case ST_EXEC:
		execl("/bin/true", "true", (char *)NULL);
		_exit(4);
	case ST_RING_CLOSE:
		ring_exit(&r);
		_exit(0);
	case ST_KILL:
		kill(getpid(), SIGKILL);
		_exit(5);
	}
	close(fd);
	for (i = 0; i < n; i++) {
		if (ring_wait(&r, &cqe, EQ_WAIT_MS) != 1)
			_exit(6);
		/* EBADF: io-wq issued it after the close. */
		if (cqe.user_data >= (uint64_t)n ||
		    (cqe.res != 1 && cqe.res != -ETIMEDOUT &&
		     cqe.res != -ECANCELED && cqe.res != -EBADF) ||
		    (cqe.res == 1 &&
		     (b[cqe.user_data].bytes != ELASTICQ_FRAME_SIZE(16) ||
		      *(uint32_t *)out[cqe.user_data] != 16))) {
			if (!bad++) {
				rep->ret = cqe.res;
				rep->ret2 = cqe.user_data;
				rep->aux = cqe.res == 1 ?
					   (long)b[cqe.user_data].bytes : 0;
			}
		}
	}
	_exit(bad ? 7 : 0);
}

/*
 * Commands issued from io-wq (IOSQE_ASYNC) race with their cancellation:
 * the task exits, execs or is killed, the ring or the file is closed,
 * while a producer pushes.  Nothing hangs, every child ends as it should,
 * every completion reaped is valid (and the kernel log stays clean: the
 * harness checks it, KASAN included).
 */
TEST_F_TIMEOUT(ur, cmd_async_cancel_stress, 300)
{
	uint64_t end = eq_now_ns() + 20000 * EQ_MS;
	int iters = eq_scale(100), i, st, fd;
	pid_t prod;

	NEED_RING();
	fd = eq_open(O_NONBLOCK);
	ASSERT_LE(0, fd);
	prod = fork();
	ASSERT_LE(0, prod);
	if (prod == 0) {
		static uint8_t m[16];

		for (;;)
			if (eq_push(fd, m, 16) < 0)
				usleep(100);
	}
	self->child[1] = prod;
	for (i = 0; i < iters && eq_now_ns() < end; i++) {
		int how = i % ST_HOWS;

		self->child[0] = fork();
		ASSERT_LE(0, self->child[0]);
		if (self->child[0] == 0)
			stress_child(&self->rep[2], self->fd, how, 16);
		st = eq_wait_exit(self->child[0]);
		self->child[0] = 0;
		ASSERT_EQ(how == ST_KILL ? 1000 + SIGKILL : 0, st) {
			TH_LOG("iteration %d, how %d: res %ld of %ld, aux %ld",
			       i, how, self->rep[2].ret, self->rep[2].ret2,
			       self->rep[2].aux);
		}
	}
	TH_LOG("%d iterations", i);
	eq_kill_child(&self->child[1]);
	close(fd);
	check_kept(_metadata, self);
}

TEST_HARNESS_MAIN
