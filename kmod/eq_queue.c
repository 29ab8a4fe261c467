// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Blocking push and pop around the ring.  This file is the lock-based
 * variant and, at each entry point, the switch to the lock-free one
 * (eq_queue_lf.c).
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
#include <linux/err.h>
#include <linux/jiffies.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include "eq_queue.h"

/**
 * eq_queue_create() - allocate a queue with one reference
 * @cfg:        a configuration that passed eq_config_validate()
 * @creator:    the user that pays for the queue's memory; the queue takes
 *              over the caller's reference on success
 * @privileged: the creator has CAP_SYS_RESOURCE: the queue may pass
 *              @creator's memory limit, never the module's
 *
 * The caller fills in the identity fields (name, owner, mode).
 *
 * Return: the queue, or ERR_PTR(-ENOMEM), ERR_PTR(-ENOBUFS) or
 * ERR_PTR(-EDQUOT); on error the caller keeps its reference on @creator.
 */
struct eq_queue *eq_queue_create(const struct elasticq_config *cfg,
				 struct eq_user *creator, bool privileged)
{
	struct eq_queue *q;
	int ret;

	q = kzalloc(sizeof(*q), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!q)
		return ERR_PTR(-ENOMEM);
	q->variant = cfg->variant;
	atomic64_set(&q->budget.used, 0);
	q->budget.parent = &creator->budget;
	q->budget.exempt = privileged;
	if (eq_queue_lockfree(q))
		ret = eq_lfq_init(&q->lfq, cfg, &q->budget, 0);
	else
		ret = eq_ring_init(&q->ring, cfg, &q->budget);
	if (ret) {
		kfree(q);
		return ERR_PTR(ret);
	}
	q->creator = creator;
	mutex_init(&q->consumer_lock);
	mutex_init(&q->config_lock);
	init_waitqueue_head(&q->readers);
	init_waitqueue_head(&q->writers);
	refcount_set(&q->refs, 1);
	INIT_LIST_HEAD(&q->node);
	spin_lock_init(&q->ident_lock);
	return q;
}

/**
 * eq_queue_destroy() - free a queue and every message in it
 * @q: the queue; nobody may use it any more
 */
void eq_queue_destroy(struct eq_queue *q)
{
	if (eq_queue_lockfree(q))
		eq_lfq_destroy(&q->lfq);
	else
		eq_ring_destroy(&q->ring);
	WARN_ON(atomic64_read(&q->budget.used));
	eq_user_put(q->creator);
	mutex_destroy(&q->consumer_lock);
	mutex_destroy(&q->config_lock);
	kfree(q);
}

/*
 * IOCB_NOWAIT callers must not sleep on the mutex either: -EBUSY, which
 * tells a busy lock from a full or empty queue (io_uring commands need
 * to know; the iter functions turn it into -EAGAIN).
 */
static int eq_queue_lock(struct eq_queue *q, bool nowait)
{
	if (!nowait) {
		mutex_lock(&q->ring.lock);
		return 0;
	}
	return mutex_trylock(&q->ring.lock) ? 0 : -EBUSY;
}

static void eq_queue_unlock(struct eq_queue *q)
{
	mutex_unlock(&q->ring.lock);
}

/**
 * eq_timeout_jiffies() - a timeout in ns as jiffies for the waits below
 * @ns: nanoseconds, or ELASTICQ_TIMEOUT_NONE
 *
 * Return: at least @ns worth of jiffies, MAX_SCHEDULE_TIMEOUT for none.
 */
long eq_timeout_jiffies(u64 ns)
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

/**
 * eq_wait_result() - what a wait for room or a message came to
 * @ret:  what wait_event_interruptible_timeout() returned
 * @left: jiffies still to wait, MAX_SCHEDULE_TIMEOUT for ever; updated
 *
 * A wait of MAX_SCHEDULE_TIMEOUT never returns 0, so "forever" needs no
 * case.  A signal ends a wait for ever with -ERESTARTSYS (restarted under
 * SA_RESTART), but a finite one with -EINTR, as sock_intr_errno() does
 * for SO_RCVTIMEO: a restart would wait the whole timeout again, so a
 * periodic signal would keep the call from ever timing out.
 *
 * Return: 0 (ready, try again with *@left jiffies still to wait),
 * -ETIMEDOUT, -EINTR or -ERESTARTSYS.
 */
int eq_wait_result(long ret, long *left)
{
	if (ret == -ERESTARTSYS && *left != MAX_SCHEDULE_TIMEOUT)
		return -EINTR;
	if (ret < 0)
		return ret;
	if (!ret)
		return -ETIMEDOUT;
	*left = ret;
	return 0;
}

static void eq_queue_count_rejected(struct eq_queue *q)
{
	mutex_lock(&q->ring.lock);
	eq_ring_count_rejected(&q->ring);
	mutex_unlock(&q->ring.lock);
}

