// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Push and pop batches: many messages in one call, like sendmmsg(2) and
 * recvmmsg(2).  The ioctls (eq_ioctl.c) and, later, io_uring commands share
 * these functions; they take the argument struct already checked.
 *
 * A push batch reads its whole vector first (a bad vector is EFAULT with
 * nothing done), then pushes message by message and stops at the first
 * failure.  A pop batch takes all the messages it will return at once
 * (eq_queue_take()), copies them out as frames, then commits those
 * delivered and puts back the rest, so a fault part-way loses nothing.  If
 * the copy failed because the task was killed, nothing is committed: the
 * frames already copied would die with the task.
 */
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "eq_batch.h"

/* Batches up to this many messages keep their arrays on the stack. */
#define EQ_BATCH_STACK	16

static int eq_push_one(struct eq_queue *q, const struct elasticq_msg_vec *v,
		       bool nonblock, long *left)
{
	struct eq_msg *msg;
	int ret;

	if (v->len > eq_queue_max_msg(q))
		return -EMSGSIZE;
	msg = eq_msg_alloc(v->len);
	if (!msg)
		return -ENOMEM;
	if (copy_from_user(msg->data, u64_to_user_ptr(v->addr), v->len)) {
		eq_msg_free(msg);
		return -EFAULT;
	}
	ret = eq_queue_enqueue(q, msg, nonblock, false, left);
	if (ret)
		eq_msg_free(msg);
	return ret;
}

/* An array of @n elements of @size: @stack if it fits, else allocated. */
static void *eq_batch_array(void *stack, size_t stack_size, u32 n,
			    size_t size)
{
	if ((size_t)n * size <= stack_size)
		return stack;
	return kvmalloc_array(n, size, GFP_KERNEL | __GFP_NOWARN);
}

static void eq_batch_array_free(void *array, void *stack)
{
	if (array != stack)
		kvfree(array);
}

/**
 * eq_batch_push() - enqueue the messages a push batch describes
 * @q:        the queue
 * @b:        the checked batch, @b->count >= 1; @b->error is set
 * @nonblock: never sleep (O_NONBLOCK or ELASTICQ_BATCH_NONBLOCK)
 * @park:     the caller waits for room itself: stop with -EAGAIN where
 *            this would sleep, not counted as rejected
 *
 * Return: how many messages were enqueued, or the error of the first when
 * none was (-EFAULT if the vector cannot be read).
 */
long eq_batch_push(struct eq_queue *q, struct elasticq_push_batch *b,
		   bool nonblock, bool park)
{
	struct elasticq_msg_vec stack[EQ_BATCH_STACK], *vec;
	u32 done = 0;
	long left;
	int ret = 0;

	vec = eq_batch_array(stack, sizeof(stack), b->count, sizeof(*vec));
	if (!vec) {
		b->error = -ENOMEM;
		return -ENOMEM;
	}
	if (copy_from_user(vec, u64_to_user_ptr(b->msgs),
			   b->count * sizeof(*vec))) {
		ret = -EFAULT;
		goto out;
	}
	left = eq_timeout_jiffies(b->flags & ELASTICQ_BATCH_TIMEOUT ?
				  b->timeout_ns :
				  READ_ONCE(eq_queue_cfg(q)->push_timeout_ns));
	for (; done < b->count; done++) {
		ret = eq_push_one(q, &vec[done], nonblock, park ? NULL : &left);
		if (ret)
			break;
	}
out:
	eq_batch_array_free(vec, stack);
	/*
	 * -ERESTARTSYS (only when nothing was done, with no timeout) is
	 * EINTR to userspace, unless the call restarts and sets it anew.
	 */
	b->error = ret == -ERESTARTSYS ? -EINTR : ret;
	return done ? (long)done : ret;	/* not u32: ret is negative */
}

/*
 * Copy one message out as a frame at @dst: header, payload, zero padding.
 * Return: 0 or -EFAULT.
 */
static int eq_put_frame(void __user *dst, const struct eq_msg *msg)
{
	struct elasticq_frame hdr = { .len = msg->len };
	size_t pad = ELASTICQ_FRAME_SIZE(msg->len) - sizeof(hdr) - msg->len;

	if (copy_to_user(dst, &hdr, sizeof(hdr)) ||
	    copy_to_user(dst + sizeof(hdr), msg->data, msg->len) ||
	    clear_user(dst + sizeof(hdr) + msg->len, pad))
		return -EFAULT;
	return 0;
}

/**
 * eq_batch_pop() - dequeue messages into a buffer of frames
 * @q:        the queue
 * @b:        the checked batch; @b->bytes is set
 * @nonblock: never sleep (O_NONBLOCK or ELASTICQ_BATCH_NONBLOCK)
 * @nowait:   do not sleep on the lock either (-EBUSY if it is taken)
 *
 * Return: how many messages were delivered (>= 1), or an error with none
 * delivered: as eq_queue_take(), -EFAULT, or -ENOMEM.
 */
long eq_batch_pop(struct eq_queue *q, struct elasticq_pop_batch *b,
		  bool nonblock, bool nowait)
{
	struct eq_msg *stack[EQ_BATCH_STACK], **msgs;
	void __user *buf = u64_to_user_ptr(b->buf);
	u64 used = 0;
	long left;
	int n, done = 0;

	msgs = eq_batch_array(stack, sizeof(stack), b->max_msgs, sizeof(*msgs));
	if (!msgs)
		return -ENOMEM;
	left = eq_timeout_jiffies(b->flags & ELASTICQ_BATCH_TIMEOUT ?
				  b->timeout_ns :
				  READ_ONCE(eq_queue_cfg(q)->pop_timeout_ns));
	n = eq_queue_take(q, msgs, b->max_msgs, b->buf_len, true, nonblock,
			  nowait, &left);
	if (n < 0)
		goto out;
	for (; done < n; done++) {
		if (eq_put_frame(buf + used, msgs[done]))
			break;
		used += ELASTICQ_FRAME_SIZE(msgs[done]->len);
	}
	if (done < n && fatal_signal_pending(current))
		done = 0;
	eq_queue_finish(q, msgs, n, done);
	n = done ? done : -EFAULT;
out:
	eq_batch_array_free(msgs, stack);
	b->bytes = done ? used : 0;
	return n;
}
