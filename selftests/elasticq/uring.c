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
 * exits or tears the ring down, and consume nothing.
 * Raw system calls: what is tested is the kernel, not a library.
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

/* Submit one IORING_OP_URING_CMD; 0 or -errno. */
static int ring_cmd(struct ring *r, int fd, uint32_t op, void *arg,
		    uint64_t reserved, uint64_t data)
{
	struct io_uring_sqe *sqe = ring_sqe(r);
	struct elasticq_uring_cmd c = {
		.arg = (uintptr_t)arg,
		.reserved = reserved,
	};

	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	sqe->cmd_op = op;
	memcpy(sqe->cmd, &c, sizeof(c));
	sqe->user_data = data;
	return ring_submit(r);
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

TEST_HARNESS_MAIN
