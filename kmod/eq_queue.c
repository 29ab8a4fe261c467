// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Blocking push and pop around the ring.
 *
 * Payload copies from and to userspace happen outside ring.lock: a push
 * copies into a freshly allocated message first, a pop takes the head
 * message, copies it out unlocked, then commits it (or puts it back if the
 * copy faulted, so nothing is lost).
 *
 * Wake-ups are unconditional wake_up_*() after ring.lock is dropped: the
 * waiter's condition re-reads the lockless hints after queueing itself on
 * the wait queue, and the wait queue's spinlock orders the two.
 */
#include <linux/jiffies.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "eq_queue.h"

/**
 * eq_queue_create() - allocate a queue
 * @cfg: a configuration that passed eq_config_validate()
 *
 * Return: the queue, or NULL if memory ran out.
 */
struct eq_queue *eq_queue_create(const struct elasticq_config *cfg)
{
	struct eq_queue *q;

	q = kzalloc(sizeof(*q), GFP_KERNEL_ACCOUNT);
	if (!q)
		return NULL;
	if (eq_ring_init(&q->ring, cfg)) {
		kfree(q);
		return NULL;
	}
	init_waitqueue_head(&q->readers);
	init_waitqueue_head(&q->writers);
	return q;
}

/**
 * eq_queue_destroy() - free a queue and every message in it
 * @q: the queue; no file may be bound to it any more
 */
void eq_queue_destroy(struct eq_queue *q)
{
	eq_ring_destroy(&q->ring);
	kfree(q);
}

/* IOCB_NOWAIT callers must not sleep on the mutex either. */
static int eq_queue_lock(struct eq_queue *q, bool nowait)
{
	if (!nowait) {
		mutex_lock(&q->ring.lock);
		return 0;
	}
	return mutex_trylock(&q->ring.lock) ? 0 : -EAGAIN;
}

static void eq_queue_unlock(struct eq_queue *q)
{
	mutex_unlock(&q->ring.lock);
}

static long eq_timeout_jiffies(u64 ns)
{
	u64 j;

	if (ns == ELASTICQ_TIMEOUT_NONE)
		return MAX_SCHEDULE_TIMEOUT;
	/*
	 * At least @ns: round up, and add one because schedule_timeout(j)
	 * may end j - 1 jiffies (plus a fraction) from now.
	 */
	j = nsecs_to_jiffies64(ns);
	if (jiffies64_to_nsecs(j) < ns)
		j++;
	if (ns)
		j++;
	return min_t(u64, j, MAX_SCHEDULE_TIMEOUT - 1);
}

/*
 * Turn what wait_event_interruptible_timeout() returned into 0 (ready, try
 * again with *@left jiffies still to wait), -ETIMEDOUT or -ERESTARTSYS.  A
 * wait of MAX_SCHEDULE_TIMEOUT never returns 0, so "forever" needs no case.
 */
static int eq_wait_result(long ret, long *left)
{
	if (ret < 0)
		return ret;
	if (!ret)
		return -ETIMEDOUT;
	*left = ret;
	return 0;
}

/**
 * eq_queue_push_iter() - enqueue the whole of @from as one message
 * @q:        the queue
 * @from:     the payload, gathered from all its segments
 * @nonblock: fail with -EAGAIN instead of sleeping (O_NONBLOCK, IOCB_NOWAIT)
 * @nowait:   fail with -EAGAIN instead of sleeping on the lock (IOCB_NOWAIT)
 *
 * Return: the message length; -EMSGSIZE if it is too large; -EFAULT if
 * @from faults; -ENOMEM; -EAGAIN if full and @nonblock or the policy is
 * reject; -ETIMEDOUT after the push timeout; -ERESTARTSYS on a signal.
 * On error nothing was enqueued.
 */
ssize_t eq_queue_push_iter(struct eq_queue *q, struct iov_iter *from,
			   bool nonblock, bool nowait)
{
	size_t len = iov_iter_count(from);
	struct eq_ring *r = &q->ring;
	struct eq_msg *msg;
	long left, waited;
	u64 dropped;
	int ret;

	if (len > eq_ring_max_msg(r))
		return -EMSGSIZE;
	msg = eq_msg_alloc(len);
	if (!msg)
		return -ENOMEM;
	if (!copy_from_iter_full(msg->data, len, from)) {
		eq_msg_free(msg);
		return -EFAULT;
	}

	left = eq_timeout_jiffies(READ_ONCE(r->cfg.push_timeout_ns));
	for (;;) {
		ret = eq_queue_lock(q, nowait);
		if (ret)
			break;
		dropped = r->dropped;
		ret = eq_ring_push(r, msg);
		dropped = r->dropped - dropped;
		if (ret == -EAGAIN &&
		    (nonblock || r->cfg.full_policy == ELASTICQ_FULL_REJECT))
			eq_ring_count_rejected(r);
		eq_queue_unlock(q);

		if (ret != -EAGAIN || nonblock ||
		    READ_ONCE(r->cfg.full_policy) == ELASTICQ_FULL_REJECT)
			break;
		waited = wait_event_interruptible_timeout(q->writers,
							  eq_ring_has_room(r, len) ||
							  len > eq_ring_max_msg(r),
							  left);
		ret = eq_wait_result(waited, &left);
		if (ret) {
			if (ret == -ETIMEDOUT) {
				mutex_lock(&r->lock);
				eq_ring_count_rejected(r);
				mutex_unlock(&r->lock);
			}
			break;
		}
	}
	if (ret) {
		eq_msg_free(msg);
		return ret;
	}
	wake_up_interruptible_poll(&q->readers, EPOLLIN | EPOLLRDNORM);
	if (dropped)
		wake_up_interruptible_poll(&q->writers, EPOLLOUT | EPOLLWRNORM);
	return len;
}

