// SPDX-License-Identifier: MIT
/*
 * libelasticq (userspace/lib): every function, against the module, with
 * its error paths: names that are too long or bad, missing and existing
 * queues, a config with size 0, batches that stop part-way, a pop batch
 * into a buffer too small, the frame iterator on cut-short buffers that
 * end at an unmapped page, the SQEs the io_uring helpers fill, and the
 * io_uring consumer against a producer process (exactly once, in order).
 *
 * Each test works on a named queue "libeq.<pid>" (the harness forks one
 * process per test) made with the module's defaults, so the variant is
 * the one under test, and destroyed in teardown.
 */
#include <dirent.h>
#include <liburing.h>

#define EQ_CUSTOM_FIXTURE
#include "eq_test.h"
#include "libelasticq.h"

FIXTURE(lib) {
	EQ_FIXTURE_FIELDS;
	char name[ELASTICQ_NAME_SIZE];
};

FIXTURE_SETUP(lib)
{
	EQ_FIXTURE_SETUP_BODY;
	snprintf(self->name, sizeof(self->name), "libeq.%d", getpid());
}

FIXTURE_TEARDOWN(lib)
{
	int ret = elasticq_destroy(self->name);

	EXPECT_TRUE(ret == 0 || ret == -ENOENT);
	EQ_FIXTURE_TEARDOWN_BODY;
}

/* Open file descriptors of this process, to catch a leak on failure. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Create @name with @cfg (NULL: defaults), O_RDWR; the fd or -errno. */
static int make_queue(const char *name, const struct elasticq_config *cfg)
{
	return elasticq_open(name, O_RDWR, ELASTICQ_ATTACH_CREATE |
			     ELASTICQ_ATTACH_EXCL, 0600, cfg);
}

/* A config with room for @cap messages at most, full policy reject. */
static int small_config(struct elasticq_config *cfg, unsigned int cap)
{
	int ret = elasticq_default_config(cfg);

	cfg->initial_capacity = cap;
	cfg->min_capacity = cap;
	cfg->max_capacity = cap;
	cfg->full_policy = ELASTICQ_FULL_REJECT;
	return ret;
}

TEST_F(lib, open_default)
{
	struct elasticq_stats st;
	char buf[16];
	int fd, fd2;

	fd = elasticq_open(NULL, O_RDWR | O_NONBLOCK, 0, 0, NULL);
	ASSERT_LE(0, fd);
	/* O_CLOEXEC is always added; "" is the default queue as NULL is. */
	ASSERT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	fd2 = elasticq_open("", O_RDONLY, 0, 0, NULL);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, elasticq_push(fd, "hello", 5));
	ASSERT_EQ(0, elasticq_get_stats(fd2, &st));
	EXPECT_EQ(1, st.len);
	EXPECT_EQ(5, elasticq_pop(fd, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "hello", 5));
	EXPECT_EQ(-EAGAIN, elasticq_pop(fd, buf, sizeof(buf)));
	close(fd2);
	close(fd);
	/* The default queue is neither created nor excluded. */
	EXPECT_EQ(-EINVAL, elasticq_open(NULL, O_RDWR, ELASTICQ_ATTACH_CREATE,
					 0600, NULL));
	EXPECT_EQ(-EINVAL, elasticq_open("", O_RDWR, ELASTICQ_ATTACH_EXCL, 0,
					 NULL));
}

TEST_F(lib, open_named_create_excl)
{
	struct elasticq_config cfg, got;
	int fd, fd2;

	/* size 0 is filled in by the library. */
	ASSERT_EQ(0, elasticq_default_config(&cfg));
	cfg.size = 0;
	cfg.min_capacity = 16;
	cfg.initial_capacity = 32;
	cfg.max_capacity = 256;
	cfg.max_msg_size = 100;
	fd = elasticq_open(self->name, O_RDWR, ELASTICQ_ATTACH_CREATE, 0640,
			   &cfg);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, elasticq_get_config(fd, &got));
	EXPECT_EQ(sizeof(got), got.size);
	EXPECT_EQ(16, got.min_capacity);
	EXPECT_EQ(32, got.initial_capacity);
	EXPECT_EQ(256, got.max_capacity);
	EXPECT_EQ(100, got.max_msg_size);
	EXPECT_EQ(eq_variant(), got.variant);

	/* Found again without CREATE; CREATE alone leaves it as it is. */
	fd2 = elasticq_open(self->name, O_WRONLY, 0, 0, NULL);
	ASSERT_LE(0, fd2);
	close(fd2);
	fd2 = elasticq_open(self->name, O_WRONLY, ELASTICQ_ATTACH_CREATE, 0600,
			    NULL);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, elasticq_get_config(fd2, &got));
	EXPECT_EQ(256, got.max_capacity);
	close(fd2);
	EXPECT_EQ(-EEXIST, elasticq_open(self->name, O_RDWR,
					 ELASTICQ_ATTACH_CREATE |
					 ELASTICQ_ATTACH_EXCL, 0600, NULL));
	close(fd);
}