/**
 * eq_queue_enqueue() - push one message, waiting for room if need be
 * @q:        the queue
 * @msg:      the message; the queue owns it on success
 * @nonblock: fail with -EAGAIN instead of sleeping (O_NONBLOCK, IOCB_NOWAIT)
 * @nowait:   fail with -EAGAIN instead of sleeping on the lock (IOCB_NOWAIT)
 * @left:     jiffies the caller may still wait; updated.  NULL: the caller
 *            waits for room itself (a parked io_uring command), so where
 *            this would sleep it returns -EAGAIN, not counted as rejected
 *
 * Return: 0; -EMSGSIZE if it can never fit; -ENOMEM; -ENOBUFS if the
 * module's memory limit is reached; -EAGAIN if full and @nonblock or the
 * policy is reject (or @left is NULL); -EBUSY if @nowait and the lock is
 * taken; -ETIMEDOUT; on a signal -ERESTARTSYS, or -EINTR if *@left is
 * finite (eq_wait_result()).  Pushes refused for lack of room or memory
 * are counted as rejected.  On error the caller still owns @msg.
 */
int eq_queue_enqueue(struct eq_queue *q, struct eq_msg *msg, bool nonblock,
		     bool nowait, long *left)
{
	struct eq_ring *r = &q->ring;
	long waited;
	u64 dropped;
	int ret;

	if (eq_queue_lockfree(q))
		return eq_lfqueue_enqueue(q, msg, nonblock, left);
	for (;;) {
		ret = eq_queue_lock(q, nowait);
		if (ret)
			return ret;
		dropped = r->dropped;
		ret = eq_ring_push(r, msg);
		dropped = r->dropped - dropped;
		if (ret == -ENOBUFS || ret == -EDQUOT ||
		    (ret == -EAGAIN &&
		     (nonblock || r->cfg.full_policy == ELASTICQ_FULL_REJECT)))
			eq_ring_count_rejected(r);
		eq_queue_unlock(q);

		if (ret != -EAGAIN || nonblock ||
		    READ_ONCE(r->cfg.full_policy) == ELASTICQ_FULL_REJECT)
			break;
		if (!left)
			return -EAGAIN;
		waited = wait_event_interruptible_timeout(q->writers,
							  eq_ring_has_room(r, msg->len) ||
							  msg->len > eq_ring_max_msg(r),
							  *left);
		ret = eq_wait_result(waited, left);
		if (ret) {
			if (ret == -ETIMEDOUT)
				eq_queue_count_rejected(q);
			return ret;
		}
	}
	if (ret)
		return ret;
	wake_up_interruptible_poll(&q->readers, EPOLLIN | EPOLLRDNORM);
	if (dropped)
		wake_up_interruptible_poll(&q->writers, EPOLLOUT | EPOLLWRNORM);
	return 0;
}

/**
 * eq_queue_push_iter() - enqueue the whole of @from as one message
 * @q:        the queue
 * @from:     the payload, gathered from all its segments
 * @nonblock: fail with -EAGAIN instead of sleeping (O_NONBLOCK, IOCB_NOWAIT)
 * @nowait:   fail with -EAGAIN instead of sleeping on the lock (IOCB_NOWAIT)
 *
 * Return: the message length; -EFAULT if @from faults; otherwise as
 * eq_queue_enqueue(), with the queue's push timeout.  On error nothing was
 * enqueued.
 */
ssize_t eq_queue_push_iter(struct eq_queue *q, struct iov_iter *from,
			   bool nonblock, bool nowait)
{
	size_t len = iov_iter_count(from);
	struct eq_msg *msg;
	long left;
	int ret;

	if (len > eq_queue_max_msg(q))
		return -EMSGSIZE;
	msg = eq_msg_alloc(len);
	if (!msg)
		return -ENOMEM;
	if (!copy_from_iter_full(msg->data, len, from)) {
		eq_msg_free(msg);
		return -EFAULT;
	}
	left = eq_timeout_jiffies(READ_ONCE(eq_queue_cfg(q)->push_timeout_ns));
	ret = eq_queue_enqueue(q, msg, nonblock, nowait, &left);
	if (ret == -EBUSY)
		ret = -EAGAIN;
	if (ret) {
		eq_msg_free(msg);
		return ret;
	}
	return len;
}

/**
 * eq_queue_take() - take the oldest messages for copying out, waiting for
 * the first if need be
 * @q:        the queue
 * @msgs:     receives the messages, oldest first
 * @max:      most messages to take, >= 1
 * @room:     bytes the caller's buffer holds
 * @framed:   each message needs ELASTICQ_FRAME_SIZE(len) bytes, not len
 * @nonblock: fail with -EAGAIN instead of sleeping
 * @nowait:   fail with -EAGAIN instead of sleeping on the lock
 * @left:     jiffies the caller may still wait; updated
 *
 * Every message taken must be handed to eq_queue_finish().  A lock-free
 * queue's consumer lock is held from here to there.
 *
 * Return: how many were taken (>= 1); -EMSGSIZE if the oldest does not fit
 * in @room (it stays queued); -EAGAIN if empty and @nonblock; -EBUSY if
 * @nowait and the lock is taken; -ETIMEDOUT; on a signal -ERESTARTSYS, or
 * -EINTR if *@left is finite.
 */