/**
 * eq_queue_pop_iter() - dequeue the oldest message into @to
 * @q:        the queue
 * @to:       the destination; it must hold the whole message
 * @nonblock: fail with -EAGAIN instead of sleeping
 * @nowait:   fail with -EAGAIN instead of sleeping on the lock (IOCB_NOWAIT)
 *
 * Return: the message length; -EMSGSIZE if @to is smaller than the message
 * (which stays queued); -EFAULT if @to faults (the message stays queued);
 * -EAGAIN if empty and @nonblock; -ETIMEDOUT after the pop timeout;
 * -ERESTARTSYS on a signal.
 */
ssize_t eq_queue_pop_iter(struct eq_queue *q, struct iov_iter *to,
			  bool nonblock, bool nowait)
{
	struct eq_ring *r = &q->ring;
	struct eq_msg *msg;
	long left, waited;
	int ret;

	left = eq_timeout_jiffies(READ_ONCE(r->cfg.pop_timeout_ns));
	for (;;) {
		ret = eq_queue_lock(q, nowait);
		if (ret)
			return ret;
		msg = eq_ring_peek(r);
		if (msg && msg->len > iov_iter_count(to))
			ret = -EMSGSIZE;
		else if (msg)
			eq_ring_take(r);
		eq_queue_unlock(q);
		if (ret)
			return ret;
		if (msg)
			break;
		if (nonblock)
			return -EAGAIN;
		waited = wait_event_interruptible_timeout(q->readers,
							  eq_ring_has_message(r),
							  left);
		ret = eq_wait_result(waited, &left);
		if (ret)
			return ret;
	}

	if (copy_to_iter(msg->data, msg->len, to) != msg->len) {
		mutex_lock(&r->lock);
		eq_ring_untake(r, msg);
		mutex_unlock(&r->lock);
		wake_up_interruptible_poll(&q->readers, EPOLLIN | EPOLLRDNORM);
		/* A drop-oldest writer may drop it now. */
		wake_up_interruptible_poll(&q->writers, EPOLLOUT | EPOLLWRNORM);
		return -EFAULT;
	}
	mutex_lock(&r->lock);
	eq_ring_commit(r, msg);
	mutex_unlock(&r->lock);
	ret = msg->len;
	eq_msg_free(msg);
	wake_up_interruptible_poll(&q->writers, EPOLLOUT | EPOLLWRNORM);
	return ret;
}

/**
 * eq_queue_poll() - EPOLLIN when a message is queued, EPOLLOUT when a
 * message of the largest allowed size could be pushed without blocking
 * @q:    the queue
 * @file: the polling file
 * @wait: the poll table
 *
 * Return: the ready events.
 */
__poll_t eq_queue_poll(struct eq_queue *q, struct file *file,
		       poll_table *wait)
{
	__poll_t events = 0;

	poll_wait(file, &q->readers, wait);
	poll_wait(file, &q->writers, wait);
	if (eq_ring_has_message(&q->ring))
		events |= EPOLLIN | EPOLLRDNORM;
	if (eq_ring_has_room(&q->ring, eq_ring_max_msg(&q->ring)))
		events |= EPOLLOUT | EPOLLWRNORM;
	return events;
}

/**
 * eq_queue_set_config() - validate and apply a new configuration
 * @q:   the queue
 * @cfg: the configuration
 *
 * Return: as eq_ring_set_config().
 */
int eq_queue_set_config(struct eq_queue *q, const struct elasticq_config *cfg)
{
	int ret;

	mutex_lock(&q->ring.lock);
	ret = eq_ring_set_config(&q->ring, cfg);
	mutex_unlock(&q->ring.lock);
	if (!ret) {
		/* New limits may let sleepers through. */
		wake_up_interruptible_poll(&q->writers, EPOLLOUT | EPOLLWRNORM);
		wake_up_interruptible_poll(&q->readers, EPOLLIN | EPOLLRDNORM);
	}
	return ret;
}

/**
 * eq_queue_get_config() - copy out the configuration
 * @q:   the queue
 * @cfg: filled in whole
 */
void eq_queue_get_config(struct eq_queue *q, struct elasticq_config *cfg)
{
	mutex_lock(&q->ring.lock);
	eq_ring_get_config(&q->ring, cfg);
	mutex_unlock(&q->ring.lock);
}

/**
 * eq_queue_get_stats() - snapshot the statistics
 * @q:  the queue
 * @st: zeroed by the caller, filled in
 */
void eq_queue_get_stats(struct eq_queue *q, struct elasticq_stats *st)
{
	mutex_lock(&q->ring.lock);
	eq_ring_get_stats(&q->ring, st);
	mutex_unlock(&q->ring.lock);
	st->producers = atomic_read(&q->producers);
	st->consumers = atomic_read(&q->consumers);
}