TEST_F(lib, open_errors)
{
	char long_name[ELASTICQ_NAME_SIZE + 1];
	struct elasticq_config cfg;
	int fds = count_fds();

	memset(long_name, 'a', ELASTICQ_NAME_SIZE);
	long_name[ELASTICQ_NAME_SIZE] = '\0';
	EXPECT_EQ(-EINVAL, elasticq_open(long_name, O_RDWR,
					 ELASTICQ_ATTACH_CREATE, 0600, NULL));
	/* 63 bytes is the longest name: valid, and not there. */
	long_name[ELASTICQ_NAME_MAX] = '\0';
	EXPECT_EQ(-ENOENT, elasticq_open(long_name, O_RDWR, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, elasticq_open("a/b", O_RDWR,
					 ELASTICQ_ATTACH_CREATE, 0600, NULL));
	EXPECT_EQ(-ENOENT, elasticq_open(self->name, O_RDWR, 0, 0, NULL));
	/* A bad config creates nothing. */
	ASSERT_EQ(0, elasticq_default_config(&cfg));
	cfg.min_capacity = 0;
	EXPECT_EQ(-EINVAL, elasticq_open(self->name, O_RDWR,
					 ELASTICQ_ATTACH_CREATE, 0600, &cfg));
	EXPECT_EQ(-ENOENT, elasticq_open(self->name, O_RDONLY, 0, 0, NULL));
	/* Every failed open closed the file it opened. */
	EXPECT_EQ(fds, count_fds());
}

TEST_F(lib, open_permission)
{
	pid_t pid;
	int fd;

	fd = make_queue(self->name, NULL);	/* 0600, owned by root */
	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (eq_drop_privileges())
			_exit(100);
		_exit(elasticq_open(self->name, O_WRONLY, 0, 0, NULL) ==
		      -EACCES ? 0 : 101);
	}
	EXPECT_EQ(0, eq_wait_exit(pid));
	close(fd);
}

/* GET_OWNER and SET_OWNER: only the fields named change. */
TEST_F(lib, owner)
{
	struct elasticq_owner o;
	int fd;

	fd = make_queue(self->name, NULL);	/* 0600, owned by root */
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, elasticq_get_owner(fd, &o));
	EXPECT_EQ(0, o.uid);
	EXPECT_EQ(0, o.gid);
	EXPECT_EQ(0600, o.mode);
	ASSERT_EQ(0, elasticq_set_owner(fd, ELASTICQ_OWNER_GID, 1, 2, 0644));
	ASSERT_EQ(0, elasticq_get_owner(fd, &o));
	EXPECT_EQ(0, o.uid);
	EXPECT_EQ(2, o.gid);
	EXPECT_EQ(0600, o.mode);
	ASSERT_EQ(0, elasticq_set_owner(fd, ELASTICQ_OWNER_UID |
					ELASTICQ_OWNER_MODE, 3, 0, 0640));
	ASSERT_EQ(0, elasticq_get_owner(fd, &o));
	EXPECT_EQ(3, o.uid);
	EXPECT_EQ(2, o.gid);
	EXPECT_EQ(0640, o.mode);
	EXPECT_EQ(-EINVAL, elasticq_set_owner(fd, 0, 0, 0, 0));
	EXPECT_EQ(-EINVAL, elasticq_set_owner(fd, ELASTICQ_OWNER_MODE, 0, 0,
					      01000));
	close(fd);
}

TEST_F(lib, destroy)
{
	char long_name[ELASTICQ_NAME_SIZE + 1];
	int fd;

	fd = make_queue(self->name, NULL);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, elasticq_destroy(self->name));
	EXPECT_EQ(-ENOENT, elasticq_destroy(self->name));
	EXPECT_EQ(-ENOENT, elasticq_open(self->name, O_RDWR, 0, 0, NULL));
	/* The file still bound keeps the queue usable. */
	EXPECT_EQ(0, elasticq_push(fd, "x", 1));
	close(fd);
	EXPECT_EQ(-EINVAL, elasticq_destroy(NULL));
	EXPECT_EQ(-EINVAL, elasticq_destroy(""));
	memset(long_name, 'a', ELASTICQ_NAME_SIZE);
	long_name[ELASTICQ_NAME_SIZE] = '\0';
	EXPECT_EQ(-EINVAL, elasticq_destroy(long_name));
	EXPECT_EQ(-EINVAL, elasticq_destroy("no spaces"));
}

