// SPDX-License-Identifier: MIT
/*
 * Full and empty: blocking, non-blocking, timeouts, signals, poll and epoll
 * (SPEC section 8).
 */
#include <sys/epoll.h>

#define EQ_CUSTOM_FIXTURE
#include "eq_test.h"

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

/* What a child does, reported in its eq_child_report. */
enum job_op { JOB_READ, JOB_WRITE, JOB_POLL, JOB_EPOLL };

struct job {
	enum job_op op;
	int fd;
	size_t len;		/* read buffer or message size */
	uint32_t tag, seq;	/* message payload, for JOB_WRITE */
	int sa_flags;		/* SIGUSR1 handler with these flags, or -1 */
	short events;		/* JOB_POLL/JOB_EPOLL */
	int timeout_ms;		/* JOB_POLL/JOB_EPOLL */
};

static struct eq_child_report *child_rep;

static void on_usr1(int sig)
{
	(void)sig;
	child_rep->handled++;
}

static uint8_t buf[ELASTICQ_MSG_SIZE_LIMIT];

/* Fork a child that runs @j once and reports; -errno if fork failed. */
static pid_t spawn(struct eq_child_report *rep, const struct job *j)
{
	struct epoll_event ev = { .events = (uint32_t)j->events };
	struct pollfd pfd = { .fd = j->fd, .events = j->events };
	uint64_t t0;
	pid_t pid;
	long r;
	int ep;

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
	t0 = eq_now_ns();
	switch (j->op) {
	case JOB_READ:
		r = eq_pop(j->fd, rep->data, j->len);
		break;
	case JOB_WRITE:
		eq_fill(buf, j->len, j->tag, j->seq);
		r = eq_push(j->fd, buf, j->len);
		break;
	case JOB_POLL:
		r = poll(&pfd, 1, j->timeout_ms);
		r = r < 0 ? -errno : r;
		rep->ret2 = pfd.revents;
		break;
	case JOB_EPOLL:
		ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, j->fd, &ev))
			_exit(3);
		memset(&ev, 0, sizeof(ev));
		r = epoll_wait(ep, &ev, 1, j->timeout_ms);
		r = r < 0 ? -errno : r;
		rep->ret2 = ev.events;
		break;
	default:
		_exit(4);
	}
	rep->elapsed_ns = eq_now_ns() - t0;
	rep->ret = r;
	rep->done = 1;
	_exit(0);
}

/* Wait (bounded) until the child's SIGUSR1 handler ran @n times. */
static int wait_handled(struct eq_child_report *rep, int n)
{
	uint64_t end = eq_now_ns() + EQ_WAIT_MS * EQ_MS;

	while (rep->handled < n && eq_now_ns() < end)
		usleep(1000);
	return rep->handled == n ? 0 : -1;
}

static short poll_now(int fd)
{
	struct pollfd pfd = {
		.fd = fd,
		.events = POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM,
	};

	if (poll(&pfd, 1, 0) < 0)
		return -1;
	return pfd.revents;
}

/* Level-triggered epoll readiness right now; 0 if not ready. */
static int epoll_now(int fd)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLRDNORM | EPOLLOUT | EPOLLWRNORM,
	};
	int ep, n;

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -1;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
		close(ep);
		return -1;
	}
	memset(&ev, 0, sizeof(ev));
	n = epoll_wait(ep, &ev, 1, 0);
	close(ep);
	if (n < 0)
		return -1;
	return n ? (int)ev.events : 0;
}

#define EQ_POLL_IN		(POLLIN | POLLRDNORM)
#define EQ_POLL_OUT	(POLLOUT | POLLWRNORM)
/* Where the poll and epoll sleepers sit, depending on what got inlined. */
#define WAIT_POLL	"do_sys_poll|do_poll|poll_schedule_timeout|" \
			"do_epoll_wait|ep_poll"
/* Pollers give up after this, well within the harness timeout. */
#define POLL_MS		10000

