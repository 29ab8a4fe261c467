// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * io_uring commands: PUSH_BATCH and POP_BATCH as IORING_OP_URING_CMD, with
 * the ioctls' argument structs (struct elasticq_uring_cmd points at one).
 *
 * A command runs its batch without sleeping.  Where the ioctl would sleep
 * (a pop on an empty queue, a push on a full one under the block policy)
 * the command parks instead: a struct eq_uring_wait sits on the queue's
 * readers (or writers) wait queue, whose wake-ups every push (or pop)
 * already makes, and its wake function queues task work that runs the
 * batch again in the submitting task (its memory holds the buffers).  So
 * no io-wq thread ever waits on the queue.
 *
 * A parked command ends when its batch can run, at its timeout
 * (-ETIMEDOUT), when the submitter closes the file (->flush, with the
 * submitter's files as owner), and when its ring or task goes away
 * (-ECANCELED).  On 6.12 io_uring says the last itself (a cancelable
 * command); on 6.1 it cannot, and a delayed work looks at the parked
 * commands while there are any (eq_uring_compat.h).
 *
 * States of a wait (@state): ARMED while the batch runs in a context that
 * will look again (the wait is on the wait queue already, so a wake-up in
 * between is not lost: it only moves ARMED to WOKEN and the batch runs
 * again); PARKED while nothing runs it; FIRED once whoever won the move
 * from PARKED queued the task work.  Only the task work and the issue
 * path run batches, one at a time per command.
 */
#include <linux/hrtimer.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "eq_batch.h"
#include "eq_dev.h"
#include "eq_uring_compat.h"

enum { EQ_URING_ARMED, EQ_URING_WOKEN, EQ_URING_PARKED, EQ_URING_FIRED };

/**
 * struct eq_uring_wait - a command waiting for its queue
 * @wait:	on @q's readers (pop) or writers (push) while not done
 * @node:	in eq_uring_parked, under eq_uring_lock
 * @timer:	the batch's timeout, if it has one
 * @cmd:	the command; its pdu points here
 * @q:		the queue (the file holds a reference, the command the file)
 * @file:	the command's file
 * @owner:	the submitter's files: their close of @file cancels
 * @arg:	the user's argument struct
 * @state:	EQ_URING_*, see above
 * @reason:	0, or -ETIMEDOUT or -ECANCELED once the wait must end
 * @push:	a push batch (@pb), else a pop batch (@ob)
 * @nonblock:	the batch may not wait (O_NONBLOCK, BATCH_NONBLOCK)
 * @pushed:	messages of @pb pushed so far (by earlier runs)
 * @pb:		push: the rest of the batch, @msgs and @count advanced
 * @ob:		pop: the batch
 */
struct eq_uring_wait {
	struct wait_queue_entry wait;
	struct list_head node;
	struct hrtimer timer;
	struct io_uring_cmd *cmd;
	struct eq_queue *q;
	struct file *file;
	fl_owner_t owner;
	void __user *arg;
	atomic_t state;
	int reason;
	bool push;
	bool nonblock;
	u32 pushed;
	union {
		struct elasticq_push_batch pb;
		struct elasticq_pop_batch ob;
	};
};

/* Every command that waits (parked or about to be), for flush and watch. */
static DEFINE_SPINLOCK(eq_uring_lock);
static LIST_HEAD(eq_uring_parked);	/* under eq_uring_lock */

/* 6.1: how often to look for commands whose ring or task went away. */
#define EQ_URING_WATCH_PERIOD	(HZ / 20)
static void eq_uring_watch(struct work_struct *work);
static DECLARE_DELAYED_WORK(eq_uring_watch_work, eq_uring_watch);

static struct eq_uring_wait *eq_uring_wait_of(struct io_uring_cmd *cmd)
{
	return *(struct eq_uring_wait **)cmd->pdu;
}

static void eq_uring_tw(struct io_uring_cmd *cmd, unsigned int issue_flags);

/*
 * Something changed for the wait: a running batch runs again (ARMED ->
 * WOKEN), a parked one is fired (PARKED -> FIRED).  Return: true if the
 * caller fired it and must queue its task work.
 */
static bool eq_uring_fire(struct eq_uring_wait *w)
{
	for (;;) {
		switch (atomic_read(&w->state)) {
		case EQ_URING_ARMED:
			if (atomic_cmpxchg(&w->state, EQ_URING_ARMED,
					   EQ_URING_WOKEN) == EQ_URING_ARMED)
				return false;
			break;
		case EQ_URING_PARKED:
			if (atomic_cmpxchg(&w->state, EQ_URING_PARKED,
					   EQ_URING_FIRED) == EQ_URING_PARKED)
				return true;
			break;
		default:
			return false;
		}
	}
}

/* The wait must end for @reason; the first reason given wins. */
static void eq_uring_end(struct eq_uring_wait *w, int reason)
{
	cmpxchg(&w->reason, 0, reason);
	if (eq_uring_fire(w))
		io_uring_cmd_complete_in_task(w->cmd, eq_uring_tw);
}

static int eq_uring_wake(struct wait_queue_entry *wait, unsigned int mode,
			 int sync, void *key)
{
	struct eq_uring_wait *w = container_of(wait, struct eq_uring_wait,
					       wait);
	__poll_t want = w->push ? EPOLLOUT : EPOLLIN;

	if (key && !(key_to_poll(key) & want))
		return 0;
	if (eq_uring_fire(w)) {
		/* Under the wait queue's lock: off it, as autoremove does. */
		list_del_init(&wait->entry);
		io_uring_cmd_complete_in_task(w->cmd, eq_uring_tw);
	}
	return 0;
}

static enum hrtimer_restart eq_uring_timeout(struct hrtimer *timer)
{
	eq_uring_end(container_of(timer, struct eq_uring_wait, timer),
		     -ETIMEDOUT);
	return HRTIMER_NORESTART;
}

static wait_queue_head_t *eq_uring_wq(struct eq_uring_wait *w)
{
	return w->push ? &w->q->writers : &w->q->readers;
}

/* On the wait queue (again), ARMED: wake-ups from now on are seen. */
static void eq_uring_arm(struct eq_uring_wait *w)
{
	wait_queue_head_t *wq = eq_uring_wq(w);
	unsigned long flags;

	atomic_set(&w->state, EQ_URING_ARMED);
	spin_lock_irqsave(&wq->lock, flags);
	if (list_empty(&w->wait.entry))
		__add_wait_queue_entry_tail(wq, &w->wait);
	spin_unlock_irqrestore(&wq->lock, flags);
}

static void eq_uring_disarm(struct eq_uring_wait *w)
{
	wait_queue_head_t *wq = eq_uring_wq(w);
	unsigned long flags;

	spin_lock_irqsave(&wq->lock, flags);
	list_del_init(&w->wait.entry);
	spin_unlock_irqrestore(&wq->lock, flags);
}

/*
 * Run the batch once, without sleeping for messages or room.  Return: the
 * command's result (output fields written), or -EAGAIN with *@wait set if
 * it must wait (the wait's state tells whether something changed since).
 */
static long eq_uring_run(struct eq_uring_wait *w, bool *wait)
{
	struct elasticq_push_batch __user *upb = w->arg;
	struct elasticq_pop_batch __user *uob = w->arg;
	u32 policy;
	long ret;

	*wait = false;
	if (!w->push) {
		ret = eq_batch_pop(w->q, &w->ob, true, false);
		if (ret > 0 && put_user(w->ob.bytes, &uob->bytes))
			return ret;	/* the frames are there, as the ioctl */
		*wait = ret == -EAGAIN && !w->nonblock;
		return ret;
	}
	ret = w->pb.count ? eq_batch_push(w->q, &w->pb, true) : 0;
	if (ret > 0) {
		w->pushed += ret;
		w->pb.msgs += ret * sizeof(struct elasticq_msg_vec);
		w->pb.count -= ret;
	}
	policy = READ_ONCE(eq_queue_cfg(w->q)->full_policy);
	if (w->pb.error == -EAGAIN && !w->nonblock &&
	    policy != ELASTICQ_FULL_REJECT) {
		*wait = true;
		return -EAGAIN;
	}
	if (put_user(w->pb.error, &upb->error) && !w->pushed)
		return -EFAULT;
	return w->pushed ? w->pushed : w->pb.error;
}

/* The command's result once it cannot wait any longer, for @reason. */
static long eq_uring_gave_up(struct eq_uring_wait *w, int reason)
{
	struct elasticq_push_batch __user *upb = w->arg;

	if (!w->push)
		return reason;
	w->pb.error = reason;
	/* From another task's context the user's struct is out of reach. */
	if (current == eq_uring_task(w->cmd))
		(void)put_user(reason, &upb->error);
	return w->pushed ? w->pushed : reason;
}

static void eq_uring_free(struct eq_uring_wait *w)
{
	spin_lock(&eq_uring_lock);
	list_del(&w->node);
	spin_unlock(&eq_uring_lock);
	hrtimer_cancel(&w->timer);
	eq_uring_disarm(w);
	kfree(w);
}

static void eq_uring_done(struct eq_uring_wait *w, long ret,
			  unsigned int issue_flags)
{
	struct io_uring_cmd *cmd = w->cmd;

	eq_uring_free(w);
	io_uring_cmd_done(cmd, ret, 0, issue_flags);
}

/*
 * Run the batch until it completes or must wait; the wait is ARMED on
 * entry.  Return: the result, or -EIOCBQUEUED once the command is PARKED
 * (after which it belongs to whoever fires it: do not touch it).
 */
static long eq_uring_try(struct eq_uring_wait *w)
{
	bool wait;
	long ret;
	int reason;

	for (;;) {
		ret = eq_uring_run(w, &wait);
		if (!wait)
			return ret;
		reason = READ_ONCE(w->reason);
		if (reason)
			return eq_uring_gave_up(w, reason);
		if (atomic_cmpxchg(&w->state, EQ_URING_ARMED,
				   EQ_URING_PARKED) == EQ_URING_ARMED)
			return -EIOCBQUEUED;
		/* Woken (or given a reason) while running: look again. */
		atomic_set(&w->state, EQ_URING_ARMED);
	}
}

/* Task work: a wake-up, the timeout or a cancellation fired the wait. */
static void eq_uring_tw(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	struct eq_uring_wait *w = eq_uring_wait_of(cmd);
	long ret;

	/* Exiting, or run by a fallback worker: the buffers are gone. */
	if (current != eq_uring_task(cmd) || (current->flags & PF_EXITING) ||
	    READ_ONCE(w->reason) == -ECANCELED) {
		eq_uring_done(w, eq_uring_gave_up(w, -ECANCELED), issue_flags);
		return;
	}
	eq_uring_arm(w);
	ret = eq_uring_try(w);
	if (ret != -EIOCBQUEUED)
		eq_uring_done(w, ret, issue_flags);
}

/*
 * Run the new command's batch; if it must wait, park it.  Everything a
 * parked command needs is set up before it may park: from then on a
 * producer may fire it, and its task work complete and free it, at once.
 */
static int eq_uring_park(struct io_uring_cmd *cmd, struct eq_uring_wait *w,
			 unsigned int issue_flags)
{
	u64 timeout = w->push ? w->pb.timeout_ns : w->ob.timeout_ns;
	u32 flags = w->push ? w->pb.flags : w->ob.flags;
	long ret;

	if (!(flags & ELASTICQ_BATCH_TIMEOUT)) {
		const struct elasticq_config *cfg = eq_queue_cfg(w->q);

		timeout = w->push ? READ_ONCE(cfg->push_timeout_ns) :
				    READ_ONCE(cfg->pop_timeout_ns);
	}
	*(struct eq_uring_wait **)cmd->pdu = w;
	init_waitqueue_func_entry(&w->wait, eq_uring_wake);
	INIT_LIST_HEAD(&w->wait.entry);
	hrtimer_init(&w->timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	w->timer.function = eq_uring_timeout;
	if (!timeout)
		w->reason = -ETIMEDOUT;
	spin_lock(&eq_uring_lock);
	list_add_tail(&w->node, &eq_uring_parked);
	spin_unlock(&eq_uring_lock);
	/* From here the command completes through io_uring_cmd_done(). */
	eq_uring_mark_cancelable(cmd, issue_flags);
	eq_uring_arm(w);
	if (timeout && timeout != ELASTICQ_TIMEOUT_NONE)
		hrtimer_start(&w->timer,
			      ns_to_ktime(min_t(u64, timeout, KTIME_MAX)),
			      HRTIMER_MODE_REL);
	if (!EQ_URING_CANCELABLE)
		schedule_delayed_work(&eq_uring_watch_work,
				      EQ_URING_WATCH_PERIOD);
	ret = eq_uring_try(w);
	if (ret != -EIOCBQUEUED)
		eq_uring_done(w, ret, issue_flags);
	return -EIOCBQUEUED;
}

/* 6.1: end the waits io_uring would wait for forever. */
static void eq_uring_watch(struct work_struct *work)
{
	struct eq_uring_wait *w;
	bool more;

	spin_lock(&eq_uring_lock);
	list_for_each_entry(w, &eq_uring_parked, node)
		if (eq_uring_abandoned(w->cmd))
			eq_uring_end(w, -ECANCELED);
	more = !list_empty(&eq_uring_parked);
	spin_unlock(&eq_uring_lock);
	if (more)
		schedule_delayed_work(&eq_uring_watch_work,
				      EQ_URING_WATCH_PERIOD);
}

/**
 * eq_uring_flush() - ->flush of /dev/elasticq: end the commands that
 * @owner (the files closing the file) submitted on @file
 * @file:  the file being closed
 * @owner: the closer's files
 *
 * close(2) does not end a command otherwise: its request holds the file.
 *
 * Return: 0.
 */
int eq_uring_flush(struct file *file, fl_owner_t owner)
{
	struct eq_uring_wait *w;

	spin_lock(&eq_uring_lock);
	list_for_each_entry(w, &eq_uring_parked, node)
		if (w->file == file && w->owner == owner)
			eq_uring_end(w, -ECANCELED);
	spin_unlock(&eq_uring_lock);
	return 0;
}

/**
 * eq_uring_cmd() - ->uring_cmd of /dev/elasticq
 * @cmd:         the command: cmd_op an ELASTICQ_IOC_* batch number, the SQE's
 *               command area a struct elasticq_uring_cmd
 * @issue_flags: IO_URING_F_*
 *
 * Return: the batch's result as the ioctl's, -EIOCBQUEUED if it waits, or
 * -ENOTTY for another command number.
 */
int eq_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	const struct elasticq_uring_cmd *area;
	struct file *file = cmd->file;
	struct eq_uring_wait *w;
	u64 arg, reserved;
	struct eq_queue *q;
	bool push;
	int ret;

	if (eq_uring_is_cancel(issue_flags)) {
		eq_uring_end(eq_uring_wait_of(cmd), -ECANCELED);
		return 0;
	}
	switch (EQ_IOC_SIZELESS(cmd->cmd_op)) {
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_PUSH_BATCH):
		push = true;
		break;
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_POP_BATCH):
		push = false;
		break;
	default:
		return -ENOTTY;
	}
	/* The SQE is shared with userspace: read each field once. */
	area = eq_uring_cmd_area(cmd);
	arg = READ_ONCE(area->arg);
	reserved = READ_ONCE(area->reserved);
	if (reserved)
		return -EINVAL;
	w = kzalloc(sizeof(*w), GFP_KERNEL_ACCOUNT);
	if (!w)
		return -ENOMEM;
	w->cmd = cmd;
	w->file = file;
	w->owner = current->files;
	w->arg = u64_to_user_ptr(arg);
	w->push = push;
	if (push)
		ret = eq_push_batch_args(file, cmd->cmd_op, w->arg, &w->pb);
	else
		ret = eq_pop_batch_args(file, cmd->cmd_op, w->arg, &w->ob);
	if (ret || (push && !w->pb.count))
		goto out;
	q = eq_file_claim(file->private_data,
			  push ? EQ_ROLE_PRODUCER : EQ_ROLE_CONSUMER);
	if (IS_ERR(q)) {
		ret = PTR_ERR(q);
		goto out;
	}
	w->q = q;
	w->nonblock = eq_batch_nonblock(file, push ? w->pb.flags :
					w->ob.flags);
	return eq_uring_park(cmd, w, issue_flags);
out:
	kfree(w);
	return ret;
}

/**
 * eq_uring_exit() - at module unload: no command waits (each holds its
 * file, which holds the module); stop the watch.
 */
void eq_uring_exit(void)
{
	cancel_delayed_work_sync(&eq_uring_watch_work);
}
