// SPDX-License-Identifier: MIT
/*
 * core_bench: throughput of the two queue cores, built natively in
 * userspace over the shim (no sanitizers), as `make core-bench` runs it.
 *
 * Three workloads per variant, N messages of 16 bytes each, allocated by
 * the producer and freed by the consumer as in the module:
 *   1T-alt    one thread: push one, pop one (enqueue + dequeue latency)
 *   1P/1C     one producer thread, one consumer thread
 *   4P/1C     four producer threads, one consumer thread
 * Producers that find the queue full yield and retry; the consumer spins
 * with sched_yield() when it is empty.  Ring: 1024..65536 slots, growth
 * 200 %, shrink 25 % (the module's defaults), so bursts resize it.
 *
 * It prints a table (messages/s, ns per message) and checks that every
 * message arrived once and in per-producer order; it is a measurement,
 * not a test: no time limit, nothing fails on speed.
 *
 * Usage: core_bench [messages]   (default 2000000)
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core_cfg.h"
#include "eq_lfring.h"
#include "eq_ring.h"

#define MAX_PROD	4
#define MSG_LEN		16

enum variant { LOCKED, LOCKFREE };

struct bench {
	enum variant v;
	struct eq_ring ring;		/* LOCKED, ring.lock protects it */
	struct eq_lfq lfq;		/* LOCKFREE */
	struct eq_mem_budget budget;
	unsigned int nprod;
	u64 per_producer;
	u64 full_retries[MAX_PROD];
	u64 bad;			/* lost, duplicated or out of order */
};

struct producer_arg {
	struct bench *b;
	u32 who;
};

static struct elasticq_config bench_cfg(enum variant v)
{
	return eq_core_cfg(1024, 1024, 65536,
			   v == LOCKFREE ? ELASTICQ_VARIANT_LOCKFREE :
					   ELASTICQ_VARIANT_LOCKED);
}

static u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* 0, or -EAGAIN if full (the caller keeps @m). */
static int bench_push(struct bench *b, struct eq_msg *m)
{
	int ret;

	if (b->v == LOCKFREE)
		return eq_lfq_push(&b->lfq, m);
	mutex_lock(&b->ring.lock);
	ret = eq_ring_push(&b->ring, m);
	mutex_unlock(&b->ring.lock);
	return ret;
}

/* The oldest message, removed, or NULL if none. */
static struct eq_msg *bench_pop(struct bench *b)
{
	struct eq_msg *m;

	if (b->v == LOCKFREE) {
		m = eq_lfq_peek(&b->lfq);
		if (m)
			eq_lfq_commit(&b->lfq);
		return m;
	}
	mutex_lock(&b->ring.lock);
	m = eq_ring_peek(&b->ring) ? eq_ring_take(&b->ring) : NULL;
	if (m)
		eq_ring_commit(&b->ring, m);
	mutex_unlock(&b->ring.lock);
	return m;
}

static struct eq_msg *make_msg(u32 who, u64 n)
{
	struct eq_msg *m = eq_msg_alloc(MSG_LEN);

	if (!m) {
		fprintf(stderr, "core_bench: out of memory\n");
		exit(1);
	}
	memcpy(m->data, &who, sizeof(who));
	memcpy(m->data + 4, &n, sizeof(n));
	return m;
}

static void *producer(void *p)
{
	struct producer_arg *a = p;
	struct bench *b = a->b;
	u64 n;

	for (n = 0; n < b->per_producer; n++) {
		struct eq_msg *m = make_msg(a->who, n);

		while (bench_push(b, m)) {
			b->full_retries[a->who]++;
			sched_yield();
		}
	}
	return NULL;
}

/* Consume @total messages, checking per-producer order. */
static void consume(struct bench *b, u64 total)
{
	u64 next[MAX_PROD] = { 0 }, got = 0, n;
	struct eq_msg *m;
	u32 who;

	while (got < total) {
		m = bench_pop(b);
		if (!m) {
			sched_yield();
			continue;
		}
		memcpy(&who, m->data, sizeof(who));
		memcpy(&n, m->data + 4, sizeof(n));
		if (who >= b->nprod || n != next[who])
			b->bad++;
		else
			next[who]++;
		eq_msg_free(m);
		got++;
	}
}