TEST_F(eq, nonblock_read_empty)
{
	struct elasticq_config cfg;
	uint64_t t0;
	int nb, fl;

	nb = eq_open(O_NONBLOCK);
	ASSERT_LE(0, nb);
	EXPECT_EQ(-EAGAIN, eq_pop(nb, buf, sizeof(buf)));
	/* (A lock-free queue's consumer role goes with its file.) */
	close(nb);

	/* O_NONBLOCK set later with fcntl counts too. */
	fl = fcntl(self->fd, F_GETFL);
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, fl | O_NONBLOCK));
	EXPECT_EQ(-EAGAIN, eq_pop(self->fd, buf, sizeof(buf)));
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, fl));

	/* A pop timeout does not make a non-blocking read wait. */
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	cfg.pop_timeout_ns = 30000 * EQ_MS;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	t0 = eq_now_ns();
	EXPECT_EQ(-EAGAIN, eq_pop_nb(self->fd, buf, sizeof(buf)));
	EXPECT_GT(10000 * EQ_MS, eq_now_ns() - t0);

	/* And a non-blocking write to a queue with room just works. */
	nb = eq_open(O_NONBLOCK);
	ASSERT_LE(0, nb);
	EXPECT_EQ(2, eq_push(nb, "nb", 2));
	close(nb);
	EXPECT_EQ(2, eq_pop_nb(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(-EAGAIN, eq_pop_nb(self->fd, buf, sizeof(buf)));
}

TEST_F(eq, reader_woken_by_writer)
{
	struct job j = { .op = JOB_READ, .fd = self->fd, .len = 64,
			 .sa_flags = -1 };
	char last[160] = "";
	pid_t pid;

	pid = spawn(&self->rep[0], &j);
	ASSERT_LT(0, pid);
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked_in(pid, "eq_", last, sizeof(last))) {
		TH_LOG("reader not blocked in the queue: %s", last);
	}
	ASSERT_EQ(0, self->rep[0].done);

	ASSERT_EQ(9, eq_push(self->fd, "wake up!", 9));
	ASSERT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_EQ(1, self->rep[0].done);
	EXPECT_EQ(9, self->rep[0].ret);
	EXPECT_STREQ("wake up!", self->rep[0].data);
}

/* Some of these are not whole jiffies: rounding down would show. */
static const uint64_t timeouts_ns[] = {
	1 * EQ_MS, 5500000, 7900000, 9900000, 13300000, 30 * EQ_MS + 500000,
	1 * EQ_MS, 5500000, 7900000, 9900000, 13300000, 100 * EQ_MS,
	1 * EQ_MS, 5500000, 7900000, 9900000, 13300000,
};

TEST_F(eq, pop_timeout)
{
	struct elasticq_stats st0, st;
	struct elasticq_config cfg;
	unsigned int i;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	for (i = 0; i < sizeof(timeouts_ns) / sizeof(timeouts_ns[0]); i++) {
		uint64_t t0, c0, el, elc;

		cfg.pop_timeout_ns = timeouts_ns[i];
		ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
		t0 = eq_now_ns();
		c0 = eq_now_coarse_ns();
		EXPECT_EQ(-ETIMEDOUT, eq_pop(self->fd, buf, sizeof(buf)));
		el = eq_now_ns() - t0;
		elc = eq_now_coarse_ns() - c0;
		EXPECT_LE(timeouts_ns[i], elc) {
			TH_LOG("pop timeout %llu ns returned after %llu ns (%llu ns of ticks)",
			       (unsigned long long)timeouts_ns[i],
			       (unsigned long long)el, (unsigned long long)elc);
		}
		EXPECT_GT(timeouts_ns[i] + 5000 * EQ_MS, el);
	}
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(st0.dequeued, st.dequeued);
}

/* A message that arrives within the pop timeout is delivered. */
TEST_F(eq, pop_timeout_message_arrives)
{
	struct job j = { .op = JOB_READ, .fd = self->fd, .len = 64,
			 .sa_flags = -1 };
	struct elasticq_config cfg;
	pid_t pid;

	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	cfg.pop_timeout_ns = 30000 * EQ_MS;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	pid = spawn(&self->rep[0], &j);
	ASSERT_LT(0, pid);
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked(pid));
	ASSERT_EQ(4, eq_push(self->fd, "late", 4));
	ASSERT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_EQ(4, self->rep[0].ret);
	EXPECT_EQ(0, memcmp(self->rep[0].data, "late", 4));
	EXPECT_GT(30000 * EQ_MS, self->rep[0].elapsed_ns);
}