TEST_F(lib, default_config)
{
	struct elasticq_config got, want;
	int fd;

	eq_load_config(&want);
	memset(&got, 0xff, sizeof(got));
	ASSERT_EQ(0, elasticq_default_config(&got));
	EXPECT_EQ(0, memcmp(&want, &got, sizeof(got)));
	/* Reading it claimed no role: a lock-free queue's consumer is free. */
	fd = elasticq_open(NULL, O_RDONLY, 0, 0, NULL);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, elasticq_consume(fd));
	close(fd);
}

TEST_F(lib, get_set_config)
{
	struct elasticq_config cfg, got;
	int fd, ro;

	fd = make_queue(self->name, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, elasticq_get_config(fd, &cfg));
	cfg.size = 0;
	cfg.max_capacity = 4096;
	cfg.pop_timeout_ns = 250 * EQ_MS;
	ASSERT_EQ(0, elasticq_set_config(fd, &cfg));
	ASSERT_EQ(0, elasticq_get_config(fd, &got));
	EXPECT_EQ(4096, got.max_capacity);
	EXPECT_EQ(250 * EQ_MS, got.pop_timeout_ns);
	/* Invalid: nothing changes. */
	cfg.growth_pct = 100;
	EXPECT_EQ(-EINVAL, elasticq_set_config(fd, &cfg));
	ASSERT_EQ(0, elasticq_get_config(fd, &got));
	EXPECT_EQ(EQ_DEF_GROWTH, got.growth_pct);
	/* A config shorter than the first published one is refused. */
	cfg.growth_pct = EQ_DEF_GROWTH;
	cfg.size = 8;
	EXPECT_EQ(-EINVAL, elasticq_set_config(fd, &cfg));
	EXPECT_EQ(-EBADF, elasticq_get_config(-1, &got));
	EXPECT_EQ(-EBADF, elasticq_set_config(-1, &got));
	ro = elasticq_open(self->name, O_RDONLY, 0, 0, NULL);
	ASSERT_LE(0, ro);
	EXPECT_EQ(0, elasticq_get_config(ro, &got));
	close(ro);
	close(fd);
}

TEST_F(lib, stats_and_consume)
{
	struct elasticq_stats st;
	int fd, ro, wo, other;

	fd = make_queue(self->name, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, elasticq_push(fd, "abc", 3));
	ASSERT_EQ(0, elasticq_push(fd, "de", 2));
	memset(&st, 0xff, sizeof(st));
	ASSERT_EQ(0, elasticq_get_stats(fd, &st));
	EXPECT_EQ(sizeof(st), st.size);
	EXPECT_EQ(2, st.len);
	EXPECT_EQ(5, st.bytes);
	EXPECT_EQ(2, st.enqueued);
	EXPECT_EQ(1, st.producers);
	EXPECT_EQ(0, st.consumers);
	EXPECT_EQ(-EBADF, elasticq_get_stats(-1, &st));

	wo = elasticq_open(self->name, O_WRONLY, 0, 0, NULL);
	ASSERT_LE(0, wo);
	EXPECT_EQ(-EBADF, elasticq_consume(wo));
	ro = elasticq_open(self->name, O_RDONLY, 0, 0, NULL);
	ASSERT_LE(0, ro);
	EXPECT_EQ(0, elasticq_consume(ro));
	ASSERT_EQ(0, elasticq_get_stats(fd, &st));
	EXPECT_EQ(1, st.consumers);
	other = elasticq_open(self->name, O_RDONLY, 0, 0, NULL);
	ASSERT_LE(0, other);
	EXPECT_EQ(eq_lockfree() ? -EBUSY : 0, elasticq_consume(other));
	close(other);
	close(ro);
	close(wo);
	close(fd);
}

TEST_F(lib, push_pop)
{
	struct elasticq_config cfg;
	char buf[64], big[129];
	int fd;

	ASSERT_EQ(0, elasticq_default_config(&cfg));
	cfg.max_msg_size = 128;
	fd = make_queue(self->name, &cfg);
	ASSERT_LE(0, fd);
	memset(big, 'b', sizeof(big));
	EXPECT_EQ(-EMSGSIZE, elasticq_push(fd, big, 129));
	EXPECT_EQ(0, elasticq_push(fd, big, 128));
	EXPECT_EQ(0, elasticq_push(fd, "", 0));
	/* Too small a buffer: -EMSGSIZE and the message stays. */
	EXPECT_EQ(-EMSGSIZE, elasticq_pop(fd, buf, sizeof(buf)));
	EXPECT_EQ(128, elasticq_pop(fd, big, sizeof(big)));
	EXPECT_EQ(0, elasticq_pop(fd, buf, sizeof(buf)));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	EXPECT_EQ(-EAGAIN, elasticq_pop(fd, buf, sizeof(buf)));
	EXPECT_EQ(-EBADF, elasticq_push(-1, "x", 1));
	EXPECT_EQ(-EBADF, elasticq_pop(-1, buf, sizeof(buf)));
	close(fd);
}

