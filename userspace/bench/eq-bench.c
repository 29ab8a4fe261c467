// SPDX-License-Identifier: MIT
/*
 * eq-bench: elasticq against the kernel's other message transports.
 *
 * P producer processes send a fixed number of messages to one consumer
 * process, through one transport at a time:
 *
 *   elasticq, both variants (a named queue created per run, destroyed
 *   after it), each with write/read, the PUSH_BATCH/POP_BATCH ioctls and
 *   io_uring (IORING_OP_URING_CMD push and pop batches);
 *   POSIX mqueue, a pipe in packet mode (O_DIRECT), and an AF_UNIX
 *   datagram socket pair, plain and with sendmmsg/recvmmsg.
 *
 * Every message carries its producer's id and a sequence number; the
 * consumer checks that each producer's messages arrive exactly once and
 * in order.  A run that fails the check (or times out) is an error: it is
 * reported and the program exits 1 after printing everything else.
 *
 * Repetitions are interleaved (the repetition loop is outside the
 * configuration loop) so that slow phases of a noisy host, such as QEMU's
 * software emulation, spread over all configurations instead of hitting a
 * few.  For each configuration the table shows the median messages/s with
 * its min and max, the ratio to the best non-elasticq peer with the same
 * producers and message size, and the CPU time (user + system, of all the
 * processes of a run) per message, also as a multiple of a null system
 * call (getppid) timed in the same boot.
 *
 * Every transport holds at most about DEPTH (-q) messages, so that none
 * wins by buffering the whole run: mq_maxmsg, the pipe's size in pages
 * (one packet takes one page slot), the socket buffers, and elasticq's
 * max_capacity.
 *
 * This is a benchmark: it prints numbers and writes CSV, it asserts
 * nothing about them.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/elasticq.h>

#define MAX_PRODUCERS	64
#define MAX_SIZES	8
#define MAX_BATCH	ELASTICQ_BATCH_MAX

enum kind { EQ_RW, EQ_BATCH, EQ_URING, MQUEUE, PIPE, UNIX_DGRAM, UNIX_MMSG };

struct transport {
	const char *name;
	enum kind kind;
	unsigned int variant;	/* elasticq only */
	int peer;		/* not elasticq: a baseline to compare with */
};

static const struct transport transports[] = {
	{ "eq-locked-rw", EQ_RW, ELASTICQ_VARIANT_LOCKED, 0 },
	{ "eq-locked-batch", EQ_BATCH, ELASTICQ_VARIANT_LOCKED, 0 },
	{ "eq-locked-uring", EQ_URING, ELASTICQ_VARIANT_LOCKED, 0 },
	{ "eq-lockfree-rw", EQ_RW, ELASTICQ_VARIANT_LOCKFREE, 0 },
	{ "eq-lockfree-batch", EQ_BATCH, ELASTICQ_VARIANT_LOCKFREE, 0 },
	{ "eq-lockfree-uring", EQ_URING, ELASTICQ_VARIANT_LOCKFREE, 0 },
	{ "mqueue", MQUEUE, 0, 1 },
	{ "pipe-packet", PIPE, 0, 1 },
	{ "unix-dgram", UNIX_DGRAM, 0, 1 },
	{ "unix-mmsg", UNIX_MMSG, 0, 1 },
};
#define NTRANSPORTS (sizeof(transports) / sizeof(transports[0]))

/* Command-line settings. */
static struct {
	unsigned long messages;		/* per run, over all producers */
	unsigned int reps;
	unsigned int batch;		/* messages per batch call */
	unsigned int depth;		/* messages a transport may hold */
	unsigned int uring_depth;	/* pop batches in flight */
	unsigned int producers[MAX_SIZES];
	unsigned int nproducers;
	unsigned int sizes[MAX_SIZES];
	unsigned int nsizes;
	const char *only;		/* comma-separated transport names */
	const char *outdir;
	unsigned int timeout_s;		/* per run */
	unsigned long null_calls;
} opt = {
	.messages = 25000,	/* about 6 minutes for everything under TCG */
	.reps = 5,
	.batch = 32,
	.depth = 256,
	.uring_depth = 1,
	.producers = { 1, 4 },
	.nproducers = 2,
	.sizes = { 64, 4096 },
	.nsizes = 2,
	.outdir = ".",
	.timeout_s = 120,
	.null_calls = 200000,
};

/* The head of every message; the rest of it is filler. */
struct msg_hdr {
	uint32_t producer;
	uint32_t seq;
};

/* One run: a transport, a producer count and a message size. */
struct run {
	const struct transport *t;
	unsigned int producers;
	unsigned int size;
	unsigned long per_producer;
	int fds[2];			/* pipe or socket pair */
	mqd_t mq;
	int eq_fd;			/* the creator's file, elasticq */
	char name[ELASTICQ_NAME_SIZE];	/* the elasticq or mqueue name */
};

