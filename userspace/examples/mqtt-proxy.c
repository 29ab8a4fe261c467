// SPDX-License-Identifier: MIT
/*
 * mqtt-proxy: the pattern elasticq is for.  N publisher processes send
 * MQTT-like messages (a topic and a payload of mixed sizes: small
 * telemetry, JSON documents, the odd image chunk) into one named queue; one
 * processor drains it through io_uring pop batches (libelasticq's
 * elasticq_uring_consumer).
 *
 * Three phases:
 *   steady  publishers send at a modest pace, the processor keeps up;
 *   burst   the processor pauses (say, its upstream broker is away) while
 *           the publishers send as fast as they can: the queue grows;
 *   drain   the processor resumes and empties the queue: it shrinks and
 *           gives its memory back.
 *
 * Every message carries its publisher, a sequence number and the
 * CLOCK_MONOTONIC time it was published; the processor rebuilds what each
 * publisher must have sent and checks every message against it, so each
 * arrives exactly once, in order per publisher, intact.  The capacity and
 * kernel memory of the queue are sampled with GET_STATS throughout.
 *
 * Usage: mqtt-proxy [-p publishers] [-s steady-msgs] [-b burst-msgs]
 *                   [-q queue-name]   (message counts are per publisher)
 * Exit status 0 when every message checked out, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libelasticq.h"

#define MAX_PUBLISHERS	64
#define MAX_TOPIC	96
#define MAX_PAYLOAD	4096
#define MAX_MSG		(sizeof(struct mqtt_hdr) + MAX_TOPIC + MAX_PAYLOAD)

/* Batches in flight and messages per batch of the processor. */
#define POP_DEPTH	4
#define POP_MSGS	64

/* What goes in front of the topic and the payload. */
struct mqtt_hdr {
	uint32_t publisher;
	uint32_t seq;
	uint64_t sent_ns;	/* CLOCK_MONOTONIC at publication */
	uint16_t topic_len;
	uint16_t payload_len;
	uint32_t reserved;
};

static struct {
	unsigned int publishers;
	unsigned int steady;		/* per publisher */
	unsigned int burst;		/* per publisher */
	unsigned int steady_gap_us;	/* between steady messages */
	const char *queue;
} opt = {
	.publishers = 4,
	.steady = 500,
	.burst = 5000,
	.steady_gap_us = 500,
	.queue = "mqtt.ingest",
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "mqtt-proxy: %s: %s\n", what, strerror(err));
	exit(1);
}

/* ------------------------------------------------------------------ */
/* The messages: the same generator runs in the publisher, to send, and */
/* in the processor, to know what must arrive.                          */

struct gen {
	uint64_t rng;	/* xorshift64 state, one per publisher */
};

static uint32_t gen_next(struct gen *g)
{
	g->rng ^= g->rng << 13;
	g->rng ^= g->rng >> 7;
	g->rng ^= g->rng << 17;
	return g->rng >> 16;
}

static void gen_init(struct gen *g, unsigned int publisher)
{
	g->rng = 0x9e3779b97f4a7c15ull * (publisher + 1);
}

/*
 * Writes publisher @id's message @seq into @m and returns its length.
 * Sizes are mixed like a real broker's: mostly small telemetry, some JSON
 * documents, and one in twenty a multi-kilobyte blob.
 */
static size_t gen_msg(struct gen *g, unsigned int id, uint32_t seq,
		      unsigned char *m)
{
	static const char *const kinds[] = { "temperature", "humidity",
		"state", "config", "camera/chunk" };
	struct mqtt_hdr h = { .publisher = id, .seq = seq };
	uint32_t r = gen_next(g), i;
	unsigned int kind, plen;
	char *topic = (char *)m + sizeof(h);
	unsigned char *payload;

	if (r % 20 == 0) {
		kind = 4;
		plen = 2048 + gen_next(g) % (MAX_PAYLOAD - 2048 + 1);
	} else if (r % 4 == 0) {
		kind = 2 + r % 2;
		plen = 100 + gen_next(g) % 500;
	} else {
		kind = r % 2;
		plen = 8 + gen_next(g) % 57;
	}
	h.topic_len = snprintf(topic, MAX_TOPIC, "site/%u/device/%u/%s", id,
			       (unsigned int)(r >> 8) % 100, kinds[kind]);
	h.payload_len = plen;
	payload = (unsigned char *)topic + h.topic_len;
	for (i = 0; i < plen; i++)
		payload[i] = (unsigned char)(seq * 31 + i * 7 + id);
	memcpy(m, &h, sizeof(h));
	return sizeof(h) + h.topic_len + plen;
}