/* Pop @n messages (nonblocking) and check they are "m<first + i>". */
static int expect_seq(int fd, unsigned int first, unsigned int n)
{
	char buf[32], want[32];
	unsigned int i;
	ssize_t len;

	for (i = 0; i < n; i++) {
		len = eq_pop_nb(fd, buf, sizeof(buf));
		snprintf(want, sizeof(want), "m%u", first + i);
		if (len != (ssize_t)strlen(want) || memcmp(buf, want, len))
			return -1;
	}
	return eq_pop_nb(fd, buf, sizeof(buf)) == -EAGAIN ? 0 : -1;
}

TEST_F(lib, push_batch)
{
	static struct iovec iov[ELASTICQ_BATCH_MAX + 1];
	static char text[ELASTICQ_BATCH_MAX + 1][16];
	unsigned int i;
	int fd, err;

	fd = make_queue(self->name, NULL);
	ASSERT_LE(0, fd);
	for (i = 0; i <= ELASTICQ_BATCH_MAX; i++) {
		snprintf(text[i], sizeof(text[i]), "m%u", i);
		iov[i] = (struct iovec){ text[i], strlen(text[i]) };
	}
	/* On the stack (3) and in a malloc'd array (200), in order. */
	err = 1;
	EXPECT_EQ(3, elasticq_push_batch(fd, iov, 3, 0, 0, &err));
	EXPECT_EQ(0, err);
	EXPECT_EQ(0, expect_seq(fd, 0, 3));
	EXPECT_EQ(200, elasticq_push_batch(fd, iov, 200, 0, 0, NULL));
	EXPECT_EQ(0, expect_seq(fd, 0, 200));
	EXPECT_EQ(0, elasticq_push_batch(fd, iov, 0, 0, 0, &err));
	EXPECT_EQ(0, err);
	/* More than a batch may hold: refused, nothing enqueued. */
	EXPECT_EQ(-EINVAL, elasticq_push_batch(fd, iov, ELASTICQ_BATCH_MAX + 1,
					       0, 0, &err));
	EXPECT_EQ(-EINVAL, err);
	EXPECT_EQ(-EINVAL, elasticq_push_batch(fd, iov, 1, 0x80, 0, &err));
	EXPECT_EQ(-EINVAL, err);
	EXPECT_EQ(0, expect_seq(fd, 0, 0));
	close(fd);
}

TEST_F(lib, push_batch_partial)
{
	struct elasticq_config cfg;
	struct iovec iov[6];
	char text[6][8], big[64];
	unsigned int i;
	int fd, err;

	ASSERT_EQ(0, small_config(&cfg, 4));
	cfg.max_msg_size = 32;
	fd = make_queue(self->name, &cfg);
	ASSERT_LE(0, fd);
	for (i = 0; i < 6; i++) {
		snprintf(text[i], sizeof(text[i]), "m%u", i);
		iov[i] = (struct iovec){ text[i], strlen(text[i]) };
	}
	/* Full after 4: the count, and the error that stopped the batch. */
	EXPECT_EQ(4, elasticq_push_batch(fd, iov, 6, 0, 0, &err));
	EXPECT_EQ(-EAGAIN, err);
	/* The first one fails: the call fails, with the same error. */
	err = 0;
	EXPECT_EQ(-EAGAIN, elasticq_push_batch(fd, iov + 4, 2, 0, 0, &err));
	EXPECT_EQ(-EAGAIN, err);
	EXPECT_EQ(0, expect_seq(fd, 0, 4));
	/* A message too large in the middle. */
	memset(big, 'x', sizeof(big));
	iov[1] = (struct iovec){ big, sizeof(big) };
	EXPECT_EQ(1, elasticq_push_batch(fd, iov, 3, 0, 0, &err));
	EXPECT_EQ(-EMSGSIZE, err);
	EXPECT_EQ(0, expect_seq(fd, 0, 1));
	close(fd);
}