TEST_F(eq, read_eintr)
{
	struct job j = { .op = JOB_READ, .fd = self->fd, .len = 64,
			 .sa_flags = 0 };
	struct elasticq_stats st;
	pid_t pid;

	pid = spawn(&self->rep[0], &j);
	ASSERT_LT(0, pid);
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked(pid));
	ASSERT_EQ(0, kill(pid, SIGUSR1));
	ASSERT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_EQ(1, self->rep[0].handled);
	EXPECT_EQ(-EINTR, self->rep[0].ret);

	/* The queue did not notice. */
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.len);
	ASSERT_EQ(2, eq_push(self->fd, "ok", 2));
	ASSERT_EQ(2, eq_pop(self->fd, buf, sizeof(buf)));
}

TEST_F(eq, read_sa_restart)
{
	struct job j = { .op = JOB_READ, .fd = self->fd, .len = 64,
			 .sa_flags = SA_RESTART };
	pid_t pid;

	pid = spawn(&self->rep[0], &j);
	ASSERT_LT(0, pid);
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked(pid));
	ASSERT_EQ(0, kill(pid, SIGUSR1));
	/* The handler ran and the read went back to sleep... */
	ASSERT_EQ(0, wait_handled(&self->rep[0], 1));
	ASSERT_EQ(0, eq_wait_blocked(pid));
	ASSERT_EQ(0, self->rep[0].done);
	/* ...and returns the message that comes later. */
	ASSERT_EQ(8, eq_push(self->fd, "restart", 8));
	ASSERT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_EQ(8, self->rep[0].ret);
	EXPECT_STREQ("restart", self->rep[0].data);
}

/* A stop and continue is invisible to a blocked reader. */
TEST_F(eq, read_survives_stop_cont)
{
	struct job j = { .op = JOB_READ, .fd = self->fd, .len = 64,
			 .sa_flags = -1 };
	uint64_t end;
	pid_t pid;

	pid = spawn(&self->rep[0], &j);
	ASSERT_LT(0, pid);
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked(pid));
	ASSERT_EQ(0, kill(pid, SIGSTOP));
	end = eq_now_ns() + EQ_WAIT_MS * EQ_MS;
	while (eq_proc_state(pid) != 'T' && eq_now_ns() < end)
		usleep(1000);
	ASSERT_EQ('T', eq_proc_state(pid));
	ASSERT_EQ(0, kill(pid, SIGCONT));
	ASSERT_EQ(0, eq_wait_blocked(pid));
	ASSERT_EQ(0, self->rep[0].done);
	ASSERT_EQ(5, eq_push(self->fd, "cont", 5));
	ASSERT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_EQ(5, self->rep[0].ret);
	EXPECT_STREQ("cont", self->rep[0].data);
}