/* ------------------------------------------------------------------ */
/* publishers                                                           */

static void publish(int fd, struct gen *g, unsigned int id, uint32_t seq,
		    unsigned char *m)
{
	struct mqtt_hdr *h = (struct mqtt_hdr *)m;
	size_t len = gen_msg(g, id, seq, m);
	int ret;

	h->sent_ns = now_ns();
	ret = elasticq_push(fd, m, len);
	if (ret < 0)
		die("elasticq_push", -ret);
}

/* Steady messages at a pace, then, once @go closes, the burst flat out. */
static void publisher(unsigned int id, int go)
{
	static unsigned char m[MAX_MSG];
	struct timespec gap = { 0, opt.steady_gap_us * 1000L };
	uint32_t seq = 0, i;
	struct gen g;
	char c;
	int fd;

	fd = elasticq_open(opt.queue, O_WRONLY, 0, 0, NULL);
	if (fd < 0)
		die("elasticq_open (publisher)", -fd);
	gen_init(&g, id);
	for (i = 0; i < opt.steady; i++) {
		publish(fd, &g, id, seq++, m);
		nanosleep(&gap, NULL);
	}
	if (read(go, &c, 1) < 0)	/* EOF: the processor paused */
		die("read", errno);
	for (i = 0; i < opt.burst; i++)
		publish(fd, &g, id, seq++, m);
	close(fd);
	exit(0);
}

/* ------------------------------------------------------------------ */
/* the processor                                                        */

struct phase {
	const char *name;
	unsigned long msgs;
	uint64_t *lat_ns;	/* enqueue-to-dequeue, one per message */
	uint64_t t_start, t_end;
};

struct processor {
	int fd;
	struct elasticq_uring_consumer c;
	struct io_uring ring;
	struct gen gen[MAX_PUBLISHERS];
	uint32_t next_seq[MAX_PUBLISHERS];
	unsigned char expect[MAX_MSG];
	unsigned long bad;
	/* GET_STATS samples */
	uint64_t cap_min, cap_peak, mem_peak;
};

static void sample(struct processor *p, struct elasticq_stats *st)
{
	int ret = elasticq_get_stats(p->fd, st);

	if (ret < 0)
		die("elasticq_get_stats", -ret);
	if (st->capacity < p->cap_min)
		p->cap_min = st->capacity;
	if (st->capacity > p->cap_peak)
		p->cap_peak = st->capacity;
	if (st->mem_bytes > p->mem_peak)
		p->mem_peak = st->mem_bytes;
}

/* Checks one message against what its publisher must have sent next. */
static void check(struct processor *p, const unsigned char *m, uint32_t len,
		  struct phase *ph, uint64_t t)
{
	struct mqtt_hdr h;
	size_t want;

	if (len < sizeof(h)) {
		p->bad++;
		return;
	}
	memcpy(&h, m, sizeof(h));
	if (h.publisher >= opt.publishers || h.seq != p->next_seq[h.publisher]) {
		if (p->bad++ < 5)
			fprintf(stderr, "mqtt-proxy: publisher %u: seq %u, expected %u\n",
				h.publisher, h.seq, h.publisher < opt.publishers ?
				p->next_seq[h.publisher] : 0);
		return;
	}
	want = gen_msg(&p->gen[h.publisher], h.publisher, h.seq, p->expect);
	/* All but the timestamp must match, byte for byte. */
	if (want != len || memcmp(m + sizeof(h), p->expect + sizeof(h),
				  len - sizeof(h))) {
		if (p->bad++ < 5)
			fprintf(stderr, "mqtt-proxy: publisher %u seq %u: corrupt\n",
				h.publisher, h.seq);
	}
	p->next_seq[h.publisher]++;
	ph->lat_ns[ph->msgs++] = t - h.sent_ns;
}

