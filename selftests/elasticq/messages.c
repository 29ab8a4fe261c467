// SPDX-License-Identifier: MIT
/*
 * Messages through write(2)/writev(2) and read(2): SPEC section 4.
 */
#include "eq_test.h"

static uint8_t big[2 * ELASTICQ_MSG_SIZE_LIMIT];
static uint8_t got[2 * ELASTICQ_MSG_SIZE_LIMIT];

TEST_F(eq, round_trip)
{
	static const char msg[] = "hello, elasticq";
	struct elasticq_stats st0, st;

	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));
	ASSERT_EQ(0, st0.len);
	ASSERT_EQ(sizeof(msg), eq_push(self->fd, msg, sizeof(msg)));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.len);
	EXPECT_EQ(sizeof(msg), st.bytes);
	EXPECT_EQ(st0.enqueued + 1, st.enqueued);
	EXPECT_EQ(st0.dequeued, st.dequeued);

	memset(got, 0xa5, 64);
	ASSERT_EQ(sizeof(msg), eq_pop(self->fd, got, 64));
	EXPECT_EQ(0, memcmp(msg, got, sizeof(msg)));
	/* Nothing beyond the message was written to the buffer. */
	EXPECT_EQ(0xa5, got[sizeof(msg)]);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(0, st.bytes);
	EXPECT_EQ(st0.enqueued + 1, st.enqueued);
	EXPECT_EQ(st0.dequeued + 1, st.dequeued);
}

/* `echo hello > /dev/elasticq` then `timeout 2 cat /dev/elasticq`. */
TEST_F(eq, shell_echo_cat)
{
	struct elasticq_stats st;
	size_t n = 0;
	FILE *p;
	int status;

	status = system("echo hello > " EQ_DEV);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	ASSERT_EQ(1, st.len);
	ASSERT_EQ(6, st.bytes);

	p = popen("timeout 5 cat " EQ_DEV, "r");
	ASSERT_NE(NULL, p);
	while (n < sizeof(got) - 1) {
		size_t r = fread(got + n, 1, sizeof(got) - 1 - n, p);

		if (!r)
			break;
		n += r;
	}
	status = pclose(p);
	got[n] = '\0';
	EXPECT_STREQ("hello\n", (char *)got);
	/* cat blocks on the empty queue until timeout kills it. */
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(124, WEXITSTATUS(status));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.len);
}

TEST_F(eq, zero_byte_message)
{
	int nb = eq_open(O_NONBLOCK);
	struct elasticq_stats st;

	ASSERT_LE(0, nb);
	ASSERT_EQ(0, eq_push(self->fd, "", 0));
	ASSERT_EQ(1, eq_push(self->fd, "x", 1));
	ASSERT_EQ(0, eq_push(self->fd, NULL, 0));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(3, st.len);
	EXPECT_EQ(1, st.bytes);

	/* A 0-byte message is a message, not end of file. */
	ASSERT_EQ(0, eq_pop(nb, got, sizeof(got)));
	ASSERT_EQ(1, eq_pop(nb, got, sizeof(got)));
	EXPECT_EQ('x', got[0]);
	/* Even into a 0-byte buffer. */
	ASSERT_EQ(0, eq_pop(nb, got, 0));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(-EAGAIN, eq_pop(nb, got, sizeof(got)));
	close(nb);
}

TEST_F(eq, max_size_message)
{
	struct elasticq_stats st;

	eq_fill(big, EQ_DEF_MSG_SIZE, 1, 2);
	ASSERT_EQ(EQ_DEF_MSG_SIZE, eq_push(self->fd, big, EQ_DEF_MSG_SIZE));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.len);
	EXPECT_EQ(EQ_DEF_MSG_SIZE, st.bytes);
	/* Exactly the message size is enough. */
	ASSERT_EQ(EQ_DEF_MSG_SIZE, eq_pop(self->fd, got, EQ_DEF_MSG_SIZE));
	EXPECT_TRUE(eq_check_fill(got, EQ_DEF_MSG_SIZE, 1, 2));
}