TEST_F(eq, poll_empty_and_data)
{
	int ev;

	EXPECT_EQ(EQ_POLL_OUT, poll_now(self->fd));
	ev = epoll_now(self->fd);
	EXPECT_EQ(EPOLLOUT | EPOLLWRNORM, ev);

	ASSERT_EQ(1, eq_push(self->fd, "x", 1));
	EXPECT_EQ(EQ_POLL_IN | EQ_POLL_OUT, poll_now(self->fd));
	ev = epoll_now(self->fd);
	EXPECT_EQ(EPOLLIN | EPOLLRDNORM | EPOLLOUT | EPOLLWRNORM, ev);

	ASSERT_EQ(1, eq_pop(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(EQ_POLL_OUT, poll_now(self->fd));
	ev = epoll_now(self->fd);
	EXPECT_EQ(EPOLLOUT | EPOLLWRNORM, ev);
}

TEST_F(eq, poll_woken_by_write)
{
	struct job j = { .op = JOB_POLL, .fd = self->fd, .sa_flags = -1,
			 .events = POLLIN, .timeout_ms = POLL_MS };
	char last[160] = "";
	pid_t pid;

	pid = spawn(&self->rep[0], &j);
	ASSERT_LT(0, pid);
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked_in(pid, WAIT_POLL, last, sizeof(last))) {
		TH_LOG("poller not blocked in poll: %s", last);
	}
	ASSERT_EQ(0, self->rep[0].done);
	ASSERT_EQ(3, eq_push(self->fd, "abc", 3));
	ASSERT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_EQ(1, self->rep[0].ret);
	EXPECT_EQ(POLLIN, self->rep[0].ret2);
	EXPECT_GT(POLL_MS * EQ_MS, self->rep[0].elapsed_ns);
}

TEST_F(eq, epoll_woken_by_write)
{
	struct job j = { .op = JOB_EPOLL, .fd = self->fd, .sa_flags = -1,
			 .events = EPOLLIN, .timeout_ms = POLL_MS };
	char last[160] = "";
	pid_t pid;

	pid = spawn(&self->rep[0], &j);
	ASSERT_LT(0, pid);
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked_in(pid, WAIT_POLL, last, sizeof(last))) {
		TH_LOG("poller not blocked in epoll_wait: %s", last);
	}
	ASSERT_EQ(0, self->rep[0].done);
	ASSERT_EQ(3, eq_push(self->fd, "abc", 3));
	ASSERT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_EQ(1, self->rep[0].ret);
	EXPECT_EQ(EPOLLIN, self->rep[0].ret2);
}

/*
 * A full queue, at max_capacity or at max_bytes: each test below runs for
 * both.  The queue holds N messages "F"/0..N-1 of LEN bytes.
 */
FIXTURE(full) {
	EQ_FIXTURE_FIELDS;
};

FIXTURE_VARIANT(full) {
	uint32_t max_capacity;	/* 0: the default */
	uint64_t max_bytes;	/* 0: the default */
	uint32_t max_msg_size;	/* 0: the default */
	uint32_t n;
	size_t len;
};

FIXTURE_VARIANT_ADD(full, capacity) {
	.max_capacity = 4, .n = 4, .len = 10,
};

/* One message's worth of room is room for any message. */
FIXTURE_VARIANT_ADD(full, bytes) {
	.max_bytes = 1000, .max_msg_size = 250, .n = 4, .len = 250,
};

#define TAG_F 0x46

FIXTURE_SETUP(full)
{
	struct elasticq_config cfg;
	struct elasticq_stats st;

	EQ_FIXTURE_SETUP_BODY;
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	if (variant->max_capacity) {
		cfg.min_capacity = 1;
		cfg.initial_capacity = variant->max_capacity;
		cfg.max_capacity = variant->max_capacity;
	}
	if (variant->max_bytes)
		cfg.max_bytes = variant->max_bytes;
	if (variant->max_msg_size)
		cfg.max_msg_size = variant->max_msg_size;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_push_n(self->fd, TAG_F, 0, variant->n, variant->len));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	ASSERT_EQ(variant->n, st.len);
	ASSERT_EQ(variant->n * variant->len, st.bytes);
}

FIXTURE_TEARDOWN(full)
{
	EQ_FIXTURE_TEARDOWN_BODY;
}

/* Pop the queue (through a file of its own, see eq_reader()) and check it holds "F"/@first..@first+@n-1, nothing else. */
static void expect_contents(struct __test_metadata *_metadata, int fd,
			    uint32_t first, uint32_t n, size_t len)
{
	static uint8_t got[ELASTICQ_MSG_SIZE_LIMIT];
	uint32_t i;
	bool own;
	int nb;

	nb = eq_reader(fd, &own);
	ASSERT_LE(0, nb);
	for (i = first; i < first + n; i++) {
		ASSERT_EQ(len, eq_pop_nb(nb, got, sizeof(got)));
		EXPECT_TRUE(eq_check_fill(got, len, TAG_F, i)) {
			TH_LOG("message %u wrong", i);
		}
	}
	EXPECT_EQ(-EAGAIN, eq_pop_nb(nb, got, sizeof(got)));
	if (own)
		close(nb);
}