/* Handles batches until @want messages of @ph came, sampling the queue. */
static void drain(struct processor *p, struct phase *ph, unsigned long want)
{
	struct elasticq_frame_iter it;
	struct elasticq_stats st;
	const void *msg;
	uint32_t len;

	while (ph->msgs < want) {
		int n = elasticq_uring_consumer_next(&p->c, &it);
		uint64_t t = now_ns();

		if (n < 0)
			die("elasticq_uring_consumer_next", -n);
		while ((msg = elasticq_frames_next(&it, &len)))
			check(p, msg, len, ph, t);
		sample(p, &st);
	}
	ph->t_end = now_ns();
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void print_phase(struct phase *ph, const char *note)
{
	double secs = (ph->t_end - ph->t_start) / 1e9;
	unsigned long n = ph->msgs;

	qsort(ph->lat_ns, n, sizeof(*ph->lat_ns), cmp_u64);
	printf("%-14s %9lu %9.0f %10.2f %10.2f %10.2f  %s\n", ph->name, n,
	       n / secs, ph->lat_ns[n / 2] / 1e6,
	       ph->lat_ns[n - 1 - n / 100] / 1e6, ph->lat_ns[n - 1] / 1e6, note);
}

static void usage(void)
{
	fprintf(stderr, "usage: mqtt-proxy [-p publishers] [-s steady-msgs] "
		"[-b burst-msgs] [-q queue-name]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct elasticq_config cfg = { .size = sizeof(cfg) };
	struct elasticq_stats rest, peak_st, after;
	struct phase steady = { .name = "steady" }, burst = { .name = "burst+drain" };
	struct processor *p = calloc(1, sizeof(*p));
	unsigned int i, alive;
	uint64_t pause_end;
	int go[2], ret, c, status, failed = 0;

	while ((c = getopt(argc, argv, "p:s:b:q:h")) != -1) {
		switch (c) {
		case 'p': opt.publishers = strtoul(optarg, NULL, 0); break;
		case 's': opt.steady = strtoul(optarg, NULL, 0); break;
		case 'b': opt.burst = strtoul(optarg, NULL, 0); break;
		case 'q': opt.queue = optarg; break;
		default: usage();
		}
	}
	if (optind != argc || !opt.publishers || opt.publishers > MAX_PUBLISHERS ||
	    !opt.steady || !opt.burst)
		usage();
	steady.lat_ns = calloc((size_t)opt.publishers * opt.steady, sizeof(uint64_t));
	burst.lat_ns = calloc((size_t)opt.publishers * opt.burst, sizeof(uint64_t));
	if (!p || !steady.lat_ns || !burst.lat_ns)
		die("calloc", ENOMEM);

	/*
	 * A small floor so that growth and shrinking show: 64 slots to 32768
	 * and back for the default burst.  Lock-free: one processor.
	 */
	ret = elasticq_default_config(&cfg);
	if (ret < 0)
		die("elasticq_default_config (is the module loaded?)", -ret);
	cfg.variant = ELASTICQ_VARIANT_LOCKFREE;
	cfg.full_policy = ELASTICQ_FULL_BLOCK;
	cfg.min_capacity = 64;
	cfg.initial_capacity = 64;
	cfg.max_capacity = 65536;
	cfg.max_msg_size = MAX_MSG;
	/* A lost message ends the drain with ETIMEDOUT instead of a hang. */
	cfg.pop_timeout_ns = 10000000000ull;
	elasticq_destroy(opt.queue);	/* a stale one from an earlier run */
	p->fd = elasticq_open(opt.queue, O_RDWR,
			      ELASTICQ_ATTACH_CREATE | ELASTICQ_ATTACH_EXCL, 0600, &cfg);
	if (p->fd < 0)
		die("elasticq_open", -p->fd);
	ret = elasticq_consume(p->fd);
	if (ret < 0)
		die("elasticq_consume", -ret);
	p->cap_min = UINT64_MAX;
	sample(p, &rest);
	ret = io_uring_queue_init(2 * POP_DEPTH, &p->ring, 0);
	if (ret < 0)
		die("io_uring_queue_init", -ret);
	ret = elasticq_uring_consumer_init(&p->c, &p->ring, p->fd, POP_DEPTH,
					   POP_MSGS, POP_MSGS * ELASTICQ_FRAME_SIZE(MAX_MSG));
	if (ret < 0)
		die("elasticq_uring_consumer_init", -ret);
	for (i = 0; i < opt.publishers; i++)
		gen_init(&p->gen[i], i);

	printf("mqtt-proxy: %u publishers x (%u steady + %u burst) messages into "
	       "queue %s,\n  one processor draining through io_uring (%u pop "
	       "batches of %u in flight)\n\n", opt.publishers, opt.steady,
	       opt.burst, opt.queue, POP_DEPTH, POP_MSGS);
	if (pipe(go))
		die("pipe", errno);
	fflush(stdout);	/* or the publishers' exit() prints it again */
	for (i = 0; i < opt.publishers; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork", errno);
		if (pid == 0) {
			close(go[1]);
			publisher(i, go[0]);
		}
	}
	close(go[0]);

	steady.t_start = now_ns();
	drain(p, &steady, (unsigned long)opt.publishers * opt.steady);

	/*
	 * The burst: release the publishers and look away until they are
	 * done, watching the queue grow.  The pops already in flight take a
	 * few batches meanwhile; the rest piles up in the queue.
	 */
	burst.t_start = now_ns();
	close(go[1]);
	for (alive = opt.publishers; alive;) {
		while (alive && waitpid(-1, &status, WNOHANG) > 0) {
			alive--;
			if (!WIFEXITED(status) || WEXITSTATUS(status))
				failed = 1;
		}
		sample(p, &peak_st);
		usleep(5000);
	}
	pause_end = now_ns();
	sample(p, &peak_st);
	if (failed)
		die("a publisher failed", EIO);
	drain(p, &burst, (unsigned long)opt.publishers * opt.burst);
	sample(p, &after);

	printf("%-14s %9s %9s %10s %10s %10s\n", "phase", "messages", "msgs/s",
	       "p50 ms", "p99 ms", "max ms");
	printf("%-14s %9s %9s %10s %10s %10s\n", "", "", "",
	       "(enqueue", "to", "dequeue)");
	print_phase(&steady, "processor keeps up");
	{
		char note[96];

		snprintf(note, sizeof(note),
			 "processor paused %.0f ms, then drained %.0f msgs/s",
			 (pause_end - burst.t_start) / 1e6,
			 burst.msgs / ((burst.t_end - pause_end) / 1e9));
		print_phase(&burst, note);
	}
	printf("\n%-14s %12s %12s %12s\n", "", "at rest", "peak", "after drain");
	printf("%-14s %12llu %12llu %12llu   (min %llu; grew %llu times, shrank %llu)\n",
	       "capacity", (unsigned long long)rest.capacity,
	       (unsigned long long)p->cap_peak, (unsigned long long)after.capacity,
	       (unsigned long long)p->cap_min, (unsigned long long)after.grows,
	       (unsigned long long)after.shrinks);
	printf("%-14s %12llu %12llu %12llu   bytes\n", "kernel memory",
	       (unsigned long long)rest.mem_bytes, (unsigned long long)p->mem_peak,
	       (unsigned long long)after.mem_bytes);
	printf("%-14s %12s %12llu %12llu\n", "queued", "0",
	       (unsigned long long)after.high_water, (unsigned long long)after.len);

	/*
	 * Tear the ring down first: that ends the pops still parked on the
	 * queue, whose buffers the consumer owns.
	 */
	io_uring_queue_exit(&p->ring);
	elasticq_uring_consumer_exit(&p->c);
	elasticq_destroy(opt.queue);
	close(p->fd);

	for (i = 0; i < opt.publishers; i++)
		if (p->next_seq[i] != opt.steady + opt.burst)
			p->bad++;
	if (p->bad || after.len) {
		printf("\nFAILED: %lu messages lost, repeated, out of order or corrupt\n",
		       p->bad);
		return 1;
	}
	printf("\nevery message arrived exactly once, in order per publisher, intact\n");
	return 0;
}