/* What the consumer tells the parent at the end of a run. */
struct verdict {
	double t_end;
	int ok;
	char why[200];
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv)
{
	return tv.tv_sec + tv.tv_usec / 1e6;
}

static void fail(const char *what)
{
	fprintf(stderr, "eq-bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ------------------------------------------------------------------ */
/* elasticq setup                                                      */

static int eq_attach(int fd, const char *name, unsigned int flags,
		     struct elasticq_config *cfg)
{
	struct elasticq_attach a = {
		.size = sizeof(a),
		.flags = flags,
		.mode = cfg ? 0600 : 0,
		.config = (uintptr_t)cfg,
	};

	snprintf(a.name, sizeof(a.name), "%s", name);
	return ioctl(fd, ELASTICQ_IOC_ATTACH, &a);
}

/* Opens a file of the run's queue (made by eq_create). */
static int eq_open(const struct run *r, int oflags)
{
	int fd = open(ELASTICQ_DEVICE_PATH, oflags | O_CLOEXEC);

	if (fd < 0)
		fail("open " ELASTICQ_DEVICE_PATH);
	if (eq_attach(fd, r->name, 0, NULL))
		fail("ELASTICQ_IOC_ATTACH");
	return fd;
}

static void eq_create(struct run *r)
{
	struct elasticq_config cfg = { .size = sizeof(cfg) };
	static unsigned int serial;

	r->eq_fd = open(ELASTICQ_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (r->eq_fd < 0)
		fail("open " ELASTICQ_DEVICE_PATH);
	/* The module's defaults for what is not about this benchmark. */
	if (ioctl(r->eq_fd, ELASTICQ_IOC_GET_CONFIG, &cfg))
		fail("ELASTICQ_IOC_GET_CONFIG");
	cfg.size = sizeof(cfg);
	cfg.variant = r->t->variant;
	cfg.full_policy = ELASTICQ_FULL_BLOCK;
	cfg.max_msg_size = r->size > cfg.max_msg_size ? r->size : cfg.max_msg_size;
	/* Start small and let the run grow the ring up to DEPTH. */
	cfg.min_capacity = opt.depth < 64 ? opt.depth : 64;
	cfg.initial_capacity = cfg.min_capacity;
	cfg.max_capacity = opt.depth;
	if (cfg.max_bytes < (uint64_t)opt.depth * r->size)
		cfg.max_bytes = (uint64_t)opt.depth * r->size;
	cfg.push_timeout_ns = ELASTICQ_TIMEOUT_NONE;
	cfg.pop_timeout_ns = ELASTICQ_TIMEOUT_NONE;
	snprintf(r->name, sizeof(r->name), "eq-bench.%d.%u", getpid(), serial++);
	if (eq_attach(r->eq_fd, r->name,
		      ELASTICQ_ATTACH_CREATE | ELASTICQ_ATTACH_EXCL, &cfg))
		fail("ELASTICQ_IOC_ATTACH (create)");
}

static void eq_remove(struct run *r)
{
	struct elasticq_destroy d = { .size = sizeof(d) };

	snprintf(d.name, sizeof(d.name), "%s", r->name);
	if (ioctl(r->eq_fd, ELASTICQ_IOC_DESTROY, &d))
		fail("ELASTICQ_IOC_DESTROY");
	close(r->eq_fd);
}

/* ------------------------------------------------------------------ */
/* io_uring commands, SQE fields set by hand: liburing 2.3 has no     */
/* io_uring_prep_cmd                                                   */

static void prep_eq_cmd(struct io_uring_sqe *sqe, int fd, unsigned int op,
			void *arg)
{
	struct elasticq_uring_cmd *c;

	/* Never: the rings are sized for every SQE in flight. */
	if (!sqe) {
		errno = EBUSY;
		fail("io_uring_get_sqe");
	}
	c = (void *)sqe->cmd;
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	sqe->cmd_op = op;
	c->arg = (uintptr_t)arg;
	c->reserved = 0;
}

/* Submits one command and waits for it: returns its CQE res. */
static int uring_run(struct io_uring *ring, int fd, unsigned int op, void *arg)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	int ret;

	prep_eq_cmd(sqe, fd, op, arg);
	ret = io_uring_submit_and_wait(ring, 1);
	if (ret < 0)
		return ret;
	ret = io_uring_wait_cqe(ring, &cqe);
	if (ret < 0)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return ret;
}

/* ------------------------------------------------------------------ */
/* producers                                                           */

/* Stamps a message with its producer and sequence number. */
static void fill(unsigned char *m, uint32_t id, uint32_t seq)
{
	struct msg_hdr h = { .producer = id, .seq = seq };

	memcpy(m, &h, sizeof(h));
}

/* Sends the @n consecutive messages in @buf with batch calls. */
static void send_batch(const struct run *r, int fd, struct io_uring *ring,
		       unsigned char *buf, unsigned int n)
{
	struct elasticq_msg_vec v[MAX_BATCH];
	struct mmsghdr mm[MAX_BATCH];
	struct iovec iov[MAX_BATCH];
	unsigned int i, done = 0;
	int ret;

	for (i = 0; i < n; i++) {
		v[i].addr = (uintptr_t)(buf + (size_t)i * r->size);
		v[i].len = r->size;
		iov[i].iov_base = buf + (size_t)i * r->size;
		iov[i].iov_len = r->size;
		memset(&mm[i], 0, sizeof(mm[i]));
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	/* A batch may stop early (like sendmmsg): send the rest again. */
	while (done < n) {
		if (r->t->kind == UNIX_MMSG) {
			ret = sendmmsg(fd, mm + done, n - done, 0);
		} else {
			struct elasticq_push_batch pb = {
				.size = sizeof(pb),
				.msgs = (uintptr_t)(v + done),
				.count = n - done,
			};

			if (r->t->kind == EQ_URING) {
				ret = uring_run(ring, fd, ELASTICQ_IOC_PUSH_BATCH, &pb);
				if (ret < 0) {
					errno = -ret;
					ret = -1;
				}
			} else {
				ret = ioctl(fd, ELASTICQ_IOC_PUSH_BATCH, &pb);
			}
		}
		if (ret < 0 && errno != EINTR)
			fail("push batch");
		if (ret > 0)
			done += ret;
	}
}

static void send_one(const struct run *r, int fd, const unsigned char *m)
{
	ssize_t ret;

	do {
		switch (r->t->kind) {
		case MQUEUE:
			ret = mq_send(r->mq, (const char *)m, r->size, 0) ? -1 : (ssize_t)r->size;
			break;
		case UNIX_DGRAM:
			ret = send(fd, m, r->size, 0);
			break;
		default:
			ret = write(fd, m, r->size);
			break;
		}
	} while (ret < 0 && errno == EINTR);
	if (ret != (ssize_t)r->size)
		fail("send");
}

static void producer(const struct run *r, uint32_t id, int ready, int go)
{
	unsigned int batch = r->t->kind == EQ_BATCH || r->t->kind == EQ_URING ||
			     r->t->kind == UNIX_MMSG ? opt.batch : 1;
	unsigned char *buf = calloc(batch, r->size);
	struct io_uring ring;
	unsigned long seq = 0;
	int fd = -1;
	char c = 0;

	if (!buf)
		fail("calloc");
	switch (r->t->kind) {
	case EQ_RW:
	case EQ_BATCH:
	case EQ_URING:
		fd = eq_open(r, O_WRONLY);
		if (r->t->kind == EQ_URING && io_uring_queue_init(4, &ring, 0))
			fail("io_uring_queue_init");
		break;
	case PIPE:
		fd = r->fds[1];
		break;
	case UNIX_DGRAM:
	case UNIX_MMSG:
		fd = r->fds[0];
		break;
	case MQUEUE:
		break;
	}
	if (write(ready, &c, 1) != 1 || read(go, &c, 1) < 0)
		fail("start");
	while (seq < r->per_producer) {
		unsigned int n = batch, i;

		if (n > r->per_producer - seq)
			n = r->per_producer - seq;
		for (i = 0; i < n; i++)
			fill(buf + (size_t)i * r->size, id, seq + i);
		if (batch > 1)
			send_batch(r, fd, &ring, buf, n);
		else
			send_one(r, fd, buf);
		seq += n;
	}
	exit(0);
}

/* ------------------------------------------------------------------ */
/* the consumer                                                        */

struct checker {
	const struct run *r;
	unsigned long next[MAX_PRODUCERS];
	unsigned long got, want;
	struct verdict v;
};

/* Checks one message; returns 0 once the run's last message came. */
static int check(struct checker *k, const unsigned char *m, size_t len)
{
	struct msg_hdr h;

	if (len != k->r->size) {
		snprintf(k->v.why, sizeof(k->v.why),
			 "message %lu: %zu bytes, sent %u", k->got, len, k->r->size);
		return -1;
	}
	memcpy(&h, m, sizeof(h));
	if (h.producer >= k->r->producers) {
		snprintf(k->v.why, sizeof(k->v.why),
			 "message %lu: from producer %u of %u", k->got,
			 h.producer, k->r->producers);
		return -1;
	}
	if (h.seq != k->next[h.producer]) {
		snprintf(k->v.why, sizeof(k->v.why),
			 "producer %u: got seq %u, expected %lu (lost, repeated or reordered)",
			 h.producer, h.seq, k->next[h.producer]);
		return -1;
	}
	k->next[h.producer]++;
	k->got++;
	return k->got < k->want;
}

/* Walks the frames of a pop batch. */
static int check_frames(struct checker *k, const unsigned char *buf,
			uint64_t bytes, int n)
{
	uint64_t off = 0;
	int ret = 1;

	while (n-- > 0 && ret > 0) {
		const struct elasticq_frame *f = (const void *)(buf + off);

		if (off + sizeof(*f) > bytes ||
		    off + ELASTICQ_FRAME_SIZE(f->len) > bytes) {
			snprintf(k->v.why, sizeof(k->v.why), "frames overrun %llu bytes",
				 (unsigned long long)bytes);
			return -1;
		}
		ret = check(k, (const unsigned char *)(f + 1), f->len);
		off += ELASTICQ_FRAME_SIZE(f->len);
	}
	return ret;
}

static int consume_uring(struct checker *k, int fd)
{
	size_t buf_len = opt.batch * ELASTICQ_FRAME_SIZE(k->r->size);
	unsigned int depth = opt.uring_depth, i;
	struct elasticq_pop_batch *b = calloc(depth, sizeof(*b));
	unsigned char *bufs = malloc(depth * buf_len);
	unsigned long inflight = 0;
	struct io_uring ring;
	int ret = 1;

	if (!b || !bufs)
		fail("calloc");
	if (io_uring_queue_init(2 * depth, &ring, 0))
		fail("io_uring_queue_init");
	/*
	 * Several pops in flight let the kernel fill one buffer while this
	 * process checks another.  Each takes at least one message, so one
	 * more may go out only while more messages are due than pops are in
	 * flight: otherwise the last would wait forever.
	 */
	for (i = 0; i < depth; i++)
		b[i] = (struct elasticq_pop_batch){
			.size = sizeof(b[i]),
			.buf = (uintptr_t)(bufs + i * buf_len),
			.buf_len = buf_len,
			.max_msgs = opt.batch,
		};
	for (i = 0; i < depth && k->want > inflight; i++, inflight++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		prep_eq_cmd(sqe, fd, ELASTICQ_IOC_POP_BATCH, &b[i]);
		io_uring_sqe_set_data64(sqe, i);
	}
	while (ret > 0) {
		struct io_uring_cqe *cqe;
		uint64_t idx;
		int res;

		if (io_uring_submit_and_wait(&ring, 1) < 0)
			fail("io_uring_submit_and_wait");
		if (io_uring_peek_cqe(&ring, &cqe))
			continue;
		idx = cqe->user_data;
		res = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		inflight--;
		if (res < 0) {
			snprintf(k->v.why, sizeof(k->v.why), "uring pop batch: %s",
				 strerror(-res));
			return -1;
		}
		ret = check_frames(k, bufs + idx * buf_len, b[idx].bytes, res);
		if (ret > 0 && k->want - k->got > inflight) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			prep_eq_cmd(sqe, fd, ELASTICQ_IOC_POP_BATCH, &b[idx]);
			io_uring_sqe_set_data64(sqe, idx);
			inflight++;
		}
	}
	return ret;
}

static int consume(struct checker *k, int fd)
{
	const struct run *r = k->r;
	size_t buf_len = opt.batch * ELASTICQ_FRAME_SIZE(r->size);
	unsigned char *buf = malloc(buf_len > 16384 ? buf_len : 16384);
	struct mmsghdr mm[MAX_BATCH];
	struct iovec iov[MAX_BATCH];
	unsigned int i;
	int ret = 1;

	if (!buf)
		fail("malloc");
	if (r->t->kind == EQ_URING)
		return consume_uring(k, fd);
	for (i = 0; i < opt.batch; i++) {
		iov[i].iov_base = buf + (size_t)i * r->size;
		/* One byte more than sent: a longer message shows as such. */
		iov[i].iov_len = r->size + 1;
		memset(&mm[i], 0, sizeof(mm[i]));
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	while (ret > 0) {
		struct elasticq_pop_batch b;
		ssize_t n;
		int j;

		switch (r->t->kind) {
		case EQ_BATCH:
			b = (struct elasticq_pop_batch){
				.size = sizeof(b),
				.buf = (uintptr_t)buf,
				.buf_len = buf_len,
				.max_msgs = opt.batch,
			};
			n = ioctl(fd, ELASTICQ_IOC_POP_BATCH, &b);
			if (n > 0)
				ret = check_frames(k, buf, b.bytes, n);
			break;
		case UNIX_MMSG:
			n = recvmmsg(fd, mm, opt.batch, MSG_WAITFORONE, NULL);
			for (j = 0; j < n && ret > 0; j++)
				ret = check(k, buf + (size_t)j * r->size, mm[j].msg_len);
			break;
		case MQUEUE:
			/* mq_receive wants room for the queue's mq_msgsize. */
			n = mq_receive(r->mq, (char *)buf, r->size, NULL);
			if (n >= 0)
				ret = check(k, buf, n);
			break;
		case UNIX_DGRAM:
			n = recv(fd, buf, r->size + 1, 0);
			if (n >= 0)
				ret = check(k, buf, n);
			break;
		default:	/* elasticq read(2), pipe */
			n = read(fd, buf, r->size + 1);
			if (n >= 0)
				ret = check(k, buf, n);
			break;
		}
		if (n < 0 && errno != EINTR) {
			snprintf(k->v.why, sizeof(k->v.why), "receive: %s",
				 strerror(errno));
			return -1;
		}
	}
	return ret;
}

static void consumer(const struct run *r, int ready, int go, int result)
{
	struct checker *k = calloc(1, sizeof(*k));
	int fd = -1;
	char c = 0;

	if (!k)
		fail("calloc");
	k->r = r;
	k->want = r->per_producer * r->producers;
	switch (r->t->kind) {
	case EQ_RW:
	case EQ_BATCH:
	case EQ_URING:
		fd = eq_open(r, O_RDONLY);
		if (ioctl(fd, ELASTICQ_IOC_CONSUME, 0))
			fail("ELASTICQ_IOC_CONSUME");
		break;
	case PIPE:
		fd = r->fds[0];
		break;
	case UNIX_DGRAM:
	case UNIX_MMSG:
		fd = r->fds[1];
		break;
	case MQUEUE:
		break;
	}
	if (write(ready, &c, 1) != 1 || read(go, &c, 1) < 0)
		fail("start");
	k->v.ok = consume(k, fd) == 0;
	k->v.t_end = now();
	if (write(result, &k->v, sizeof(k->v)) != sizeof(k->v))
		fail("write verdict");
	exit(0);
}

/* ------------------------------------------------------------------ */
/* one run                                                             */

static void setup(struct run *r)
{
	switch (r->t->kind) {
	case EQ_RW:
	case EQ_BATCH:
	case EQ_URING:
		eq_create(r);
		break;
	case MQUEUE: {
		struct mq_attr attr = { .mq_maxmsg = opt.depth, .mq_msgsize = r->size };

		snprintf(r->name, sizeof(r->name), "/eq-bench.%d", getpid());
		mq_unlink(r->name);
		r->mq = mq_open(r->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
				0600, &attr);
		if (r->mq == (mqd_t)-1)
			fail("mq_open (raise /proc/sys/fs/mqueue/msg_max?)");
		break;
	}
	case PIPE:
		if (pipe2(r->fds, O_DIRECT | O_CLOEXEC))
			fail("pipe2");
		/* Each packet takes a page slot, whatever its size. */
		if (fcntl(r->fds[1], F_SETPIPE_SZ, opt.depth * 4096) < 0)
			fail("F_SETPIPE_SZ");
		break;
	case UNIX_DGRAM:
	case UNIX_MMSG: {
		/* skb overhead counts against the buffers: about DEPTH messages */
		int sz = opt.depth * (r->size + 512), i;

		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, r->fds))
			fail("socketpair");
		for (i = 0; i < 2; i++) {
			if (setsockopt(r->fds[i], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) &&
			    setsockopt(r->fds[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)))
				fail("SO_SNDBUF");
			if (setsockopt(r->fds[i], SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) &&
			    setsockopt(r->fds[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)))
				fail("SO_RCVBUF");
		}
		break;
	}
	}
}

static void teardown(struct run *r)
{
	switch (r->t->kind) {
	case EQ_RW:
	case EQ_BATCH:
	case EQ_URING:
		eq_remove(r);
		break;
	case MQUEUE:
		mq_close(r->mq);
		mq_unlink(r->name);
		break;
	default:
		close(r->fds[0]);
		close(r->fds[1]);
		break;
	}
}

struct result {
	int ok;
	double mps;		/* messages per second */
	double cpu_ns;		/* CPU ns per message, all processes */
	double wall_s;
	char why[256];
};

/*
 * Forks the consumer and the producers, lets them go at once, and waits
 * for the consumer's verdict.  CPU time is the children's rusage from
 * wait4, so setup is included (it is small against the run).
 */
static struct result run_once(struct run *r)
{
	int ready[2], go[2], result[2];
	unsigned int nproc = r->producers + 1, i, alive;
	pid_t pids[MAX_PRODUCERS + 1];
	struct result res = { 0 };
	struct verdict v = { 0 };
	double cpu = 0, t0, deadline;
	int got_verdict = 0, failed = 0;
	char c;

	r->per_producer = opt.messages / r->producers;
	setup(r);
	if (pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC) || pipe2(result, O_CLOEXEC))
		fail("pipe2");
	/* Or the children's exit() writes what is buffered again. */
	fflush(NULL);
	for (i = 0; i < nproc; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			fail("fork");
		if (pids[i] == 0) {
			close(go[1]);
			if (i == 0)
				consumer(r, ready[1], go[0], result[1]);
			producer(r, i - 1, ready[1], go[0]);
		}
	}
	close(ready[1]);
	close(go[0]);
	close(result[1]);
	for (i = 0; i < nproc; i++)
		if (read(ready[0], &c, 1) != 1)
			break;
	if (i < nproc) {
		snprintf(res.why, sizeof(res.why), "a process failed to start");
		failed = 1;
	}
	/* Closing the go pipe releases every child at once. */
	t0 = now();
	close(go[1]);
	deadline = t0 + opt.timeout_s;
	for (alive = nproc; alive;) {
		struct pollfd p = { .fd = result[0], .events = POLLIN };
		struct rusage ru;
		int status;
		pid_t pid;

		if (!got_verdict && poll(&p, 1, 50) > 0) {
			if (read(result[0], &v, sizeof(v)) == sizeof(v))
				got_verdict = 1;
		} else if (got_verdict) {
			usleep(1000);
		}
		while ((pid = wait4(-1, &status, WNOHANG, &ru)) > 0) {
			alive--;
			cpu += tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
			if (!failed && (!WIFEXITED(status) || WEXITSTATUS(status))) {
				snprintf(res.why, sizeof(res.why),
					 "%s %d exited with status 0x%x",
					 pid == pids[0] ? "consumer" : "producer",
					 (int)pid, status);
				failed = 1;
			}
		}
		if (!failed && now() > deadline) {
			snprintf(res.why, sizeof(res.why), "timed out after %u s",
				 opt.timeout_s);
			failed = 1;
		}
		/* One process failed: the others may wait forever. */
		if (failed && alive) {
			for (i = 0; i < nproc; i++)
				kill(pids[i], SIGKILL);
		}
	}
	close(ready[0]);
	close(result[0]);
	teardown(r);
	if (!failed && !got_verdict) {
		snprintf(res.why, sizeof(res.why), "no verdict from the consumer");
		failed = 1;
	}
	if (!failed && !v.ok) {
		snprintf(res.why, sizeof(res.why), "verification: %s", v.why);
		failed = 1;
	}
	if (failed)
		return res;
	res.ok = 1;
	res.wall_s = v.t_end - t0;
	res.mps = r->per_producer * r->producers / res.wall_s;
	res.cpu_ns = cpu * 1e9 / (r->per_producer * r->producers);
	return res;
}