TEST_F(full, nonblock_write_eagain)
{
	struct elasticq_stats st0, st;
	int nb;

	nb = eq_open(O_NONBLOCK);
	ASSERT_LE(0, nb);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	eq_fill(buf, variant->len, TAG_F, 99);
	EXPECT_EQ(-EAGAIN, eq_push(nb, buf, variant->len));
	EXPECT_EQ(-EAGAIN, eq_push(nb, buf, 1));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(variant->n, st.len);
	EXPECT_EQ(st0.bytes, st.bytes);
	EXPECT_EQ(st0.enqueued, st.enqueued);
	EXPECT_EQ(st0.rejected + 2, st.rejected);
	close(nb);
	expect_contents(_metadata, self->fd, 0, variant->n, variant->len);
}

TEST_F(full, writer_woken_by_read)
{
	struct job j = { .op = JOB_WRITE, .fd = self->fd, .len = variant->len,
			 .tag = TAG_F, .seq = variant->n, .sa_flags = -1 };
	static uint8_t got[ELASTICQ_MSG_SIZE_LIMIT];
	char last[160] = "";
	pid_t pid;

	pid = spawn(&self->rep[0], &j);
	ASSERT_LT(0, pid);
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked_in(pid, "eq_", last, sizeof(last))) {
		TH_LOG("writer not blocked in the queue: %s", last);
	}
	ASSERT_EQ(0, self->rep[0].done);

	ASSERT_EQ(variant->len, eq_pop(self->fd, got, sizeof(got)));
	EXPECT_TRUE(eq_check_fill(got, variant->len, TAG_F, 0));
	ASSERT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_EQ(variant->len, self->rep[0].ret);
	expect_contents(_metadata, self->fd, 1, variant->n, variant->len);
}

TEST_F(full, push_timeout)
{
	struct elasticq_stats st0, st;
	struct elasticq_config cfg;
	unsigned int i;

	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	eq_fill(buf, variant->len, TAG_F, 99);
	for (i = 0; i < sizeof(timeouts_ns) / sizeof(timeouts_ns[0]); i++) {
		uint64_t t0, c0, el, elc;

		cfg.push_timeout_ns = timeouts_ns[i];
		ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
		t0 = eq_now_ns();
		c0 = eq_now_coarse_ns();
		EXPECT_EQ(-ETIMEDOUT, eq_push(self->fd, buf, variant->len));
		el = eq_now_ns() - t0;
		elc = eq_now_coarse_ns() - c0;
		EXPECT_LE(timeouts_ns[i], elc) {
			TH_LOG("push timeout %llu ns returned after %llu ns (%llu ns of ticks)",
			       (unsigned long long)timeouts_ns[i],
			       (unsigned long long)el, (unsigned long long)elc);
		}
		EXPECT_GT(timeouts_ns[i] + 5000 * EQ_MS, el);
	}
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(variant->n, st.len);
	EXPECT_EQ(st0.enqueued, st.enqueued);
	EXPECT_EQ(st0.rejected + i, st.rejected);
	expect_contents(_metadata, self->fd, 0, variant->n, variant->len);
}

TEST_F(full, write_eintr)
{
	struct job j = { .op = JOB_WRITE, .fd = self->fd, .len = variant->len,
			 .tag = TAG_F, .seq = 99, .sa_flags = 0 };
	struct elasticq_stats st0, st;
	pid_t pid;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	pid = spawn(&self->rep[0], &j);
	ASSERT_LT(0, pid);
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked(pid));
	ASSERT_EQ(0, kill(pid, SIGUSR1));
	ASSERT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_EQ(1, self->rep[0].handled);
	EXPECT_EQ(-EINTR, self->rep[0].ret);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(variant->n, st.len);
	EXPECT_EQ(st0.enqueued, st.enqueued);
	expect_contents(_metadata, self->fd, 0, variant->n, variant->len);
}