TEST_F(lib, push_batch_timeout)
{
	struct elasticq_config cfg;
	struct iovec iov[2] = { { "a", 1 }, { "b", 1 } };
	uint64_t t0;
	int fd, err;

	ASSERT_EQ(0, small_config(&cfg, 1));
	cfg.full_policy = ELASTICQ_FULL_BLOCK;
	fd = make_queue(self->name, &cfg);
	ASSERT_LE(0, fd);
	t0 = eq_now_ns();
	EXPECT_EQ(1, elasticq_push_batch(fd, iov, 2, ELASTICQ_BATCH_TIMEOUT,
					 50 * EQ_MS, &err));
	EXPECT_EQ(-ETIMEDOUT, err);
	EXPECT_LE(50 * EQ_MS, eq_now_ns() - t0);
	EXPECT_EQ(-EAGAIN, elasticq_push_batch(fd, iov, 1,
					       ELASTICQ_BATCH_NONBLOCK, 0, &err));
	close(fd);
}

TEST_F(lib, pop_batch)
{
	static const char *const msgs[] = { "", "a", "abcdefgh", "abcdefghi" };
	struct elasticq_frame_iter it;
	char buf[256] __attribute__((aligned(8)));
	size_t bytes, want_bytes = 0;
	const void *p;
	uint32_t len;
	unsigned int i;
	uint64_t t0;
	int fd;

	fd = make_queue(self->name, NULL);
	ASSERT_LE(0, fd);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, elasticq_push(fd, msgs[i], strlen(msgs[i])));
		if (i < 3)
			want_bytes += ELASTICQ_FRAME_SIZE(strlen(msgs[i]));
	}
	/* max_msgs bounds the batch. */
	EXPECT_EQ(3, elasticq_pop_batch(fd, buf, sizeof(buf), 3, 0, 0, &bytes));
	EXPECT_EQ(want_bytes, bytes);
	elasticq_frames_init(&it, buf, bytes);
	for (i = 0; i < 3; i++) {
		p = elasticq_frames_next(&it, &len);
		ASSERT_NE(NULL, p);
		ASSERT_EQ(strlen(msgs[i]), len);
		EXPECT_EQ(0, memcmp(p, msgs[i], len));
	}
	EXPECT_EQ(NULL, elasticq_frames_next(&it, &len));
	/* One frame of 9 bytes does not fit in 16: stays queued. */
	bytes = 1;
	EXPECT_EQ(-EMSGSIZE, elasticq_pop_batch(fd, buf, 16, 8, 0, 0, &bytes));
	EXPECT_EQ(0, bytes);
	EXPECT_EQ(1, elasticq_pop_batch(fd, buf, sizeof(buf), 8, 0, 0, NULL));
	/* Empty: non-blocking, and with a timeout. */
	EXPECT_EQ(-EAGAIN, elasticq_pop_batch(fd, buf, sizeof(buf), 8,
					      ELASTICQ_BATCH_NONBLOCK, 0, &bytes));
	EXPECT_EQ(-ETIMEDOUT, elasticq_pop_batch(fd, buf, sizeof(buf), 8,
						 ELASTICQ_BATCH_TIMEOUT, 0, NULL));
	t0 = eq_now_ns();
	EXPECT_EQ(-ETIMEDOUT, elasticq_pop_batch(fd, buf, sizeof(buf), 8,
						 ELASTICQ_BATCH_TIMEOUT,
						 50 * EQ_MS, NULL));
	EXPECT_LE(50 * EQ_MS, eq_now_ns() - t0);
	EXPECT_EQ(-EINVAL, elasticq_pop_batch(fd, buf, sizeof(buf), 0,
					      ELASTICQ_BATCH_NONBLOCK, 0, NULL));
	EXPECT_EQ(-EBADF, elasticq_pop_batch(-1, buf, sizeof(buf), 1, 0, 0,
					     NULL));
	close(fd);
}

/* Tests of the library alone: no queue to reset. */
FIXTURE(pure) {
	int unused;
};

FIXTURE_SETUP(pure)
{
}

FIXTURE_TEARDOWN(pure)
{
}

/* Frames of these payload lengths, as a pop batch lays them out. */
static const uint32_t frame_lens[] = { 0, 3, 8, 13 };
#define NFRAMES (sizeof(frame_lens) / sizeof(frame_lens[0]))

static size_t build_frames(unsigned char *buf)
{
	struct elasticq_frame f = { 0, 0 };
	size_t off = 0, i;

	for (i = 0; i < NFRAMES; i++) {
		f.len = frame_lens[i];
		memcpy(buf + off, &f, sizeof(f));
		memset(buf + off + sizeof(f), 'a' + i, f.len);
		off += ELASTICQ_FRAME_SIZE(f.len);
	}
	return off;
}

/*
 * Every prefix of a frame buffer, placed so that it ends where an
 * unmapped page begins (any read past the end faults), at an aligned and
 * a misaligned start: the iterator returns exactly the frames whose
 * payload lies wholly inside, and then keeps returning NULL.
 */