int eq_queue_take(struct eq_queue *q, struct eq_msg **msgs, u32 max,
		  u64 room, bool framed, bool nonblock, bool nowait,
		  long *left)
{
	struct eq_ring *r = &q->ring;
	struct eq_msg *msg;
	long waited;
	u32 n;
	int ret;

	if (eq_queue_lockfree(q))
		return eq_lfqueue_take(q, msgs, max, room, framed, nonblock,
				       nowait, left);
	for (;;) {
		ret = eq_queue_lock(q, nowait);
		if (ret)
			return ret;
		n = 0;
		msg = eq_ring_peek(r);
		if (msg && eq_msg_room(msg, framed) > room)
			ret = -EMSGSIZE;
		while (msg && n < max && eq_msg_room(msg, framed) <= room) {
			room -= eq_msg_room(msg, framed);
			msgs[n++] = eq_ring_take(r);
			msg = eq_ring_peek(r);
		}
		eq_queue_unlock(q);
		if (n)
			return n;
		if (ret)
			return ret;
		if (nonblock)
			return -EAGAIN;
		waited = wait_event_interruptible_timeout(q->readers,
							  eq_ring_has_message(r),
							  *left);
		ret = eq_wait_result(waited, left);
		if (ret)
			return ret;
	}
}

/**
 * eq_queue_finish() - complete the removal of messages from eq_queue_take()
 * @q:         the queue
 * @msgs:      the messages taken, oldest first
 * @taken:     how many
 * @delivered: how many of the first were copied out; they are committed and
 *             freed, the others put back in their place in FIFO order
 */
void eq_queue_finish(struct eq_queue *q, struct eq_msg **msgs, u32 taken,
		     u32 delivered)
{
	struct eq_ring *r = &q->ring;
	u32 i;

	if (eq_queue_lockfree(q)) {
		eq_lfqueue_finish(q, msgs, taken, delivered);
		return;
	}
	mutex_lock(&r->lock);
	for (i = 0; i < delivered; i++)
		eq_ring_commit(r, msgs[i]);
	/* Newest first: each goes straight to the head, no shifting. */
	for (i = taken; i > delivered; i--)
		eq_ring_untake(r, msgs[i - 1]);
	mutex_unlock(&r->lock);
	for (i = 0; i < delivered; i++)
		eq_msg_free(msgs[i]);
	if (delivered < taken)
		wake_up_interruptible_poll(&q->readers, EPOLLIN | EPOLLRDNORM);
	/* Room for blocked writers; after a put back, a drop-oldest writer
	 * may drop those messages now.
	 */
	wake_up_interruptible_poll(&q->writers, EPOLLOUT | EPOLLWRNORM);
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
 * on a signal as eq_queue_take().
 */
ssize_t eq_queue_pop_iter(struct eq_queue *q, struct iov_iter *to,
			  bool nonblock, bool nowait)
{
	struct eq_msg *msg;
	long left;
	int ret;

	left = eq_timeout_jiffies(READ_ONCE(eq_queue_cfg(q)->pop_timeout_ns));
	ret = eq_queue_take(q, &msg, 1, iov_iter_count(to), false, nonblock,
			    nowait, &left);
	if (ret == -EBUSY)
		ret = -EAGAIN;
	if (ret < 0)
		return ret;
	ret = msg->len;
	if (copy_to_iter(msg->data, msg->len, to) != msg->len) {
		eq_queue_finish(q, &msg, 1, 0);
		return -EFAULT;
	}
	eq_queue_finish(q, &msg, 1, 1);
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
	/*
	 * Queued on both wait queues before the conditions are read, as in
	 * sock_poll_wait(): pairs with the smp_mb() in wq_has_sleeper() of
	 * the lock-free variant's wake-ups (eq_lf_wake()), which look for
	 * sleepers after changing what is read below.  (The lock-based
	 * variant's unconditional wake-ups take the wait queue's lock.)
	 */
	smp_mb();
	if (eq_queue_lockfree(q))
		return eq_lfqueue_poll_events(q);
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

	if (eq_queue_lockfree(q)) {
		ret = eq_lfqueue_set_config(q, cfg);
	} else {
		mutex_lock(&q->ring.lock);
		ret = eq_ring_set_config(&q->ring, cfg);
		mutex_unlock(&q->ring.lock);
	}
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
	if (eq_queue_lockfree(q)) {
		eq_lfqueue_get_config(q, cfg);
		return;
	}
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
	if (eq_queue_lockfree(q)) {
		/* Lockless, unless the consumer keeps it from settling. */
		if (!eq_lfq_get_stats(&q->lfq, st)) {
			mutex_lock(&q->consumer_lock);
			WARN_ON_ONCE(!eq_lfq_get_stats(&q->lfq, st));
			mutex_unlock(&q->consumer_lock);
		}
	} else {
		mutex_lock(&q->ring.lock);
		eq_ring_get_stats(&q->ring, st);
		mutex_unlock(&q->ring.lock);
	}
	st->producers = atomic_read(&q->producers);
	st->consumers = atomic_read(&q->consumers);
}
