// SPDX-License-Identifier: MIT
/*
 * burst-demo: watch the default queue absorb a burst and give the memory
 * back.  Several producer processes write a burst of messages while the
 * consumer is away, so the queue grows; then the consumer drains it and the
 * queue shrinks.  Every capacity change is printed as it is observed, and
 * at the end every message is checked to have arrived exactly once, in
 * order per producer.
 *
 * Usage: burst-demo [producers [messages-per-producer]]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/elasticq.h>

struct demo_msg {
	unsigned int producer;
	unsigned int seq;
	char text[48];
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void get_stats(int fd, struct elasticq_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	if (ioctl(fd, ELASTICQ_IOC_GET_STATS, st))
		die("ELASTICQ_IOC_GET_STATS");
}

static void produce(unsigned int id, unsigned int count)
{
	struct demo_msg m = { .producer = id };
	int fd = open(ELASTICQ_DEVICE_PATH, O_WRONLY);
	unsigned int i;

	if (fd < 0)
		die("open " ELASTICQ_DEVICE_PATH);
	for (i = 0; i < count; i++) {
		m.seq = i;
		snprintf(m.text, sizeof(m.text), "sensor/%u reading %u", id, i);
		if (write(fd, &m, sizeof(m)) != sizeof(m))
			die("write");
	}
	close(fd);
	exit(0);
}

/* Print a row if @force or the capacity moved since the last row. */
static void report(int fd, double t0, const char *phase,
		   unsigned long long *cap, int force)
{
	struct elasticq_stats st;

	get_stats(fd, &st);
	if (st.capacity == *cap && !force)
		return;
	printf("%8.0f  %-7s %8llu %9llu %11llu\n", now_ms() - t0, phase,
	       (unsigned long long)st.len, (unsigned long long)st.capacity,
	       (unsigned long long)st.mem_bytes);
	*cap = st.capacity;
}

int main(int argc, char **argv)
{
	unsigned int producers = argc > 1 ? atoi(argv[1]) : 4;
	unsigned int count = argc > 2 ? atoi(argv[2]) : 12000;
	unsigned long long cap = 0, rest_cap, rest_mem, peak_cap, peak_mem;
	unsigned int *next, got = 0, i, alive;
	struct elasticq_stats st;
	struct demo_msg m;
	double t0, t1;
	int fd, status;

	if (!producers || !count)
		return 2;
	fd = open(ELASTICQ_DEVICE_PATH, O_RDWR);
	if (fd < 0)
		die("open " ELASTICQ_DEVICE_PATH);
	next = calloc(producers, sizeof(*next));
	if (!next)
		die("calloc");
	get_stats(fd, &st);
	rest_cap = st.capacity;
	rest_mem = st.mem_bytes;
	printf("elasticq burst demo: %u producers x %u messages of %zu bytes\n\n",
	       producers, count, sizeof(m));
	printf("%8s  %-7s %8s %9s %11s\n", "ms", "phase", "len", "capacity",
	       "mem_bytes");

	fflush(stdout);	/* or the children inherit the buffered lines */
	t0 = now_ms();
	for (i = 0; i < producers; i++)
		if (fork() == 0)
			produce(i, count);
	/* The consumer is away: watch the burst pile up. */
	for (alive = producers; alive;) {
		report(fd, t0, "burst", &cap, 0);
		while (waitpid(-1, &status, WNOHANG) > 0) {
			if (!WIFEXITED(status) || WEXITSTATUS(status))
				return 1;
			alive--;
		}
		usleep(2000);
	}
	report(fd, t0, "burst", &cap, 1);
	get_stats(fd, &st);
	peak_cap = st.capacity;
	peak_mem = st.mem_bytes;

	/* Now drain it, checking order and completeness as we go. */
	t1 = now_ms();
	while (got < producers * count) {
		if (read(fd, &m, sizeof(m)) != sizeof(m))
			die("read");
		if (m.producer >= producers || m.seq != next[m.producer]) {
			fprintf(stderr, "out of order: producer %u seq %u\n",
				m.producer, m.seq);
			return 1;
		}
		next[m.producer]++;
		got++;
		report(fd, t0, "drain", &cap, got == producers * count);
	}
	t1 = now_ms() - t1;
	get_stats(fd, &st);
	printf("\n%u messages, every one exactly once and in order per producer\n",
	       got);
	printf("drained at %.0f messages/s\n", got / (t1 / 1e3));
	printf("capacity: %llu at rest, %llu at peak, %llu after the drain\n",
	       rest_cap, peak_cap, (unsigned long long)st.capacity);
	printf("kernel memory: %llu bytes at rest, %llu at peak, %llu after\n",
	       rest_mem, peak_mem, (unsigned long long)st.mem_bytes);
	printf("grows %llu, shrinks %llu\n", (unsigned long long)st.grows,
	       (unsigned long long)st.shrinks);
	return 0;
}