TEST_F(eq, too_big_emsgsize)
{
	struct elasticq_stats st0, st;
	struct elasticq_config cfg;

	ASSERT_EQ(3, eq_push(self->fd, "abc", 3));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));

	EXPECT_EQ(-EMSGSIZE, eq_push(self->fd, big, EQ_DEF_MSG_SIZE + 1));
	EXPECT_EQ(-EMSGSIZE, eq_push(self->fd, big, ELASTICQ_MSG_SIZE_LIMIT + 1));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.len, st.len);
	EXPECT_EQ(st0.bytes, st.bytes);
	EXPECT_EQ(st0.enqueued, st.enqueued);
	EXPECT_EQ(st0.rejected, st.rejected);

	/* The limit follows the config. */
	ASSERT_EQ(0, eq_get_config(self->fd, &cfg));
	cfg.max_msg_size = 100;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	EXPECT_EQ(-EMSGSIZE, eq_push(self->fd, big, 101));
	EXPECT_EQ(100, eq_push(self->fd, big, 100));
	/* A message larger than max_bytes could never fit either. */
	cfg.max_msg_size = EQ_DEF_MSG_SIZE;
	cfg.max_bytes = 200;
	ASSERT_EQ(0, eq_set_config(self->fd, &cfg));
	EXPECT_EQ(-EMSGSIZE, eq_push(self->fd, big, 201));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(st0.len + 1, st.len);
	EXPECT_EQ(st0.enqueued + 1, st.enqueued);

	/* The queue is intact: "abc" first. */
	ASSERT_EQ(3, eq_pop(self->fd, got, sizeof(got)));
	EXPECT_EQ(0, memcmp(got, "abc", 3));
	ASSERT_EQ(100, eq_pop(self->fd, got, sizeof(got)));
}

TEST_F(eq, writev_gathers)
{
	char a[] = "abc", c[] = "defgh";
	struct iovec iov[3] = {
		{ a, 3 }, { NULL, 0 }, { c, 5 },
	};
	struct iovec big_iov[3] = {
		{ big, 4096 }, { big + 4096, 4096 }, { big + 8192, 1 },
	};
	struct elasticq_stats st;

	ASSERT_EQ(8, writev(self->fd, iov, 3));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.len);
	EXPECT_EQ(8, st.bytes);

	/* The total counts, not the largest segment. */
	EXPECT_EQ(-1, writev(self->fd, big_iov, 3));
	EXPECT_EQ(EMSGSIZE, errno);
	eq_fill(big, 8192, 7, 7);
	EXPECT_EQ(8192, writev(self->fd, big_iov, 2));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(2, st.len);

	memset(got, 0, 16);
	ASSERT_EQ(8, eq_pop(self->fd, got, sizeof(got)));
	EXPECT_EQ(0, memcmp(got, "abcdefgh", 8));
	ASSERT_EQ(8192, eq_pop(self->fd, got, sizeof(got)));
	EXPECT_TRUE(eq_check_fill(got, 8192, 7, 7));
}

TEST_F(eq, short_buffer_emsgsize)
{
	struct elasticq_stats st0, st;
	struct iovec iov[2];

	eq_fill(big, 100, 3, 4);
	ASSERT_EQ(100, eq_push(self->fd, big, 100));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st0));

	EXPECT_EQ(-EMSGSIZE, eq_pop(self->fd, got, 99));
	EXPECT_EQ(-EMSGSIZE, eq_pop(self->fd, got, 1));
	EXPECT_EQ(-EMSGSIZE, eq_pop(self->fd, got, 0));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.len);
	EXPECT_EQ(100, st.bytes);
	EXPECT_EQ(st0.dequeued, st.dequeued);

	/* Still there, whole, and readv scatters it. */
	memset(got, 0, 200);
	iov[0].iov_base = got;
	iov[0].iov_len = 60;
	iov[1].iov_base = got + 100;
	iov[1].iov_len = 40;
	ASSERT_EQ(100, readv(self->fd, iov, 2));
	EXPECT_TRUE(eq_check_fill(big, 100, 3, 4));
	EXPECT_EQ(0, memcmp(got, big, 60));
	EXPECT_EQ(0, memcmp(got + 100, big + 60, 40));
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.len);
	EXPECT_EQ(st0.dequeued + 1, st.dequeued);
}