TEST_F(full, write_sa_restart)
{
	struct job j = { .op = JOB_WRITE, .fd = self->fd, .len = variant->len,
			 .tag = TAG_F, .seq = variant->n,
			 .sa_flags = SA_RESTART };
	static uint8_t got[ELASTICQ_MSG_SIZE_LIMIT];
	pid_t pid;

	pid = spawn(&self->rep[0], &j);
	ASSERT_LT(0, pid);
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked(pid));
	ASSERT_EQ(0, kill(pid, SIGUSR1));
	ASSERT_EQ(0, wait_handled(&self->rep[0], 1));
	ASSERT_EQ(0, eq_wait_blocked(pid));
	ASSERT_EQ(0, self->rep[0].done);

	ASSERT_EQ(variant->len, eq_pop(self->fd, got, sizeof(got)));
	ASSERT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_EQ(variant->len, self->rep[0].ret);
	expect_contents(_metadata, self->fd, 1, variant->n, variant->len);
}

/* Killable: SIGKILL ends a blocked writer and enqueues nothing. */
TEST_F(full, write_killed)
{
	struct job j = { .op = JOB_WRITE, .fd = self->fd, .len = variant->len,
			 .tag = TAG_F, .seq = 99, .sa_flags = -1 };
	struct elasticq_stats st0, st;
	pid_t pid;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	pid = spawn(&self->rep[0], &j);
	ASSERT_LT(0, pid);
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked(pid));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	EXPECT_EQ(1000 + SIGKILL, eq_wait_exit(pid));
	self->child[0] = 0;
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.enqueued, st.enqueued);
	expect_contents(_metadata, self->fd, 0, variant->n, variant->len);
}

TEST_F(full, poll_full)
{
	int ev;

	EXPECT_EQ(EQ_POLL_IN, poll_now(self->fd));
	ev = epoll_now(self->fd);
	EXPECT_EQ(EPOLLIN | EPOLLRDNORM, ev);
}

/* A poll for POLLOUT on the full queue is woken by a read. */
TEST_F(full, pollout_woken_by_read)
{
	struct job j = { .op = JOB_POLL, .fd = self->fd, .sa_flags = -1,
			 .events = POLLOUT, .timeout_ms = POLL_MS };
	static uint8_t got[ELASTICQ_MSG_SIZE_LIMIT];
	char last[160] = "";
	pid_t pid;

	pid = spawn(&self->rep[0], &j);
	ASSERT_LT(0, pid);
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked_in(pid, WAIT_POLL, last, sizeof(last))) {
		TH_LOG("poller not blocked in poll: %s (ret %ld revents %#lx)",
		       last, self->rep[0].ret, self->rep[0].ret2);
	}
	ASSERT_EQ(variant->len, eq_pop(self->fd, got, sizeof(got)));
	ASSERT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_EQ(1, self->rep[0].ret);
	EXPECT_EQ(POLLOUT, self->rep[0].ret2);
	EXPECT_EQ(EQ_POLL_IN | EQ_POLL_OUT, poll_now(self->fd));
}

/*
 * Full by bytes: a writer whose message does not fit stays asleep while a
 * read frees too little, and goes through once enough is free.
 */
TEST_F(eq, bytes_writer_needs_enough_room)
{
	struct job j = { .op = JOB_WRITE, .fd = self->fd, .len = 400,
			 .tag = TAG_F, .seq = 4, .sa_flags = -1 };
	static uint8_t got[ELASTICQ_MSG_SIZE_LIMIT];
	struct elasticq_config cfg;
	pid_t pid;

	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	cfg.max_bytes = 1000;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_push_n(self->fd, TAG_F, 0, 4, 250));

	pid = spawn(&self->rep[0], &j);
	ASSERT_LT(0, pid);
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked(pid));
	/* 750 + 400 > 1000: still full for this writer. */
	ASSERT_EQ(250, eq_pop(self->fd, got, sizeof(got)));
	eq_sleep_ms(100);
	ASSERT_EQ(0, eq_wait_blocked(pid));
	ASSERT_EQ(0, self->rep[0].done);
	/* 500 + 400 <= 1000. */
	ASSERT_EQ(250, eq_pop(self->fd, got, sizeof(got)));
	ASSERT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_EQ(400, self->rep[0].ret);
	ASSERT_EQ(250, eq_pop(self->fd, got, sizeof(got)));
	EXPECT_TRUE(eq_check_fill(got, 250, TAG_F, 2));
	ASSERT_EQ(250, eq_pop(self->fd, got, sizeof(got)));
	EXPECT_TRUE(eq_check_fill(got, 250, TAG_F, 3));
	ASSERT_EQ(400, eq_pop(self->fd, got, sizeof(got)));
	EXPECT_TRUE(eq_check_fill(got, 400, TAG_F, 4));
}