/* ------------------------------------------------------------------ */
/* statistics and output                                               */

struct config {
	const struct transport *t;
	unsigned int producers, size;
	double *mps, *cpu_ns;	/* one per good repetition */
	unsigned int good, bad;
	char why[256];		/* the first failure */
	double med_mps, min_mps, max_mps, med_cpu, min_cpu, max_cpu, ratio;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ns of CPU per getppid(), the cheapest system call that does a little. */
static double null_syscall_ns(void)
{
	struct timespec a, b;
	unsigned long i;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
	for (i = 0; i < opt.null_calls; i++)
		syscall(SYS_getppid);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
	return ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) /
	       opt.null_calls;
}

/*
 * POSIX mqueue's limits: the guest's defaults (10 messages, 800 KiB per
 * user) are far below DEPTH messages of 4 KiB.  Best effort: a failure
 * shows as mq_open failing.
 */
static void raise_mqueue_limits(void)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	char val[32];
	FILE *f;

	setrlimit(RLIMIT_MSGQUEUE, &rl);
	f = fopen("/proc/sys/fs/mqueue/msg_max", "w");
	if (f) {
		snprintf(val, sizeof(val), "%u\n", opt.depth > 10 ? opt.depth : 10);
		fputs(val, f);
		fclose(f);
	}
	f = fopen("/proc/sys/fs/mqueue/msgsize_max", "w");
	if (f) {
		unsigned int max = 8192, i;

		for (i = 0; i < opt.nsizes; i++)
			if (opt.sizes[i] > max)
				max = opt.sizes[i];
		snprintf(val, sizeof(val), "%u\n", max);
		fputs(val, f);
		fclose(f);
	}
}

