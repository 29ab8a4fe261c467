// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Push and pop batches: many messages in one call, like sendmmsg(2) and
 * recvmmsg(2).  The ioctls (eq_ioctl.c) and, later, io_uring commands share
 * these functions; they take the argument struct already checked.
 *
 * A push batch is a loop of single pushes that stops at the first failure.
 * A pop batch takes up to EQ_POP_ROUND messages at a time under the lock,
 * copies them out as frames without it, then commits those delivered and
 * puts back the rest, so a fault part-way loses nothing.
 */
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "eq_batch.h"

/* Messages taken per round of a pop batch (an array on the stack). */
#define EQ_POP_ROUND	32

/* Message vectors read from userspace per round of a push batch. */
#define EQ_PUSH_ROUND	32

static int eq_push_one(struct eq_queue *q, const struct elasticq_msg_vec *v,
		       bool nonblock, long *left)
{
	struct eq_msg *msg;
	int ret;

	if (v->len > eq_ring_max_msg(&q->ring))
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

/**
 * eq_batch_push() - enqueue the messages a push batch describes
 * @q:        the queue
 * @b:        the checked batch; @b->error is set
 * @nonblock: never sleep (O_NONBLOCK or ELASTICQ_BATCH_NONBLOCK)
 *
 * Return: how many messages were enqueued, or the error of the first when
 * none was.
 */
long eq_batch_push(struct eq_queue *q, struct elasticq_push_batch *b,
		   bool nonblock)
{
	const struct elasticq_msg_vec __user *uvec = u64_to_user_ptr(b->msgs);
	struct elasticq_msg_vec vec[EQ_PUSH_ROUND];
	u32 done = 0, n, i;
	long left;
	int ret = 0;

	left = eq_timeout_jiffies(b->flags & ELASTICQ_BATCH_TIMEOUT ?
				  b->timeout_ns :
				  READ_ONCE(q->ring.cfg.push_timeout_ns));
	while (done < b->count && !ret) {
		n = min_t(u32, b->count - done, EQ_PUSH_ROUND);
		if (copy_from_user(vec, uvec + done, n * sizeof(vec[0]))) {
			ret = -EFAULT;
			break;
		}
		for (i = 0; i < n && !ret; i++) {
			ret = eq_push_one(q, &vec[i], nonblock, &left);
			if (!ret)
				done++;
		}
	}
	/* Interrupted after some went in: report them, not a restart. */
	if (ret == -ERESTARTSYS && done)
		ret = -EINTR;
	b->error = ret;
	return done ? done : ret;
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
 * @nowait:   do not sleep on the lock either (IOCB_NOWAIT)
 *
 * Return: how many messages were delivered (>= 1), or an error with none
 * delivered: as eq_queue_take(), or -EFAULT.
 */
long eq_batch_pop(struct eq_queue *q, struct elasticq_pop_batch *b,
		  bool nonblock, bool nowait)
{
	void __user *buf = u64_to_user_ptr(b->buf);
	struct eq_msg *msgs[EQ_POP_ROUND];
	u64 used = 0;
	u32 done = 0, i;
	long left;
	int n;

	left = eq_timeout_jiffies(b->flags & ELASTICQ_BATCH_TIMEOUT ?
				  b->timeout_ns :
				  READ_ONCE(q->ring.cfg.pop_timeout_ns));
	while (done < b->max_msgs) {
		/* Only the first round waits. */
		n = eq_queue_take(q, msgs, min_t(u32, b->max_msgs - done,
						 EQ_POP_ROUND),
				  b->buf_len - used, true, nonblock || done,
				  nowait, &left);
		if (n < 0) {
			if (!done)
				return n;
			break;
		}
		for (i = 0; i < n; i++) {
			if (eq_put_frame(buf + used, msgs[i]))
				break;
			used += ELASTICQ_FRAME_SIZE(msgs[i]->len);
		}
		eq_queue_finish(q, msgs, n, i);
		done += i;
		if (i < n) {
			if (!done)
				return -EFAULT;
			break;
		}
	}
	b->bytes = used;
	return done;
}