TEST_F(eq, fifo_order)
{
	const uint32_t n = 3000;
	uint32_t i, next = 0;

	/* Variable lengths, interleaved pushes and pops. */
	for (i = 0; i < n; i++) {
		size_t len = (i * 37) % 301;

		eq_fill(big, len, 9, i);
		ASSERT_EQ(len, eq_push(self->fd, big, len));
		if (i % 3 == 2) {
			size_t want = (next * 37) % 301;

			ASSERT_EQ(want, eq_pop(self->fd, got, sizeof(got)));
			ASSERT_TRUE(eq_check_fill(got, want, 9, next));
			next++;
		}
	}
	for (; next < n; next++) {
		size_t want = (next * 37) % 301;

		ASSERT_EQ(want, eq_pop(self->fd, got, sizeof(got)));
		ASSERT_TRUE(eq_check_fill(got, want, 9, next)) {
			TH_LOG("message %u corrupt or out of order", next);
		}
	}
}

/* The queue outlives its files: a new consumer gets the messages. */
TEST_F(eq, messages_outlive_files)
{
	int w, r;

	w = eq_open(0);
	ASSERT_LE(0, w);
	ASSERT_EQ(5, eq_push(w, "first", 5));
	ASSERT_EQ(6, eq_push(w, "second", 6));
	close(w);

	/* A consumer that read one and went away... */
	r = eq_open(0);
	ASSERT_LE(0, r);
	ASSERT_EQ(5, eq_pop(r, got, sizeof(got)));
	EXPECT_EQ(0, memcmp(got, "first", 5));
	close(r);

	/* ...leaves the rest to the next one. */
	r = eq_open(O_NONBLOCK);
	ASSERT_LE(0, r);
	ASSERT_EQ(6, eq_pop(r, got, sizeof(got)));
	EXPECT_EQ(0, memcmp(got, "second", 6));
	EXPECT_EQ(-EAGAIN, eq_pop(r, got, sizeof(got)));
	close(r);
}

/* A consumer killed while blocked loses nothing. */
TEST_F(eq, consumer_killed_while_blocked)
{
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char buf[64];

		_exit(eq_pop(self->fd, buf, sizeof(buf)) >= 0 ? 0 : 1);
	}
	self->child[0] = pid;
	ASSERT_EQ(0, eq_wait_blocked(pid));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	EXPECT_EQ(1000 + SIGKILL, eq_wait_exit(pid));
	self->child[0] = 0;

	ASSERT_EQ(4, eq_push(self->fd, "kept", 4));
	ASSERT_EQ(4, eq_pop(self->fd, got, sizeof(got)));
	EXPECT_EQ(0, memcmp(got, "kept", 4));
}

/* A stream: no offsets. */
TEST_F(eq, no_seek_no_pread)
{
	struct elasticq_stats st;

	errno = 0;
	EXPECT_EQ(-1, lseek(self->fd, 0, SEEK_SET));
	EXPECT_EQ(ESPIPE, errno);
	errno = 0;
	EXPECT_EQ(-1, pwrite(self->fd, "p", 1, 0));
	EXPECT_EQ(ESPIPE, errno);
	ASSERT_EQ(1, eq_push(self->fd, "q", 1));
	errno = 0;
	EXPECT_EQ(-1, pread(self->fd, got, sizeof(got), 0));
	EXPECT_EQ(ESPIPE, errno);
	ASSERT_EQ(0, eq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.len);
	ASSERT_EQ(1, eq_pop(self->fd, got, sizeof(got)));
	EXPECT_EQ('q', got[0]);
}

TEST_HARNESS_MAIN