TEST_F(pure, frames_truncated)
{
	unsigned char frames[256], *page;
	size_t total = build_frames(frames), cut, off, expect;
	long psz = sysconf(_SC_PAGESIZE);
	struct elasticq_frame_iter it;
	unsigned int i, n, shift;
	const unsigned char *p;
	uint32_t len;

	page = mmap(NULL, 2 * psz, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	ASSERT_EQ(0, mprotect(page + psz, psz, PROT_NONE));
	for (shift = 0; shift < 2; shift++) {
		for (cut = 0; cut <= total; cut++) {
			unsigned char *start = page + psz - cut - shift;

			memmove(start, frames, cut);
			if (shift)	/* a misaligned buffer ends a byte early */
				memset(page + psz - shift, 0, shift);
			expect = 0;
			for (i = 0, off = 0; i < NFRAMES; i++) {
				if (off + sizeof(struct elasticq_frame) +
				    frame_lens[i] > cut)
					break;
				expect++;
				off += ELASTICQ_FRAME_SIZE(frame_lens[i]);
			}
			elasticq_frames_init(&it, start, cut);
			for (n = 0; (p = elasticq_frames_next(&it, &len)); n++) {
				ASSERT_GT(NFRAMES, n);
				ASSERT_EQ(frame_lens[n], len);
				ASSERT_GE(start + cut, p + len);
				if (len)
					ASSERT_EQ('a' + n, p[len - 1]);
			}
			ASSERT_EQ(expect, n);
			ASSERT_EQ(NULL, elasticq_frames_next(&it, &len));
		}
	}
	munmap(page, 2 * psz);
}

TEST_F(pure, frames_malformed)
{
	unsigned char buf[64] __attribute__((aligned(8)));
	struct elasticq_frame f = { 0xfffffff0U, 0 };
	struct elasticq_frame_iter it;
	uint32_t len = 7;

	/* A length beyond the buffer ends the walk for good. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &f, sizeof(f));
	elasticq_frames_init(&it, buf, sizeof(buf));
	EXPECT_EQ(NULL, elasticq_frames_next(&it, &len));
	EXPECT_EQ(NULL, elasticq_frames_next(&it, &len));
	EXPECT_EQ(7, len);
	/* Empty and NULL buffers. */
	elasticq_frames_init(&it, NULL, 0);
	EXPECT_EQ(NULL, elasticq_frames_next(&it, &len));
	elasticq_frames_init(&it, buf, sizeof(struct elasticq_frame) - 1);
	EXPECT_EQ(NULL, elasticq_frames_next(&it, &len));
}

TEST_F(pure, strerror_values)
{
	EXPECT_STREQ(strerror(ENOENT), elasticq_strerror(-ENOENT));
	EXPECT_STREQ(strerror(EMSGSIZE), elasticq_strerror(-EMSGSIZE));
	EXPECT_STREQ(strerror(EAGAIN), elasticq_strerror(EAGAIN));
}

/* The SQE the helpers fill, field by field: no kernel needed. */
TEST_F(pure, prep_sqe)
{
	struct elasticq_push_batch pb = { .size = sizeof(pb) };
	struct elasticq_pop_batch b = { .size = sizeof(b) };
	struct io_uring_sqe sqe, zero;
	struct elasticq_uring_cmd cmd;

	memset(&sqe, 0xa5, sizeof(sqe));
	elasticq_prep_pop_batch(&sqe, 7, &b);
	EXPECT_EQ(IORING_OP_URING_CMD, sqe.opcode);
	EXPECT_EQ(7, sqe.fd);
	EXPECT_EQ(ELASTICQ_IOC_POP_BATCH, sqe.cmd_op);
	EXPECT_EQ(0, sqe.__pad1);
	EXPECT_EQ(0, sqe.flags);
	EXPECT_EQ(0, sqe.ioprio);
	EXPECT_EQ(0, sqe.addr);
	EXPECT_EQ(0, sqe.len);
	EXPECT_EQ(0, sqe.uring_cmd_flags);
	EXPECT_EQ(0, sqe.buf_index);
	memcpy(&cmd, sqe.cmd, sizeof(cmd));
	EXPECT_EQ((uintptr_t)&b, cmd.arg);
	EXPECT_EQ(0, cmd.reserved);

	memset(&zero, 0, sizeof(zero));
	memcpy(&sqe, &zero, sizeof(sqe));
	elasticq_prep_push_batch(&sqe, 3, &pb);
	EXPECT_EQ(IORING_OP_URING_CMD, sqe.opcode);
	EXPECT_EQ(3, sqe.fd);
	EXPECT_EQ(ELASTICQ_IOC_PUSH_BATCH, sqe.cmd_op);
	memcpy(&cmd, sqe.cmd, sizeof(cmd));
	EXPECT_EQ((uintptr_t)&pb, cmd.arg);
}

/* One command through @ring; the CQE's res. */
static int run_one(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	int ret = io_uring_submit_and_wait(ring, 1);

	if (ret < 0)
		return ret;
	ret = io_uring_wait_cqe(ring, &cqe);
	if (ret < 0)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return ret;
}

/* Push and pop batches as io_uring commands, as the ioctls would do them. */
TEST_F(lib, uring_push_pop_batch)
{
	struct elasticq_msg_vec v[3] = {
		{ (uintptr_t)"one", 3 }, { (uintptr_t)"", 0 }, { (uintptr_t)"three", 5 },
	};
	struct elasticq_push_batch pb = {
		.size = sizeof(pb), .msgs = (uintptr_t)v, .count = 3,
	};
	char buf[128] __attribute__((aligned(8)));
	struct elasticq_pop_batch b = {
		.size = sizeof(b), .buf = (uintptr_t)buf, .buf_len = sizeof(buf),
		.max_msgs = 8,
	};
	struct elasticq_frame_iter it;
	struct io_uring ring;
	const char *p;
	uint32_t len;
	int fd;

	fd = make_queue(self->name, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, io_uring_queue_init(4, &ring, 0));
	elasticq_prep_push_batch(io_uring_get_sqe(&ring), fd, &pb);
	ASSERT_EQ(3, run_one(&ring));
	EXPECT_EQ(0, pb.error);
	elasticq_prep_pop_batch(io_uring_get_sqe(&ring), fd, &b);
	ASSERT_EQ(3, run_one(&ring));
	EXPECT_EQ(ELASTICQ_FRAME_SIZE(3) + ELASTICQ_FRAME_SIZE(0) +
		  ELASTICQ_FRAME_SIZE(5), b.bytes);
	elasticq_frames_init(&it, buf, b.bytes);
	p = elasticq_frames_next(&it, &len);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(3, len);
	EXPECT_EQ(0, memcmp(p, "one", 3));
	p = elasticq_frames_next(&it, &len);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(0, len);
	p = elasticq_frames_next(&it, &len);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(0, memcmp(p, "three", 5));
	/* Same checks as the ioctl: a non-blocking pop of an empty queue. */
	b.flags = ELASTICQ_BATCH_NONBLOCK;
	elasticq_prep_pop_batch(io_uring_get_sqe(&ring), fd, &b);
	EXPECT_EQ(-EAGAIN, run_one(&ring));
	io_uring_queue_exit(&ring);
	close(fd);
}

TEST_F(lib, uring_consumer_bad_args)
{
	struct elasticq_uring_consumer c;
	struct elasticq_frame_iter it;
	struct io_uring ring;

	ASSERT_EQ(0, io_uring_queue_init(2, &ring, 0));
	EXPECT_EQ(-EINVAL, elasticq_uring_consumer_init(&c, &ring, self->fd, 0, 8, 4096));
	EXPECT_EQ(-EINVAL, elasticq_uring_consumer_init(&c, &ring, self->fd, 65, 8, 4096));
	EXPECT_EQ(-EINVAL, elasticq_uring_consumer_init(&c, &ring, self->fd, 1, 0, 4096));
	EXPECT_EQ(-EINVAL, elasticq_uring_consumer_init(&c, &ring, self->fd, 1,
							ELASTICQ_BATCH_MAX + 1, 4096));
	EXPECT_EQ(-EINVAL, elasticq_uring_consumer_init(&c, &ring, self->fd, 1, 8, 4));
	/* Not enough room in the SQ for the batches: nothing queued. */
	EXPECT_EQ(-EBUSY, elasticq_uring_consumer_init(&c, &ring, self->fd, 4, 8, 4096));
	EXPECT_EQ(2, io_uring_sq_space_left(&ring));
	elasticq_uring_consumer_exit(&c);	/* safe after a failed init */
	EXPECT_EQ(-EINVAL, elasticq_uring_consumer_next(&c, &it));
	io_uring_queue_exit(&ring);
}

/*
 * Close the queue's file under @inflight parked batches of @c: each must
 * complete with -ECANCELED (within 5 s); then free everything.
 */
static void consumer_teardown(struct __test_metadata *_metadata,
			      struct elasticq_uring_consumer *c,
			      struct io_uring *ring, int fd,
			      unsigned int inflight)
{
	struct __kernel_timespec ts = { .tv_sec = 5 };
	struct io_uring_cqe *cqe;
	unsigned int i;

	close(fd);
	for (i = 0; i < inflight; i++) {
		ASSERT_EQ(0, io_uring_wait_cqe_timeout(ring, &cqe, &ts));
		EXPECT_EQ(-ECANCELED, cqe->res);
		EXPECT_EQ(0x6571636fULL, cqe->user_data >> 32);
		io_uring_cqe_seen(ring, cqe);
	}
	io_uring_queue_exit(ring);
	elasticq_uring_consumer_exit(c);
}

#define CONSUMER_MSGS	20000

/*
 * A producer process pushes CONSUMER_MSGS messages "seq" of varying size
 * in batches; the io_uring consumer with 4 batches in flight gets each
 * once, in order.  Then the file is closed under the batches parked on
 * the empty queue: they complete with -ECANCELED and take nothing.
 */
TEST_F(lib, uring_consumer)
{
	struct elasticq_uring_consumer c;
	struct elasticq_frame_iter it;
	struct elasticq_stats st;
	struct io_uring ring;
	uint32_t next = 0, len, seq;
	const unsigned char *p;
	char buf[64];
	pid_t pid;
	int fd, n;

	/*
	 * The producer inherits neither the ring nor the consumer's file: its
	 * exit must not look like the submitter closing them.
	 */
	fd = make_queue(self->name, NULL);
	ASSERT_LE(0, fd);
	close(fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		static unsigned char msg[16][300];
		struct iovec iov[16];
		uint32_t s, i;
		int w = elasticq_open(self->name, O_WRONLY, 0, 0, NULL);

		for (s = 0; w >= 0 && s < CONSUMER_MSGS; s += i) {
			for (i = 0; i < 16 && s + i < CONSUMER_MSGS; i++) {
				seq = s + i;
				iov[i].iov_base = msg[i];
				iov[i].iov_len = sizeof(seq) + seq % 257;
				memcpy(msg[i], &seq, sizeof(seq));
				eq_fill(msg[i] + sizeof(seq), seq % 257, 1, seq);
			}
			if (elasticq_push_batch(w, iov, i, 0, 0, NULL) != (int)i)
				_exit(1);
		}
		_exit(w < 0 ? 2 : 0);
	}
	self->child[0] = pid;
	fd = elasticq_open(self->name, O_RDONLY, 0, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	ASSERT_EQ(0, elasticq_uring_consumer_init(&c, &ring, fd, 4, 64, 4096));
	while (next < CONSUMER_MSGS) {
		n = elasticq_uring_consumer_next(&c, &it);
		ASSERT_LT(0, n) TH_LOG("next: %s", elasticq_strerror(n));
		while ((p = elasticq_frames_next(&it, &len))) {
			ASSERT_LE(sizeof(seq), len);
			memcpy(&seq, p, sizeof(seq));
			ASSERT_EQ(next, seq);
			ASSERT_EQ(sizeof(seq) + seq % 257, len);
			ASSERT_TRUE(eq_check_fill(p + sizeof(seq), seq % 257, 1, seq));
			next++;
			n--;
		}
		ASSERT_EQ(0, n);
	}
	EXPECT_EQ(0, eq_wait_exit(pid));
	self->child[0] = 0;
	/* Three in flight (the last one handed out was not resubmitted). */
	consumer_teardown(_metadata, &c, &ring, fd, 3);
	fd = elasticq_open(self->name, O_RDWR, 0, 0, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, elasticq_get_stats(fd, &st));
	EXPECT_EQ(CONSUMER_MSGS, st.enqueued);
	EXPECT_EQ(CONSUMER_MSGS, st.dequeued);
	ASSERT_EQ(0, elasticq_push(fd, "after", 5));
	EXPECT_EQ(5, eq_pop_nb(fd, buf, sizeof(buf)));
	close(fd);
}

/* A completion the consumer did not ask for is reported, not misread. */
TEST_F(lib, uring_consumer_foreign_cqe)
{
	struct elasticq_uring_consumer c;
	struct elasticq_frame_iter it;
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	int fd;

	fd = make_queue(self->name, NULL);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	ASSERT_EQ(0, elasticq_uring_consumer_init(&c, &ring, fd, 2, 8, 4096));
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_nop(sqe);
	sqe->user_data = 42;
	ASSERT_EQ(1, io_uring_submit(&ring));
	EXPECT_EQ(-EPROTO, elasticq_uring_consumer_next(&c, &it));
	/* The parked batches still deliver. */
	ASSERT_EQ(0, elasticq_push(fd, "x", 1));
	EXPECT_EQ(1, elasticq_uring_consumer_next(&c, &it));
	consumer_teardown(_metadata, &c, &ring, fd, 1);
}

TEST_HARNESS_MAIN
