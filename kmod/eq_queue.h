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

#include "eq_ring.h"

/**
 * struct eq_queue - one elastic message queue
 * @ring:	the messages; @ring.lock protects them and the config
 * @readers:	consumers sleeping until a message is queued; woken (and
 *		polled) with EPOLLIN after every push
 * @writers:	producers sleeping until there is room; woken with EPOLLOUT
 *		after every pop and config change
 * @producers:	bound files that have pushed (atomic, no lock)
 * @consumers:	bound files holding the consumer role (atomic, no lock)
 * @refs:	one per bound file, plus one held by the registry while the
 *		queue has a name (or is the default queue); the last put frees
 * @node:	in the registry's list while named; the registry's lock
 * @name:	NUL-terminated, "" for the default queue; set at creation
 * @uid:	owner, set at creation
 * @gid:	group, set at creation
 * @mode:	permission bits (0..0777), set at creation
 */
struct eq_queue {
	struct eq_ring ring;
	wait_queue_head_t readers;
	wait_queue_head_t writers;
	atomic_t producers;
	atomic_t consumers;
	refcount_t refs;
	struct list_head node;
	char name[ELASTICQ_NAME_SIZE];
	kuid_t uid;
	kgid_t gid;
	umode_t mode;
};

struct eq_queue *eq_queue_create(const struct elasticq_config *cfg,
				 struct eq_mem_budget *budget);
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

#endif /* _EQ_QUEUE_H */