/*
 * O_NONBLOCK means "do not wait for a message or for room", not "give up
 * if another process holds the queue a moment": with messages queued and
 * room to spare, non-blocking reads and writes must not fail with EAGAIN
 * while someone else is busy with the queue (here: SET_CONFIGs that resize
 * the ring between 16 and 65536 slots, in a loop).  A spurious EAGAIN
 * makes an edge-triggered epoll consumer stall with messages queued.
 */
TEST_F_TIMEOUT(eq, nonblock_no_spurious_eagain, 300)
{
	struct eq_child_report *rep = &self->rep[0];
	uint32_t i, x, bad_r = 0, bad_w = 0;
	struct elasticq_config small, large;
	uint64_t end;
	pid_t pid;
	int nb;

	ASSERT_EQ(0, eq_get_config(self->fd, &small));
	small.min_capacity = small.initial_capacity = small.max_capacity = 16;
	large = small;
	large.min_capacity = large.initial_capacity = large.max_capacity = 65536;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		for (;;) {
			if (eq_set_config(self->fd, rep->ret & 1 ? &small : &large))
				_exit(2);
			rep->ret++;
		}
	}
	self->child[0] = pid;
	end = eq_now_ns() + EQ_WAIT_MS * EQ_MS;
	while (rep->ret < 10 && eq_now_ns() < end)
		usleep(1000);
	ASSERT_LE(10, rep->ret);

	nb = eq_open(O_NONBLOCK);
	ASSERT_LE(0, nb);
	ASSERT_EQ(4, eq_push(self->fd, "head", 4));
	for (i = 0; i < 5000; i++) {
		ssize_t r;

		r = eq_push(nb, &i, 4);
		if (r == -EAGAIN) {
			bad_w++;
			ASSERT_EQ(4, eq_push(self->fd, &i, 4));
		} else {
			ASSERT_EQ(4, r);
		}
		/* There are always two messages queued here. */
		r = eq_pop(nb, &x, 4);
		if (r == -EAGAIN) {
			bad_r++;
			r = eq_pop(self->fd, &x, 4);
		}
		ASSERT_EQ(4, r);
		if (i)
			ASSERT_EQ(i - 1, x);
	}
	eq_kill_child(&self->child[0]);
	TH_LOG("%ld config changes meanwhile", rep->ret);
	EXPECT_EQ(0, bad_r) {
		TH_LOG("%u of 5000 non-blocking reads failed with EAGAIN although messages were queued",
		       bad_r);
	}
	EXPECT_EQ(0, bad_w) {
		TH_LOG("%u of 5000 non-blocking writes failed with EAGAIN although there was room",
		       bad_w);
	}
	close(nb);
}

/*
 * A writer asleep on a full queue whose message can no longer ever fit
 * (max_bytes lowered below its size) gets EMSGSIZE once the queue drains,
 * rather than sleeping until its push timeout.
 */
TEST_F(eq, blocked_writer_emsgsize_after_limit_drops)
{
	struct job j = { .op = JOB_WRITE, .fd = self->fd, .len = 500,
			 .tag = TAG_F, .seq = 9, .sa_flags = -1 };
	static uint8_t got[ELASTICQ_MSG_SIZE_LIMIT];
	struct elasticq_config cfg;
	pid_t pid;
	int i;

	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	cfg.min_capacity = 1;
	cfg.initial_capacity = 4;
	cfg.max_capacity = 4;
	cfg.push_timeout_ns = 3000 * EQ_MS;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, eq_push_n(self->fd, TAG_F, 0, 4, 10));
	pid = spawn(&self->rep[0], &j);
	ASSERT_LT(0, pid);
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked(pid));

	cfg.max_bytes = 100;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(10, eq_pop(self->fd, got, sizeof(got)));
	ASSERT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	EXPECT_EQ(-EMSGSIZE, self->rep[0].ret);
	EXPECT_GT(3000 * EQ_MS, self->rep[0].elapsed_ns);
}

TEST_HARNESS_MAIN
