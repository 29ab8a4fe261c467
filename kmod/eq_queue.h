/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * A queue: the ring plus what makes it usable from files: wait queues for
 * blocking producers and consumers, timeouts, the files bound to it, and
 * its identity (name, owner, mode) as a named queue.
 */
#ifndef _EQ_QUEUE_H
#define _EQ_QUEUE_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/list.h>
#include <linux/poll.h>
#include <linux/refcount.h>
#include <linux/uidgid.h>
#include <linux/uio.h>
#include <linux/wait.h>

#include "eq_lfring.h"
#include "eq_ring.h"
#include "eq_user.h"

/**
 * struct eq_queue - one elastic message queue
 * @variant:	ELASTICQ_VARIANT_*, which of @ring and @lfq holds the
 *		messages; set at creation
 * @ring:	lock-based: the messages; @ring.lock protects them and the
 *		config
 * @lfq:	lock-free: the messages (see eq_lfring.h for who may call
 *		what); its consumer side under @consumer_lock
 * @consumer_lock: lock-free only: serialises the consumer side of @lfq
 *		(pops, config changes, growth); held from eq_queue_take() to
 *		eq_queue_finish().  Producers never wait for it
 * @config_lock: lock-free only: taken, inside @consumer_lock, to change
 *		@lfq.cfg, and alone to copy it whole, so that reading the
 *		config never waits for a consumer's copy to userspace
 * @readers:	consumers sleeping until a message is queued; woken (and
 *		polled) with EPOLLIN after every push
 * @writers:	producers sleeping until there is room; woken with EPOLLOUT
 *		after every pop and config change
 * @producers:	bound files that have pushed (atomic, no lock)
 * @consumers:	bound files holding the consumer role (atomic, no lock)
 * @uring_parked: io_uring commands parked on the queue (eq_uring.c; atomic)
 * @refs:	one per bound file, plus one held by the registry while the
 *		queue has a name (or is the default queue); the last put frees
 * @node:	in the registry's list while named; the registry's lock
 * @name:	NUL-terminated, "" for the default queue; set at creation
 * @budget:	the memory this queue holds (ring and messages), charged
 *		through it to @creator's budget; fixed at creation
 * @creator:	the user that created the queue and pays for it, with a
 *		reference; fixed at creation
 * @ident_lock:	protects @uid, @gid and @mode, which SET_OWNER may change
 * @uid:	owner
 * @gid:	group
 * @mode:	permission bits (0..0777)
 */
struct eq_queue {
	u32 variant;
	union {
		struct eq_ring ring;
		struct eq_lfq lfq;
	};
	struct mutex consumer_lock;	/* see above */
	struct mutex config_lock;	/* see above */
	wait_queue_head_t readers;
	wait_queue_head_t writers;
	atomic_t producers;
	atomic_t consumers;
	atomic_t uring_parked;
	refcount_t refs;
	struct list_head node;
	char name[ELASTICQ_NAME_SIZE];
	struct eq_mem_budget budget;
	struct eq_user *creator;
	spinlock_t ident_lock;		/* see above */
	kuid_t uid;
	kgid_t gid;
	umode_t mode;
};

static inline bool eq_queue_lockfree(const struct eq_queue *q)
{
	return q->variant == ELASTICQ_VARIANT_LOCKFREE;
}

/* The live configuration; fields read without a lock need READ_ONCE. */
static inline const struct elasticq_config *
eq_queue_cfg(const struct eq_queue *q)
{
	return eq_queue_lockfree(q) ? &q->lfq.cfg : &q->ring.cfg;
}

/* Lockless: the largest message the queue accepts now. */
static inline size_t eq_queue_max_msg(const struct eq_queue *q)
{
	const struct elasticq_config *cfg = eq_queue_cfg(q);

	return min_t(u64, READ_ONCE(cfg->max_msg_size),
		     READ_ONCE(cfg->max_bytes));
}

/* The room a message needs in the caller's buffer. */
static inline u64 eq_msg_room(const struct eq_msg *msg, bool framed)
{
	return framed ? ELASTICQ_FRAME_SIZE(msg->len) : msg->len;
}

struct eq_queue *eq_queue_create(const struct elasticq_config *cfg,
				 struct eq_user *creator, bool privileged);
void eq_queue_destroy(struct eq_queue *q);

ssize_t eq_queue_push_iter(struct eq_queue *q, struct iov_iter *from,
			   bool nonblock, bool nowait);
ssize_t eq_queue_pop_iter(struct eq_queue *q, struct iov_iter *to,
			  bool nonblock, bool nowait);
__poll_t eq_queue_poll(struct eq_queue *q, struct file *file,
		       poll_table *wait);

int eq_queue_set_config(struct eq_queue *q, const struct elasticq_config *cfg);
void eq_queue_get_config(struct eq_queue *q, struct elasticq_config *cfg);
void eq_queue_get_stats(struct eq_queue *q, struct elasticq_stats *st);

/* The building blocks of push, pop and their batch forms (eq_batch.c). */
long eq_timeout_jiffies(u64 ns);
int eq_queue_enqueue(struct eq_queue *q, struct eq_msg *msg, bool nonblock,
		     bool nowait, long *left);
int eq_queue_take(struct eq_queue *q, struct eq_msg **msgs, u32 max,
		  u64 room, bool framed, bool nonblock, bool nowait,
		  long *left);
void eq_queue_finish(struct eq_queue *q, struct eq_msg **msgs, u32 taken,
		     u32 delivered);
int eq_wait_result(long ret, long *left);

/* The lock-free variant of the above (eq_queue_lf.c), for eq_queue.c. */
int eq_lfqueue_enqueue(struct eq_queue *q, struct eq_msg *msg, bool nonblock,
		       long *left);
int eq_lfqueue_take(struct eq_queue *q, struct eq_msg **msgs, u32 max,
		    u64 room, bool framed, bool nonblock, bool nowait,
		    long *left);
void eq_lfqueue_finish(struct eq_queue *q, struct eq_msg **msgs, u32 taken,
		       u32 delivered);
__poll_t eq_lfqueue_poll_events(struct eq_queue *q);
int eq_lfqueue_set_config(struct eq_queue *q,
			  const struct elasticq_config *cfg);
void eq_lfqueue_get_config(struct eq_queue *q, struct elasticq_config *cfg);

#endif /* _EQ_QUEUE_H */