static void bench_init(struct bench *b, enum variant v)
{
	struct elasticq_config c = bench_cfg(v);
	int ret;

	memset(b, 0, sizeof(*b));
	b->v = v;
	ret = v == LOCKFREE ? eq_lfq_init(&b->lfq, &c, &b->budget, 0) :
			      eq_ring_init(&b->ring, &c, &b->budget);
	if (ret) {
		fprintf(stderr, "core_bench: init: %d\n", ret);
		exit(1);
	}
}

static void bench_fini(struct bench *b)
{
	if (b->v == LOCKFREE)
		eq_lfq_destroy(&b->lfq);
	else
		eq_ring_destroy(&b->ring);
}

static void report(const char *variant, const char *workload, u64 msgs,
		   u64 ns, const struct bench *b)
{
	u64 retries = 0;
	unsigned int i;

	for (i = 0; i < MAX_PROD; i++)
		retries += b->full_retries[i];
	printf("%-9s %-8s %10llu %12.0f %9.1f %10llu %s\n", variant, workload,
	       (unsigned long long)msgs, msgs / (ns / 1e9), (double)ns / msgs,
	       (unsigned long long)retries, b->bad ? "LOST/REORDERED" : "ok");
}

/* One thread: push one, pop one. */
static void run_alternating(enum variant v, const char *name, u64 n)
{
	struct bench b;
	u64 i, t0;

	bench_init(&b, v);
	b.nprod = 1;
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		struct eq_msg *m = make_msg(0, i);
		u64 got;

		if (bench_push(&b, m))
			b.bad++;
		m = bench_pop(&b);
		memcpy(&got, m->data + 4, sizeof(got));
		b.bad += got != i;
		eq_msg_free(m);
	}
	report(name, "1T-alt", n, now_ns() - t0, &b);
	bench_fini(&b);
}

static void run_threads(enum variant v, const char *name, unsigned int nprod,
			u64 n)
{
	struct producer_arg args[MAX_PROD];
	pthread_t th[MAX_PROD];
	char workload[16];
	struct bench b;
	unsigned int i;
	u64 t0;

	bench_init(&b, v);
	b.nprod = nprod;
	b.per_producer = n / nprod;
	t0 = now_ns();
	for (i = 0; i < nprod; i++) {
		args[i] = (struct producer_arg){ .b = &b, .who = i };
		if (pthread_create(&th[i], NULL, producer, &args[i])) {
			fprintf(stderr, "core_bench: pthread_create failed\n");
			exit(1);
		}
	}
	consume(&b, b.per_producer * nprod);
	for (i = 0; i < nprod; i++)
		pthread_join(th[i], NULL);
	snprintf(workload, sizeof(workload), "%uP/1C", nprod);
	report(name, workload, b.per_producer * nprod, now_ns() - t0, &b);
	bench_fini(&b);
}

int main(int argc, char **argv)
{
	static const struct { enum variant v; const char *name; } variants[] = {
		{ LOCKED, "locked" }, { LOCKFREE, "lockfree" },
	};
	u64 n = argc > 1 ? strtoull(argv[1], NULL, 0) : 2000000;
	unsigned int i;

	if (!n) {
		fprintf(stderr, "usage: %s [messages]\n", argv[0]);
		return 2;
	}
	printf("%-9s %-8s %10s %12s %9s %10s %s\n", "variant", "workload",
	       "messages", "msgs/s", "ns/msg", "full", "check");
	for (i = 0; i < 2; i++) {
		run_alternating(variants[i].v, variants[i].name, n);
		run_threads(variants[i].v, variants[i].name, 1, n);
		run_threads(variants[i].v, variants[i].name, 4, n);
	}
	return 0;
}