static int selected(const struct transport *t)
{
	const char *p = opt.only;
	size_t n = strlen(t->name);

	if (!p)
		return 1;
	while ((p = strstr(p, t->name))) {
		if ((p == opt.only || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return 1;
		p += n;
	}
	return 0;
}

static unsigned int parse_list(const char *s, unsigned int *v)
{
	unsigned int n = 0;
	char *end;

	while (*s && n < MAX_SIZES) {
		v[n++] = strtoul(s, &end, 0);
		if (*end && *end != ',')
			break;
		s = *end ? end + 1 : end;
	}
	return n;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: eq-bench [-n messages-per-run] [-r reps] [-b batch] [-q depth]\n"
		"                [-d uring-pops-in-flight] [-p producers,...] [-s sizes,...]\n"
		"                [-t transport,...] [-o csv-dir] [-T run-timeout-s]\n"
		"transports:");
	for (unsigned int i = 0; i < NTRANSPORTS; i++)
		fprintf(stderr, " %s", transports[i].name);
	fprintf(stderr, "\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	int c;

	while ((c = getopt(argc, argv, "n:r:b:q:d:p:s:t:o:T:h")) != -1) {
		switch (c) {
		case 'n': opt.messages = strtoul(optarg, NULL, 0); break;
		case 'r': opt.reps = strtoul(optarg, NULL, 0); break;
		case 'b': opt.batch = strtoul(optarg, NULL, 0); break;
		case 'q': opt.depth = strtoul(optarg, NULL, 0); break;
		case 'd': opt.uring_depth = strtoul(optarg, NULL, 0); break;
		case 'p': opt.nproducers = parse_list(optarg, opt.producers); break;
		case 's': opt.nsizes = parse_list(optarg, opt.sizes); break;
		case 't': opt.only = optarg; break;
		case 'o': opt.outdir = optarg; break;
		case 'T': opt.timeout_s = strtoul(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (optind != argc || !opt.messages || !opt.reps || !opt.depth ||
	    !opt.batch || opt.batch > MAX_BATCH || !opt.uring_depth ||
	    opt.uring_depth > 64 || !opt.nproducers || !opt.nsizes)
		usage();
	for (unsigned int i = 0; i < opt.nproducers; i++)
		if (!opt.producers[i] || opt.producers[i] > MAX_PRODUCERS ||
		    opt.messages < opt.producers[i])
			usage();
	for (unsigned int i = 0; i < opt.nsizes; i++)
		if (opt.sizes[i] < sizeof(struct msg_hdr) || opt.sizes[i] > 65536)
			usage();
}

static FILE *open_csv(const char *file)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", opt.outdir, file);
	f = fopen(path, "w");
	if (!f)
		fail(path);
	return f;
}

int main(int argc, char **argv)
{
	struct config *cfgs;
	unsigned int ncfg = 0, i, rep, errors = 0, slot = 0;
	double *null_ns, null_med;
	FILE *runs, *sum;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv);
	raise_mqueue_limits();
	cfgs = calloc(NTRANSPORTS * opt.nproducers * opt.nsizes, sizeof(*cfgs));
	null_ns = calloc(opt.reps, sizeof(*null_ns));
	if (!cfgs || !null_ns)
		fail("calloc");
	/* Grouped as the table and the chart show them. */
	for (unsigned int s = 0; s < opt.nsizes; s++)
		for (unsigned int p = 0; p < opt.nproducers; p++)
			for (i = 0; i < NTRANSPORTS; i++) {
				struct config *c = &cfgs[ncfg];

				if (!selected(&transports[i]))
					continue;
				c->t = &transports[i];
				c->producers = opt.producers[p];
				c->size = opt.sizes[s];
				c->mps = calloc(opt.reps, sizeof(double));
				c->cpu_ns = calloc(opt.reps, sizeof(double));
				if (!c->mps || !c->cpu_ns)
					fail("calloc");
				ncfg++;
			}
	if (!ncfg)
		usage();

	runs = open_csv("bench-runs.csv");
	fprintf(runs, "rep,transport,producers,size,messages,ok,wall_s,msgs_per_s,cpu_ns_per_msg,error\n");
	printf("eq-bench: %u configurations x %u repetitions, %lu messages per run, "
	       "batch %u, depth %u, io_uring pops in flight %u\n",
	       ncfg, opt.reps, opt.messages, opt.batch, opt.depth, opt.uring_depth);
	for (rep = 0; rep < opt.reps; rep++) {
		double t = now();

		null_ns[rep] = null_syscall_ns();
		for (i = 0; i < ncfg; i++) {
			struct config *c = &cfgs[i];
			struct run r = { .t = c->t, .producers = c->producers,
					 .size = c->size };
			struct result res = run_once(&r);
			unsigned long msgs = r.per_producer * r.producers;

			fprintf(runs, "%u,%s,%u,%u,%lu,%d,%.6f,%.1f,%.1f,\"%s\"\n",
				rep, c->t->name, c->producers, c->size, msgs,
				res.ok, res.wall_s, res.mps, res.cpu_ns, res.why);
			fflush(runs);
			if (!res.ok) {
				if (!c->bad++)
					snprintf(c->why, sizeof(c->why), "%s", res.why);
				fprintf(stderr, "eq-bench: ERROR %s P=%u %uB rep %u: %s\n",
					c->t->name, c->producers, c->size, rep, res.why);
				continue;
			}
			c->mps[c->good] = res.mps;
			c->cpu_ns[c->good++] = res.cpu_ns;
		}
		printf("repetition %u/%u done in %.1f s (null syscall %.0f ns)\n",
		       rep + 1, opt.reps, now() - t, null_ns[rep]);
	}
	fclose(runs);
	null_med = median(null_ns, opt.reps);

	for (i = 0; i < ncfg; i++) {
		struct config *c = &cfgs[i];

		if (!c->good)
			continue;
		c->med_mps = median(c->mps, c->good);
		c->min_mps = c->mps[0];
		c->max_mps = c->mps[c->good - 1];
		c->med_cpu = median(c->cpu_ns, c->good);
		c->min_cpu = c->cpu_ns[0];
		c->max_cpu = c->cpu_ns[c->good - 1];
	}
	/* The best peer of each (producers, size) group. */
	for (i = 0; i < ncfg; i++) {
		double best = 0;

		for (unsigned int j = 0; j < ncfg; j++)
			if (cfgs[j].t->peer && cfgs[j].producers == cfgs[i].producers &&
			    cfgs[j].size == cfgs[i].size && cfgs[j].med_mps > best)
				best = cfgs[j].med_mps;
		cfgs[i].ratio = best > 0 ? cfgs[i].med_mps / best : 0;
	}

	sum = open_csv("bench.csv");
	fprintf(sum, "transport,elasticq,producers,size,reps_ok,reps_failed,"
		"median_msgs_per_s,min_msgs_per_s,max_msgs_per_s,ratio_to_best_peer,"
		"cpu_ns_per_msg,min_cpu_ns_per_msg,max_cpu_ns_per_msg,null_syscall_ns,"
		"x_null_syscall,group,slot\n");
	printf("\nnull syscall (getppid): %.0f ns CPU, median of %u\n", null_med, opt.reps);
	for (i = 0; i < ncfg; i++) {
		struct config *c = &cfgs[i];
		unsigned int group = 0;	/* the chart's panel, and place in it */

		for (unsigned int j = 0; j < opt.nsizes; j++)
			for (unsigned int p = 0; p < opt.nproducers; p++)
				if (opt.sizes[j] == c->size && opt.producers[p] == c->producers)
					group = j * opt.nproducers + p;
		if (i == 0 || c->producers != c[-1].producers || c->size != c[-1].size) {
			slot = 0;
			printf("\n%u producer%s, %u-byte messages\n"
			       "%-18s %11s %25s %8s %11s %8s\n", c->producers,
			       c->producers > 1 ? "s" : "", c->size, "transport",
			       "msgs/s", "[min - max]", "vs peer", "CPU ns/msg", "x null");
		}
		fprintf(sum, "%s,%d,%u,%u,%u,%u,%.1f,%.1f,%.1f,%.3f,%.1f,%.1f,%.1f,%.1f,%.2f,%u,%u\n",
			c->t->name, !c->t->peer, c->producers, c->size, c->good, c->bad,
			c->med_mps, c->min_mps, c->max_mps, c->ratio, c->med_cpu,
			c->min_cpu, c->max_cpu, null_med, c->med_cpu / null_med, group,
			slot++);
		if (c->bad) {
			errors++;
			printf("%-18s ERROR (%u of %u runs): %s\n", c->t->name, c->bad,
			       opt.reps, c->why);
			continue;
		}
		printf("%-18s %11.0f [%10.0f - %10.0f] ", c->t->name, c->med_mps,
		       c->min_mps, c->max_mps);
		if (c->ratio > 0)
			printf("%7.2fx", c->ratio);
		else
			printf("%8s", "-");	/* no peer ran */
		printf(" %11.0f %7.1fx\n", c->med_cpu, c->med_cpu / null_med);
	}
	fclose(sum);
	printf("\nCSV: %s/bench.csv (per configuration), %s/bench-runs.csv (per run)\n",
	       opt.outdir, opt.outdir);
	if (errors)
		printf("eq-bench: %u configurations had failed runs\n", errors);
	return errors ? 1 : 0;
}
